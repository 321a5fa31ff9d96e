"""The page every HTML report of the project is: self-contained, so it opens from disk offline.

KaTeX (pinned, :mod:`eval.report.katex_assets`) and its fonts are inlined, images are ``data:`` URIs, and a
Content-Security-Policy forbids the page any other source, so a browser could not fetch a remote
asset even if one slipped in. ``report_assets/report.js`` typesets every :func:`tex_cell` (a
formula KaTeX cannot render falls back to its tokens with a mark) and drives the items table's
sorting and filtering; ``report_assets/report.css`` styles it.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import logging
from collections.abc import Sequence
from pathlib import Path

from data_prep.io_utils import atomic_output, write_text_atomic
from eval.report.katex_assets import KatexAssets, KatexMissing, load_katex

logger = logging.getLogger(__name__)

esc = html.escape

ASSETS = Path(__file__).resolve().parent / "report_assets"
#: Everything the page may load comes from itself: no remote script, style, font or image.
CSP = (
    "default-src 'none'; img-src data:; font-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"
)


@dataclasses.dataclass
class HtmlReport:
    html: str
    #: PNG files to write beside the report (name -> bytes); the page embeds the same bytes.
    plots: dict[str, bytes]


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


#: A field longer than this (gt, pred) is shown cut, with a mark saying how long it was.
MAX_FIELD_CHARS = 2000


def cut_text(text: str, limit: int = MAX_FIELD_CHARS) -> str:
    """``text``, or its first ``limit`` characters and a visible ``… [cut, N chars]`` mark."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]} … [cut, {len(text):,} chars]"


def tex_cell(latex: str) -> str:
    """A formula for the page's script to typeset; its tokens are the content until then. A formula
    over :data:`MAX_FIELD_CHARS` is shown cut, as tokens only (half a formula cannot be typeset)."""
    if len(latex) > MAX_FIELD_CHARS:
        return f'<div class="tex-cut"><code>{esc(cut_text(latex))}</code></div>'
    return f'<div class="tex" data-tex="{esc(latex)}"><code>{esc(latex)}</code></div>'


def page(title: str, body: Sequence[str], katex: KatexAssets | None) -> str:
    """The whole document: CSP, KaTeX's and the report's styles, ``body``, then the scripts."""
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


def katex_or_none(katex: KatexAssets | None | bool) -> tuple[KatexAssets | None, str]:
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


def write_page(report: HtmlReport, out_path: Path) -> Path:
    """Write the page and its plots (under ``plots/`` beside it), each atomically."""
    for name, png in report.plots.items():
        with atomic_output(out_path.parent / "plots" / name) as tmp:
            Path(tmp).write_bytes(png)
    write_text_atomic(out_path, report.html)
    return out_path
