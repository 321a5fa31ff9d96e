"""``make bench-learning``: does the chain learn 2-D structure on a CPU?

Renders formulas with superscripts, subscripts, ``\\frac`` and ``\\sqrt`` (``recipes/data/
learning_structure.yaml``: 1-6 symbols, four font sets, augmentation; the held-out formulas never
appear in training, which the build's contamination report counts), fine-tunes a tiny Qwen2.5-VL
through ``train.sft`` (``recipes/tiny/learning_structure.yaml``, validating on the held-out set every
``eval_steps`` for the learning curve), then scores the final model through ``eval.evaluate`` on the
held-out set and on the swapped-image control, by structure (flat, script, fraction, root), and on
held-out formulas written in real CROHME handwriting (composed from the bundled InkML files'
symbols, ``renderer: ink``), reported as ``handwritten``.

    python -m benchmarks.learning_structure            # the benchmark (~45 min on the 2-core machine)
    python -m benchmarks.learning_structure --smoke    # the same chain, tiny (CI, < 1 min)

Writes ``benchmarks/results/learning_structure.json`` (``--smoke``: under the output folder) and the
learning curve ``learning_structure.png`` beside it. Rerun resumes: the data build, the training
run and a finished arm are each picked up where they stopped.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.learning.experiment import Arm, run_arm
from benchmarks.learning.results import REPO, contamination, provenance, smoke_recipe, start_commit
from train.tiny_model import SIZES

DATA_RECIPE = REPO / "recipes" / "data" / "learning_structure.yaml"
TRAIN_RECIPE = REPO / "recipes" / "tiny" / "learning_structure.yaml"
HELDOUT = "structure_heldout"
#: Formulas composed from the bundled CROHME InkML files' handwritten symbols, scored apart.
INK_HELDOUT = "ink_heldout"
RESULTS = REPO / "benchmarks" / "results" / "learning_structure.json"
#: The model size the benchmark trains (``python -m train.tiny_model --size``).
MODEL_SIZE = "structure"
#: A dozen renderings decide no reject fraction: the smoke build tolerates any.
SMOKE_BUILD = ["--max-reject-fraction", "1"]
SMOKE_COUNTS = {"structure_train": 48, HELDOUT: 12, "ink_train": 12, INK_HELDOUT: 6}
SMOKE_TRAIN = [
    "--max_steps",
    "6",
    "--eval_steps",
    "3",
    "--logging_steps",
    "3",
    "--per_device_train_batch_size",
    "4",
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.learning_structure", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--smoke", action="store_true", help="a few rows and steps: checks the chain, not learning"
    )
    parser.add_argument(
        "--output-dir", type=Path, default=None, help="default outputs/bench/learning_structure[_smoke]"
    )
    parser.add_argument(
        "--results", type=Path, default=None, help="results JSON (default: see the module docstring)"
    )
    parser.add_argument(
        "--model-size",
        default=MODEL_SIZE,
        choices=sorted(SIZES),
        help="tiny model preset (train.tiny_model --size)",
    )
    parser.add_argument("--fresh", action="store_true", help="discard earlier data, runs and figures")
    parser.add_argument("--progress", action="store_true", help="progress bars (default: log lines only)")
    parser.add_argument(
        "--train-overrides", nargs=argparse.REMAINDER, default=[], help="extra train.sft flags, last"
    )
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The benchmark in its output folder, which one run holds at a time (a second is refused)."""
    from data_prep.output_lock import output_lock

    out = args.output_dir or REPO / "outputs" / "bench" / (
        "learning_structure_smoke" if args.smoke else "learning_structure"
    )
    with output_lock(out, what="bench-learning run"):
        return run_in(args, out)


def run_in(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    from benchmarks.learning.experiment import check
    from benchmarks.learning.plot import plot_learning_curve
    from data_prep import build
    from data_prep.io_utils import write_json_atomic
    from train.tiny_model import build_tiny_model

    started, git = time.time(), start_commit()
    results = args.results or (out / "learning_structure.json" if args.smoke else RESULTS)
    out.mkdir(parents=True, exist_ok=True)
    model = out / f"tiny-{args.model_size}"
    if args.fresh or not (model / "config.json").is_file():
        print(f"building the {args.model_size} tiny model (random weights) -> {model}")
        build_tiny_model(model, size=args.model_size)
    recipe = smoke_recipe(DATA_RECIPE, out / "data_recipe.yaml", SMOKE_COUNTS) if args.smoke else DATA_RECIPE
    data_dir = out / "data"
    print(f"rendering the formulas ({recipe}) -> {data_dir}")
    build_args = ["--config", str(recipe), "--output-dir", str(data_dir)] + (
        ["--fresh"] if args.fresh else []
    )
    check(build.main(build_args + ([] if args.progress else ["--no-progress"])), "rendering the formulas")
    arm = Arm(
        name="structure",
        data_dir=data_dir,
        train_recipe=TRAIN_RECIPE,
        model=model,
        out_dir=out / "run",
        heldout=HELDOUT,
        extra_sets=[INK_HELDOUT],
        train_overrides=(SMOKE_TRAIN if args.smoke else []) + list(args.train_overrides),
    )
    print("fine-tuning and scoring (held-out formulas, then the swapped-image control)")
    figures = run_arm(arm, progress=args.progress, fresh=args.fresh)
    finished = time.time()
    summary = {
        "benchmark": "learning_structure",
        "smoke": bool(args.smoke),
        "model_size": args.model_size,
        "heldout": figures["heldout"],
        "control": figures["control"],
        "by_structure": figures["by_structure"],
        "handwritten": figures["extra"][INK_HELDOUT],
        "learning_curve": figures["learning_curve"],
        "contamination": contamination(data_dir),
        "data_recipe": str(DATA_RECIPE.relative_to(REPO)),
        "train_recipe": str(TRAIN_RECIPE.relative_to(REPO)),
        "train_overrides": arm.train_overrides,
        **provenance("benchmarks.learning_structure", args.argv, started, finished, git),
    }
    results.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(results, summary)
    plot_learning_curve(
        {"held-out": figures["learning_curve"]},
        results.with_suffix(".png"),
        "Held-out ExpRate while training",
    )
    return summary


def describe(summary: dict[str, Any]) -> str:
    held, control = summary["heldout"], summary["control"]
    parts = [
        f"held-out ExpRate {held['exprate']:.2f} (n={held['n']}, <=1 {held['le1']:.2f}), "
        f"swapped-image control {control['exprate']:.2f} (n={control['n']})"
    ]
    for name, figure in summary["by_structure"].items():
        if figure["n"]:
            parts.append(f"{name} {figure['exprate']:.2f} (n={figure['n']})")
    ink = summary["handwritten"]
    parts.append(
        f"handwritten (real CROHME strokes) {ink['exprate']:.2f} (n={ink['n']}, <=1 {ink['le1']:.2f})"
    )
    return "; ".join(parts)


def main(argv: list[str] | None = None) -> int:
    from benchmarks.learning.kernels import pin_cpu_kernels

    pin_cpu_kernels()
    from benchmarks.learning.experiment import ExperimentError
    from data_prep.output_lock import OutputLocked

    args = parse_args(argv)
    try:
        summary = run(args)
    except (ExperimentError, OutputLocked) as err:
        print(f"bench-learning: {err}")
        return 1
    print("bench-learning: " + describe(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
