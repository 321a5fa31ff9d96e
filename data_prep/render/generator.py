"""Random, well-formed LaTeX formulas over the CROHME symbol set, in the answer format.

The engine is not limited to existing captions: :class:`FormulaGenerator` draws formulas with
scripts, fractions and square roots, bounded in length, from a seed. Formula ``i`` of a generator
depends only on ``(seed, i)``, so any shard of a corpus can be drawn alone, in any order, by any
process. Every formula is space-separated tokens with every script and argument braced
(``x ^ { 2 }``, ``\\frac { a } { b }``): the answer format, which the Tree-CoT and counting
derivations accept.

    FormulaGenerator(GeneratorSpec(symbols=("1", "2", "+"), max_symbols=3), seed=0).formula(0)
"""

from __future__ import annotations

import dataclasses
import random
from typing import Any

# The CROHME 111-symbol dictionary (WAP's dictionary.txt) minus its structure tokens
# (``{ } ^ _ \frac \sqrt \limits``, drawn by the generator itself) and ``<eol>``, by kind.
DIGITS = tuple("0123456789")
LETTERS = tuple("abcdefghijklmnopqrstuvwxyz")  # CROHME uses a-z minus none of the lower case
CAPITALS = tuple("ABCEFGHILMNPRSTVXY")
GREEK = (r"\alpha", r"\beta", r"\gamma", r"\theta", r"\lambda", r"\mu", r"\pi", r"\sigma", r"\phi", r"\Delta")
OPERATORS = ("+", "-", r"\times", r"\div", r"\pm", r"\cdot", "/")
RELATIONS = ("=", r"\neq", "<", ">", r"\leq", r"\geq", r"\in", r"\rightarrow")
FUNCTIONS = (r"\sin", r"\cos", r"\tan", r"\log")
MISC = (r"\infty", "!", ",", ".", r"\prime", r"\ldots", r"\cdots", r"\exists", r"\forall", "|")
BIG_OPERATORS = (r"\sum", r"\int", r"\lim")
#: Every terminal symbol the generator knows (the default symbol set).
CROHME_SYMBOLS = (
    DIGITS + LETTERS + CAPITALS + GREEK + OPERATORS + RELATIONS + FUNCTIONS + MISC + BIG_OPERATORS
)
#: Paired delimiters, drawn around a sub-formula so brackets always balance.
DELIMITERS = (("(", ")"), ("[", "]"), (r"\{", r"\}"))
#: Symbols that may carry a script (a script on an operator or relation is not a formula).
SCRIPT_BASES = frozenset(DIGITS + LETTERS + CAPITALS + GREEK + (")",))

#: Named symbol sets a recipe may ask for (``symbols: digits+operators``).
SYMBOL_SETS: dict[str, tuple[str, ...]] = {
    "digits": DIGITS,
    "letters": LETTERS,
    "capitals": CAPITALS,
    "greek": GREEK,
    "operators": OPERATORS,
    "relations": RELATIONS,
    "functions": FUNCTIONS,
    "misc": MISC,
    "big_operators": BIG_OPERATORS,
    "crohme": CROHME_SYMBOLS,
}


class GeneratorError(ValueError):
    """A generator spec that cannot produce formulas."""


def symbol_set(value: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Symbols from a ``+``-joined list of set names (``"digits+operators"``) or an explicit list.

    Explicit symbols are used as given; an unknown set name fails listing the known ones.
    """
    if isinstance(value, str):
        out: list[str] = []
        for name in value.split("+"):
            name = name.strip()
            if name not in SYMBOL_SETS:
                raise GeneratorError(f"unknown symbol set {name!r}; known: {', '.join(SYMBOL_SETS)}")
            out += [s for s in SYMBOL_SETS[name] if s not in out]
        return tuple(out)
    symbols = tuple(str(s) for s in value)
    bad = [s for s in symbols if not s.strip() or len(s.split()) != 1 or s in ("{", "}", "^", "_")]
    if bad or not symbols:
        raise GeneratorError(f"symbols must be single non-structural LaTeX tokens, got {bad or 'none'}")
    return symbols


@dataclasses.dataclass(frozen=True)
class GeneratorSpec:
    """What formulas look like.

    ``min_symbols``/``max_symbols`` bound the terminal symbols of a formula (structure tokens
    ``\\frac { } ^ _`` are not counted); ``p_*`` are the chances, per slot, of a script, a
    fraction, a square root or a bracketed group; ``max_depth`` bounds their nesting.
    """

    symbols: tuple[str, ...] = CROHME_SYMBOLS
    min_symbols: int = 1
    max_symbols: int = 10
    p_script: float = 0.15
    p_frac: float = 0.08
    p_sqrt: float = 0.05
    p_group: float = 0.05
    max_depth: int = 2

    def __post_init__(self) -> None:
        if not 1 <= self.min_symbols <= self.max_symbols:
            raise GeneratorError(
                f"need 1 <= min_symbols <= max_symbols, got {self.min_symbols}, {self.max_symbols}"
            )
        for name in ("p_script", "p_frac", "p_sqrt", "p_group"):
            if not 0 <= getattr(self, name) <= 1:
                raise GeneratorError(f"{name} must be between 0 and 1")
        if self.max_depth < 0:
            raise GeneratorError("max_depth must be >= 0")

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> GeneratorSpec:
        """From a recipe mapping (``symbols`` may be set names or a list); unknown keys fail."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise GeneratorError(f"unknown generator option(s) {unknown}; known: {', '.join(sorted(known))}")
        values = dict(options)
        if "symbols" in values:
            values["symbols"] = symbol_set(values["symbols"])
        return cls(**values)

    @property
    def flat(self) -> bool:
        """True when no structure is ever drawn (symbol strings only)."""
        return not (self.p_script or self.p_frac or self.p_sqrt or self.p_group)


class FormulaGenerator:
    """Formula ``i`` of the corpus ``(spec, seed)``; see the module docstring."""

    def __init__(self, spec: GeneratorSpec = GeneratorSpec(), seed: int = 0) -> None:
        self.spec = spec
        self.seed = seed
        self._atoms = tuple(s for s in spec.symbols if s not in BIG_OPERATORS)
        self._bases = tuple(s for s in self._atoms if s in SCRIPT_BASES)
        self._big = tuple(s for s in spec.symbols if s in BIG_OPERATORS)
        if not self._atoms:
            raise GeneratorError("the symbol set has no ordinary symbol to draw")

    def formula(self, index: int) -> str:
        rng = random.Random(f"formula:{self.seed}:{index}")
        budget = rng.randint(self.spec.min_symbols, self.spec.max_symbols)
        tokens: list[str] = []
        self._sequence(rng, budget, 0, tokens)
        return " ".join(tokens)

    def __iter__(self):
        index = 0
        while True:
            yield self.formula(index)
            index += 1

    # ---- drawing -------------------------------------------------------------------------------- #

    def _sequence(self, rng: random.Random, budget: int, depth: int, out: list[str]) -> None:
        """Draw items until exactly ``budget`` terminal symbols are placed."""
        while budget > 0:
            budget -= self._item(rng, budget, depth, out)

    def _item(self, rng: random.Random, budget: int, depth: int, out: list[str]) -> int:
        """One item using at most ``budget`` symbols; returns how many it used."""
        spec = self.spec
        deeper = depth < spec.max_depth
        roll = rng.random()
        if deeper and budget >= 2 and roll < spec.p_frac:
            top = rng.randint(1, budget - 1)
            bottom = rng.randint(1, budget - top)
            out += [r"\frac", "{"]
            self._sequence(rng, top, depth + 1, out)
            out += ["}", "{"]
            self._sequence(rng, bottom, depth + 1, out)
            out.append("}")
            return top + bottom
        roll -= spec.p_frac
        if deeper and roll < spec.p_sqrt:
            inside = rng.randint(1, budget)
            out += [r"\sqrt", "{"]
            self._sequence(rng, inside, depth + 1, out)
            out.append("}")
            return inside
        roll -= spec.p_sqrt
        if deeper and budget >= 3 and roll < spec.p_group:
            left, right = rng.choice(DELIMITERS)
            inside = rng.randint(1, budget - 2)
            out.append(left)
            self._sequence(rng, inside, depth + 1, out)
            out.append(right)
            return inside + 2
        if self._big and budget >= 3 and rng.random() < 0.05:
            return self._big_operator(rng, budget, depth, out)
        symbol = rng.choice(self._atoms)
        out.append(symbol)
        used = 1
        if deeper and symbol in SCRIPT_BASES and budget >= 2 and rng.random() < spec.p_script:
            used += self._scripts(rng, budget - 1, depth, out)
        return used

    def _scripts(self, rng: random.Random, budget: int, depth: int, out: list[str]) -> int:
        """``_ { .. }`` and/or ``^ { .. }`` (subscript first, as the reference's parser expects)."""
        kinds = rng.choice((["_"], ["^"], ["_", "^"])) if budget >= 2 else rng.choice((["_"], ["^"]))
        used = 0
        for i, kind in enumerate(kinds):
            left = budget - used - (len(kinds) - 1 - i)
            size = rng.randint(1, min(left, 3))
            out += [kind, "{"]
            self._sequence(rng, size, depth + 1, out)
            out.append("}")
            used += size
        return used

    def _big_operator(self, rng: random.Random, budget: int, depth: int, out: list[str]) -> int:
        """``\\sum _ { i = 1 } ^ { n } x`` style: an operator with a lower limit, maybe an upper."""
        op = rng.choice(self._big)
        bases = self._bases or self._atoms
        out += [op, "_", "{", rng.choice(bases), "}"]
        used = 2  # the operator and its lower limit
        if op != r"\lim" and budget - used >= 2 and rng.random() < 0.5:
            out += ["^", "{", rng.choice(bases), "}"]
            used += 1
        out.append(rng.choice(bases))  # what it applies to
        return used + 1
