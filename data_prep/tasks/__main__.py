"""``python -m data_prep.tasks TASK CAPTIONS_FILE``: what captions become as auxiliary answers.

``CAPTIONS_FILE`` holds ``NAME<TAB>latex`` lines (CROHME ``caption.txt``, HME100K labels); ``-``
reads stdin. Each line prints one JSON object: ``{"id": NAME, "answer": ...}`` or, where the
reference would skip the sample, ``{"id": NAME, "skipped": REASON}``. A line without a tab is
skipped as ``malformed_line``. A summary goes to stderr.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

from data_prep.tasks import DEFAULT_TREE_COT_STYLE, TREE_COT_STYLES, TaskError
from data_prep.tasks.registry import derived_tasks, get_task


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data_prep.tasks", description=__doc__.split("\n")[0])
    parser.add_argument("task", choices=derived_tasks())
    parser.add_argument("captions", help="NAME<TAB>latex lines ('-' for stdin)")
    parser.add_argument(
        "--style",
        choices=tuple(TREE_COT_STYLES),
        default=DEFAULT_TREE_COT_STYLE,
        help=f"Tree-CoT style (default: {DEFAULT_TREE_COT_STYLE}, the reference's serialisation; other tasks: ignored)",
    )
    args = parser.parse_args(argv)
    if args.captions == "-":
        text = sys.stdin.read()
    else:
        try:
            text = Path(args.captions).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            print(f"error: cannot read {args.captions}: {err}", file=sys.stderr)
            return 2
    task = get_task(args.task)
    build = task.builder(args.style if task.styles else None)
    skipped: collections.Counter[str] = collections.Counter()
    answered = 0
    for number, line in enumerate(text.split("\n"), 1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        name, tab, latex = line.partition("\t")
        if not tab:
            row = {"id": f"line {number}", "skipped": "malformed_line"}
        else:
            try:
                row = {"id": name, "answer": build(latex)}
            except TaskError as err:
                row = {"id": name, "skipped": err.reason}
        if "skipped" in row:
            skipped[row["skipped"]] += 1
        else:
            answered += 1
        print(json.dumps(row, ensure_ascii=False))
    reasons = ", ".join(f"{reason} {n}" for reason, n in skipped.most_common())
    print(
        f"{answered} answered, {sum(skipped.values())} skipped" + (f" ({reasons})" if reasons else ""),
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
