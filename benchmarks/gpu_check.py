"""One GPU check for a lease on the lent H200: everything the GPU stack can show there, one JSON out.

    make gpu-wheels                      # here, beforehand: bitsandbytes into .whl/ (43 MB, --no-deps)
    python -m benchmarks.gpu_check       # there: writes $OUT/gpu_check.json (or --output)
    python -m benchmarks.gpu_check --smoke   # any CPU: the same code path on the tiny model (CI)

It needs only what the lent machine has (Python 3.12, torch 2.11 cu130, transformers 5.17, peft,
accelerate, torchvision; no trl, datasets, deepspeed, vllm, no network) plus bitsandbytes from the
carried wheels (QLoRA is skipped, and says so, without it). In order, each part recorded even when
a later one fails:

1. ``environment``: GPU, versions;
2. ``model``: the real Qwen2.5-VL-3B architecture with random weights (bf16, built on the GPU),
   saved with the project's processor files;
3. ``processor``: ``AutoProcessor`` loads that folder whole with torchvision present (Qwen's
   processor with its video processor, the image bounds of training);
4. ``training``: LoRA, full-parameter and QLoRA steps on CROHME-shaped batches
   (``benchmarks.bench_train.run_method``): step time, tokens/s, peak memory, and
   ``6 x params x tokens/s`` against the one peak figure, 790 TFLOP/s (measured bf16 matrix rate);
5. ``generation``: HF-backend greedy generation (``eval.backends.hf``) on bundled CROHME images at
   batch 1, 8 and 32, a fixed answer length: images/s, new tokens/s, peak memory.

Sized to finish in about 5 minutes on one H200 (8 at most).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import importlib.util
import json
import logging
import os
import platform
import sys
import tempfile
import time
import traceback
from dataclasses import asdict
from pathlib import Path

import torch

from benchmarks.bench_train import H200_PEAK_BF16, run_method, tiny_config
from data_prep.io_utils import write_text_atomic
from train.run_folder import package_versions

logger = logging.getLogger("gpu_check")
REPO = Path(__file__).resolve().parent.parent
VERSIONS = (
    "torch",
    "torchvision",
    "transformers",
    "peft",
    "accelerate",
    "bitsandbytes",
    "tokenizers",
    "pillow",
)


def default_output() -> Path:
    return (
        Path(os.environ["OUT"]) / "gpu_check.json"
        if os.environ.get("OUT")
        else REPO / "outputs" / "gpu_check.json"
    )


def environment() -> dict:
    versions = package_versions(VERSIONS)
    gpu = None
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        gpu = {
            "name": props.name,
            "memory_gib": round(props.total_memory / 2**30, 1),
            "sms": props.multi_processor_count,
        }
    return {"python": platform.python_version(), "cuda": torch.version.cuda, "gpu": gpu, "versions": versions}


def build_model(folder: Path, smoke: bool) -> dict:
    start = time.monotonic()
    if smoke:
        from train.tiny_model import build_tiny_model

        build_tiny_model(folder)
    else:
        from benchmarks.bench_eval import build_random_3b

        build_random_3b(folder, device="cuda")
    weights = sum(p.stat().st_size for p in folder.glob("*.safetensors"))
    return {
        "folder": str(folder),
        "seconds": round(time.monotonic() - start, 1),
        "weights_gib": round(weights / 2**30, 2),
    }


def processor_check(folder: Path) -> dict:
    """What AutoProcessor builds from a saved folder (whole with torchvision, with the video processor)."""
    from transformers import AutoProcessor

    from data_prep.contract import DEFAULT_BOUNDS
    from train.modeling import load_processor, processor_bounds

    report: dict = {"torchvision": importlib.util.find_spec("torchvision") is not None}
    try:
        auto = AutoProcessor.from_pretrained(str(folder))
        report["auto_processor_class"] = type(auto).__name__
        video = getattr(auto, "video_processor", None)
        report["video_processor_class"] = type(video).__name__ if video is not None else None
        image = getattr(auto, "image_processor", None)
        report["auto_image_size"] = dict(image.size) if image is not None else None
    except Exception as err:  # recorded: the point is to see what happens there
        report["auto_processor_error"] = f"{type(err).__name__}: {err}"
    ours = load_processor(str(folder))
    report["project_processor_class"] = type(ours).__name__
    report["project_bounds"] = processor_bounds(ours).processor_kwargs()
    report["bounds_match_contract"] = report["project_bounds"] == DEFAULT_BOUNDS.processor_kwargs()
    report["whole"] = bool(report.get("video_processor_class")) and report.get(
        "auto_processor_class", ""
    ).endswith("Processor")
    return report


@dataclasses.dataclass(frozen=True)
class Plan:
    """What the check measures: sizes and the peak figure its ratios are taken against."""

    batch_size: int
    steps: int
    warmup: int
    gen_batches: tuple[int, ...]
    gen_tokens: int
    gen_rounds: int
    peak_tflops: float


#: The tiny model on a CPU (CI): one step, two small batches.
SMOKE = Plan(2, 1, 0, (1, 2), 4, 1, H200_PEAK_BF16 / 1e12)
#: The 3B architecture on the lent GPU, sized to finish in about 5 minutes.
LEASE = Plan(8, 5, 2, (1, 8, 32), 64, 3, H200_PEAK_BF16 / 1e12)


def make_plan(args: argparse.Namespace) -> Plan:
    """The smoke or the lease sizes, each replaced by its flag when one is given."""
    base = SMOKE if args.smoke else LEASE
    given = {
        field.name: getattr(args, field.name)
        for field in dataclasses.fields(Plan)
        if getattr(args, field.name, None) is not None
    }
    if "gen_batches" in given:
        given["gen_batches"] = tuple(given["gen_batches"])
    plan = dataclasses.replace(base, **given)
    if min(plan.batch_size, plan.steps, plan.gen_tokens, plan.gen_rounds, *plan.gen_batches) < 1:
        raise ValueError(f"every size must be at least 1: {plan}")
    return plan


def training(plan: Plan, smoke: bool) -> list[dict]:
    from train.architectures import count_parameters, qwen2_5_vl_config

    device = torch.device("cpu" if smoke else "cuda")
    config = tiny_config() if smoke else qwen2_5_vl_config("3b")
    bench = argparse.Namespace(
        batch_size=plan.batch_size,
        steps=plan.steps,
        warmup=plan.warmup,
        width=400,
        height=120,
        prompt_tokens=50,
        answer_tokens=40,
        gradient_checkpointing=True,
        peak_tflops=plan.peak_tflops,
        nominal_params=None if smoke else count_parameters("3b").total,
    )
    results = []
    for method in ("lora", "full", "qlora"):
        if method == "qlora" and (smoke or importlib.util.find_spec("bitsandbytes") is None):
            why = (
                "4-bit runs on the GPU only"
                if smoke
                else "bitsandbytes not installed (make gpu-wheels, carry .whl)"
            )
            results.append({"method": method, "skipped": why})
            continue
        try:
            result = asdict(run_method(method, config, bench, device))
            result["step_s"] = round(result["seconds"] / bench.steps, 3)
            results.append(result)
        except Exception as err:
            results.append(
                {
                    "method": method,
                    "error": f"{type(err).__name__}: {err}",
                    "trace": traceback.format_exc(limit=3),
                }
            )
        if device.type == "cuda":
            torch.cuda.empty_cache()
        print(f"[gpu-check] training {method}: {json.dumps(results[-1], default=str)[:400]}", flush=True)
    return results


def generation(folder: Path, plan: Plan) -> list[dict]:
    from benchmarks.bench_eval import sample_images
    from eval.backends import get_backend

    results = []
    new_tokens = plan.gen_tokens
    params = None
    for batch in plan.gen_batches:
        n_images = batch * plan.gen_rounds
        images = sample_images(n_images + batch)
        backend = get_backend("hf", str(folder), batch_size=batch, max_new_tokens=new_tokens, ignore_eos=True)
        try:
            if params is None:
                params = sum(p.numel() for p in backend.model.parameters())
            from data_prep.contract import MAIN_PROMPT

            backend.generate(images[:batch], [MAIN_PROMPT] * batch)  # warm-up
            if torch.cuda.is_available():
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            start = time.perf_counter()
            texts = backend.generate(images[batch:], [MAIN_PROMPT] * n_images)
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            seconds = time.perf_counter() - start
            tokens = n_images * new_tokens
            results.append(
                {
                    "batch_size": batch,
                    "images": n_images,
                    "new_tokens_per_image": new_tokens,
                    "outputs": len(texts),
                    "seconds": round(seconds, 3),
                    "images_per_s": round(n_images / seconds, 2),
                    "new_tokens_per_s": round(tokens / seconds, 1),
                    "flop_bound_ratio": round(2 * params * tokens / seconds / (plan.peak_tflops * 1e12), 5),
                    "peak_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2)
                    if torch.cuda.is_available()
                    else None,
                }
            )
        except Exception as err:
            results.append({"batch_size": batch, "error": f"{type(err).__name__}: {err}"})
        finally:
            backend.close()
            del backend
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        print(f"[gpu-check] generation: {json.dumps(results[-1])}", flush=True)
    return results


def print_summary(report: dict) -> None:
    print("\n== gpu-check summary ==")
    env = report["environment"]
    print(f"machine: {env['gpu']}, python {env['python']}, torch {env['versions']['torch']}")
    print(f"processor: {report.get('processor')}")
    print(f"{'method':<7} {'step s':>8} {'tokens/s':>10} {'peak GiB':>9} {'6NT/peak':>9}")
    for r in report.get("training", []):
        if "step_s" in r:
            peak = f"{r['peak_memory_gib']:.1f}" if r["peak_memory_gib"] is not None else "-"
            ratio = f"{r['flop_bound_ratio']:.1%}" if r["flop_bound_ratio"] is not None else "-"
            print(f"{r['method']:<7} {r['step_s']:>8.3f} {r['tokens_per_s']:>10.0f} {peak:>9} {ratio:>9}")
        else:
            print(f"{r['method']:<7} {r.get('skipped') or r.get('error')}")
    for g in report.get("generation", []):
        print(
            f"generate batch {g['batch_size']:>2}: {g.get('images_per_s', '-')} images/s, {g.get('new_tokens_per_s', g.get('error'))} tokens/s"
        )
    print(f"total {report['seconds']:.0f} s; JSON: {report['output']}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, validated into a plan-able namespace (a bad size exits in one line)."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.gpu_check", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--smoke", action="store_true", help="tiny model on the CPU (the CI check)")
    parser.add_argument("--output", type=Path, default=None, help="JSON report (default $OUT/gpu_check.json)")
    parser.add_argument(
        "--work-dir", type=Path, default=None, help="model folder goes here (default: a temp dir)"
    )
    # Sizes default to the smoke plan with --smoke, the lease plan without (SMOKE, LEASE).
    parser.add_argument("--batch-size", type=int, default=None, help="training batch (CROHME-shaped samples)")
    parser.add_argument("--steps", type=int, default=None, help="timed training steps per method")
    parser.add_argument("--gen-batches", type=lambda s: [int(x) for x in s.split(",")], default=None)
    parser.add_argument("--gen-tokens", type=int, default=None, help="new tokens per image (EOS ignored)")
    parser.add_argument("--gen-rounds", type=int, default=None, help="timed batches per batch size")
    parser.add_argument(
        "--peak-tflops", type=float, default=None, help="the peak the ratios are taken against"
    )
    args = parser.parse_args(argv)
    try:
        make_plan(args)
    except ValueError as err:
        parser.error(str(err))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = make_plan(args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    smoke = args.smoke
    if not smoke and not torch.cuda.is_available():
        print("no CUDA GPU: run `python -m benchmarks.gpu_check --smoke` here, the real check on a lease")
        return 2
    output = args.output or default_output()
    start = time.monotonic()
    report: dict = {
        "smoke": smoke,
        "peak_tflops": plan.peak_tflops,
        "plan": asdict(plan),
        "output": str(output),
    }

    def save() -> None:
        report["seconds"] = round(time.monotonic() - start, 1)
        write_text_atomic(output, json.dumps(report, indent=2, default=str) + "\n")

    report["environment"] = environment()
    save()
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        folder = (args.work_dir or Path(tmp)) / ("tiny-qwen2.5-vl" if smoke else "random-qwen2.5-vl-3b")
        report["model"] = build_model(folder, smoke)
        save()
        report["processor"] = processor_check(folder)
        save()
        report["training"] = training(plan, smoke)
        save()
        report["generation"] = generation(folder, plan)
        save()
    print_summary(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
