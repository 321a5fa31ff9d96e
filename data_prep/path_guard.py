"""Inputs are never written to: an output folder must not be, lie inside or contain an input.

Every writer deletes or replaces files in its output folder, so an output folder that is a source
folder, a base model, an adapter or a dataset (or lies inside one, or holds one) would destroy it.
:func:`find_overlap` says which input a folder collides with; :func:`refuse_overlap` refuses it in
one line before anything is written. The data build (``data_prep.build.safety``) and training
(``train.sft``) both go through :func:`find_overlap`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path


class OutputOverlapsInput(ValueError):
    """An output folder that is, lies inside or contains one of its inputs."""


def _real(path: str | Path) -> Path:
    return Path(os.path.realpath(Path(path).expanduser()))


def relation(output: str | Path, path: str | Path) -> str | None:
    """``"is"``, ``"lies inside"`` or ``"contains"`` (how ``output`` stands to ``path``), or None
    when they are apart. Symlinks are resolved; neither path needs to exist."""
    out_real, real = _real(output), _real(path)
    if real == out_real:
        return "is"
    if real in out_real.parents:
        return "lies inside"
    if out_real in real.parents:
        return "contains"
    return None


def find_overlap(
    output: str | Path, inputs: Mapping[str, str | Path | None] | Iterable[tuple[str, str | Path | None]]
) -> tuple[str, str, Path] | None:
    """The first ``(relation, description, path)`` among ``inputs`` (description -> path; None
    paths and hub ids that are not local paths are skipped) that ``output`` collides with."""
    items = inputs.items() if isinstance(inputs, Mapping) else inputs
    for what, path in items:
        if path is None or str(path) == "":
            continue
        found = relation(output, path)
        if found is not None:
            return found, what, Path(path)
    return None


def refuse_overlap(
    output: str | Path,
    inputs: Mapping[str, str | Path | None] | Iterable[tuple[str, str | Path | None]],
    *,
    name: str = "output_dir",
) -> None:
    """An :class:`OutputOverlapsInput` naming the input when ``output`` is, lies inside or contains
    any of ``inputs`` (e.g. ``{"base model": ..., "adapter": ..., "dataset": ...}``)."""
    found = find_overlap(output, inputs)
    if found is None:
        return
    how, what, path = found
    raise OutputOverlapsInput(
        f"{name} {output} {how} the {what} {path}: its files would be overwritten or deleted; "
        "give an output folder of its own, outside every input; nothing was written"
    )


__all__ = ["OutputOverlapsInput", "find_overlap", "refuse_overlap", "relation"]
