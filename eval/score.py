"""Score any predictions file with the project's metric code; compare two of them.

    python -m eval.score PRED [PRED2] [--gt CAPTION_FILE] [--set NAME] [--output-dir D]
                         [--bootstrap N] [--seed S] [--normalized] [--images-root DIR]

Formats are recognised from the content (see :data:`FORMATS`): the project's predictions JSONL,
Uni-MuMER's published JSON list, TAMER's published JSON object, and ``NAME<TAB>prediction`` files
joined with a ``NAME<TAB>truth`` caption file (``--gt``). With ``--gt``, files that carry their own
truth are re-scored against the caption file instead (how many truths changed is reported), which
is how one scores a published file against another caption edition.

Item ids: ``img_id``, the TAMER key or the TSV name, with a known image suffix (``.bmp .png .jpg
.jpeg``) removed so the same item has the same id in every format.

Nothing is dropped silently: truths without a prediction are scored as wrong (``error =
missing_prediction``); predictions without a truth, malformed items and (with
``--allow-duplicates``) repeated ids are counted and reported with file, line and reason.
Repeated ids are an error by default, because keeping either copy changes the score.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path

from data_prep.disk_errors import is_storage_error, storage_error_line
from data_prep.io_utils import write_text_atomic
from data_prep.output_lock import OutputLocked, output_lock
from eval.report.compare_html import write_comparison_html
from eval.report.html_report import write_html_report
from eval.report.summary import summary_markdown, write_summary
from eval.scoring.compare import Comparison, compare_rows
from eval.scoring.formats import FormatError, Loaded, known_formats, load_predictions
from eval.scoring.metrics import Scores
from eval.scoring.score import exprate_cis, score_rows

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class ScoreResult:
    loaded: Loaded
    scores: dict[str, Scores]
    cis: dict[str, tuple[float, float]]
    out_dir: Path
    #: The Markdown summary, exactly as written to ``out_dir/summary.md``.
    markdown: str


def score_file(
    loaded: Loaded,
    out_dir: Path,
    n_resamples: int = 10_000,
    seed: int = 0,
    normalize: bool = False,
    images_root: str | Path | None = None,
    worst: int = 50,
) -> ScoreResult:
    """Score one loaded file; write summary.md, summary.json and report.html into ``out_dir``."""
    scores = score_rows(loaded.rows, normalize=normalize)
    cis = exprate_cis(loaded.rows, n_resamples, seed) if n_resamples > 0 else {}
    title = f"Scores: {loaded.path.name}"
    notes = loaded.notes()
    for name, (low, high) in cis.items():
        notes.append(
            f"{name}: ExpRate 95% CI {low:.2f} to {high:.2f} (bootstrap, {n_resamples} resamples, seed {seed})"
        )
    extra = {
        "input": loaded.as_dict(),
        "exprate_ci95": {name: list(ci) for name, ci in cis.items()},
        "bootstrap": {"resamples": n_resamples, "seed": seed},
    }
    write_summary(scores, out_dir, extra=extra, notes=notes, title=title)
    # Images are read from the predictions file's folder and --images-root only (relative paths
    # from --images-root, else from the predictions folder): never from wherever a path points.
    predictions_dir = loaded.path.resolve().parent
    write_html_report(
        loaded.rows,
        out_dir / "report.html",
        images_root=images_root if images_root is not None else predictions_dir,
        image_roots=[predictions_dir, *([images_root] if images_root is not None else [])],
        worst=worst,
        title=f"Errors: {loaded.path.name}",
        settings={"predictions": loaded.path, "format": loaded.format},
    )
    markdown = summary_markdown(scores, notes, title=title)
    return ScoreResult(loaded=loaded, scores=scores, cis=cis, out_dir=out_dir, markdown=markdown)


def write_comparison(comparison: Comparison, out_dir: Path) -> None:
    write_text_atomic(out_dir / "compare.md", comparison.to_markdown() + "\n")
    write_comparison_html(comparison, out_dir / "compare.html")
    write_text_atomic(
        out_dir / "compare.json", json.dumps(comparison.as_dict(), ensure_ascii=False, indent=2) + "\n"
    )


# --------------------------------------------------------------------------- #
# Command line
# --------------------------------------------------------------------------- #


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m eval.score",
        description="Score a predictions file (ExpRate, <=1, <=2, <=3, TER, by length) or compare two.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=known_formats(),
    )
    parser.add_argument("pred", type=Path, help="predictions file (format detected)")
    parser.add_argument("pred2", type=Path, nargs="?", help="a second predictions file: paired comparison")
    parser.add_argument("--gt", type=Path, help="NAME<TAB>truth caption file (required for TSV predictions)")
    parser.add_argument("--set", dest="set_name", help="set name (default: from the file name)")
    parser.add_argument("--output-dir", type=Path, help="where to write the reports (default: beside PRED)")
    parser.add_argument(
        "--bootstrap", type=int, default=10_000, help="bootstrap resamples for the CIs (0: none)"
    )
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    parser.add_argument("--normalized", action="store_true", help="add ExpRate after LaTeX normalisation")
    parser.add_argument("--images-root", type=Path, help="folder that relative image paths are read from")
    parser.add_argument("--worst", type=int, default=50, help="items shown in the HTML error report")
    parser.add_argument("--allow-duplicates", action="store_true", help="keep the first of repeated ids")
    return parser


def _default_out_dir(pred: Path, pred2: Path | None) -> Path:
    if pred2 is None:
        return pred.parent / f"{pred.stem}.scores"
    label_a, label_b = _labels(pred, pred2)
    return pred.parent / f"{label_a}_vs_{label_b}.scores"


def _labels(pred: Path, pred2: Path) -> tuple[str, str]:
    """Names for the two runs: the file names, or, for two runs that wrote the same file name
    (``outputs/base/eval/crohme2014.main.jsonl`` vs ``outputs/tree_cot/eval/...``), the nearest
    folder names that tell them apart (``base.crohme2014.main``, ``tree_cot.crohme2014.main``)."""
    if pred.stem != pred2.stem:
        return pred.stem, pred2.stem
    parents_a = pred.resolve().parent.parts[::-1]
    parents_b = pred2.resolve().parent.parts[::-1]
    for part_a, part_b in zip(parents_a, parents_b):
        if part_a != part_b:
            return f"{part_a}.{pred.stem}", f"{part_b}.{pred2.stem}"
    return f"A-{pred.stem}", f"B-{pred2.stem}"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    out_dir = args.output_dir or _default_out_dir(args.pred, args.pred2)
    options = dict(
        n_resamples=args.bootstrap,
        seed=args.seed,
        normalize=args.normalized,
        images_root=args.images_root,
        worst=args.worst,
    )
    try:
        first = load_predictions(args.pred, args.gt, args.set_name, args.allow_duplicates)
        second = None
        if args.pred2 is not None:
            second = load_predictions(args.pred2, args.gt, args.set_name, args.allow_duplicates)
        # One writer per output folder (data_prep.output_lock): a second scoring into it is refused.
        with output_lock(out_dir, what="scoring"):
            return _score_and_write(args, out_dir, options, first, second)
    except (FormatError, ValueError, FileNotFoundError, ImportError, OutputLocked) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        if not is_storage_error(exc):
            raise
        print(f"error: {storage_error_line(exc, out_dir)}", file=sys.stderr)
        return 2


def _score_and_write(
    args: argparse.Namespace, out_dir: Path, options: dict, first: Loaded, second: Loaded | None
) -> int:
    if second is None:
        result = score_file(first, out_dir, **options)
        print(result.markdown)
        print(f"wrote {out_dir}/summary.md, summary.json and report.html")
        return 0
    label_a, label_b = _labels(args.pred, args.pred2)
    results = [
        score_file(loaded, out_dir / label, **options)
        for loaded, label in ((first, label_a), (second, label_b))
    ]
    comparison = compare_rows(
        first.rows, second.rows, label_a, label_b, n_resamples=args.bootstrap, seed=args.seed
    )
    write_comparison(comparison, out_dir)
    for result in results:
        print(result.markdown)
    print(comparison.to_markdown())
    print(f"\nwrote {out_dir}/compare.md, compare.json, compare.html and a summary and report.html per file")
    return 0


if __name__ == "__main__":
    sys.exit(main())
