"""``python -m train.export`` (console script ``hmer-export``): parse :class:`ExportOptions`, resolve
the input folder once into a ``ModelSource``, and hand it to the format's registry entry."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path

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

    from train import export

    class Parser(HfArgumentParser):
        def error(self, message):
            raise ExportError(_one_line(message))

    return Parser(
        ExportOptions,
        prog="python -m train.export",
        description=export.__doc__,
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
        config = _load_config(args[i + 1])
        del args[i : i + 2]
        known = {action.dest for action in parser._actions}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ExportError(f"unknown export option(s) in the config: {', '.join(unknown)}")
        parser.set_defaults(**config)
    (options,) = parser.parse_args_into_dataclasses(args=args)
    return options


def _load_config(path: str) -> dict:
    import yaml

    file = Path(path)
    if not file.is_file():
        raise ExportError(f"config {file} not found")
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise ExportError(f"config {file} is not UTF-8 text ({err.reason} at byte {err.start})") from None
    except yaml.YAMLError as err:
        raise ExportError(f"config {file} is not valid YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ExportError(f"config {file} must be a YAML mapping of option names to values")
    return {key.replace("-", "_"): value for key, value in data.items()}


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
