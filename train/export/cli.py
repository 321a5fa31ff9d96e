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

The command-line front (console script ``hmer-export``): parse :class:`ExportOptions`, resolve
the input folder once into a ``ModelSource``, and hand it to the format's registry entry."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from data_prep.recipe_file import RecipeFileError, read_options_file
from train.export.common import ExportError
from train.export.options import ExportOptions
from train.export.registry import check_source, get_format
from train.export.sizes import format_size_table

logger = logging.getLogger("train.export")


def _one_line(message: str) -> str:
    if message.startswith("argument ") and ": " in message:
        flags, reason = message[len("argument ") :].split(": ", 1)
        return f"{flags.split('/')[0]}: {reason}"
    return message


def build_parser():
    """``HfArgumentParser`` over :class:`ExportOptions`; a bad flag is one :class:`ExportError` line."""
    import argparse

    from transformers import HfArgumentParser

    class Parser(HfArgumentParser):
        def error(self, message):
            raise ExportError(_one_line(message))

    return Parser(
        ExportOptions,
        prog="python -m train.export",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def parse_options(argv: Sequence[str] | None = None) -> ExportOptions:
    """Flags, optionally on top of ``--config FILE.yaml`` (its keys are the flags' names)."""
    args = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if "--config" in args:
        i = args.index("--config")
        if i + 1 >= len(args):
            raise ExportError("--config needs a YAML file")
        try:
            config = read_options_file(args[i + 1])
        except RecipeFileError as err:
            raise ExportError(str(err)) from None
        del args[i : i + 2]
        known = {action.dest for action in parser._actions}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ExportError(f"unknown export option(s) in the config: {', '.join(unknown)}")
        parser.set_defaults(**config)
    (options,) = parser.parse_args_into_dataclasses(args=args)
    return options


def run(options: ExportOptions) -> Path | None:
    """Make the export ``options`` describe; returns its folder (None: nothing written)."""
    from train.model_card import load_eval_summary

    if options.estimate_sizes:
        for arch in [a.strip() for a in options.arch.split(",") if a.strip()]:
            print(format_size_table(arch, options.group_size))
            print()
        return None
    if not options.adapter:
        raise ExportError("give --adapter DIR (the folder the trainer wrote) or --estimate-sizes")
    spec = get_format(options.format)
    output_dir = Path(
        options.output_dir
        or Path("outputs") / "exports" / f"{Path(options.adapter).resolve().name}-{spec.name}"
    )
    if options.eval_summary:
        load_eval_summary(options.eval_summary)  # a bad summary fails before minutes of export work
    source = check_source(options.adapter, spec.name)  # the one resolution of this trip
    return spec.run(source, output_dir, options)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        run(parse_options(argv))
    except FileExistsError as err:
        print(f"export failed: {err}; pass --overwrite to replace it", file=sys.stderr)
        return 2
    except (ExportError, FileNotFoundError, ValueError) as err:
        print(f"export failed: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        from data_prep.disk_errors import is_storage_error, storage_error_line

        if not is_storage_error(err):
            raise
        print(f"export failed: {storage_error_line(err)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
