"""The HTML error report of a scored run, and the paired page of two runs.

One self-contained file that opens from disk with no network: KaTeX (pinned, from
:mod:`eval.katex_assets`) and its fonts are inlined, images and plots are ``data:`` URIs, and a
Content-Security-Policy forbids the page any other source, so a browser could not fetch a remote
asset even if one slipped in. It shows

* the title (the model by its folder name) and the run's settings;
* the scores per set and task (ExpRate, ``<= 1``, ``<= 2``, ``<= 3``) beside the published results
  for the same sets (:mod:`eval.published`);
* the plots of :mod:`eval.plots` (also written as PNG files beside the report) and, when the model
  folder has them, its training curves;
* the worst items: thumbnail, truth and prediction typeset side by side (a formula KaTeX cannot
  render falls back to its tokens with a mark), the token diff beneath (:func:`highlight`, the same
  edit script the ``<= k`` metrics count), sortable and filterable by set, task, distance, truth
  length and symbol;
* the symbol confusions and the most often missing and extra tokens.

Every text that comes from a file is HTML-escaped.
"""

from __future__ import annotations

import base64
import collections
import dataclasses
import html
import io
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from data_prep.alignment import align, token_confusions
from data_prep.confusions import ConfusionTable
from data_prep.io_utils import atomic_output, write_text_atomic
from eval import plots
from eval.katex_assets import KatexAssets, KatexMissing, load_katex
from eval.metrics import THRESHOLDS, Scores, score_items, tokens
from eval.published import PUBLISHED, SET_SIZES, canonical_set_name

logger = logging.getLogger(__name__)

THUMBNAIL_SIZE = (480, 160)
ASSETS = Path(__file__).resolve().parent / "report_assets"
#: Everything the page may load comes from itself: no remote script, style, font or image.
CSP = (
    "default-src 'none'; img-src data:; font-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"
)
#: Files of a training run that the report links when the model folder has them.
TRAINING_FILES = ("training_loss.png", "trainer_log.jsonl")
SORTS = (
    ("dist-desc", "distance, largest first"),
    ("dist-asc", "distance, smallest first"),
    ("len-desc", "truth length, longest first"),
    ("len-asc", "truth length, shortest first"),
    ("id-asc", "set / id"),
)

esc = html.escape


@dataclasses.dataclass
class HtmlReport:
    html: str
    #: PNG files to write beside the report (name -> bytes); the page embeds the same bytes.
    plots: dict[str, bytes]


# --------------------------------------------------------------------------- #
# Pieces
# --------------------------------------------------------------------------- #


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def thumbnail_data_uri(image_path: str | None, images_root: str | Path | None) -> str | None:
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
    return _data_uri(buffer.getvalue())


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


def tex_cell(latex: str) -> str:
    """A formula for the page's script to typeset; its tokens are the content until then."""
    return f'<div class="tex" data-tex="{esc(latex)}"><code>{esc(latex)}</code></div>'


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


def item_row(rank: int, row: Any, images_root: str | Path | None) -> str:
    uri = thumbnail_data_uri(row.image_path, images_root)
    image = (
        f'<img class="thumb" src="{uri}" alt="{esc(row.id)}">'
        if uri
        else '<span class="muted">no image</span>'
    )
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
    """Links to the model folder's training curves (and the loss plot itself), or ''."""
    if not model_dir or not Path(model_dir).is_dir():
        return ""
    found = [Path(model_dir) / name for name in TRAINING_FILES if (Path(model_dir) / name).is_file()]
    if not found:
        return ""
    links = []
    for path in found:
        href = (
            os.path.relpath(path.resolve(), report_dir.resolve()) if report_dir else path.resolve().as_uri()
        )
        links.append(f'<a href="{esc(Path(href).as_posix())}">{esc(path.name)}</a>')
    out = ["<h2>Training curves</h2>", f"<p>From the model folder: {', '.join(links)}.</p>"]
    loss_png = Path(model_dir) / "training_loss.png"
    if loss_png.is_file():
        out.append(f'<img class="plot" src="{_data_uri(loss_png.read_bytes())}" alt="training loss">')
    return "\n".join(out)


def model_label(model: str | Path) -> str:
    """A model by its folder name (``checkpoint-*`` folders with their run's name), a hub id as is."""
    path = Path(model)
    if not path.exists():
        return str(model)
    path = path.resolve()
    return f"{path.parent.name}/{path.name}" if path.name.startswith("checkpoint") else path.name


def _page(title: str, body: Sequence[str], katex: KatexAssets | None) -> str:
    css = (ASSETS / "report.css").read_text(encoding="utf-8")
    head = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        f"<title>{esc(title)}</title>",
    ]
    if katex is not None:
        head.append(f"<style>{katex.css}</style>")
    head.append(f"<style>{css}</style></head><body>")
    tail = []
    if katex is not None:
        tail.append(f"<script>{katex.js}</script>")
    tail.append(f"<script>{(ASSETS / 'report.js').read_text(encoding='utf-8')}</script>")
    return "\n".join([*head, *body, *tail, "</body></html>"]) + "\n"


def _katex_or_none(katex: KatexAssets | None | bool) -> tuple[KatexAssets | None, str]:
    """The assets to embed, and a banner to show when there are none."""
    if isinstance(katex, KatexAssets):
        return katex, ""
    if katex is False:
        return None, ""
    try:
        return load_katex(), ""
    except KatexMissing as err:
        logger.warning("the report shows formulas as tokens: %s", err)
        return None, f'<p class="banner">Formulas are shown as tokens: {esc(str(err))}</p>'


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
) -> HtmlReport:
    """The page and its plots. ``katex``: assets to embed, True to load the pinned ones (a banner
    says so when they are missing), False for none (formulas stay tokens)."""
    assets, banner = _katex_or_none(katex)
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

    body = [
        f"<h1>{esc(title)}</h1>",
        _settings_html(settings),
        banner,
        f"<p>{n} items, {n - len(wrong)} exactly right, {len(wrong)} wrong"
        + (", failed: " + esc(", ".join(f"{k}: {v}" for k, v in sorted(failed.items()))) if failed else "")
        + '. <span id="typeset-status" class="muted"></span></p>',
        "<h2>Scores</h2>",
        scores_html(by_set_task),
        "<h2>Plots</h2>",
        '<div class="plots">',
        *(
            f'<img class="plot" id="plot-{esc(name[:-4])}" src="{_data_uri(png)}" alt="{esc(name)}">'
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
        *(item_row(rank, row, images_root) for rank, row in enumerate(ranked, start=1)),
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
    return HtmlReport(html=_page(title, [b for b in body if b], assets), plots=pngs)


def render_html_report(rows: Sequence[Any], **kwargs: Any) -> str:
    return build_html_report(rows, **kwargs).html


def _write(report: HtmlReport, out_path: Path) -> Path:
    for name, png in report.plots.items():
        with atomic_output(out_path.parent / "plots" / name) as tmp:
            Path(tmp).write_bytes(png)
    write_text_atomic(out_path, report.html)
    return out_path


def write_html_report(rows: Sequence[Any], out_path: str | Path, **kwargs: Any) -> Path:
    """Write the report (atomically) and its plots under ``plots/`` beside it; returns its path.
    Keyword arguments are those of :func:`build_html_report`."""
    out_path = Path(out_path)
    kwargs.setdefault("report_dir", out_path.parent)
    return _write(build_html_report(rows, **kwargs), out_path)


# --------------------------------------------------------------------------- #
# Two systems, paired
# --------------------------------------------------------------------------- #


def build_comparison_html(comparison: Any, katex: KatexAssets | None | bool = True) -> HtmlReport:
    """The paired view of an :class:`eval.compare.Comparison`: counts, the difference with its
    CI, a plot, and the items only A and only B got right (typeset)."""
    assets, banner = _katex_or_none(katex)
    c = comparison
    png = plots.paired_png(
        c.name_a,
        c.name_b,
        [c.both_right, c.only_a_right, c.only_b_right, c.both_wrong],
        (c.exprate_a, c.exprate_b),
        tuple(c.ci) if c.ci else None,
    )
    ci = (
        f"95% CI {c.ci[0]:+.2f} to {c.ci[1]:+.2f} (paired bootstrap, {c.n_resamples} resamples, seed {c.seed})"
        if c.ci
        else "no interval"
    )
    title = f"Paired comparison: A = {c.name_a}, B = {c.name_b}"
    body = [
        f"<h1>{esc(title)}</h1>",
        banner,
        f'<p>{c.n_shared} shared items. <span id="typeset-status" class="muted"></span></p>',
        '<table id="scores"><tr><th></th><th>ExpRate on shared items</th></tr>'
        f"<tr><td>A ({esc(c.name_a)})</td><td class=num>{c.exprate_a:.2f}</td></tr>"
        f"<tr><td>B ({esc(c.name_b)})</td><td class=num>{c.exprate_b:.2f}</td></tr>"
        f"<tr><td>B - A</td><td class=num>{c.diff:+.2f}, {esc(ci)}</td></tr>"
        f"<tr><td>both right / only A / only B / both wrong</td><td class=num>{c.both_right} / {c.only_a_right} / "
        f"{c.only_b_right} / {c.both_wrong} (exact McNemar p = {c.mcnemar_p:.4g})</td></tr></table>",
        f'<img class="plot" id="plot-paired" src="{_data_uri(png)}" alt="paired comparison">',
    ]
    for heading, examples, total in (
        (f"Only A right ({c.name_a})", c.examples_only_a, c.only_a_right),
        (f"Only B right ({c.name_b})", c.examples_only_b, c.only_b_right),
    ):
        body.append(f"<h2>{esc(heading)}: {total} items, {len(examples)} shown</h2>")
        if not examples:
            body.append('<p class="muted">none</p>')
            continue
        body.append("<table><tr><th>item</th><th>truth</th><th>A</th><th>B</th></tr>")
        for ex in examples:
            body.append(
                f"<tr><td><code>{esc(ex['id'])}</code></td>"
                + "".join(f"<td>{tex_cell(ex[k])}</td>" for k in ("gt", "pred_a", "pred_b"))
                + "</tr>"
            )
        body.append("</table>")
    return HtmlReport(html=_page(title, [b for b in body if b], assets), plots={"paired.png": png})


def write_comparison_html(
    comparison: Any, out_path: str | Path, katex: KatexAssets | None | bool = True
) -> Path:
    return _write(build_comparison_html(comparison, katex=katex), Path(out_path))
