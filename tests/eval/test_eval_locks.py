"""One writer per output folder: evaluation, scoring and mining refuse a second one in one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from data_prep.output_lock import output_lock

REPO = Path(__file__).resolve().parents[2]
HOLD = (
    "import sys, time\n"
    "from data_prep.output_lock import output_lock\n"
    "with output_lock(sys.argv[1], what='evaluation'):\n"
    "    print('held', flush=True)\n"
    "    time.sleep(120)\n"
)


@pytest.mark.slow
def test_second_evaluation_into_one_folder_is_refused_in_one_line(tmp_path):
    """Two real processes: one holds the folder's lock as a running evaluation does; the second
    ``python -m eval.evaluate`` into that folder exits non-zero with one line naming the holder."""
    out = tmp_path / "eval"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(out)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        second = subprocess.run(
            [sys.executable, "-m", "eval.evaluate", "--model", "m", "--sets", "crohme2014"]
            + ["--data-dir", str(tmp_path / "data"), "--output-dir", str(out), "--no-progress"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        holder.kill()
        holder.wait()
    assert second.returncode == 2, second.stderr
    assert "Traceback" not in second.stderr
    errors = [line for line in second.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1, second.stderr
    assert f"in use by evaluation pid {holder.pid}" in errors[0] and str(out) in errors[0]
    assert not (out / "summary.json").exists()


def test_lock_is_released_when_the_holder_is_killed(tmp_path):
    out = tmp_path / "eval"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(out)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "held"
    holder.kill()  # SIGKILL: the kernel drops the lock
    holder.wait()
    with output_lock(out, what="evaluation"):
        pass


def test_second_scoring_into_one_folder_is_refused(tmp_path, capsys):
    from eval.score import main as score_main

    pred = tmp_path / "crohme2014.main.jsonl"
    pred.write_text(json.dumps({"id": "a", "set": "crohme2014", "gt": "x", "pred": "x"}) + "\n")
    out = tmp_path / "scores"
    with output_lock(out, what="scoring"):
        assert score_main([str(pred), "--output-dir", str(out), "--bootstrap", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "in use by scoring" in err and "\n" not in err
    assert not (out / "summary.json").exists()
    assert score_main([str(pred), "--output-dir", str(out), "--bootstrap", "0"]) == 0
    assert (out / "summary.json").is_file()


def test_second_mining_run_into_one_folder_is_refused(tmp_path, caplog):
    from eval.mine_errors import main as mine_main

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("model_name_or_path: m\n")
    out = tmp_path / "mining"
    argv = ["--data-dir", str(tmp_path / "data"), "--train-recipe", str(recipe), "--output-dir", str(out)]
    with output_lock(out, what="error mining"):
        assert mine_main(argv) == 2
    assert "in use by error mining" in caplog.text
    assert not (out / "mining_config.json").exists()
