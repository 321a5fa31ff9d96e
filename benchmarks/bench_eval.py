"""Evaluation throughput: HF ``generate`` vs vLLM on the real Qwen2.5-VL-3B architecture.

    python -m benchmarks.bench_eval [--images 3332] [--hf-images 256] [--max-tokens 64]
                                    [--hf-batch-size 32] [--backends hf,vllm] [--model-dir DIR]

No download: the 3B architecture is built from its config in code with random weights (bf16) and
saved to a temporary folder (the tokenizer is the tiny offline one, with Qwen's special tokens), so
both backends load the same folder. Every answer has a fixed length (``--max-tokens``, end of
sequence ignored), so the figures measure the engines, not what random weights happen to say.
The images are the bundled CROHME bitmaps, cycled to ``--images`` (3,332 = CROHME 2014+2016+2019).
Printed: images/s, generated tokens/s, and the peak GPU memory in use (whole device, sampled).
Goal: vLLM finishes 3,332 images in under 60 s and is at least 10x faster than HF.

Without a CUDA GPU it says so and, unless ``--no-cpu-smoke``, times vLLM's CPU build against the HF
backend on the tiny model (``benchmarks.bench_eval_cpu``; in the vLLM environment of ``make
install-vllm``, HF alone where there is none), the GPU figure left "not measured", then exits 0.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

from data_prep.contract import MAIN_PROMPT

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parent.parent
CROHME_TEST_SIZE = 986 + 1147 + 1199
GOAL_SECONDS = 60.0
GOAL_SPEEDUP = 10.0


def sample_images(n: int):
    from PIL import Image

    from data_prep.images import invert

    files = sorted((REPO / "samples" / "crohme2014_test" / "off_image_test").glob("*.bmp"))
    if not files:
        raise FileNotFoundError("no bundled CROHME bitmaps under samples/crohme2014_test/off_image_test")
    base = [invert(Image.open(f)) for f in files]
    return list(itertools.islice(itertools.cycle(base), n))


def build_random_3b(out_dir: Path, device: str = "cuda") -> Path:
    """Save a random-weight Qwen2.5-VL-3B (bf16, built on ``device``) with processor files."""
    import torch
    from transformers import GenerationConfig, Qwen2_5_VLForConditionalGeneration
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    from data_prep.contract import DEFAULT_BOUNDS
    from data_prep.io_utils import atomic_directory
    from train.architectures import QWEN_SPECIAL_TOKEN_IDS, qwen2_5_vl_config
    from train.modeling import save_processor_files
    from train.tiny_model import QWEN2_5_VL_CHAT_TEMPLATE, build_tokenizer

    tokenizer = build_tokenizer()
    # Qwen's architecture and vocabulary size, the tiny tokenizer's ids for the special tokens.
    config = qwen2_5_vl_config(
        "3b", special_token_ids={tok: tokenizer.convert_tokens_to_ids(tok) for tok in QWEN_SPECIAL_TOKEN_IDS}
    )
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=torch.bfloat16)
    stops = [tokenizer.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>")]
    model.generation_config = GenerationConfig(eos_token_id=stops, pad_token_id=tokenizer.pad_token_id)
    image_processor = Qwen2VLImageProcessorPil(
        size={"shortest_edge": DEFAULT_BOUNDS.min_pixels, "longest_edge": DEFAULT_BOUNDS.max_pixels}
    )
    # Staged, so an interrupted build never leaves a --model-dir that a later run would reuse.
    with atomic_directory(out_dir, overwrite=True) as staging:
        model.save_pretrained(staging, safe_serialization=True)
        save_processor_files(staging, tokenizer, image_processor, QWEN2_5_VL_CHAT_TEMPLATE)
    n_params = sum(p.numel() for p in model.parameters())
    del model
    if device == "cuda":
        torch.cuda.empty_cache()
    logger.info("random Qwen2.5-VL-3B (%.2f B parameters) saved to %s", n_params / 1e9, out_dir)
    return out_dir


class PeakGpuMemory:
    """Samples the device's used memory (all processes: vLLM runs its engine in a child process)."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import torch

        while not self._stop.is_set():
            free, total = torch.cuda.mem_get_info()
            self.peak = max(self.peak, total - free)
            time.sleep(self.interval)

    def __enter__(self) -> PeakGpuMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def time_backend(name: str, model_dir: str, images, max_tokens: int, batch_size: int, **options) -> dict:
    from eval.backends import get_backend

    with PeakGpuMemory() as memory:
        backend = get_backend(
            name,
            model_dir,
            batch_size=batch_size,
            max_new_tokens=max_tokens,
            dtype="bfloat16",
            ignore_eos=True,
            **options,
        )
        try:
            warmup = images[: min(len(images), batch_size)]
            backend.generate(warmup, [MAIN_PROMPT] * len(warmup))
            started = time.perf_counter()
            backend.generate(images, [MAIN_PROMPT] * len(images))
            seconds = time.perf_counter() - started
        finally:
            backend.close()
    return {
        "backend": name,
        "images": len(images),
        "seconds": seconds,
        "images_per_s": len(images) / seconds,
        "tokens_per_s": len(images) * max_tokens / seconds,
        "peak_gpu_gib": memory.peak / 2**30,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=CROHME_TEST_SIZE, help="images for vLLM")
    parser.add_argument(
        "--hf-images", type=int, default=256, help="images for HF (slower; images/s compared)"
    )
    parser.add_argument("--max-tokens", type=int, default=64, help="fixed answer length")
    parser.add_argument("--hf-batch-size", type=int, default=32)
    parser.add_argument("--backends", default="hf,vllm")
    parser.add_argument("--model-dir", default=None, help="reuse a saved random 3B folder (kept)")
    parser.add_argument("--gpu-memory-utilization", type=float, default=0.85)
    parser.add_argument("--no-cpu-smoke", dest="cpu_smoke", action="store_false")
    parser.add_argument("--cpu-images", type=int, default=96, help="images per backend without a GPU")
    parser.add_argument("--cpu-max-tokens", type=int, default=16, help="fixed answer length without a GPU")
    parser.add_argument("--cpu-batch-size", type=int, default=8, help="HF batch size without a GPU")
    parser.add_argument("--cpu-size", default="tiny", help="tiny model preset without a GPU (tiny, reader)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from eval.backends import cuda_available, vllm_importable

    if not cuda_available():
        print("bench-eval: no CUDA GPU on this machine: the 3B benchmark needs one (not measured).")
        if args.cpu_smoke:
            from benchmarks.bench_eval_cpu import compare, table
            from eval.backends.vllm_env import run_under_vllm_env, vllm_python

            if argv is None and not vllm_importable() and vllm_python() is not None:
                run_under_vllm_env("benchmarks.bench_eval", sys.argv[1:])  # vLLM's CPU build, HF beside it
            rows = compare(args.cpu_images, args.cpu_max_tokens, args.cpu_batch_size, args.cpu_size)
            print(table(rows, args.cpu_max_tokens, args.cpu_size))
        return 0
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if "vllm" in backends and not vllm_importable():
        print("bench-eval: vllm is not installed (make install-gpu); running the HF backend only.")
        backends = [b for b in backends if b != "vllm"]

    tmp = None
    model_dir = Path(args.model_dir) if args.model_dir else None
    if model_dir is None or not (model_dir / "config.json").is_file():
        if model_dir is None:
            tmp = tempfile.mkdtemp(prefix="random-qwen2.5-vl-3b-")
            model_dir = Path(tmp)
        build_random_3b(model_dir)
    results = []
    try:
        for name in backends:
            n = args.hf_images if name == "hf" else args.images
            options = {}
            if name == "vllm":
                options = {"detokenize": False, "gpu_memory_utilization": args.gpu_memory_utilization}
            results.append(
                time_backend(
                    name, str(model_dir), sample_images(n), args.max_tokens, args.hf_batch_size, **options
                )
            )
            r = results[-1]
            print(
                f"{name}: {r['images']} images x {args.max_tokens} tokens in {r['seconds']:.1f} s = "
                f"{r['images_per_s']:.1f} images/s, {r['tokens_per_s']:.0f} tokens/s, peak GPU {r['peak_gpu_gib']:.1f} GiB"
            )
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)

    print("\n| backend | images | seconds | images/s | tokens/s | peak GPU GiB |\n|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['backend']} | {r['images']} | {r['seconds']:.1f} | {r['images_per_s']:.1f} | "
            f"{r['tokens_per_s']:.0f} | {r['peak_gpu_gib']:.1f} |"
        )
    by_name = {r["backend"]: r for r in results}
    if "vllm" in by_name:
        projected = CROHME_TEST_SIZE / by_name["vllm"]["images_per_s"]
        verdict = "met" if projected < GOAL_SECONDS else "missed"
        print(
            f"vLLM on {CROHME_TEST_SIZE} CROHME images: {projected:.1f} s (goal < {GOAL_SECONDS:.0f} s: {verdict})"
        )
        if "hf" in by_name:
            speedup = by_name["vllm"]["images_per_s"] / by_name["hf"]["images_per_s"]
            verdict = "met" if speedup >= GOAL_SPEEDUP else "missed"
            print(f"vLLM / HF speed-up: {speedup:.1f}x (goal >= {GOAL_SPEEDUP:.0f}x: {verdict})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
