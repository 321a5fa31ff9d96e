"""The model card (README.md) every export writes: what the model is, under which licence, how it
was made and, when a ``summary.json`` from ``eval.evaluate`` is given, how well it reads formulas.

The licence comes from the base model: Qwen2.5-VL-3B is under the research-only "Qwen Research
License", the 7B and 32B under Apache-2.0, the 72B under the "Qwen License". A fine-tune inherits
its base's terms, and the training data (CROHME, HME100K ...) add research-only terms of their own.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import yaml


@dataclasses.dataclass(frozen=True)
class Licence:
    """A licence as the Hub's model-card metadata names it (``license``, ``license_name``)."""

    hub_id: str
    name: str
    link: str | None
    commercial_use: bool | None

    def front_matter(self) -> dict[str, Any]:
        if self.hub_id == "other":
            return {"license": "other", "license_name": self.name, "license_link": self.link}
        return {"license": self.hub_id}


QWEN_RESEARCH = Licence(
    "other",
    "qwen-research",
    "https://huggingface.co/Qwen/Qwen2.5-VL-3B-Instruct/blob/main/LICENSE",
    commercial_use=False,
)
APACHE_2 = Licence("apache-2.0", "Apache License 2.0", "https://www.apache.org/licenses/LICENSE-2.0", True)
QWEN_LICENSE = Licence(
    "other", "qwen", "https://huggingface.co/Qwen/Qwen2.5-VL-72B-Instruct/blob/main/LICENSE", None
)
UNKNOWN = Licence("other", "unknown", None, None)

#: Qwen2.5-VL size -> licence of the published checkpoints.
_QWEN2_5_VL_LICENCES = {"3b": QWEN_RESEARCH, "7b": APACHE_2, "32b": APACHE_2, "72b": QWEN_LICENSE}

DATA_TERMS = (
    "CROHME and HME100K (and most handwritten-mathematics sets) are released for research, "
    "non-commercial use; a model trained on them carries those terms in practice."
)


def base_licence(base_model: str) -> Licence:
    """The licence of a Qwen2.5-VL base (hub id or a local folder named after it), else UNKNOWN."""
    name = Path(base_model).name.lower() if base_model else ""
    match = re.search(r"qwen2\.5-vl-(\d+b)", name) or re.search(r"qwen2\.5-vl-(\d+b)", base_model.lower())
    if match and match.group(1) in _QWEN2_5_VL_LICENCES:
        return _QWEN2_5_VL_LICENCES[match.group(1)]
    return UNKNOWN


@dataclasses.dataclass
class ModelCardInfo:
    """What the card says. ``eval_summary`` is the parsed ``summary.json`` of ``eval.evaluate``."""

    base_model: str
    export_format: str
    format_details: str = ""
    adapter: str | None = None
    recipe_path: str | None = None
    recipe_text: str | None = None
    data: str | None = None
    eval_summary: dict[str, Any] | None = None
    eval_summary_path: str | None = None
    size_bytes: int | None = None
    usage: str = ""


def eval_table(summary: dict[str, Any]) -> str:
    """A Markdown table (set, n, ExpRate, <=1, <=2, <=3) from ``summary.json``'s ``sets``."""
    sets = summary.get("sets")
    if not isinstance(sets, dict) or not sets:
        raise ValueError("the evaluation summary has no 'sets' table (expected eval.evaluate's summary.json)")
    ks = sorted(
        {
            int(key.split("_", 1)[1])
            for scores in sets.values()
            for key in scores
            if re.fullmatch(r"within_\d+", key)
        }
    )
    header = "| set | n | ExpRate | " + " | ".join(f"<= {k}" for k in ks) + " |"
    rule = "|---|---:|---:|" + "---:|" * len(ks)
    rows = []
    for name, scores in sets.items():
        cells = [f"{scores[f'within_{k}']:.2f}" if f"within_{k}" in scores else "-" for k in ks]
        rows.append(
            f"| {name} | {scores.get('n', '-')} | {scores.get('exprate', 0.0):.2f} | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join([header, rule, *rows])


def load_eval_summary(path: str | Path) -> dict[str, Any]:
    """Read a ``summary.json`` and check that it has the table the card shows."""
    path = Path(path)
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"evaluation summary {path} does not exist") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"evaluation summary {path} is not valid JSON: {err}") from None
    eval_table(summary)  # fails clearly now rather than half-way through an export
    return summary


def _human_size(n_bytes: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n_bytes < 1024 or unit == "GiB":
            return f"{n_bytes:.0f} {unit}" if unit == "B" else f"{n_bytes:.2f} {unit}"
        n_bytes /= 1024
    return f"{n_bytes:.2f} GiB"


def render_model_card(info: ModelCardInfo) -> str:
    """The README.md text: Hub front matter, then what, how made, how good, how to run, terms."""
    licence = base_licence(info.base_model)
    meta: dict[str, Any] = {
        **licence.front_matter(),
        "base_model": info.base_model,
        "library_name": "transformers",
        "pipeline_tag": "image-text-to-text",
        "tags": [
            "handwritten-mathematical-expression-recognition",
            "latex",
            "qwen2.5-vl",
            info.export_format,
        ],
    }
    lines = ["---", yaml.safe_dump(meta, sort_keys=False).strip(), "---", ""]
    lines += [
        f"# Handwritten mathematics to LaTeX ({info.export_format})",
        "",
        "A vision-language model fine-tuned to read an image of a handwritten formula and write its "
        "LaTeX as space-separated tokens (the Uni-MuMER answer format, e.g. `\\frac { a } { b }`).",
        "",
        "## Model",
        "",
        f"- Base model: `{info.base_model}`",
        f"- Export format: `{info.export_format}`"
        + (f" ({info.format_details})" if info.format_details else ""),
    ]
    if info.adapter:
        lines.append(f"- Made from the LoRA adapter `{info.adapter}` (merged into the base)")
    if info.size_bytes is not None:
        lines.append(f"- Weights on disk: {_human_size(info.size_bytes)}")
    lines += ["", "## Training", ""]
    if info.recipe_path:
        lines.append(f"- Recipe: `{info.recipe_path}`")
    if info.data:
        lines.append(f"- Data: {info.data}")
    if not info.recipe_path and not info.data:
        lines.append("- Recipe and data were not recorded with this export (pass `--recipe` / `--data`).")
    if info.recipe_text:
        lines += [
            "",
            "<details><summary>Recipe</summary>",
            "",
            "```yaml",
            info.recipe_text.rstrip(),
            "```",
            "",
            "</details>",
        ]
    lines += ["", "## Evaluation", ""]
    if info.eval_summary:
        source = f" (from `{info.eval_summary_path}`)" if info.eval_summary_path else ""
        lines += [
            f"ExpRate and `<= k` (token edit distance at most k), in percent{source}:",
            "",
            eval_table(info.eval_summary),
            "",
            "Scores were measured on the model before export; quantised formats can differ slightly.",
        ]
    else:
        lines.append("No evaluation summary was given with this export (`--eval-summary summary.json`).")
    if info.usage:
        lines += ["", "## Usage", "", info.usage.rstrip()]
    lines += ["", "## Licence and terms", ""]
    if licence is UNKNOWN:
        lines.append(
            f"The base model's licence is not known to the exporter: check `{info.base_model}`'s terms."
        )
    else:
        commercial = {
            False: "research and non-commercial use only",
            True: "commercial use allowed",
            None: "see its terms",
        }
        lines.append(
            f"The base model is under the {licence.name} licence ({commercial[licence.commercial_use]})"
            + (f": {licence.link}" if licence.link else ".")
            + " This fine-tune inherits those terms."
        )
    lines += ["", DATA_TERMS, ""]
    return "\n".join(lines)


def write_model_card(out_dir: str | Path, info: ModelCardInfo) -> Path:
    """Write ``README.md`` into ``out_dir`` (an export's staging folder) and return its path."""
    path = Path(out_dir) / "README.md"
    path.write_text(render_model_card(info), encoding="utf-8")
    return path
