"""One command from a data recipe to one validated HF dataset with a report.

    python -m data_prep.build --config recipes/data/crohme.yaml [--output-dir DIR]
        [--max-reject-fraction F] [--num-proc N] [--sharegpt] [--fresh]

Writes ``<out>/<split>/shard-00000-of-000NN.parquet`` (``train`` and one split per test set,
images embedded as PNG), ``<out>/report.json``, ``<out>/report.md`` and ``<out>/vocab.txt``.

How it works, per split (test sets first, so training records can be checked against them):
read each source with its reader, fingerprint and PNG-encode every image once, derive the
auxiliary task records, drop training records that overlap a test set, and write shards of about
``shard_size`` rows. A shard is written to a temporary file and renamed into place, then recorded
in ``<out>/manifest.json`` with the recipe hash, the position reached in each source (the reader's
items passed, known before any image is decoded) and the rejections so far; a re-run skips
completed shards and finished sources, and has each reader pass over the items it had covered
without opening their images, then continues.
A finished split's shards move to ``<out>/<split>/`` and get their final ``-of-NNNNN`` names;
a split with no rows, or with too large a share of its input rejected, is discarded instead (a
rerun rebuilds it), and a finished build gets its dataset card (``data_prep.build.card``).

Beside this module: ``builder`` (the ``DatasetBuilder``), ``stream`` (splits and reader
streams), ``records`` (per-record work, in worker processes), ``state`` (what is saved with each
shard), ``results`` (a split's result and whether it may be kept) and ``safety`` (an output
folder never overlaps a source; only the build's own files are ever deleted). The format itself
is :mod:`data_prep.dataset`'s.
"""

from __future__ import annotations

import argparse
import errno
import logging
import sys
from pathlib import Path

from data_prep.build.builder import DatasetBuilder
from data_prep.build.recipe import DataRecipe, RecipeError, load_recipe
from data_prep.build.safety import check_output_dir
from data_prep.output_lock import OutputLocked, output_lock
from data_prep.rejects import TooManyRejects

logger = logging.getLogger("data_prep.build")


# --------------------------------------------------------------------------- #
# Entry point
# --------------------------------------------------------------------------- #


def build_dataset(
    recipe: DataRecipe | str | Path,
    output_dir: str | Path | None = None,
    *,
    max_reject_fraction: float | None = None,
    num_proc: int | None = None,
    sharegpt: bool | None = None,
    fresh: bool = False,
    progress: bool = True,
) -> Path:
    """Build the recipe's dataset; returns the output folder. Arguments override the recipe."""
    if not isinstance(recipe, DataRecipe):
        recipe = load_recipe(recipe, require_paths=True)
    out = Path(output_dir or recipe.output_dir)
    limit = max_reject_fraction if max_reject_fraction is not None else recipe.max_reject_fraction
    check_output_dir(out, recipe)  # before the lock's file is made beside it
    # One build per output folder: a second one (same or another recipe) is refused, naming the
    # holder, before it reads or writes anything there (data_prep.output_lock).
    with output_lock(out, what="data build"):
        builder = DatasetBuilder(
            recipe, out, num_proc=num_proc or recipe.num_proc, fresh=fresh, progress=progress
        )
        builder.build(limit)
        if sharegpt if sharegpt is not None else recipe.sharegpt:
            from data_prep.build.sharegpt import export_sharegpt

            export_sharegpt(out, out / "sharegpt")
    logger.info("dataset written to %s (report: %s)", out, out / "report.md")
    return out


#: Errors of the output folder's storage reported in one line (anything else keeps its traceback).
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT})


def write_failure(err: OSError, out: str) -> str:
    """One line saying why the build could not write, and what to do."""
    where = err.filename or out
    what = {
        errno.ENOSPC: "the disk is full",
        errno.EDQUOT: "the disk quota is exhausted",
        errno.EROFS: "the file system is read-only",
    }.get(err.errno, "permission denied")
    return (
        f"cannot write {where}: {what} ({err.strerror}); nothing half-written was kept (finished "
        "shards stay): free space or choose a writable --output-dir and run the same command again"
    )


def _fraction_arg(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 <= value <= 1:  # also refuses nan
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1 (0.02 = 2%), got {text!r}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m data_prep.build", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="data recipe YAML (recipes/data/*.yaml)")
    parser.add_argument("--output-dir", help="where to write the dataset (default: the recipe's output_dir)")
    parser.add_argument(
        "--max-reject-fraction",
        type=_fraction_arg,
        help="fail when a larger share of a split's input is rejected (a number from 0 to 1)",
    )
    parser.add_argument(
        "--num-proc", type=int, help="worker processes encoding images (default: the recipe's, else 1)"
    )
    parser.add_argument(
        "--sharegpt", action="store_true", default=None, help="also export LLaMA-Factory ShareGPT JSON"
    )
    parser.add_argument("--fresh", action="store_true", help="discard an earlier build in the output folder")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        build_dataset(
            args.config,
            args.output_dir,
            max_reject_fraction=args.max_reject_fraction,
            num_proc=args.num_proc,
            sharegpt=args.sharegpt,
            fresh=args.fresh,
            progress=not args.no_progress,
        )
    except (RecipeError, FileNotFoundError, TooManyRejects, OutputLocked) as err:
        logger.error("%s", err)
        return 2 if not isinstance(err, TooManyRejects) else 3
    except OSError as err:
        # Disk full, a read-only or forbidden output folder: one line. Every file is written to a
        # temporary name and renamed (io_utils), so nothing half-written is left; finished shards
        # are kept and the same command resumes once there is room.
        if err.errno not in WRITE_ERRNOS:
            raise
        logger.error("%s", write_failure(err, args.output_dir or "the recipe's output_dir"))
        return 2
    except KeyboardInterrupt:
        # Ctrl-C is a normal way to stop a long build: finished shards are kept, so say how to go on.
        logger.warning("interrupted: finished shards are kept; run the same command again to resume")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
