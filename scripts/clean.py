"""`make clean` / `make clean-models`: remove what can be rebuilt, and models only when asked.

    python -m scripts.clean [--models] [--dry-run] [ROOT ...]     # default ROOT: outputs

Each entry directly under a root is a run, a dataset, an evaluation or a report. An entry that holds
a model (any ``*.safetensors`` file in it: fine-tuned adapters, checkpoints, exports, mined folds)
is kept by ``clean`` and removed only by ``clean --models``; every other entry (built datasets,
evaluation outputs, reports, logs) is rebuildable and removed by ``clean``. Standard library only.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path


def holds_model(path: Path) -> bool:
    """Whether ``path`` is or contains model weights (``*.safetensors``)."""
    if path.is_file():
        return path.suffix == ".safetensors"
    return any(path.rglob("*.safetensors"))


def plan(roots: list[Path], models: bool) -> list[Path]:
    """The entries to remove: rebuildable ones, or (``models``) the ones holding a model."""
    doomed = []
    for root in roots:
        if not root.is_dir():
            continue
        for entry in sorted(root.iterdir()):
            if holds_model(entry) == models:
                doomed.append(entry)
    return doomed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.clean", description=__doc__.split("\n\n")[0])
    parser.add_argument("roots", nargs="*", type=Path, default=[Path("outputs")])
    parser.add_argument("--models", action="store_true", help="remove the entries holding trained models")
    parser.add_argument("--dry-run", action="store_true", help="list what would be removed")
    args = parser.parse_args(argv)
    doomed = plan(args.roots, args.models)
    for entry in doomed:
        print(f"{'would remove' if args.dry_run else 'removing'} {entry}")
        if not args.dry_run:
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    if not args.models:
        kept = plan(args.roots, True)
        if kept:
            print(
                f"kept {len(kept)} folder(s) holding models ({', '.join(map(str, kept[:3]))}"
                f"{', ...' if len(kept) > 3 else ''}): `make clean-models` removes them"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
