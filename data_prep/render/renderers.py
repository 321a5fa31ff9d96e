"""Renderers: LaTeX in the answer format -> a grey image of dark ink on a light page.

* ``mathtext``: matplotlib's mathtext (pip, always there with the requirements), its five font
  sets (``dejavusans dejavuserif cm stix stixsans``); no environments (``\\begin{array}`` ...).
* ``latex``: real LaTeX through ``latex`` + ``dvipng`` (Debian's TeX Live), used when both are on
  PATH; :func:`available_renderers` says which are there and why not.
* ``ink``: real handwriting, the formula composed from the segmented symbols of CROHME InkML files
  (:mod:`data_prep.render.ink_bank`, :mod:`~data_prep.render.ink_layout`,
  :mod:`~data_prep.render.ink_draw`); its one font set is ``ink``, and it draws the composition a
  reader laid out (``RenderJob.ink``), not the LaTeX alone.

Every renderer raises :class:`RenderError` with a short fixed ``reason`` (``unsupported``,
``blank``, ``clipped``, ``failed``); the caller counts it, never keeps the image.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from data_prep.render.style import RenderStyle

#: Pixels darker than this count as ink when checking for blank or clipped renders.
INK_THRESHOLD = 200
DPI = 100


class RenderError(ValueError):
    """A formula that could not be drawn, with a short fixed reason."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


def _coverage(ink: np.ndarray) -> np.ndarray:
    """Ink coverage in [0, 1] from an 8-bit alpha/coverage array."""
    return ink.astype(np.float32) / 255.0


def compose(coverage: np.ndarray, style: RenderStyle) -> Image.Image:
    """Coverage -> an ``L`` image: ink grey ``style.ink`` on paper ``style.paper``, stroke and padding
    applied. Raises ``blank`` when there is no ink."""
    if coverage.size == 0 or coverage.max() < 0.1:
        raise RenderError("blank", "the renderer drew no ink")
    grey = style.paper - coverage * (style.paper - style.ink)
    image = Image.fromarray(np.clip(grey, 0, 255).astype(np.uint8), "L")
    pad = style.padding + max(style.stroke, 0)
    canvas = Image.new("L", (image.width + 2 * pad, image.height + 2 * pad), style.paper)
    canvas.paste(image, (pad, pad))
    if style.stroke > 0:  # a min filter grows the dark strokes
        canvas = canvas.filter(ImageFilter.MinFilter(2 * style.stroke + 1))
    elif style.stroke < 0:
        canvas = canvas.filter(ImageFilter.MaxFilter(3))
    return canvas


def check_ink(image: Image.Image, threshold: int = INK_THRESHOLD, margin: int = 0) -> None:
    """Raise ``blank`` (no ink) or ``clipped`` (ink on the outer ``margin``-pixel border); pixels
    darker than ``threshold`` are ink (the engine uses the midpoint of the style's ink and paper)."""
    pixels = np.asarray(image.convert("L"))
    ink = pixels < threshold
    if not ink.any():
        raise RenderError("blank", "no ink left in the image")
    edge = max(1, margin)
    border = np.concatenate(
        [ink[:edge].ravel(), ink[-edge:].ravel(), ink[:, :edge].ravel(), ink[:, -edge:].ravel()]
    )
    if border.any():
        raise RenderError("clipped", "ink touches the image border")


_COMMAND_END = re.compile(r"\\[A-Za-z]+$")


def compact(latex: str) -> str:
    """Answer-format tokens joined for a renderer: ``x ^ { 2 }`` -> ``x^{2}``.

    mathtext takes a space before ``^``/``_`` as the base of the script, so the spaced answer format
    would lose its scripts; a space is kept only where a command name would run into a letter
    (``\\sin x``).
    """
    out = ""
    for token in latex.split():
        if _COMMAND_END.search(out) and token[0].isalpha():
            out += " "
        out += token
    return out


class MathtextRenderer:
    name = "mathtext"
    fontsets = ("dejavusans", "dejavuserif", "cm", "stix", "stixsans")

    @staticmethod
    def available() -> tuple[bool, str]:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            return False, "matplotlib is not installed (pip install matplotlib)"
        return True, f"matplotlib {__import__('matplotlib').__version__}"

    @staticmethod
    @functools.cache
    def _parser():
        from matplotlib.mathtext import MathTextParser

        return MathTextParser("agg")

    def coverage(self, latex: str, style: RenderStyle) -> np.ndarray:
        from matplotlib.font_manager import FontProperties

        if style.fontset not in self.fontsets:
            raise RenderError("unsupported", f"mathtext has no font set {style.fontset!r}")
        prop = FontProperties(size=style.font_size, math_fontfamily=style.fontset)
        # mathtext has no \limits: limits stay where it puts them (the answer keeps the token).
        drawable = " ".join(t for t in latex.split() if t not in (r"\limits", r"\nolimits"))
        try:
            parsed = self._parser().parse(f"${compact(drawable)}$", dpi=DPI, prop=prop)
        except (ValueError, RuntimeError, KeyError, IndexError) as err:
            message = " ".join(str(err).split())
            raise RenderError("unsupported", f"mathtext cannot draw it: {message[:160]}") from None
        return _coverage(np.asarray(parsed.image))

    def render(self, latex: str, style: RenderStyle) -> Image.Image:
        return compose(self.coverage(latex, style), style)


class LatexRenderer:
    """``latex`` then ``dvipng``: the formula typeset by TeX in display math, standalone page."""

    name = "latex"
    fontsets = ("computer_modern",)
    timeout_s = 20

    @staticmethod
    def available() -> tuple[bool, str]:
        missing = [tool for tool in ("latex", "dvipng") if shutil.which(tool) is None]
        if missing:
            return (
                False,
                f"{' and '.join(missing)} not on PATH (Debian: apt-get install texlive-latex-base dvipng)",
            )
        return True, "latex + dvipng"

    def coverage(self, latex: str, style: RenderStyle) -> np.ndarray:
        document = (
            "\\documentclass[12pt]{article}\\usepackage{amsmath,amssymb}\\pagestyle{empty}"
            f"\\begin{{document}}$\\displaystyle {compact(latex)}$\\end{{document}}\n"
        )
        with tempfile.TemporaryDirectory(prefix="hmer-latex-") as tmp:
            tex = Path(tmp) / "f.tex"
            tex.write_text(document, encoding="utf-8")
            run = subprocess.run(
                ["latex", "-interaction=nonstopmode", "-halt-on-error", "f.tex"],
                cwd=tmp, capture_output=True, timeout=self.timeout_s, check=False,
            )  # fmt: skip
            if run.returncode != 0:
                lines = [
                    line for line in run.stdout.decode(errors="replace").splitlines() if line.startswith("!")
                ]
                raise RenderError("unsupported", f"latex: {(lines or ['error'])[0][:160]}")
            dpi = int(DPI * style.font_size / 12)
            png = Path(tmp) / "f.png"
            run = subprocess.run(
                ["dvipng", "-D", str(dpi), "-T", "tight", "-bg", "Transparent", "-o", str(png), "f.dvi"],
                cwd=tmp, capture_output=True, timeout=self.timeout_s, check=False,
            )  # fmt: skip
            if run.returncode != 0 or not png.is_file():
                raise RenderError("failed", f"dvipng: {run.stderr.decode(errors='replace')[:160]}")
            image = Image.open(png)
            image.load()
        alpha = np.asarray(image.convert("RGBA"))[:, :, 3]
        return _coverage(alpha)

    def render(self, latex: str, style: RenderStyle) -> Image.Image:
        return compose(self.coverage(latex, style), style)


class InkRenderer:
    """Handwritten symbols composed into the formula (laid out when the record was read)."""

    name = "ink"
    fontsets = ("ink",)

    @staticmethod
    def available() -> tuple[bool, str]:
        return True, "handwritten symbols from CROHME InkML (an ink bank folder per recipe)"

    def render(self, latex: str, style: RenderStyle, ink=None) -> Image.Image:
        from data_prep.render.ink_draw import ink_coverage

        if ink is None:
            raise RenderError("unsupported", "the ink renderer draws a composed formula (RenderJob.ink)")
        if ink.latex != latex:
            raise RenderError("failed", f"the composition is of {ink.latex!r}, not {latex!r}")
        if style.fontset not in self.fontsets:
            raise RenderError("unsupported", f"the ink renderer has no font set {style.fontset!r}")
        try:
            coverage = ink_coverage(ink, style)
        except ValueError as err:
            raise RenderError("blank", str(err)) from None
        return compose(coverage, style)


RENDERERS = {"mathtext": MathtextRenderer, "latex": LatexRenderer, "ink": InkRenderer}


def available_renderers() -> dict[str, tuple[bool, str]]:
    """Renderer name -> (usable here, why / what)."""
    return {name: cls.available() for name, cls in RENDERERS.items()}


def get_renderer(name: str):
    """An instance of renderer ``name``; a ``RenderError('unavailable')`` saying why it cannot run."""
    if name not in RENDERERS:
        raise ValueError(f"unknown renderer {name!r}; known: {', '.join(RENDERERS)}")
    ok, why = RENDERERS[name].available()
    if not ok:
        raise RenderError("unavailable", f"renderer {name!r} cannot run here: {why}")
    return RENDERERS[name]()
