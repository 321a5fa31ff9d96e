"""Turn a fine-tuned LoRA adapter into a model people can run: on vLLM, on an 8-12 GB GPU, from a script.

    python -m train.export --adapter outputs/sft --format merged   --output-dir exports/merged
    python -m train.export --adapter outputs/sft --format bnb-4bit --output-dir exports/nf4
    python -m train.export --adapter outputs/sft --format w4a16    --output-dir exports/w4a16 \\
        --calibration-data data/crohme              # GPU machine, llmcompressor installed
    python -m train.export --adapter exports/merged --format gguf  --output-dir exports/gguf
    python -m train.export --estimate-sizes         # size of each format for the real 3B / 7B

Formats:

* ``merged``: the LoRA merged into the base (in float32, then cast), bf16 safetensors, the
  processor files and the chat template; loads in transformers and in vLLM unchanged.
* ``bnb-4bit``: NF4 (double quantisation) through bitsandbytes, vision tower and lm_head kept in
  bf16 (``train.modeling.quantization_config``); loads with ``from_pretrained`` on a GPU or a CPU.
  Not servable by vLLM 0.33 (no bitsandbytes method): use ``w4a16`` for vLLM.
* ``w4a16``: 4-bit weights, 16-bit activations (GPTQ, group size 128) made with llm-compressor and
  calibrated on training images; saved in the compressed-tensors format vLLM serves.
* ``gguf``: llama.cpp's converter is not a Python package, so this prints the commands instead.

``--adapter`` takes a LoRA adapter folder as the trainer writes it; the quantised formats also take
a model folder (a merged export). Every export is built in a temporary folder beside the output and
renamed into place only when complete, and carries a model card (README.md). Options can also come
from ``--config export.yaml`` (keys named as the flags).

The package: ``registry.py`` lists the formats (one module each: ``merged.py``, ``bnb_4bit.py``,
``w4a16.py``, ``gguf.py``), ``common.py`` resolves and checks the input once,
``card.py`` writes the model card, ``provenance.py`` guards the output folder (never an input,
``--overwrite`` only over an earlier export, one export at a time) and writes
``export_provenance.json`` (weights hashes, training data fingerprints), ``sizes.py`` estimates
sizes, ``options.py`` declares the options and ``cli.py`` parses them.
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
