"""Reading a YAML file of settings into a mapping, every fault one line: data recipes
(``data_prep.build.recipe``), training recipes (``train.config``) and the ``--config`` files of the
evaluation and export commands.

Light on purpose (only ``yaml``): ``train.engines.preload`` and ``train.launch`` read the recipe
before transformers may be imported. A recipe that is not UTF-8, not valid YAML, or not a mapping
(a list, a bare string) is a :class:`RecipeFileError` that says which and where, never a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class RecipeFileError(ValueError):
    """A recipe file that cannot be read as a YAML mapping."""


def _yaml_problem(err: yaml.YAMLError) -> str:
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{problem}{where}"


def read_recipe_mapping(path: str | Path, what: str = "recipe") -> dict[str, Any]:
    """The YAML mapping in ``path`` (an empty file is an empty mapping)."""
    path = Path(path)
    if not path.is_file():
        raise RecipeFileError(f"{what} {path} not found")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise RecipeFileError(
            f"{what} {path} is not UTF-8 text (byte {err.object[err.start]:#04x} at offset {err.start}); "
            "save it as UTF-8"
        ) from None
    except OSError as err:
        raise RecipeFileError(f"cannot read {what} {path}: {err.strerror or err}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise RecipeFileError(f"{what} {path} is not valid YAML: {_yaml_problem(err)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RecipeFileError(
            f"{what} {path} must be a YAML mapping of keys to values (`key: value`), "
            f"not a {type(data).__name__}"
        )
    return data


def read_options_file(path: str | Path) -> dict[str, Any]:
    """A ``--config FILE.yaml`` of command-line options (evaluation, mining, export, ...) as a mapping
    of option names, dashes read as underscores (``batch-size`` is ``batch_size``)."""
    return {str(key).replace("-", "_"): value for key, value in read_recipe_mapping(path, "config").items()}


__all__ = ["RecipeFileError", "read_options_file", "read_recipe_mapping"]
