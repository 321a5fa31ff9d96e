"""How one rendering looks: font set, size, stroke weight, padding, ink and paper colour, and the
augmentation applied after drawing, all drawn from a seed.

A style depends only on ``(seed, key)`` (:meth:`StyleSpace.sample`), so the same formula rendering
comes out the same in any process, shard or resumed run.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Any


class StyleError(ValueError):
    """A style space that cannot be sampled."""


@dataclasses.dataclass(frozen=True)
class RenderStyle:
    """Everything a renderer needs to draw one image (recorded in the record's ``meta``)."""

    fontset: str
    font_size: float  # points at 100 dpi
    stroke: int  # -1 thinner, 0 as drawn, 1..2 bolder (pixels of min-filter growth)
    padding: int  # white pixels around the ink, each side
    ink: int  # grey level of the ink, dark
    paper: int  # grey level of the page, light
    augment_seed: int | None = None  # None: no augmentation
    fit: float = 1.0  # on a fixed page: drawn up to this many times larger, as the page allows

    def to_meta(self) -> dict[str, Any]:
        meta = dataclasses.asdict(self)
        if self.fit == 1.0:  # the default: records built before ``fit`` existed stay identical
            del meta["fit"]
        return meta


def _range(value: Any, where: str, cast=float) -> tuple:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (cast(value), cast(value))
    if isinstance(value, (list, tuple)) and len(value) == 2 and value[0] <= value[1]:
        return (cast(value[0]), cast(value[1]))
    raise StyleError(f"{where}: expected a number or [low, high], got {value!r}")


@dataclasses.dataclass(frozen=True)
class StyleSpace:
    """The ranges a style is drawn from (each a ``[low, high]`` pair, or one fixed value).

    Ink stays dark and paper light (the shared contract: dark ink on a light page): ``ink`` must
    stay below 128 and ``paper`` above it.
    """

    fontsets: tuple[str, ...] = ("dejavusans", "dejavuserif", "cm", "stix", "stixsans")
    font_size: tuple[float, float] = (16.0, 26.0)
    stroke: tuple[int, int] = (0, 1)
    padding: tuple[int, int] = (4, 16)
    ink: tuple[int, int] = (0, 60)
    paper: tuple[int, int] = (225, 255)
    augment: float = 0.5  # share of renderings augmented
    # On a fixed page (``canvas``), each formula is redrawn as large as the page allows, up to this
    # factor: short formulas leave most of a fixed page empty, and their scripts and fraction parts
    # would otherwise be a few pixels tall. 1: drawn at ``font_size`` as sampled.
    fit: float = 1.0

    def __post_init__(self) -> None:
        if not self.fontsets:
            raise StyleError("fontsets is empty")
        if self.ink[1] >= 128 or self.paper[0] <= 128:
            raise StyleError(
                "ink must stay dark (< 128) and paper light (> 128): the contract is dark on light"
            )
        if self.font_size[0] <= 0 or self.padding[0] < 0:
            raise StyleError("font_size must be positive and padding non-negative")
        if not 0 <= self.augment <= 1:
            raise StyleError("augment is the share of renderings augmented, between 0 and 1")
        if self.fit < 1:
            raise StyleError(f"fit is the largest up-scaling on a fixed page, at least 1, got {self.fit}")

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> StyleSpace:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise StyleError(f"unknown style option(s) {unknown}; known: {', '.join(sorted(known))}")
        values: dict[str, Any] = {}
        for key, value in options.items():
            if key == "fontsets":
                values[key] = (value,) if isinstance(value, str) else tuple(value)
            elif key in ("augment", "fit"):
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise StyleError(f"{key}: expected a number, got {value!r}")
                values[key] = float(value)
            elif key == "font_size":
                values[key] = _range(value, key)
            else:
                values[key] = _range(value, key, int)
        return cls(**values)

    def sample(self, seed: int, key: str) -> RenderStyle:
        rng = random.Random(f"style:{seed}:{key}")
        return RenderStyle(
            fontset=rng.choice(self.fontsets),
            font_size=round(rng.uniform(*self.font_size), 2),
            stroke=rng.randint(*self.stroke),
            padding=rng.randint(*self.padding),
            ink=rng.randint(*self.ink),
            paper=rng.randint(*self.paper),
            augment_seed=rng.randrange(2**31) if rng.random() < self.augment else None,
            fit=self.fit,
        )
