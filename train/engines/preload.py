"""Import Unsloth before transformers, trl and peft when the recipe will train with it.

Unsloth patches those libraries when it is imported and warns that its patches may not apply if
they were imported first. The recipe is parsed with transformers' HfArgumentParser, so the engine
is decided here from the raw YAML and the command line, before :mod:`train.config` is imported.
This module imports only the standard library and yaml (and torch, to ask for a GPU).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

logger = logging.getLogger(__name__)

#: Libraries Unsloth patches; importing any of them first defeats the patches.
PATCHED = ("transformers", "trl", "peft")


def _option(argv: Sequence[str], name: str) -> str | None:
    args = list(argv)
    flag = f"--{name}"
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def _truthy(value) -> bool:
    return str(value).lower() in ("1", "true", "yes")


def unsloth_wanted(argv: Sequence[str]) -> bool:
    """Whether ``python -m train.sft ARGV`` will train with Unsloth: the same rules as
    :func:`train.engines.select_engine`, read from the recipe file and command-line overrides."""
    config = _option(argv, "config")
    data: dict = {}
    if config and Path(config).is_file():
        from data_prep.recipe_file import RecipeFileError, read_recipe_mapping

        try:
            data = read_recipe_mapping(config)
        except RecipeFileError:
            data = {}  # train.sft's own parse reports it in one line

    def value(key, default=None):
        override = _option(argv, key)
        return override if override is not None else data.get(key, default)

    engine = str(value("engine", "auto"))
    if engine not in ("auto", "unsloth") or importlib.util.find_spec("unsloth") is None:
        return False
    import torch

    if not torch.cuda.is_available():
        return False
    if engine == "unsloth":
        return True
    single_process = int(os.environ.get("WORLD_SIZE", "1")) == 1 and not value("deepspeed")
    return _truthy(value("use_peft", False)) and single_process


def import_unsloth() -> None:
    """``import unsloth``, warning when a library it patches was imported before it."""
    if "unsloth" not in sys.modules:
        early = [name for name in PATCHED if name in sys.modules]
        if early:
            logger.warning("unsloth imported after %s: some of its patches may not apply", ", ".join(early))
    import unsloth  # noqa: F401


def import_unsloth_first(argv: Sequence[str]) -> bool:
    """Import Unsloth now if this run will use it; True when it did."""
    if not unsloth_wanted(argv):
        return False
    import_unsloth()
    return True
