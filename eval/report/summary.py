"""The summary of a scored run (Markdown + JSON, with the published comparison). The HTML error
report is :mod:`eval.report.html_report`, the paired page :mod:`eval.report.compare_html`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from data_prep.io_utils import write_text_atomic
from eval.scoring.metrics import Scores, format_length_table, format_table
from eval.scoring.published import comparison_table, has_published_sets

# --------------------------------------------------------------------------- #
# Summary
# --------------------------------------------------------------------------- #


def summary_markdown(
    scores_by_set: Mapping[str, Scores], notes: Sequence[str] = (), title: str = "Scores"
) -> str:
    parts = [f"# {title}", "", format_table(scores_by_set), "", "## ExpRate by truth length (tokens)", ""]
    parts.append(format_length_table(scores_by_set))
    failed = {name: s.failed for name, s in scores_by_set.items() if s.failed}
    if failed:
        parts += ["", "## Failed items (scored as wrong)", ""]
        for name, reasons in failed.items():
            parts.append(f"- {name}: " + ", ".join(f"{reason}: {n}" for reason, n in sorted(reasons.items())))
    if has_published_sets(list(scores_by_set)):
        parts += ["", "## Against published results (ExpRate)", "", comparison_table(scores_by_set)]
    if notes:
        parts += ["", "## Notes", ""] + [f"- {note}" for note in notes]
    return "\n".join(parts) + "\n"


def write_summary(
    scores_by_set: Mapping[str, Scores],
    out_dir: str | Path,
    extra: Mapping[str, Any] | None = None,
    notes: Sequence[str] = (),
    title: str = "Scores",
) -> tuple[Path, Path]:
    """Write ``summary.md`` and ``summary.json`` into ``out_dir``; returns their paths.

    ``extra`` is merged into the JSON (e.g. the input files, rejects, disagreements); ``notes``
    are plain sentences appended to the Markdown.
    """
    out_dir = Path(out_dir)
    md_path, json_path = out_dir / "summary.md", out_dir / "summary.json"
    write_text_atomic(md_path, summary_markdown(scores_by_set, notes, title=title))
    payload = {"sets": {name: s.as_dict() for name, s in scores_by_set.items()}, **(extra or {})}
    write_text_atomic(json_path, json.dumps(payload, ensure_ascii=False, indent=2) + "\n")
    return md_path, json_path
