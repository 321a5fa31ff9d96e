"""The dataset card (``README.md``) of a built dataset: what makes the folder Hub-ready.

Its YAML header lists every split's shards under ``configs``/``data_files``, so
``datasets.load_dataset(folder)`` (or the Hub repo it is pushed to) returns every split by its
name, test sets included; without it ``datasets`` knows only ``train``/``test``/``validation``-like
folder names. The body gives the rows per split and, per source, the reader, the original split
and the licence/terms it comes with, so whoever downloads the dataset knows where each row is from.
The build's own state (``manifest.json``, ``.build/``) is not data: :data:`UPLOAD_PATTERNS` is what
``python -m data_prep.push`` sends.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from data_prep.io_utils import write_text_atomic
from data_prep.readers.registry import reader_terms

#: A line every card carries: a rebuild deletes (or replaces) only a card with it.
CARD_MARKER = "<!-- dataset card written by hmer-recipes: python -m data_prep.build -->"
#: What an upload sends: the card, the shards, the reports. Never the resume state or caches.
UPLOAD_PATTERNS = ("README.md", "*/shard-*.parquet", "report.json", "report.md", "vocab.txt")
#: Never sent, whatever matches above (huggingface_hub's ``*`` also matches ``/``).
IGNORE_PATTERNS = (".build/*", ".cache/*", "sharegpt/*", "manifest.json", "*.tmp")


def card_text(report: dict[str, Any], recipe) -> str:
    """The card for a finished build (``report`` as :func:`data_prep.build.report.build_report` makes it)."""
    splits = report["splits"]
    header = {
        "configs": [
            {
                "config_name": "default",
                "data_files": [{"split": name, "path": f"{name}/shard-*.parquet"} for name in splits],
            }
        ],
        "license": "other",
        "task_categories": ["image-to-text"],
        "tags": ["handwritten-mathematical-expression-recognition", "latex", "hmer"],
    }
    lines = [
        "---",
        yaml.safe_dump(header, sort_keys=False).rstrip(),
        "---",
        CARD_MARKER,
        "",
        f"# {Path(recipe.output_dir).name}",
        "",
        f"Built with `python -m data_prep.build --config {recipe.path}` (recipe hash "
        f"`{report['recipe_hash']}`, hmer-recipes); load it with "
        "`datasets.load_dataset(FOLDER_OR_REPO)`. Rows: `id, source, split, task, image, prompt, "
        "answer, meta` (meta is JSON text); images are PNG, dark ink on a light page; answers are "
        "LaTeX as space-separated tokens.",
        "",
        "## Splits",
        "",
        "| split | rows | rows by task |",
        "|---|---:|---|",
    ]
    for name, data in splits.items():
        tasks = ", ".join(f"{task} {n:,}" for task, n in data["rows_by_task"].items())
        lines.append(f"| `{name}` | {data['rows']:,} | {tasks} |")
    lines += [
        "",
        "## Sources, licences and provenance",
        "",
        "| source | reader | original split | feeds | terms |",
        "|---|---|---|---|---|",
    ]
    for spec in recipe.test_sets:
        lines.append(_source_row(spec, spec.name))
    for spec in recipe.train:
        feeds = "train" + (f", {spec.holdout.name}" if spec.holdout else "")
        lines.append(_source_row(spec, feeds))
    lines += [
        "",
        "The licence of this dataset is that of its sources: check each before use or redistribution.",
        "The build report (`report.md`) lists what was rejected and why.",
        "",
    ]
    return "\n".join(lines)


def _source_row(spec, feeds: str) -> str:
    terms = reader_terms(spec.reader)
    return f"| `{spec.name}` | `{spec.reader}` | `{spec.split}` | {feeds} | {terms} |"


def write_card(out: Path, report: dict[str, Any], recipe) -> Path:
    """Write ``<out>/README.md``; a README.md that this project did not write is never replaced."""
    path = Path(out) / "README.md"
    if path.is_file() and CARD_MARKER not in path.read_text(encoding="utf-8", errors="replace"):
        raise FileExistsError(f"{path} exists and was not written by the build; move it away")
    write_text_atomic(path, card_text(report, recipe))
    return path


def upload_files(data_dir: str | Path) -> list[str]:
    """The files (relative, sorted) an upload of ``data_dir`` sends: :data:`UPLOAD_PATTERNS` only."""
    import fnmatch

    data_dir = Path(data_dir)
    names = (str(p.relative_to(data_dir)) for p in data_dir.rglob("*") if p.is_file())
    return sorted(
        name
        for name in names
        if any(fnmatch.fnmatch(name, pattern) for pattern in UPLOAD_PATTERNS)
        and not any(fnmatch.fnmatch(name, pattern) for pattern in IGNORE_PATTERNS)
    )


__all__ = [
    "CARD_MARKER",
    "IGNORE_PATTERNS",
    "UPLOAD_PATTERNS",
    "card_text",
    "upload_files",
    "write_card",
]
