"""Published results to print beside our own, so every CROHME run is read against the literature.

Figures as the papers report them (percent), gathered in the project's field notes: Uni-MuMER
(NeurIPS 2025) for itself, its main-task-only SFT, its ablation and the Qwen2.5-VL-3B zero-shot
baseline; CoMER, PosFormer and SSAN as the Uni-MuMER paper tables them. All CROHME figures are
scored against the CoMER caption edition. ``None`` means not reported.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

from eval.scoring.metrics import Scores

CROHME_SETS = ("crohme2014", "crohme2016", "crohme2019")
SETS = (*CROHME_SETS, "hme100k")
#: Test-set sizes, to spot a run on a partial set.
SET_SIZES = {"crohme2014": 986, "crohme2016": 1147, "crohme2019": 1199, "hme100k": 24607}


@dataclasses.dataclass(frozen=True)
class Published:
    method: str
    exprate: Mapping[str, float | None]
    #: ``<= 1`` and ``<= 2`` where the paper gives them.
    within_1: Mapping[str, float | None] = dataclasses.field(default_factory=dict)
    within_2: Mapping[str, float | None] = dataclasses.field(default_factory=dict)
    #: Mean CROHME ExpRate when only the mean is reported.
    crohme_mean: float | None = None
    note: str = ""

    def mean(self) -> float | None:
        values = [self.exprate.get(s) for s in CROHME_SETS]
        if all(v is not None for v in values):
            return round(sum(values) / len(values), 2)  # type: ignore[arg-type]
        return self.crohme_mean


PUBLISHED: tuple[Published, ...] = (
    Published(
        "Uni-MuMER 3B",
        {"crohme2014": 82.05, "crohme2016": 77.94, "crohme2019": 79.23, "hme100k": 69.5},
        within_1={"crohme2014": 89.45, "crohme2016": 87.45, "crohme2019": 90.91},
        within_2={"crohme2014": 93.00, "crohme2016": 92.07, "crohme2019": 93.83},
        note="HME100K about 69.5 on the full test set",
    ),
    Published(
        "Uni-MuMER 3B, main task only (SFT)", {"crohme2014": 72.62, "crohme2016": 64.26, "crohme2019": 69.14}
    ),
    Published("Qwen2.5-VL-3B zero-shot", {"crohme2014": 38.64, "crohme2016": 37.75, "crohme2019": 37.45}),
    Published("CoMER", {"crohme2014": 59.33, "crohme2016": 59.81, "crohme2019": 62.97}),
    Published("PosFormer", {"crohme2014": 62.68}),
    Published("SSAN (best specialist)", {}, crohme_mean=63.4, note="about 63.4 mean"),
    # Uni-MuMER's ablation, trained on CROHME only: mean ExpRate over 2014/16/19.
    Published("ablation (CROHME only): main task", {}, crohme_mean=68.64),
    Published("ablation (CROHME only): + Tree-CoT", {}, crohme_mean=70.85),
    Published("ablation (CROHME only): + error-driven learning", {}, crohme_mean=70.30),
    Published("ablation (CROHME only): + symbol counting", {}, crohme_mean=69.86),
    Published("ablation (CROHME only): all three tasks", {}, crohme_mean=73.29),
)


def canonical_set_name(name: str) -> str:
    """``crohme_2014``, ``CROHME2014_test``, ``2014`` -> ``crohme2014``; ``hme100k_test`` -> ``hme100k``;
    anything else is returned unchanged."""
    lowered = name.lower()
    match = re.search(r"(?:crohme[\W_]*)?(2014|2016|2019)(?!\d)", lowered)
    if match and ("crohme" in lowered or lowered.strip("_-") == match.group(1)):
        return f"crohme{match.group(1)}"
    if "hme100k" in lowered or "hme_100k" in lowered:
        return "hme100k"
    return name


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def comparison_table(ours: Mapping[str, Scores], name: str = "this run") -> str:
    """Markdown table of ExpRate: published methods and ``ours`` on CROHME 2014/2016/2019, their
    mean and HME100K. ``ours`` is keyed by set name (any spelling :func:`canonical_set_name`
    knows); a partial set is flagged with its size."""
    by_set = {canonical_set_name(k): v for k, v in ours.items()}
    header = "| method | CROHME 2014 | CROHME 2016 | CROHME 2019 | CROHME mean | HME100K |"
    lines = [header, "|---|---|---|---|---|---|"]
    for pub in PUBLISHED:
        cells = [_fmt(pub.exprate.get(s)) for s in CROHME_SETS]
        lines.append(
            f"| {pub.method} | "
            + " | ".join([*cells, _fmt(pub.mean()), _fmt(pub.exprate.get("hme100k"))])
            + " |"
        )
    cells = []
    for s in SETS:
        scores = by_set.get(s)
        if scores is None:
            cells.append("-")
        elif scores.n != SET_SIZES[s]:
            cells.append(f"{scores.exprate:.2f} (n={scores.n} of {SET_SIZES[s]})")
        else:
            cells.append(f"{scores.exprate:.2f}")
    crohme = [by_set[s] for s in CROHME_SETS if s in by_set]
    mean = _fmt(round(sum(s.exprate for s in crohme) / 3, 2)) if len(crohme) == 3 else "-"
    lines.append(f"| **{name}** | " + " | ".join([*cells[:3], mean, cells[3]]) + " |")
    # The reference also publishes <= 1 and <= 2 on CROHME: set them side by side with ours.
    reference = PUBLISHED[0]
    if not any(s in by_set for s in CROHME_SETS):
        return "\n".join(lines)
    lines += ["", f"| CROHME, {reference.method} vs {name} | ExpRate | <=1 | <=2 |", "|---|---|---|---|"]
    for s in CROHME_SETS:
        ref = f"{_fmt(reference.exprate.get(s))} | {_fmt(reference.within_1.get(s))} | {_fmt(reference.within_2.get(s))}"
        own = "- | - | -"
        if s in by_set:
            own = f"{by_set[s].exprate:.2f} | {by_set[s].within_rate(1):.2f} | {by_set[s].within_rate(2):.2f}"
        lines.append(f"| {s}: {reference.method} | {ref} |")
        lines.append(f"| {s}: {name} | {own} |")
    return "\n".join(lines)


def has_published_sets(set_names: list[str]) -> bool:
    return any(canonical_set_name(s) in SETS for s in set_names)
