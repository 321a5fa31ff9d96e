"""DeepSpeed ZeRO-2 and ZeRO-3 in two processes on the CPU (gloo), launched the way ``make finetune``
launches them: ``python -m train.launch --num_processes 2`` with the recipe's accelerate config.

* Same global batch, same loss curve: two processes x 1 sample equal one process x 1 sample x 2
  accumulation steps. Qwen2.5-VL's loss is a per-batch token mean (its ``accepts_loss_kwargs`` is
  False, so the Trainer does not weight tokens across devices): each rank's mean is averaged, as
  accumulation averages each micro-batch's mean. With one sample per rank the two runs see the same
  samples in the same groups and the curves agree to float tolerance (measured: 4.8e-7, one ulp);
  1 process x 4 samples against 2 x 2 differs by the weighting itself (~1e-2), not by float.
* kill -9 of the whole run (the launcher and both ranks, which torch starts in sessions of their
  own) mid-run, then the same command again:
  the run resumes from its last DeepSpeed checkpoint and ends with the same weights, bit for bit, as
  an uninterrupted two-process run.

Slow (marked ``slow``): each stage launches three two-process runs (about a minute each on 2 busy
cores); the first run on a machine also JIT-compiles DeepSpeed's shared-memory op (~45 s, cached).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.train.test_train import TINY, sample_dataset_dir  # noqa: F401
from tests.train.test_train_resume import DRIVER, check_resumed_run
from train.launch import cpu_command

pytest.importorskip("deepspeed")
pytestmark = [pytest.mark.slow, pytest.mark.deepspeed]

ACCELERATE_CONFIGS = REPO / "recipes" / "accelerate_configs"
STEPS, SAVE_STEPS, KILL_AT = 4, 2, "step:3"
#: Largest loss difference allowed between the one- and two-process curves (measured: 4.8e-7).
LOSS_TOLERANCE = 1e-5


def _env(tmp_path: Path, stop_at: str | None = None) -> dict[str, str]:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    for name in ("HMER_STOP_AT", "RANK", "LOCAL_RANK", "WORLD_SIZE", "HMER_STUB_SHM"):
        env.pop(name, None)
    env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    if stop_at:
        env.update(HMER_STOP_AT=stop_at, HMER_STOP_FLAG=str(tmp_path / "stopped.flag"))
    return env


def recipe_args(out: Path, data: Path, model: Path, *extra: str) -> list[str]:
    return [
        "--config", str(TINY / "full.yaml"),
        "--model_name_or_path", str(model),
        "--dataset_dir", str(data),
        "--output_dir", str(out),
        "--max_train_samples", "8",
        "--per_device_train_batch_size", "1",
        "--max_steps", str(STEPS),
        "--save_steps", str(SAVE_STEPS),
        *extra,
    ]  # fmt: skip


def launch(args: list[str], env: dict[str, str]) -> None:
    """``python -m train.launch ARGS`` (what ``make finetune`` runs), in its own process group."""
    result = subprocess.run(
        [sys.executable, "-m", "train.launch", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        start_new_session=True,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (from /proc: the launcher's children, the ranks, theirs)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def launch_and_kill_group(args: list[str], config: Path, env: dict[str, str], driver: Path) -> None:
    """The same two-process launch with the test driver (it waits at HMER_STOP_AT), then SIGKILL to
    the launcher and both ranks at once. torch's elastic agent starts each rank in a session of its
    own (``start_new_session``), so killing the launcher's process group alone leaves the ranks
    running as orphans: every process of the tree is killed, by id."""
    command = cpu_command(str(config), 2, [str(driver), *args])
    flag = Path(env["HMER_STOP_FLAG"])
    proc = subprocess.Popen(
        command,
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 600
    try:
        while not flag.exists():
            if proc.poll() is not None:
                pytest.fail(f"the run ended before the kill point: {proc.stderr.read()[-3000:]}")
            assert time.monotonic() < deadline, "the run never reached the kill point"
            time.sleep(0.1)
        time.sleep(1.0)  # let the other rank reach the same step
    finally:
        tree = process_tree(proc.pid)
        for pid in tree:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait(timeout=60)
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert len(tree) >= 3, f"expected the launcher and two ranks, killed {tree}"
    deadline = time.monotonic() + 30
    while any(Path(f"/proc/{pid}").exists() and _alive(pid) for pid in tree[1:]):
        assert time.monotonic() < deadline, "a rank survived SIGKILL"
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def losses(out: Path) -> list[float]:
    log = [json.loads(line) for line in (out / "trainer_log.jsonl").read_text().splitlines()]
    return [e["loss"] for e in log if "loss" in e]


@pytest.fixture(scope="module")
def one_process_curve(tmp_path_factory, sample_dataset_dir, tiny_model_dir) -> list[float]:  # noqa: F811
    """One process, 1 sample x 2 accumulation steps: the global batch of two 1-sample ranks."""
    tmp = tmp_path_factory.mktemp("one-process")
    out = tmp / "out"
    args = recipe_args(out, sample_dataset_dir, tiny_model_dir, "--gradient_accumulation_steps", "2")
    launch(args, _env(tmp))
    return losses(out)


@pytest.mark.parametrize("stage", [2, 3])
def test_two_processes_match_one_and_resume_bit_identical(
    stage,
    tmp_path,
    one_process_curve,
    sample_dataset_dir,  # noqa: F811
    tiny_model_dir,
):
    config = ACCELERATE_CONFIGS / f"zero{stage}.yaml"
    out = tmp_path / "out"
    two = ["--num_processes", "2", "--accelerate_config", str(config)]
    args = recipe_args(out, sample_dataset_dir, tiny_model_dir)
    launch([*two, *args], _env(tmp_path))
    summary = json.loads((out / "run_summary.json").read_text())
    assert summary["global_step"] == STEPS

    curve = losses(out)
    assert len(curve) == len(one_process_curve) == STEPS
    gap = max(abs(a - b) for a, b in zip(curve, one_process_curve))
    print(f"ZeRO-{stage}: 2 processes {curve} vs 1 process {one_process_curve}: max difference {gap:g}")
    assert gap <= LOSS_TOLERANCE, (curve, one_process_curve)

    # kill -9 of the whole group at step 3 (after checkpoint-2), then the same command again.
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    interrupted = tmp_path / "interrupted"
    again = [interrupted.as_posix() if a == str(out) else a for a in args]
    launch_and_kill_group(again, config, _env(tmp_path, stop_at=KILL_AT), driver)
    assert not (interrupted / "run_summary.json").exists()
    launch([*two, *again], _env(tmp_path))
    check_resumed_run(out, interrupted, KILL_AT, save_steps=SAVE_STEPS)
