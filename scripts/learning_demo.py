"""The demo's proof of learning: the tiny model learns to read rendered formulas it never saw.

1. build the ``reader`` tiny Qwen2.5-VL (random weights, ``python -m train.tiny_model --size reader``),
2. render a training corpus and a held-out test set of *new formulas* with the rendering engine
   (``recipes/data/rendered_demo.yaml``: the build holds back every training rendering of a test
   formula and reports how many),
3. fine-tune through the project's training path (``train.sft``, ``recipes/tiny/reader_demo.yaml``),
4. evaluate through ``eval.evaluate`` on the held-out set, and on a control: the same items with
   each image replaced by another item's image (a model that ignores the image scores the same on
   both; one that reads scores near zero on the control),
5. write ``outputs/demo/learning.json``: ``{"heldout": {"n", "exprate"}, "control": {"n", "exprate"}}``.

Every step goes through the entry point a user would call; nothing here scores or trains by itself.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
READER_MODEL = REPO / "artifacts" / "tiny-qwen2.5-vl-reader"
DATA_RECIPE = REPO / "recipes" / "data" / "rendered_demo.yaml"
TRAIN_RECIPE = REPO / "recipes" / "tiny" / "reader_demo.yaml"
DATA_DIR = REPO / "outputs" / "data" / "rendered_demo"
CONTROL_DIR = REPO / "outputs" / "data" / "rendered_demo_control"
MODEL_DIR = REPO / "outputs" / "reader-demo"
EVAL_DIR = REPO / "outputs" / "demo" / "eval"
LEARNING_JSON = REPO / "outputs" / "demo" / "learning.json"
HELDOUT = "rendered_heldout"
CONTROL = "rendered_heldout_control"


class DemoStageError(RuntimeError):
    """A stage of the proof of learning failed (its own messages say why)."""


def _check(code: int | None, stage: str) -> None:
    if code not in (0, None):
        raise DemoStageError(f"{stage} failed with exit status {code} (see the messages above)")


def _scores(eval_dir: Path, name: str) -> dict[str, Any]:
    summary = json.loads((eval_dir / "summary.json").read_text())
    scores = summary["sets"][name]
    return {"n": scores["n"], "exprate": scores["exprate"]}


def prove_learning(
    fresh: bool = False,
    train_overrides: list[str] | None = None,
    data_recipe: Path = DATA_RECIPE,
    out_root: Path | None = None,
    learning_json: Path | None = LEARNING_JSON,
    progress: bool = True,
) -> dict[str, Any]:
    """Run steps 1-5 of the module docstring; returns the learning figures (also written to
    ``learning_json``). ``out_root``: put every output under that folder instead (tests)."""
    reader_model, data_dir, control_dir, model_dir, eval_dir = (
        READER_MODEL,
        DATA_DIR,
        CONTROL_DIR,
        MODEL_DIR,
        EVAL_DIR,
    )
    if out_root is not None:
        reader_model, data_dir, control_dir, model_dir, eval_dir = (
            out_root / "reader-model",
            out_root / "data",
            out_root / "control",
            out_root / "model",
            out_root / "eval",
        )
    if learning_json is not None:
        learning_json.unlink(missing_ok=True)  # a failed run must not leave an earlier run's figures
    from data_prep import build
    from eval import evaluate
    from eval.control import ControlError, write_control_split
    from train import sft
    from train.tiny_model import build_tiny_model

    if fresh or not (reader_model / "config.json").is_file():
        build_tiny_model(reader_model, size="reader")
    args = ["--config", str(data_recipe), "--output-dir", str(data_dir)]
    args += (["--fresh"] if fresh else []) + ([] if progress else ["--no-progress"])
    _check(build.main(args), "rendering the formulas")
    if fresh:
        shutil.rmtree(model_dir, ignore_errors=True)
        shutil.rmtree(eval_dir, ignore_errors=True)
    train_args = ["--config", str(TRAIN_RECIPE), "--model_name_or_path", str(reader_model)]
    train_args += ["--dataset_dir", str(data_dir), "--output_dir", str(model_dir), *(train_overrides or [])]
    _check(sft.main(train_args), "fine-tuning on rendered formulas")
    try:
        write_control_split(data_dir, HELDOUT, control_dir, CONTROL)
    except ControlError as err:
        raise DemoStageError(str(err)) from None
    figures: dict[str, Any] = {}
    for name, folder, out in (
        (HELDOUT, data_dir, eval_dir / "heldout"),
        (CONTROL, control_dir, eval_dir / "control"),
    ):
        shutil.rmtree(out, ignore_errors=True)  # the control's images change with every build
        eval_args = [
            "--model", str(model_dir), "--data-dir", str(folder), "--sets", name, "--backend", "hf",
            "--batch-size", "32", "--max-new-tokens", "12", "--output-dir", str(out),
        ]  # fmt: skip
        if not progress:
            eval_args.append("--no-progress")
        _check(evaluate.main(eval_args), f"evaluating {name}")
        figures["heldout" if name == HELDOUT else "control"] = _scores(out, name)
    report = json.loads((data_dir / "report.json").read_text())
    figures["held_back_renderings"] = report["contamination"].get("rendered_held_back", 0)
    if learning_json is not None:
        from data_prep.io_utils import write_json_atomic

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
