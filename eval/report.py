"""Reports of a scored run: the summary (Markdown + JSON) and an HTML error report.

The HTML report shows the worst items (largest token distance first) with their image as an
embedded thumbnail when the image file can be read, the truth and the prediction with the
differing tokens highlighted (from :func:`data_prep.alignment.align`, the same minimal edit
script the ``<= k`` metrics count), and the symbol confusion table
(:class:`data_prep.confusions.ConfusionTable`, the table error-driven learning samples from).
Every text that comes from a file is HTML-escaped.
"""

from __future__ import annotations

import base64
import collections
import html
import io
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from data_prep.alignment import align, token_confusions
from data_prep.confusions import ConfusionTable
from data_prep.io_utils import write_text_atomic
from eval.metrics import Scores, format_length_table, format_table
from eval.predictions import PredictionRow
from eval.published import comparison_table, has_published_sets

logger = logging.getLogger(__name__)

THUMBNAIL_SIZE = (480, 160)


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


# --------------------------------------------------------------------------- #
# HTML error report
# --------------------------------------------------------------------------- #


def _thumbnail_data_uri(image_path: str | None, images_root: str | Path | None) -> str | None:
    if not image_path:
        return None
    path = Path(image_path)
    if not path.is_absolute() and images_root is not None:
        path = Path(images_root) / path
    try:
        with Image.open(path) as image:
            image.load()
            thumb = image.convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        logger.debug("no thumbnail for %s: %s", path, exc)
        return None
    thumb.thumbnail(THUMBNAIL_SIZE)
    buffer = io.BytesIO()
    thumb.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def highlight(gt: str, pred: str) -> tuple[str, str]:
    """HTML of truth and prediction with their differing tokens marked: on the truth side
    ``<del>`` for tokens the prediction misses or got wrong; on the prediction side ``<ins>`` for
    wrong or extra tokens."""
    gt_html: list[str] = []
    pred_html: list[str] = []
    for op in align(gt, pred):
        gt_text = html.escape(" ".join(op.gt_tokens))
        pred_text = html.escape(" ".join(op.pred_tokens))
        if op.tag == "equal":
            gt_html.append(gt_text)
            pred_html.append(pred_text)
            continue
        if op.gt_tokens:
            gt_html.append(f'<del class="{op.tag}">{gt_text}</del>')
        if op.pred_tokens:
            pred_html.append(f'<ins class="{op.tag}">{pred_text}</ins>')
    return " ".join(gt_html), " ".join(pred_html)


def confusion_table(rows: Sequence[PredictionRow]) -> ConfusionTable:
    """Substituted token pairs (truth -> prediction) over the wrong rows."""
    return ConfusionTable.from_pairs(
        pair for row in rows if row.distance for pair in token_confusions(row.gt, row.pred)
    )


def _missing_and_extra(rows: Sequence[PredictionRow]) -> tuple[collections.Counter, collections.Counter]:
    missing: collections.Counter[str] = collections.Counter()
    extra: collections.Counter[str] = collections.Counter()
    for row in rows:
        if not row.distance:
            continue
        for op in align(row.gt, row.pred):
            if op.tag == "insert":
                missing.update(op.gt_tokens)
            elif op.tag == "delete":
                extra.update(op.pred_tokens)
    return missing, extra


_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin-bottom:1.5em}
td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}
code{font-family:ui-monospace,monospace;white-space:pre-wrap;word-break:break-word}
del{background:#fdd;text-decoration:none;border-bottom:2px solid #c00}
ins{background:#dfd;text-decoration:none;border-bottom:2px solid #080}
del.insert{background:#fec}
ins.delete{background:#ffd}
img{max-width:480px;background:#eee}
.muted{color:#888}
"""


def render_html_report(
    rows: Sequence[PredictionRow],
    images_root: str | Path | None = None,
    worst: int = 50,
    title: str = "Error report",
    n_confusions: int = 40,
) -> str:
    esc = html.escape
    n = len(rows)
    wrong = [r for r in rows if r.distance]
    failed = collections.Counter(r.error for r in rows if r.error)
    # Worst first: largest distance, then failures, then id for a stable order.
    ranked = sorted(wrong, key=lambda r: (-(r.distance or 0), r.error is None, r.set, r.id))[:worst]
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        f"<p>{n} items, {n - len(wrong)} exactly right, {len(wrong)} wrong"
        + (", failed: " + esc(", ".join(f"{k}: {v}" for k, v in sorted(failed.items()))) if failed else "")
        + ".</p>",
        "<p>Truth: <del>missing or wrong tokens</del>. Prediction: <ins>wrong or extra tokens</ins>.</p>",
        f"<h2>Worst {len(ranked)} items (largest token distance)</h2>",
        "<table><tr><th>#</th><th>item</th><th>dist</th><th>image</th><th>truth / prediction</th></tr>",
    ]
    for rank, row in enumerate(ranked, start=1):
        uri = _thumbnail_data_uri(row.image_path, images_root)
        image_cell = (
            f'<img src="{uri}" alt="{esc(row.id)}">' if uri else '<span class="muted">no image</span>'
        )
        gt_html, pred_html = highlight(row.gt, row.pred)
        error = f'<br><span class="muted">{esc(row.error)}</span>' if row.error else ""
        item = esc(f"{row.set}/{row.id}" if row.set else row.id)
        out.append(
            f"<tr><td>{rank}</td><td><code>{item}</code>{error}</td><td>{row.distance}</td><td>{image_cell}</td>"
            f"<td><code>{gt_html}</code><br><code>{pred_html or '<span class=muted>(empty)</span>'}</code></td></tr>"
        )
    out.append("</table>")

    table = confusion_table(rows)
    out.append(f"<h2>Symbol confusions (truth &rarr; prediction), top {n_confusions}</h2>")
    if len(table):
        out.append("<table><tr><th>truth</th><th>predicted</th><th>count</th></tr>")
        for gt, pred, count in table.most_common(n_confusions):
            out.append(
                f"<tr><td><code>{esc(gt)}</code></td><td><code>{esc(pred)}</code></td><td>{count:g}</td></tr>"
            )
        out.append("</table>")
    else:
        out.append('<p class="muted">no substitutions</p>')
    missing, extra = _missing_and_extra(rows)
    for heading, counter in (("Most often missing tokens", missing), ("Most often extra tokens", extra)):
        out.append(f"<h2>{heading}</h2>")
        if counter:
            out.append("<table><tr><th>token</th><th>count</th></tr>")
            for token, count in counter.most_common(20):
                out.append(f"<tr><td><code>{esc(token)}</code></td><td>{count}</td></tr>")
            out.append("</table>")
        else:
            out.append('<p class="muted">none</p>')
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def write_html_report(
    rows: Sequence[PredictionRow],
    out_path: str | Path,
    images_root: str | Path | None = None,
    worst: int = 50,
    title: str = "Error report",
) -> Path:
    """Write the HTML error report for scored ``rows`` (atomically); returns its path."""
    out_path = Path(out_path)
    write_text_atomic(out_path, render_html_report(rows, images_root=images_root, worst=worst, title=title))
    return out_path
