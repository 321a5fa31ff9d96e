"""Launch a recipe the right way for this machine (what ``make finetune`` runs).

    python -m train.launch --config recipes/qwen2.5-vl-3b/full.yaml [--key value ...]
    python -m train.launch --num_machines 2 --machine_rank 0 --main_process_ip 10.0.0.1 --config ...

Reads the recipe's ``accelerate_config`` and counts the visible CUDA GPUs. Without a GPU, or with
one GPU and no accelerate config, it runs ``train.sft`` in this process; otherwise it execs
``accelerate launch --config_file CONFIG --num_processes N ... -m train.sft --config RECIPE ...``.
Without a GPU, ``--num_processes N`` (N > 1) with an accelerate config still launches N processes
on the CPU (gloo, float32): how CI runs the ZeRO-2/3 recipes in two processes.
Either way it prints the exact command first. ``--dry_run`` prints it and stops.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

logger = logging.getLogger("train.launch")

#: Options this launcher consumes; everything else goes to train.sft unchanged.
LAUNCH_OPTIONS = ("num_machines", "machine_rank", "main_process_ip", "main_process_port", "num_processes")


def visible_gpus() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def recipe_accelerate_config(recipe: str | Path, sft_args: Sequence[str]) -> str | None:
    """The accelerate config: a command-line ``--accelerate_config`` wins over the recipe's key."""
    args = list(sft_args)
    if "--accelerate_config" in args:
        value = args[args.index("--accelerate_config") + 1]
        return None if value.lower() in ("", "none", "null") else value
    from data_prep.recipe_file import read_recipe_mapping

    return read_recipe_mapping(recipe).get("accelerate_config")


def cpu_command(config: str, processes: int, sft: list[str]) -> list[str]:
    """Several processes on a machine without a GPU (the shape of a multi-GPU run, e.g. in CI):
    the same accelerate config, in float32 (``--mixed_precision no``: the configs say bf16 for
    GPUs), over gloo. ``--ddp_backend gloo`` matters: without a backend accelerate sees no
    distributed run on a CPU and the Trainer counts one process while DeepSpeed counts all."""
    if "--ddp_backend" not in sft:
        sft = [*sft, "--ddp_backend", "gloo"]
    return [
        sys.executable, "-m", "accelerate.commands.launch",
        "--config_file", config,
        "--num_processes", str(processes),
        "--mixed_precision", "no",
        *sft,
    ]  # fmt: skip


def plan_command(
    recipe: str, sft_args: Sequence[str], gpus: int, launch: argparse.Namespace
) -> tuple[list[str], bool]:
    """``(command, in_process)`` for this recipe on a machine with ``gpus`` GPUs."""
    sft = ["-m", "train.sft", "--config", recipe, *sft_args]
    config = recipe_accelerate_config(recipe, sft_args)
    num_machines = launch.num_machines or 1
    multi_node = num_machines > 1
    cpu_processes = launch.num_processes if gpus == 0 and not multi_node else None
    if cpu_processes and cpu_processes > 1 and config:
        return cpu_command(config, cpu_processes, sft), False
    if gpus == 0 or (gpus == 1 and config is None and not multi_node):
        if config and gpus == 0:
            logger.warning("no CUDA GPU: running in this process without %s", config)
        return [sys.executable, *sft], True
    if config is None:
        raise SystemExit(
            f"{recipe} has no accelerate_config; add one (recipes/accelerate_configs/) for {gpus} GPUs"
        )
    processes = launch.num_processes or gpus * num_machines
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        config,
        "--num_processes",
        str(processes),
    ]
    if multi_node:
        if launch.machine_rank is None or not launch.main_process_ip:
            raise SystemExit("multi-node runs need --machine_rank and --main_process_ip")
        command += [
            "--num_machines", str(num_machines),
            "--machine_rank", str(launch.machine_rank),
            "--main_process_ip", launch.main_process_ip,
            "--main_process_port", str(launch.main_process_port),
        ]  # fmt: skip
    return [*command, *sft], False


def parse_args(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(prog="python -m train.launch", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="training recipe YAML")
    parser.add_argument("--num_machines", type=int, default=None, help="nodes in a multi-node run")
    parser.add_argument(
        "--machine_rank", type=int, default=None, help="this node's rank (0 on the main node)"
    )
    parser.add_argument("--main_process_ip", default=None, help="address of the rank-0 node")
    parser.add_argument("--main_process_port", type=int, default=29500)
    parser.add_argument("--num_processes", type=int, default=None, help="total processes (default: all GPUs)")
    parser.add_argument("--dry_run", action="store_true", help="print the command and stop")
    return parser.parse_known_args(list(argv))


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    launch, sft_args = parse_args(sys.argv[1:] if argv is None else argv)
    if not Path(launch.config).is_file():
        logger.error("recipe %s not found", launch.config)
        return 2
    gpus = visible_gpus()
    try:
        command, in_process = plan_command(launch.config, sft_args, gpus, launch)
    except ValueError as err:  # RecipeFileError included: a recipe that cannot be read
        logger.error("%s", err)
        return 2
    print(f"[train.launch] {gpus} CUDA GPU(s) visible; running: {shlex.join(command)}", flush=True)
    if launch.dry_run:
        return 0
    if in_process:
        from train.engines.preload import import_unsloth_first

        import_unsloth_first(command[3:])  # before train.sft imports transformers
        from train.sft import main as sft_main

        return sft_main(command[3:])
    os.execvp(command[0], command)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
