"""Turn a fine-tuned LoRA adapter into a model people can run: on vLLM, on an 8-12 GB GPU, from a script.

The package: ``registry.py`` lists the formats (one module each: ``merged.py``, ``bnb_4bit.py``,
``w4a16.py``, ``gguf.py``), ``common.py`` resolves and checks the input once,
``card.py`` writes the model card, ``provenance.py`` guards the output folder (never an input,
``--overwrite`` only over an earlier export, one export at a time) and writes
``export_provenance.json`` (weights hashes, training data fingerprints), ``sizes.py`` estimates
sizes, ``options.py`` declares the options and ``cli.py`` parses them; ``python -m train.export --help`` (the
:mod:`train.export.cli` docstring) shows the formats and the commands.
"""

from train.architectures import count_parameters
from train.export.bnb_4bit import export_bnb_4bit
from train.export.card import CardOptions
from train.export.cli import build_parser, main, parse_options, run
from train.export.common import ExportError, load_merged, weights_size
from train.export.gguf import GGUFError, export_gguf
from train.export.merged import export_merged
from train.export.options import ExportOptions
from train.export.registry import EXPORT_FORMATS, FORMATS, ExportFormat, check_source, get_format
from train.export.sizes import estimate_sizes, format_size_table
from train.export.w4a16 import calibration_examples, check_group_size, export_w4a16

__all__ = [
    "EXPORT_FORMATS",
    "FORMATS",
    "CardOptions",
    "ExportError",
    "ExportFormat",
    "ExportOptions",
    "build_parser",
    "calibration_examples",
    "check_group_size",
    "check_source",
    "count_parameters",
    "estimate_sizes",
    "export_bnb_4bit",
    "export_merged",
    "export_w4a16",
    "format_size_table",
    "get_format",
    "export_gguf",
    "GGUFError",
    "load_merged",
    "main",
    "parse_options",
    "run",
    "weights_size",
]
