"""The paired page of two systems (``make score PRED= PRED2=``): ``compare.html``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eval.report import plots
from eval.report.html_page import HtmlReport, data_uri, esc, katex_or_none, page, tex_cell, write_page
from eval.report.katex_assets import KatexAssets


def build_comparison_html(comparison: Any, katex: KatexAssets | None | bool = True) -> HtmlReport:
    """The paired view of an :class:`eval.scoring.compare.Comparison`: counts, the difference with its
    CI, a plot, and the items only A and only B got right (typeset)."""
    assets, banner = katex_or_none(katex)
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
        f'<img class="plot" id="plot-paired" src="{data_uri(png)}" alt="paired comparison">',
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
    return HtmlReport(html=page(title, [b for b in body if b], assets), plots={"paired.png": png})


def write_comparison_html(
    comparison: Any, out_path: str | Path, katex: KatexAssets | None | bool = True
) -> Path:
    return write_page(build_comparison_html(comparison, katex=katex), Path(out_path))
