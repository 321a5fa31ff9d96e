"""The export formats, one registry entry each: adding a format is one module with a
``run(source, output_dir, options)`` function plus one :class:`ExportFormat` line below
(docs/contributing.md, "Adding an export format")."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from train.export import bnb_4bit, gguf, merged, w4a16
from train.export.common import ExportError, check_input
from train.modeling import ModelSource


@dataclasses.dataclass(frozen=True)
class ExportFormat:
    """One export format: its ``--format`` name, what it does, and the function that makes it."""

    name: str
    summary: str
    #: ``run(source, output_dir, options) -> Path | None`` (None: nothing written, e.g. instructions)
    run: Callable[[ModelSource, Path, Any], Path | None]
    #: Whether a full model folder (a merged export) is an input, besides a LoRA adapter folder.
    accepts_model_folder: bool = True


EXPORT_FORMATS: dict[str, ExportFormat] = {
    spec.name: spec
    for spec in (
        ExportFormat("merged", "LoRA merged into the base, 16-bit safetensors", merged.run, False),
        ExportFormat("bnb-4bit", "bitsandbytes NF4 (transformers on 8-12 GB GPUs)", bnb_4bit.run),
        ExportFormat("w4a16", "GPTQ int4 weights in compressed-tensors (vLLM)", w4a16.run),
        ExportFormat(
            "gguf", "llama.cpp GGUF pair: language model + mmproj (llama-mtmd-cli, Ollama)", gguf.run
        ),
    )
}
#: The ``--format`` names, in the order shown.
FORMATS = tuple(EXPORT_FORMATS)


def get_format(name: str) -> ExportFormat:
    try:
        return EXPORT_FORMATS[name]
    except KeyError:
        raise ExportError(f"unknown format {name!r}; choose one of {', '.join(FORMATS)}") from None


def check_source(path: str | Path, export_format: str) -> ModelSource:
    """Validate ``path`` as an adapter folder (or, for the formats that take one, a model folder)
    and resolve it, once, into the :class:`ModelSource` the export is made from."""
    spec = get_format(export_format)
    return check_input(path, spec.name, spec.accepts_model_folder)
