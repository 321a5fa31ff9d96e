"""A formula composed from handwritten symbols: the layout of the ``ink`` renderer.

:func:`compose_formula` takes a formula in the answer format (what
:mod:`data_prep.render.generator` makes: rows of symbols, ``^ { }`` and ``_ { }`` scripts,
``\\frac { } { }``, ``\\sqrt { }``, bracket pairs), picks one handwritten instance of each symbol
from a :class:`~data_prep.render.ink_bank.SymbolBank` and places its strokes:

* a symbol is scaled to the glyph height (1 unit; keeping its aspect ratio) by kind: digits,
  capitals and tall letters 1, x-height letters 0.6 on the baseline, ``g p q y`` (and ``f``,
  ``\\log``) hang below it, ``-`` and ``=`` keep their own small height (sized by width) centred
  on the maths axis, ``+ < >``-like operators 0.6 on the axis, brackets 1.3 (stretched to what
  they enclose);
* symbols go left to right with a gap; scripts at ~0.6 scale, raised or lowered from their base;
* ``\\frac { A } { B }``: A centred above B (0.85 scale), the bar a ``-`` instance stretched to the
  wider of the two; ``\\sqrt { A }``: a ``\\sqrt`` instance whose tick keeps its shape and whose
  overline is stretched over A, A placed under it.

Which instance, and a small jitter of each symbol's size and baseline and of the gaps, come from
``random.Random(f"ink:{seed}:{key}")`` (key: the record id): the same record composes the same in
any process. Coordinates are in units of the glyph height, y downwards, baseline at 0;
:mod:`data_prep.render.ink_draw` scales them to pixels.
"""

from __future__ import annotations

import dataclasses
import random

from data_prep.render.ink_bank import BankError, SymbolBank, SymbolInstance
from data_prep.render.ink_tree import IGNORED, OPENING, LayoutError, Node, parse_formula

Points = tuple[tuple[float, float], ...]

AXIS = -0.38  # the maths axis (where - + = sit), above the baseline
SCRIPT_SCALE = 0.6
FRAC_SCALE = 0.85
SMALL = frozenset("acemnorsuvwxz") | {r"\alpha", r"\pi", r"\sigma", r"\infty"}
HANGING = frozenset("gpqy") | {r"\mu", r"\gamma"}
#: Tall and hanging below the baseline: their height, in glyph heights.
TALL_HANGING = {"f": 1.25, "j": 1.05, r"\beta": 1.25, r"\log": 1.25}
FLAT = frozenset({"-", "=", r"\sim", r"\rightarrow", r"\leftarrow"})
#: Operators and relations centred on the axis: their longer side, in glyph heights.
ON_AXIS = {"+": 0.6, r"\pm": 0.6, r"\times": 0.5, r"\div": 0.5, "<": 0.6, ">": 0.6, r"\in": 0.55}
ON_AXIS |= {r"\leq": 0.6, r"\geq": 0.6, r"\neq": 0.6}
DOTS = {".": 0.12, ",": 0.25, r"\cdot": 0.12, r"\ldots": 0.12, r"\cdots": 0.12, r"\prime": 0.3}
DELIMITERS = frozenset(OPENING) | frozenset(OPENING.values()) | {"|"}
BIG = frozenset({r"\int", r"\sum"})

__all__ = ["InkComposition", "LayoutError", "PlacedSymbol", "compose_formula", "needed_symbols"]


@dataclasses.dataclass(frozen=True)
class PlacedSymbol:
    """A bank instance placed in the formula: ``token`` is what it draws (``\\frac`` for a bar)."""

    token: str
    symbol: str
    file: str
    group: str
    strokes: tuple[Points, ...]

    def box(self) -> tuple[float, float, float, float]:
        xs = [x for stroke in self.strokes for x, _ in stroke]
        ys = [y for stroke in self.strokes for _, y in stroke]
        return min(xs), min(ys), max(xs), max(ys)

    def provenance(self) -> dict[str, str]:
        return {"token": self.token, "symbol": self.symbol, "file": self.file, "group": self.group}


@dataclasses.dataclass(frozen=True)
class InkComposition:
    """A laid-out formula (picklable: it travels in a :class:`~data_prep.render.engine.RenderJob`)."""

    latex: str
    symbols: tuple[PlacedSymbol, ...]

    def strokes(self) -> list[Points]:
        return [stroke for placed in self.symbols for stroke in placed.strokes]

    def provenance(self) -> list[dict[str, str]]:
        return [placed.provenance() for placed in self.symbols]


def needed_symbols(latex: str) -> set[str]:
    """The bank labels composing ``latex`` needs (``-`` for a fraction bar, ``\\sqrt`` for a root)."""
    structural = {"{", "}", "^", "_"} | IGNORED
    out = {t for t in latex.split() if t not in structural and t != r"\frac"}
    return out | ({"-"} if r"\frac" in latex.split() else set())


def generator_needs(spec) -> set[str]:
    """What every formula of a :class:`~data_prep.render.generator.GeneratorSpec` may need."""
    from data_prep.render.generator import DELIMITERS as PAIRS

    needed = set(spec.symbols)
    if spec.max_depth > 0:
        needed |= {"-"} if spec.p_frac > 0 else set()
        needed |= {r"\sqrt"} if spec.p_sqrt > 0 else set()
        needed |= {t for pair in PAIRS for t in pair} if spec.p_group > 0 else set()
    return needed


# --------------------------------------------------------------------------- #
# Layout
# --------------------------------------------------------------------------- #


@dataclasses.dataclass
class Box:
    """Placed symbols and their extent (``top`` < 0 above the baseline, ``bottom`` below)."""

    symbols: list[PlacedSymbol]
    x0: float
    x1: float
    top: float
    bottom: float

    @classmethod
    def of(cls, symbols: list[PlacedSymbol], empty_height: float) -> Box:
        if not symbols:
            return cls([], 0.0, 0.0, -empty_height, 0.0)
        boxes = [s.box() for s in symbols]
        return cls(
            symbols,
            min(b[0] for b in boxes),
            max(b[2] for b in boxes),
            min(b[1] for b in boxes),
            max(b[3] for b in boxes),
        )

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    def moved(self, dx: float, dy: float) -> Box:
        moved = [
            dataclasses.replace(s, strokes=tuple(tuple((x + dx, y + dy) for x, y in st) for st in s.strokes))
            for s in self.symbols
        ]
        return Box(moved, self.x0 + dx, self.x1 + dx, self.top + dy, self.bottom + dy)


def _extent(instance: SymbolInstance) -> tuple[float, float, float, float]:
    xs = [x for stroke in instance.strokes for x, _ in stroke]
    ys = [y for stroke in instance.strokes for _, y in stroke]
    return min(xs), min(ys), max(xs), max(ys)


class _Composer:
    def __init__(self, bank: SymbolBank, rng: random.Random) -> None:
        self.bank = bank
        self.rng = rng

    def instance(self, label: str) -> SymbolInstance:
        choices = self.bank.instances.get(label)
        if not choices:
            raise BankError(f"the ink bank has no {label!r}")
        return self.rng.choice(choices)

    def place(self, token: str, instance: SymbolInstance, mapping) -> PlacedSymbol:
        strokes = tuple(tuple(mapping(x, y) for x, y in stroke) for stroke in instance.strokes)
        return PlacedSymbol(token, instance.label, instance.file, instance.group, strokes)

    def atom(self, token: str, scale: float, height: float | None = None) -> Box:
        """One symbol; ``height``: stretch a bracket to it (centred on the axis)."""
        instance = self.instance(token)
        x0, y0, x1, y1 = _extent(instance)
        w, h = x1 - x0, y1 - y0
        size = scale * self.rng.uniform(0.92, 1.08)
        shift = scale * self.rng.uniform(-0.04, 0.04)
        if token in FLAT:  # its own small height: sized by width, at most 0.45 tall
            s = min(0.55 * size / max(w, 1e-9), 0.45 * size / max(h, 1e-9))
            bottom = AXIS * scale + h * s / 2
        elif token in DOTS:  # a dot keeps its small size: on the baseline, the axis or up high
            s = DOTS[token] * size / max(w, h, 1e-9)
            bottom = {",": h * s / 2, r"\prime": -0.95 * scale + h * s}.get(token, 0.0)
            bottom = AXIS * scale + h * s / 2 if token in (r"\cdot", r"\cdots") else bottom
        elif token in ON_AXIS:
            s = ON_AXIS[token] * size / max(w, h, 1e-9)
            bottom = AXIS * scale + h * s / 2
        elif token in DELIMITERS or token in BIG:
            target = max(height or 0.0, (1.5 if token in BIG else 1.3) * scale)
            s = target / max(h, 0.2 * w, 1e-9)
            bottom = AXIS * scale + h * s / 2
        else:
            target = 0.6 if token in SMALL else 0.85 if token in HANGING else TALL_HANGING.get(token, 1.0)
            s = target * size / max(h, 0.1 * w, 1e-9)
            bottom = 0.27 * scale if token in HANGING or token in TALL_HANGING else 0.0
        bottom += shift
        return Box.of(
            [self.place(token, instance, lambda x, y: ((x - x0) * s, bottom - (y1 - y) * s))], scale
        )

    def row(self, node: Node, scale: float) -> Box:
        placed: list[PlacedSymbol] = []
        cursor = 0.0
        for item in node.parts:
            box = self.node(item, scale)
            if not box.symbols:
                continue
            box = box.moved(cursor - box.x0, 0.0)
            placed += box.symbols
            cursor = box.x1 + scale * self.rng.uniform(0.12, 0.22)
        return Box.of(placed, 0.6 * scale)

    def node(self, node: Node, scale: float) -> Box:
        if node.kind == "atom":
            return self.atom(node.token, scale)
        if node.kind == "row":
            return self.row(node, scale)
        if node.kind == "scripts":
            return self.scripts(node, scale)
        if node.kind == "frac":
            return self.frac(node, scale)
        if node.kind == "sqrt":
            return self.sqrt(node, scale)
        return self.group(node, scale)

    def scripts(self, node: Node, scale: float) -> Box:
        base = self.node(node.parts[0], scale)
        small = scale * SCRIPT_SCALE * self.rng.uniform(0.95, 1.05)
        x = base.x1 + 0.06 * scale
        placed = list(base.symbols)
        sub = sup = None
        if node.parts[2] is not None:  # superscript: its bottom above the middle of the base
            sup = self.row(node.parts[2], small)
            sup = sup.moved(x - sup.x0, min(0.5 * base.top, -0.35 * scale) - sup.bottom)
        if node.parts[1] is not None:  # subscript: its baseline a quarter below the base's
            sub = self.row(node.parts[1], small)
            sub = sub.moved(x - sub.x0, 0.25 * scale + max(0.0, base.bottom) * 0.5)
            if sup is not None and sub.top < sup.bottom + 0.08 * scale:
                sub = sub.moved(0.0, sup.bottom + 0.08 * scale - sub.top)
        for box in (sub, sup):
            placed += box.symbols if box is not None else []
        return Box.of(placed, scale)

    def frac(self, node: Node, scale: float) -> Box:
        part = scale * FRAC_SCALE
        top, bottom = self.row(node.parts[0], part), self.row(node.parts[1], part)
        width = max(top.width, bottom.width) + 0.2 * part
        instance = self.instance("-")
        x0, y0, x1, y1 = _extent(instance)
        sx = width / max(x1 - x0, 1e-9)  # stretched to the wider part; its own small height
        sy = min(0.55 * scale / max(x1 - x0, 1e-9), 0.12 * scale / max(y1 - y0, 1e-9))
        centre = AXIS * scale
        bar = self.place(r"\frac", instance, lambda x, y: ((x - x0) * sx, centre + (y - (y0 + y1) / 2) * sy))
        half = (y1 - y0) * sy / 2
        gap = 0.12 * scale
        top = top.moved((width - top.width) / 2 - top.x0, centre - half - gap - top.bottom)
        bottom = bottom.moved((width - bottom.width) / 2 - bottom.x0, centre + half + gap - bottom.top)
        return Box.of(top.symbols + [bar] + bottom.symbols, scale)

    def sqrt(self, node: Node, scale: float) -> Box:
        body = self.row(node.parts[0], scale)
        instance = self.instance(r"\sqrt")
        x0, y0, x1, y1 = _extent(instance)
        w, h = max(x1 - x0, 1e-9), max(y1 - y0, 1e-9)
        top, bottom = body.top - 0.18 * scale, max(body.bottom, 0.0) + 0.12 * scale
        sy = (bottom - top) / h
        # The tick ends where the stroke first nears the top: keep its shape, stretch the overline.
        points = [p for stroke in instance.strokes for p in stroke]
        tick_x = min((x for x, y in points if y <= y0 + 0.15 * h), default=x0 + w / 2)
        tick_x = min(max(tick_x, x0 + 0.15 * w), x0 + 0.7 * w)
        tick = min(max((tick_x - x0) * sy, 0.25 * (bottom - top)), 0.8 * (bottom - top))
        over = body.width + 0.18 * scale

        def mapping(x: float, y: float) -> tuple[float, float]:
            if x <= tick_x:
                nx = (x - x0) / (tick_x - x0) * tick
            else:
                nx = tick + (x - tick_x) / max(x1 - tick_x, 1e-9) * over
            return nx, top + (y - y0) * sy

        sign = self.place(r"\sqrt", instance, mapping)
        body = body.moved(tick + 0.08 * scale - body.x0, 0.0)
        return Box.of([sign] + body.symbols, scale)

    def group(self, node: Node, scale: float) -> Box:
        body = self.row(node.parts[0], scale)
        height = body.bottom - body.top + 0.2 * scale if body.symbols else None
        left, right = self.atom(node.token, scale, height), self.atom(node.parts[1], scale, height)
        middle = (body.top + body.bottom) / 2 if body.symbols else AXIS * scale
        placed: list[PlacedSymbol] = []
        cursor = 0.0
        for box in (left, body, right):
            if box.symbols:
                dy = 0.0 if box is body else middle - (box.top + box.bottom) / 2
                box = box.moved(cursor - box.x0, dy)
                placed += box.symbols
                cursor = box.x1 + scale * self.rng.uniform(0.08, 0.16)
        return Box.of(placed, scale)


def compose_formula(latex: str, bank: SymbolBank, seed: int, key: str) -> InkComposition:
    """``latex`` composed from ``bank``'s handwriting, fixed by ``(seed, key)``.

    Raises :class:`LayoutError`: ``unsupported`` for a formula it cannot parse or a symbol the bank
    lacks (the message names them and the bank's symbols).
    """
    node = parse_formula(latex)
    missing = bank.missing(needed_symbols(latex))
    if missing:
        raise LayoutError(
            "unsupported",
            f"the ink bank lacks {' '.join(missing)} (it has {' '.join(bank.symbols())})",
        )
    box = _Composer(bank, random.Random(f"ink:{seed}:{key}")).row(node, 1.0)
    if not box.symbols:
        raise LayoutError("blank", f"nothing to draw in {latex!r}")
    return InkComposition(latex, tuple(box.moved(-box.x0, 0.0).symbols))
