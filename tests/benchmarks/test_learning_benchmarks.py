"""The learning benchmarks: structure classes, and both ``--smoke`` runs end to end (the real
entry points, recipes and engines, a few rows and steps: they check the chain, not learning)."""

from __future__ import annotations

import json

import pytest

from benchmarks.learning.structure import STRUCTURES, exprate_by_structure, structures
from data_prep.predictions import PredictionRow


@pytest.mark.parametrize(
    ("latex", "expected"),
    [
        ("1 + x", ("flat",)),
        ("x ^ { 2 }", ("script",)),
        ("a _ { 1 }", ("script",)),
        ("\\frac { x ^ { 2 } } { 3 }", ("script", "fraction")),
        ("\\sqrt { 2 } + y", ("root",)),
    ],
)
def test_structures(latex, expected):
    assert structures(latex) == expected


def test_exprate_by_structure_counts_a_formula_in_each_of_its_structures():
    rows = [
        PredictionRow(id="a", set="s", gt="\\frac { x ^ { 2 } } { 3 }", pred="\\frac { x ^ { 2 } } { 3 }"),
        PredictionRow(id="b", set="s", gt="\\frac { 1 } { 2 }", pred="\\frac { 1 } { 3 }"),
        PredictionRow(id="c", set="s", gt="1 2", pred="1 2"),
    ]
    exact = exprate_by_structure(rows)
    assert exact["fraction"] == {"n": 2, "exprate": 50.0}
    assert exact["script"] == {"n": 1, "exprate": 100.0}
    assert exact["flat"] == {"n": 1, "exprate": 100.0}
    assert exact["root"] == {"n": 0, "exprate": None}
    assert exprate_by_structure(rows, max_distance=1)["fraction"]["exprate"] == 100.0


@pytest.mark.timeout(300)
def test_bench_learning_smoke_writes_the_promised_figures(tmp_path):
    from benchmarks import learning_structure

    assert learning_structure.main(["--smoke", "--output-dir", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "learning_structure.json").read_text())
    assert result["smoke"] is True
    for part in ("heldout", "control"):
        assert result[part]["n"] == 12 and 0 <= result[part]["exprate"] <= 100
    assert set(result["by_structure"]) == {"flat", "script", "fraction", "root"}
    assert sum(v["n"] for v in result["by_structure"].values()) >= 12
    # Formulas written in the bundled CROHME strokes, scored apart from the printed ones.
    ink = result["handwritten"]
    assert ink["n"] == 6 and 0 <= ink["exprate"] <= 100 and set(ink["by_structure"]) == set(STRUCTURES)
    images = list((tmp_path / "run" / "eval" / "ink_heldout" / "images" / "ink_heldout").glob("*.png"))
    assert images, "the handwritten set's evaluation wrote no images"
    assert [p["step"] for p in result["learning_curve"]] == [3, 6]  # validated while training
    assert "rendered_held_back" in result["contamination"]
    assert result["git"]["commit"] and result["machine"]["cores"] >= 1 and "--smoke" in result["command"]
    assert (tmp_path / "learning_structure.png").stat().st_size > 1000
    # A finished arm is picked up, not trained again: a second run reuses its figures.
    before = (tmp_path / "run" / "figures.json").stat().st_mtime_ns
    assert learning_structure.main(["--smoke", "--output-dir", str(tmp_path)]) == 0
    assert (tmp_path / "run" / "figures.json").stat().st_mtime_ns == before


@pytest.mark.timeout(400)
def test_ablation_mini_smoke_runs_every_arm_and_compares_with_main(tmp_path):
    from benchmarks import ablation_mini

    assert ablation_mini.main(["--smoke", "--output-dir", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "ablation_mini.json").read_text())
    arms = {a["name"]: a for a in result["arms"]}
    assert list(arms) == list(ablation_mini.ARM_NAMES)
    for name, arm in arms.items():
        assert arm["seeds"] == [1] and arm["n"] == 24 and len(arm["ci"]) == 2
        if name == "main":
            assert arm["p_vs_main"] is None
        else:
            assert 0 <= arm["p_vs_main"] <= 1 and arm["paired_seeds"] == [1]
    # The mined arm trained on error rows built from the mining run's wrong answers.
    assert result["mining"]["finished_folds"] == ablation_mini.MINING_FOLDS
    mined = json.loads((tmp_path / "data_mined" / "report.json").read_text())
    assert mined["splits"]["train"]["rows_by_task"]["error_detection"] > 0
    assert result["missing_arms"] == [f"{a}/seed{s}" for a in ablation_mini.ARM_NAMES for s in (2, 3)]
    assert "| edl_mined |" in (tmp_path / "ablation_mini.md").read_text()


def test_ablation_processes_take_turns_preparing_the_shared_data(tmp_path):
    import threading
    import time

    from benchmarks.ablation_mini import data_step

    order = []
    first_inside = threading.Event()

    def first():
        with data_step(tmp_path):
            order.append("first in")
            first_inside.set()
            time.sleep(0.3)
            order.append("first out")

    thread = threading.Thread(target=first)
    thread.start()
    first_inside.wait(5)
    with data_step(tmp_path):  # a separate open file: flock makes this wait for the first
        order.append("second in")
    thread.join()
    assert order == ["first in", "first out", "second in"]


def test_bench_learning_refuses_a_folder_another_run_holds(tmp_path, capsys):
    from benchmarks import learning_structure
    from data_prep.output_lock import output_lock

    with output_lock(tmp_path / "bench", what="first run"):
        assert learning_structure.main(["--smoke", "--output-dir", str(tmp_path / "bench")]) == 1
    assert "one bench-learning run at a time" in capsys.readouterr().out
    assert not (tmp_path / "bench" / "data").exists()  # nothing was built beside the holder
