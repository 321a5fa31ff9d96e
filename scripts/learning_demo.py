"""The demo's proof of learning: the tiny model learns to read rendered formulas it never saw.

1. build the ``reader`` tiny Qwen2.5-VL (random weights, ``python -m train.tiny_model --size reader``),
2. render a training corpus and a held-out test set of *new formulas* with the rendering engine
   (``recipes/data/rendered_demo.yaml``: the build holds back every training rendering of a test
   formula and reports how many),
3. fine-tune through the project's training path (``train.sft``, ``recipes/tiny/reader_demo.yaml``)
   and evaluate through ``eval.evaluate`` on the held-out set and on a control: the same items with
   each image replaced by another item's image (a model that ignores the image scores the same on
   both; one that reads scores near zero on the control). Both are one learning experiment
   (:func:`benchmarks.learning.experiment.run_arm`, the one the learning benchmarks run),
4. write ``outputs/demo/learning.json``: ``{"heldout": {"n", "exprate", "le1"}, "control": {...},
   "held_back_renderings"}``.

``python -m scripts.learning_demo [--fresh]`` runs it alone; ``make demo`` runs it in its own
process beside its first four stages. Every step goes through the entry point a user would call.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
READER_MODEL = REPO / "artifacts" / "tiny-qwen2.5-vl-reader"
DATA_RECIPE = REPO / "recipes" / "data" / "rendered_demo.yaml"
TRAIN_RECIPE = REPO / "recipes" / "tiny" / "reader_demo.yaml"
DATA_DIR = REPO / "outputs" / "data" / "rendered_demo"
#: The experiment's folder: model/ (the fine-tuned reader), eval/, control_data/, figures.json.
ARM_DIR = REPO / "outputs" / "demo" / "learning"
LEARNING_JSON = REPO / "outputs" / "demo" / "learning.json"
HELDOUT = "rendered_heldout"
#: Answers are 1-2 symbols: 12 new tokens leave room for a wrong, longer answer to show.
MAX_NEW_TOKENS = 12


class DemoStageError(RuntimeError):
    """A stage of the proof of learning failed (its own messages say why)."""


def prove_learning(
    fresh: bool = False,
    train_overrides: list[str] | None = None,
    data_recipe: Path = DATA_RECIPE,
    out_root: Path | None = None,
    learning_json: Path | None = LEARNING_JSON,
    progress: bool = True,
) -> dict[str, Any]:
    """Run steps 1-4 of the module docstring; returns the learning figures (also written to
    ``learning_json``). ``out_root``: put every output under that folder instead (tests)."""
    from benchmarks.learning.experiment import Arm, ExperimentError, run_arm
    from data_prep import build
    from data_prep.io_utils import write_json_atomic
    from train.tiny_model import build_tiny_model

    reader_model, data_dir, arm_dir = READER_MODEL, DATA_DIR, ARM_DIR
    if out_root is not None:
        reader_model, data_dir, arm_dir = out_root / "reader-model", out_root / "data", out_root / "learning"
    if learning_json is not None:
        learning_json.unlink(missing_ok=True)  # a failed run must not leave an earlier run's figures
    if fresh or not (reader_model / "config.json").is_file():
        build_tiny_model(reader_model, size="reader")
    args = ["--config", str(data_recipe), "--output-dir", str(data_dir)]
    args += (["--fresh"] if fresh else []) + ([] if progress else ["--no-progress"])
    if build.main(args) not in (0, None):
        raise DemoStageError("rendering the formulas failed (see the messages above)")
    arm = Arm(
        name="proof of learning",
        data_dir=data_dir,
        train_recipe=TRAIN_RECIPE,
        model=reader_model,
        out_dir=arm_dir,
        heldout=HELDOUT,
        train_overrides=list(train_overrides or []),
    )
    try:
        result = run_arm(arm, max_new_tokens=MAX_NEW_TOKENS, progress=progress, fresh=fresh)
    except ExperimentError as err:
        raise DemoStageError(str(err)) from None
    report = json.loads((data_dir / "report.json").read_text())
    figures = {
        "heldout": result["heldout"],
        "control": result["control"],
        "held_back_renderings": report["contamination"].get("rendered_held_back", 0),
        "model": str(arm.model_dir),
    }
    if learning_json is not None:
        learning_json.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(learning_json, figures)
    return figures


def describe(figures: dict[str, Any]) -> str:
    """The learning figures in words."""
    held, control = figures["heldout"], figures["control"]
    text = (
        f"On {held['n']} renderings of formulas it never saw in training (new formulas, not new "
        f"renderings; {figures.get('held_back_renderings', 0)} training renderings of them were held "
        f"back), the fine-tuned tiny model reads {held['exprate']:.1f}% exactly right. Shown another "
        f"item's image instead, it gets {control['exprate']:.1f}% right."
    )
    if held["exprate"] >= control["exprate"] + 20:
        return text + " Its answers come from the image, not from memorised formulas."
    return text + " That gap is too small to show that it reads the image: the proof of learning failed."


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.learning_demo", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--fresh", action="store_true", help="rebuild the model, data and run")
    parser.add_argument("--progress", action="store_true", help="progress bars (default: log lines)")
    args = parser.parse_args(argv)
    from benchmarks.learning.kernels import pin_cpu_kernels

    pin_cpu_kernels()
    try:
        figures = prove_learning(fresh=args.fresh, progress=args.progress)
    except DemoStageError as err:
        print(f"proof of learning stopped: {err}", file=sys.stderr)
        return 1
    print(describe(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
