"""The evaluation commands' option parsing: dataclasses, ``--config YAML``, one-line errors.

Each command declares its options once, as dataclasses (the inference ones are
:class:`eval.backends.BackendOptions`, shared by every command), and parses them with
transformers' ``HfArgumentParser``, as training does with TRL's: ``--flag-name`` and
``--flag_name`` both work, and ``--config FILE.yaml`` sets any option from a YAML mapping (keys
are the option names with underscores); flags given on the command line override the file.

    evaluation, backend = parse_command_line((EvalArgs, BackendOptions), argv, prog="python -m eval.evaluate")
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable, Sequence
from typing import Any

from data_prep.recipe_file import read_options_file


def parse_command_line(
    dataclass_types: Sequence[type],
    argv: Sequence[str] | None,
    *,
    prog: str,
    description: str | None = None,
    defaults: dict[str, Any] | None = None,
    extend: Callable[[argparse.ArgumentParser], None] | None = None,
) -> tuple[Any, ...]:
    """One instance of each of ``dataclass_types`` from ``argv`` (default ``sys.argv[1:]``).

    ``defaults`` changes a field's default for this command (e.g. the app's ``max_new_tokens``);
    ``extend`` adds arguments that are not options (positional inputs): they come back as one more
    ``argparse.Namespace``. A bad value ends the command with a one-line error (exit status 2).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    parser = _parser_class()(
        list(dataclass_types),
        prog=prog,
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", metavar="FILE.yaml", help="options from a YAML file; flags override it")
    if extend is not None:
        extend(parser)
    settings = dict(defaults or {})
    if "--config" in args or any(a.startswith("--config=") for a in args):
        config_args, args = _take_config(args, parser)
        try:
            settings.update(read_options_file(config_args))
        except ValueError as err:
            parser.error(str(err))
    known = {action.dest for action in parser._actions}
    unknown = sorted(set(settings) - known)
    if unknown:
        parser.error(f"unknown option(s) in the config: {', '.join(unknown)}")
    for action in parser._actions:
        if action.dest in settings:  # a value from the file: no longer required on the command line
            action.default = settings[action.dest]
            action.required = False
    # Intermixed: positional inputs may come before, between or after the flags.
    namespace, remaining = parser.parse_known_intermixed_args(args)
    if remaining:
        parser.error(f"unrecognized arguments: {' '.join(remaining)}")
    del namespace.config
    parsed: list[Any] = []
    for dtype in dataclass_types:
        names = {f.name for f in dataclasses.fields(dtype) if f.init}
        values = {name: vars(namespace).pop(name) for name in names if hasattr(namespace, name)}
        try:
            parsed.append(dtype(**values))
        except ValueError as err:  # the dataclass's own checks (__post_init__)
            parser.error(str(err).splitlines()[0])
    if vars(namespace):
        parsed.append(namespace)
    return tuple(parsed)


def _parser_class() -> type:
    """transformers' parser (imported here: it takes seconds), whose errors are one line."""
    from transformers import HfArgumentParser

    class Parser(HfArgumentParser):
        def add_argument(self, *names, **kwargs):
            # The dashed spelling first (--batch-size before --batch_size): usage and errors show it,
            # as the documentation writes it; argparse still derives the same dest (batch_size).
            return super().add_argument(*sorted(names, key=lambda name: "_" in name), **kwargs)

        def error(self, message: str):  # argparse calls this for a bad value, flag or missing flag
            if message.startswith("argument ") and ": " in message:
                flags, reason = message[len("argument ") :].split(": ", 1)
                message = f"{flags.split('/')[0]}: {reason}"
            self.exit(2, f"{self.prog}: error: {message}\n")

    return Parser


def _take_config(args: list[str], parser: argparse.ArgumentParser) -> tuple[str, list[str]]:
    """The ``--config`` value and the other arguments."""
    for i, arg in enumerate(args):
        if arg.startswith("--config="):
            return arg.split("=", 1)[1], args[:i] + args[i + 1 :]
        if arg == "--config":
            if i + 1 >= len(args):
                parser.error("--config needs a YAML file")
            return args[i + 1], args[:i] + args[i + 2 :]
    raise AssertionError("no --config in the arguments")
