"""Checks for the fields of a data recipe: each returns the value or raises a one-line
:class:`RecipeError` naming the key at fault (``where``)."""

from __future__ import annotations

import re
from typing import Any

#: Split names become folder names and dataset split names.
SPLIT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class RecipeError(ValueError):
    """A data recipe that cannot be used, with the file and key at fault."""


# --------------------------------------------------------------------------- #
# Validation helpers
# --------------------------------------------------------------------------- #


def fail(where: str, message: str) -> RecipeError:
    return RecipeError(f"{where}: {message}")


def check_keys(value: Any, allowed: set[str], required: set[str], where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise fail(where, f"expected a mapping, got {type(value).__name__}")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise fail(
            where, f"unknown key(s) {', '.join(map(repr, unknown))}; known: {', '.join(sorted(allowed))}"
        )
    missing = sorted(required - set(value))
    if missing:
        raise fail(where, f"missing required key(s) {', '.join(map(repr, missing))}")
    return value


def as_int(value: Any, where: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise fail(where, f"expected an integer >= {minimum}, got {value!r}")
    return value


def as_fraction(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise fail(where, f"expected a number between 0 and 1, got {value!r}")
    return float(value)


def as_str(value: Any, where: str) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)  # `split: 2014` in YAML is an int; it names a folder all the same
    if not isinstance(value, str) or not value.strip():
        raise fail(where, f"expected a non-empty string, got {value!r}")
    return value


def split_name(value: Any, where: str) -> str:
    name = as_str(value, where)
    if not SPLIT_NAME.match(name):
        raise fail(where, f"{name!r} is not a usable split name (letters, digits, '_', '-', '.')")
    return name


def check_reader(name: str, where: str, options: dict[str, Any] | None = None) -> None:
    """Ask the reader registry about ``name``; skipped while ``data_prep.readers`` has no registry."""
    try:
        from data_prep.readers import get_reader
    except ImportError:
        return
    try:
        reader = get_reader(name)
    except (KeyError, ValueError) as err:
        raise fail(where, f"unknown reader {name!r}: {err}") from None
    # An option the reader does not take would otherwise fail only when the build reaches it.
    import inspect

    params = inspect.signature(reader).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    known = [n for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY and n != "cursor"]
    unknown = sorted(set(options or {}) - set(known))
    if unknown:
        raise fail(
            f"{where}.options",
            f"unknown option(s) {', '.join(unknown)} for reader {name!r}; it takes: {', '.join(known) or 'none'}",
        )
