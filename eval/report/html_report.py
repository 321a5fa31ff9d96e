"""The HTML error report of a scored run (``report.html``).

A self-contained page (:mod:`eval.report.html_page`: opens from disk with no network). It shows

* the title (the model by its folder name) and the run's settings;
* the scores per set and task (ExpRate, ``<= 1``, ``<= 2``, ``<= 3``) beside the published results
  for the same sets (:mod:`eval.scoring.published`);
* the plots of :mod:`eval.report.plots` (also written as PNG files beside the report) and, when the model
  folder has them, its training curves;
* the worst items: thumbnail, truth and prediction typeset side by side (a formula KaTeX cannot
  render falls back to its tokens with a mark), the token diff beneath (:func:`highlight`, the same
  edit script the ``<= k`` metrics count), sortable and filterable by set, task, distance, truth
  length and symbol;
* the symbol confusions and the most often missing and extra tokens.

Every text that comes from a file is HTML-escaped; a field over ``MAX_FIELD_CHARS`` is cut with a
visible mark. Images are embedded only from inside the dataset and predictions folders
(``image_roots``): a path that leads elsewhere (absolute, or ``../`` escaping) is never opened and
is counted as "image not embedded: outside the report's folders".
"""

from __future__ import annotations

import collections
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from data_prep.tasks.error_driven.alignment import align, token_confusions
from data_prep.tasks.error_driven.confusions import ConfusionTable
from eval.report import plots
from eval.report.html_page import (
    MAX_FIELD_CHARS,
    HtmlReport,
    cut_text,
    data_uri,
    esc,
    katex_or_none,
    page,
    tex_cell,
    write_page,
)
from eval.report.katex_assets import KatexAssets
from eval.report.report_images import OUTSIDE, image_outside, thumbnaildata_uri
from eval.scoring.metrics import THRESHOLDS, Scores, score_items, tokens
from eval.scoring.published import PUBLISHED, SET_SIZES, canonical_set_name

logger = logging.getLogger(__name__)

#: Files of a training run that the report links when the model folder has them.
TRAINING_FILES = ("training_loss.png", "trainer_log.jsonl")
SORTS = (
    ("dist-desc", "distance, largest first"),
    ("dist-asc", "distance, smallest first"),
    ("len-desc", "truth length, longest first"),
    ("len-asc", "truth length, shortest first"),
    ("id-asc", "set / id"),
)

# --------------------------------------------------------------------------- #
# Pieces
# --------------------------------------------------------------------------- #


def highlight(gt: str, pred: str) -> tuple[str, str]:
    """HTML of truth and prediction with their differing tokens marked: on the truth side
    ``<del>`` for tokens the prediction misses (``insert``) or got wrong (``replace``); on the
    prediction side ``<ins>`` for wrong (``replace``) or extra (``delete``) tokens."""
    gt_html: list[str] = []
    pred_html: list[str] = []
    for op in align(gt, pred):
        gt_text = esc(" ".join(op.gt_tokens))
        pred_text = esc(" ".join(op.pred_tokens))
        if op.tag == "equal":
            gt_html.append(gt_text)
            pred_html.append(pred_text)
            continue
        if op.gt_tokens:
            gt_html.append(f'<del class="{op.tag}">{gt_text}</del>')
        if op.pred_tokens:
            pred_html.append(f'<ins class="{op.tag}">{pred_text}</ins>')
    return " ".join(gt_html), " ".join(pred_html)


def confusion_table(rows: Sequence[Any]) -> ConfusionTable:
    """Substituted token pairs (truth -> prediction) over the wrong rows."""
    return ConfusionTable.from_pairs(
        pair for row in rows if row.distance for pair in token_confusions(row.gt, row.pred)
    )


def missing_and_extra(rows: Sequence[Any]) -> tuple[collections.Counter, collections.Counter]:
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


def scores_by_set_and_task(rows: Sequence[Any]) -> dict[tuple[str, str], Scores]:
    groups: dict[tuple[str, str], list[Any]] = {}
    for row in rows:
        groups.setdefault((row.set, row.task), []).append(row)
    return {key: score_items((r.gt, r.pred, r.error) for r in group) for key, group in groups.items()}


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def scores_html(scores: Mapping[tuple[str, str], Scores]) -> str:
    ks = [f"&le;{k}" for k in THRESHOLDS]
    out = [
        '<table id="scores"><tr><th>set</th><th>task</th><th>n</th><th>ExpRate</th>'
        + "".join(f"<th>{k}</th>" for k in ks)
        + "<th>failed</th><th>Uni-MuMER 3B (published) ExpRate / &le;1 / &le;2</th></tr>"
    ]
    reference = PUBLISHED[0]
    for (set_name, task), s in scores.items():
        canon = canonical_set_name(set_name)
        published = "-"
        if reference.exprate.get(canon) is not None:
            published = " / ".join(
                _pct(table.get(canon))
                for table in (reference.exprate, reference.within_1, reference.within_2)
            )
            if s.n != SET_SIZES.get(canon):
                published += f' <span class="muted">(ours on {s.n} of {SET_SIZES[canon]} items)</span>'
        out.append(
            f"<tr><td>{esc(set_name or '-')}</td><td>{esc(task)}</td><td class=num>{s.n}</td>"
            f"<td class=num><b>{s.exprate:.2f}</b></td>"
            + "".join(f"<td class=num>{s.within_rate(k):.2f}</td>" for k in THRESHOLDS)
            + f"<td class=num>{s.n_failed}</td><td>{published}</td></tr>"
        )
    out.append("</table>")
    canon_sets = sorted({canonical_set_name(s) for s, _ in scores} & set(SET_SIZES))
    if canon_sets:
        out.append("<details><summary>All published ExpRates for these sets</summary>")
        out.append("<table><tr><th>method</th>" + "".join(f"<th>{esc(s)}</th>" for s in canon_sets) + "</tr>")
        for pub in PUBLISHED:
            cells = [pub.exprate.get(s) for s in canon_sets]
            if any(c is not None for c in cells):
                out.append(
                    f"<tr><td>{esc(pub.method)}</td>"
                    + "".join(f"<td class=num>{_pct(c)}</td>" for c in cells)
                    + "</tr>"
                )
        out.append("</table></details>")
    return "\n".join(out)


LEGEND = """<table class="legend">
<tr><td><del class="replace">x</del> on the truth</td><td>a truth token the prediction got wrong (substituted)</td></tr>
<tr><td><del class="insert">x</del> on the truth</td><td>a truth token the prediction misses</td></tr>
<tr><td><ins class="replace">y</ins> on the prediction</td><td>the wrong token written in its place</td></tr>
<tr><td><ins class="delete">y</ins> on the prediction</td><td>an extra token the truth does not have</td></tr>
<tr><td>plain tokens</td><td>the same in truth and prediction</td></tr>
<tr><td><span class="tex-failed"><span class="mark">&#9888; not typeset</span></span></td>
<td>KaTeX {version} could not render this LaTeX: its tokens are shown instead (hover the mark for why)</td></tr>
<tr><td><span class="muted">corrupt_image, empty_generation ...</span></td>
<td>the item failed before scoring and counts as wrong</td></tr>
<tr><td>dist / len</td><td>token edit distance to the truth (what &le;k counts) / truth length in tokens</td></tr>
</table>"""


def _select(id_: str, label: str, options: Sequence[tuple[str, str]]) -> str:
    opts = "".join(f'<option value="{esc(v)}">{esc(t)}</option>' for v, t in options)
    return f'<label>{label}<select id="{id_}">{opts}</select></label>'


def controls_html(rows: Sequence[Any]) -> str:
    sets = sorted({r.set for r in rows})
    tasks = sorted({r.task for r in rows})
    parts = [
        _select("f-set", "set", [("", "all sets"), *[(s, s) for s in sets]]),
        _select("f-task", "task", [("", "all tasks"), *[(t, t) for t in tasks]]),
        '<label>distance from<input type="number" id="f-dmin" min="0"></label>',
        '<label>to<input type="number" id="f-dmax" min="0"></label>',
        '<label>length from<input type="number" id="f-lmin" min="0"></label>',
        '<label>to<input type="number" id="f-lmax" min="0"></label>',
        '<label>symbol (a token, e.g. \\frac)<input type="text" id="f-sym" size="10"></label>',
        _select("f-sort", "sort by", SORTS),
        '<span id="shown-count" class="muted"></span>',
    ]
    return '<div class="controls">' + "".join(parts) + "</div>"


def item_row(
    rank: int, row: Any, images_root: str | Path | None, roots: Sequence[str | Path] | None = None
) -> str:
    uri = thumbnaildata_uri(row.image_path, images_root, roots)
    if uri:
        image = f'<img class="thumb" src="{uri}" alt="{esc(row.id)}">'
    elif image_outside(row.image_path, images_root, roots):
        image = f'<span class="muted not-embedded">{esc(OUTSIDE)}</span>'
    else:
        image = '<span class="muted">no image</span>'
    if len(row.gt) > MAX_FIELD_CHARS or len(row.pred) > MAX_FIELD_CHARS:
        # Cut, not diffed: a diff of a huge field would be the size of the field.
        gt_diff, pred_diff = esc(cut_text(row.gt)), esc(cut_text(row.pred))
    else:
        gt_diff, pred_diff = highlight(row.gt, row.pred)
    error = f'<br><span class="muted">{esc(row.error)}</span>' if row.error else ""
    symbols = " ".join(sorted(set(tokens(row.gt)) | set(tokens(row.pred))))
    n_tokens = len(tokens(row.gt))
    attrs = (
        f'data-rank="{rank}" data-set="{esc(row.set)}" data-id="{esc(row.id)}" data-task="{esc(row.task)}" '
        f'data-dist="{row.distance}" data-len="{n_tokens}" data-syms="{esc(symbols)}"'
    )
    return (
        f'<tr class="item" {attrs}><td>{rank}</td><td><code>{esc(row.set)}/{esc(row.id)}</code>{error}'
        f'<br><span class="muted">{esc(row.task)}</span></td><td class=num>{row.distance}</td>'
        f"<td class=num>{n_tokens}</td><td>{image}"
        f'<div class="pair"><div><div class="label">truth</div>{tex_cell(row.gt)}</div>'
        f'<div><div class="label">prediction</div>{tex_cell(row.pred)}</div></div>'
        f'<div class="diff"><code>{gt_diff}</code><br><code>{pred_diff or "<span class=muted>(empty)</span>"}</code></div>'
        "</td></tr>"
    )


def training_curves_html(model_dir: str | Path | None, report_dir: Path | None) -> str:
    """Links to the training curves (and the loss plot itself) of the model folder, or of its run
    when it is a ``checkpoint-*`` folder; '' when there are none."""
    if not model_dir or not Path(model_dir).is_dir():
        return ""
    folder = Path(model_dir).resolve()
    if folder.name.startswith("checkpoint") and not any((folder / n).is_file() for n in TRAINING_FILES):
        folder = folder.parent
    found = [folder / name for name in TRAINING_FILES if (folder / name).is_file()]
    if not found:
        return ""
    links = []
    for path in found:
        href = (
            os.path.relpath(path.resolve(), report_dir.resolve()) if report_dir else path.resolve().as_uri()
        )
        links.append(f'<a href="{esc(Path(href).as_posix())}">{esc(path.name)}</a>')
    out = ["<h2>Training curves</h2>", f"<p>From the model folder: {', '.join(links)}.</p>"]
    loss_png = folder / "training_loss.png"
    if loss_png.is_file():
        out.append(f'<img class="plot" src="{data_uri(loss_png.read_bytes())}" alt="training loss">')
    return "\n".join(out)


def model_label(model: str | Path) -> str:
    """A model by its folder name (``checkpoint-*`` folders with their run's name), a hub id as is."""
    path = Path(model)
    if not path.exists():
        return str(model)
    path = path.resolve()
    return f"{path.parent.name}/{path.name}" if path.name.startswith("checkpoint") else path.name


def _settings_html(settings: Mapping[str, Any] | None) -> str:
    if not settings:
        return ""
    cells = " &middot; ".join(
        f'<span class="setting">{esc(str(k))} <code>{esc(str(v))}</code></span>' for k, v in settings.items()
    )
    return f'<p class="settings">{cells}</p>'


# --------------------------------------------------------------------------- #
# The error report
# --------------------------------------------------------------------------- #


def build_html_report(
    rows: Sequence[Any],
    images_root: str | Path | None = None,
    worst: int = 50,
    title: str = "Error report",
    n_confusions: int = 40,
    settings: Mapping[str, Any] | None = None,
    model_dir: str | Path | None = None,
    report_dir: Path | None = None,
    katex: KatexAssets | None | bool = True,
    image_roots: Sequence[str | Path] | None = None,
) -> HtmlReport:
    """The page and its plots. ``katex``: assets to embed, True to load the pinned ones (a banner
    says so when they are missing), False for none (formulas stay tokens). ``image_roots``: the
    folders images may be embedded from (the dataset and predictions folders; None: ``images_root``);
    an image elsewhere is counted and shown as not embedded."""
    assets, banner = katex_or_none(katex)
    n = len(rows)
    wrong = [r for r in rows if r.distance]
    failed = collections.Counter(r.error for r in rows if r.error)
    # Worst first: largest distance, then failures, then id for a stable order.
    ranked = sorted(wrong, key=lambda r: (-(r.distance or 0), r.error is None, r.set, r.id))[:worst]
    by_set_task = scores_by_set_and_task(rows)
    several_tasks = len({task for _, task in by_set_task}) > 1
    by_series = {
        (f"{set_name} ({task})" if several_tasks else set_name or "-"): s
        for (set_name, task), s in by_set_task.items()
    }
    table = confusion_table(rows)
    pngs = {"exprate_by_length.png": plots.exprate_by_length_png(by_series)} if rows else {}
    heatmap = plots.confusion_heatmap_png(table)
    if heatmap is not None:
        pngs["confusion_heatmap.png"] = heatmap

    outside = sum(1 for r in ranked if image_outside(r.image_path, images_root, image_roots))
    if outside:
        logger.warning("%d images not embedded in the report: outside the report's folders", outside)
    body = [
        f"<h1>{esc(title)}</h1>",
        _settings_html(settings),
        banner,
        f'<p class="banner" id="not-embedded">{outside} {esc(OUTSIDE)} (their paths lead outside the '
        "dataset and predictions folders)</p>"
        if outside
        else "",
        f"<p>{n} items, {n - len(wrong)} exactly right, {len(wrong)} wrong"
        + (", failed: " + esc(", ".join(f"{k}: {v}" for k, v in sorted(failed.items()))) if failed else "")
        + '. <span id="typeset-status" class="muted"></span></p>',
        "<h2>Scores</h2>",
        scores_html(by_set_task),
        "<h2>Plots</h2>",
        '<div class="plots">',
        *(
            f'<img class="plot" id="plot-{esc(name[:-4])}" src="{data_uri(png)}" alt="{esc(name)}">'
            for name, png in pngs.items()
        ),
        "</div>",
        training_curves_html(model_dir, report_dir),
        "<h2>Legend</h2>",
        LEGEND.replace("{version}", assets.version if assets else "(not bundled)"),
        f"<h2>Worst {len(ranked)} items (largest token distance)</h2>",
        controls_html(ranked),
        '<table id="items"><thead><tr><th>#</th><th>item</th><th>dist</th><th>len</th>'
        "<th>image, truth and prediction typeset, token diff</th></tr></thead><tbody>",
        *(item_row(rank, row, images_root, image_roots) for rank, row in enumerate(ranked, start=1)),
        "</tbody></table>",
        f"<h2>Symbol confusions (truth &rarr; prediction), top {n_confusions}</h2>",
    ]
    if len(table):
        body.append("<table><tr><th>truth</th><th>predicted</th><th>count</th></tr>")
        for gt, pred, count in table.most_common(n_confusions):
            body.append(
                f"<tr><td><code>{esc(gt)}</code></td><td><code>{esc(pred)}</code></td><td>{count:g}</td></tr>"
            )
        body.append("</table>")
    else:
        body.append('<p class="muted">no substitutions</p>')
    missing, extra = missing_and_extra(rows)
    for heading, counter in (("Most often missing tokens", missing), ("Most often extra tokens", extra)):
        body.append(f"<h2>{heading}</h2>")
        if counter:
            body.append("<table><tr><th>token</th><th>count</th></tr>")
            for token, count in counter.most_common(20):
                body.append(f"<tr><td><code>{esc(token)}</code></td><td>{count}</td></tr>")
            body.append("</table>")
        else:
            body.append('<p class="muted">none</p>')
    return HtmlReport(html=page(title, [b for b in body if b], assets), plots=pngs)


def render_html_report(rows: Sequence[Any], **kwargs: Any) -> str:
    return build_html_report(rows, **kwargs).html


def write_html_report(rows: Sequence[Any], out_path: str | Path, **kwargs: Any) -> Path:
    """Write the report (atomically) and its plots under ``plots/`` beside it; returns its path.
    Keyword arguments are those of :func:`build_html_report`."""
    out_path = Path(out_path)
    kwargs.setdefault("report_dir", out_path.parent)
    return write_page(build_html_report(rows, **kwargs), out_path)
