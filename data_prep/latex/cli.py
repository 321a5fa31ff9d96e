"""The command line of the tokeniser (``python -m data_prep.latex``): tokenise formulas (or stdin
lines); an already tokenised line is printed unchanged."""

from __future__ import annotations

from data_prep.latex.normalize import normalize_equivalent
from data_prep.latex.parser import LatexError
from data_prep.latex.tokenize import tokenize_latex


def main(argv: list[str] | None = None) -> int:
    """``python -m data_prep.latex [FORMULA ...]``: tokenise formulas (or stdin, one per line)."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("formulas", nargs="*", help="raw LaTeX formulas (default: read stdin lines)")
    parser.add_argument("--normalize", action="store_true", help="print normalize_equivalent() instead")
    args = parser.parse_args(argv)
    lines = args.formulas or sys.stdin.read().split("\n")
    failures = 0
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            tokens = tokenize_latex(line)
        except LatexError as err:
            failures += 1
            print(f"line {number}: {err}", file=sys.stderr)
            continue
        print(normalize_equivalent(tokens) if args.normalize else tokens)
    if failures:
        print(f"{failures} formula(s) could not be tokenised", file=sys.stderr)
    return 1 if failures else 0
