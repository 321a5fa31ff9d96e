"""scripts/demo.py prints the score table as it is written (the full demo run is exercised by `make demo`)."""

from __future__ import annotations

import pytest
from rich.console import Console

from scripts.demo import print_plain

#: Training steps of the CI cut of the proof of learning, and how far above the control the
#: held-out ExpRate must be (the demo itself trains longer: recipes/tiny/reader_demo.yaml).
CI_STEPS = 1200
CI_MARGIN = 20


def test_score_table_is_printed_unwrapped_and_without_markup():
    console = Console(width=40, record=True, color_system=None)
    row = "| crohme2014_sample | 0.00 (3) | 0.00 (4) | 0.00 (1) | 0.00 (1) | 0.00 (1) | 0.00 (1) |"
    note = "- prompt [bold]main[/bold], interval [0.2, 0.8]"
    print_plain(console, f"{row}\n{note}\n")
    lines = console.export_text().splitlines()
    assert row in lines  # one line, though wider than the console
    assert note in lines  # the brackets are text, not styles


def test_stage_5_log_is_followed_whole_and_in_order_until_its_process_ends(tmp_path):
    import subprocess
    import sys

    from scripts.demo import follow

    log_path = tmp_path / "learning.log"
    script = (
        "import sys, time\n"
        "for i in range(5):\n"
        "    sys.stdout.write(f'line {i} '); sys.stdout.flush(); time.sleep(0.05)\n"
        "    sys.stdout.write('end\\n'); sys.stdout.flush()\n"
        "sys.stdout.write('last, no newline'); sys.exit(3)\n"
    )
    with log_path.open("w") as log:
        process = subprocess.Popen([sys.executable, "-c", script], stdout=log, stderr=subprocess.STDOUT)
    console = Console(width=80, record=True, color_system=None)
    assert follow(console, process, log_path, poll_seconds=0.02) == 3
    assert console.export_text().splitlines() == [f"line {i} end" for i in range(5)] + ["last, no newline"]


def test_control_split_shows_every_item_another_items_image(tmp_path):
    import pyarrow.parquet as pq

    from data_prep.build import build_dataset
    from data_prep.build.recipe import load_recipe
    from eval.control import write_control_split
    from scripts.learning_demo import DATA_RECIPE, HELDOUT

    recipe = load_recipe(DATA_RECIPE)
    test_only = recipe.__class__(**{**recipe.__dict__, "train": (), "output_dir": str(tmp_path / "data")})
    data = build_dataset(test_only, progress=False)
    n = write_control_split(data, HELDOUT, tmp_path / "control", "control")
    original = pq.read_table(next((data / HELDOUT).glob("*.parquet"))).to_pylist()
    control = pq.read_table(tmp_path / "control" / "control" / "shard-00000-of-00001.parquet").to_pylist()
    assert n == len(original) == len(control) >= 100
    assert [r["answer"] for r in control] == [r["answer"] for r in original]  # same items, same answers
    by_image = {r["image"]["bytes"]: r["answer"] for r in original}
    assert all(by_image[c["image"]["bytes"]] != c["answer"] for c in control)  # another formula's image


@pytest.mark.slow  # the proof of learning: 1,200 training steps
@pytest.mark.timeout(400)
def test_the_tiny_model_reads_new_formulas_and_fails_without_their_image(tmp_path):
    """The proof of learning, cut for CI: trained through train.sft, scored through eval.evaluate.
    It fails when the image stops reaching the model (held-out accuracy falls to the control's)."""
    from scripts.learning_demo import prove_learning

    figures = prove_learning(
        out_root=tmp_path, train_overrides=["--max_steps", str(CI_STEPS)], learning_json=None, progress=False
    )
    held, control = figures["heldout"], figures["control"]
    assert held["n"] >= 100 and control["n"] == held["n"]
    assert figures["held_back_renderings"] > 0  # the test formulas were kept out of training
    assert control["exprate"] <= 5
    assert held["exprate"] >= control["exprate"] + CI_MARGIN, figures


@pytest.mark.parametrize("fails_in", ["stages 1-4", "following stage 5"])
def test_a_failed_or_interrupted_demo_leaves_no_stage_5_process(monkeypatch, fails_in):
    import subprocess
    import sys

    from scripts import demo

    started = []

    def start(fresh):
        started.append(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]))
        return started[-1]

    def stages(console, fresh, max_new_tokens):
        if fails_in == "stages 1-4":
            raise SystemExit("demo stopped: fine-tuning failed")
        return {}

    def follow(console, process, path, poll_seconds=1.0):
        raise KeyboardInterrupt

    monkeypatch.setattr(demo, "start_proof_of_learning", start)
    monkeypatch.setattr(demo, "_stages_1_to_4", stages)
    monkeypatch.setattr(demo, "follow", follow)
    with pytest.raises(SystemExit if fails_in == "stages 1-4" else KeyboardInterrupt):
        demo.run()
    assert started and started[0].poll() is not None  # terminated and reaped, not left running
