"""Training throughput and memory of the real Qwen2.5-VL-3B architecture (random weights, no download).

    python -m benchmarks.bench_train [--methods qlora,lora,full] [--batch-size 8] [--steps 10]

Per method (QLoRA through TRL's stack = transformers + PEFT + bitsandbytes; QLoRA through Unsloth when
it is installed and ``--unsloth-model`` names a local model folder; bf16 LoRA; full bf16) it runs a
few optimizer steps on batches shaped like CROHME samples (a 400 x 120 px formula, the main prompt,
a 40-token answer) and prints samples/s, tokens/s, peak GPU memory and the share of the GPU's peak
bf16 rate the run reaches against the ``6 x parameters x tokens`` forward+backward FLOP count.

Without a CUDA GPU it says so and, unless ``--no-smoke``, runs the same loop on a tiny model for a
couple of steps (a check that the code path works, not a measurement), then exits 0.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import asdict, dataclass

import torch

from data_prep.contract import IMAGE_FACTOR
from data_prep.io_utils import write_text_atomic
from train.architectures import count_parameters, qwen2_5_vl_config
from train.config import LANGUAGE_LORA_TARGET
from train.inputs import IGNORE_INDEX

logger = logging.getLogger("bench_train")

#: bf16 matrix rate of one H200 as measured on this workplace's lent machine (8192^3 bf16 products on
#: random data, 769-798 TFLOP/s; the datasheet's 989 is not reached): the one peak figure every
#: benchmark here divides by. Override with --peak-tflops.
H200_PEAK_BF16 = 790e12


def tiny_config():
    """The 3B architecture at toy width (Qwen's vocabulary and token ids), for the CPU smoke run."""
    return qwen2_5_vl_config(
        "3b",
        text=dict(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0, "mrope_section": [4, 2, 2]},
        ),
        vision=dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, fullatt_block_indexes=[1]),
    )


def synthetic_batch(
    config, batch_size: int, width: int, height: int, prompt_tokens: int, answer_tokens: int, device
) -> dict[str, torch.Tensor]:
    """A batch shaped like a chat-formatted CROHME sample: prompt, one image, answer (the only labels)."""
    vision = config.vision_config
    grid_h = max(IMAGE_FACTOR, round(height / IMAGE_FACTOR) * IMAGE_FACTOR) // vision.patch_size
    grid_w = max(IMAGE_FACTOR, round(width / IMAGE_FACTOR) * IMAGE_FACTOR) // vision.patch_size
    patches = grid_h * grid_w
    image_tokens = patches // vision.spatial_merge_size**2
    vocab = min(config.text_config.vocab_size, 150_000)
    rows = []
    for _ in range(batch_size):
        prompt = torch.randint(0, vocab, (prompt_tokens,))
        image = torch.full((image_tokens,), config.image_token_id)
        answer = torch.randint(0, vocab, (answer_tokens,))
        rows.append(
            torch.cat(
                [
                    prompt[:5],
                    torch.tensor([config.vision_start_token_id]),
                    image,
                    torch.tensor([config.vision_end_token_id]),
                    prompt[5:],
                    answer,
                ]
            )
        )
    input_ids = torch.stack(rows)
    labels = input_ids.clone()
    labels[:, : input_ids.shape[1] - answer_tokens] = IGNORE_INDEX
    patch_dim = vision.in_channels * vision.temporal_patch_size * vision.patch_size**2
    return {
        "input_ids": input_ids.to(device),
        "attention_mask": torch.ones_like(input_ids).to(device),
        "labels": labels.to(device),
        "pixel_values": torch.randn(batch_size * patches, patch_dim).to(device),
        "image_grid_thw": torch.tensor([[1, grid_h, grid_w]] * batch_size).to(device),
    }


@dataclass
class Result:
    method: str
    engine: str
    params: int
    trainable: int
    batch_size: int
    tokens_per_sample: int
    steps: int
    seconds: float
    samples_per_s: float
    tokens_per_s: float
    peak_memory_gib: float | None
    flop_bound_ratio: float | None
    note: str = ""


def build_model(method: str, config, device, dtype):
    """A random-weight model prepared as the recipe of ``method`` prepares it (trl engine)."""
    from transformers import Qwen2_5_VLForConditionalGeneration

    torch.manual_seed(0)
    with torch.device(device):  # built where it runs: initialising 3.75 B weights on the CPU takes minutes
        model = Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=dtype)
    if method == "qlora" and device.type == "cuda":
        # Quantise the random weights exactly as loading with our NF4 config does: save, then reload 4-bit.
        import tempfile

        from train.modeling import load_model

        with tempfile.TemporaryDirectory() as tmp:
            model.save_pretrained(tmp)
            del model
            model = load_model(
                tmp,
                dtype="bfloat16",
                load_in_4bit=True,
                device_map={"": device.index or 0},
                attn_implementation="sdpa",
            )
    else:
        model = model.to(device)
    if method in ("qlora", "lora"):
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(
            model,
            LoraConfig(
                r=64,
                lora_alpha=128,
                lora_dropout=0.0,
                target_modules=LANGUAGE_LORA_TARGET,
                task_type="CAUSAL_LM",
            ),
        )
    return model


def run_method(method: str, config, args, device) -> Result:
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    model = build_model(method, config, device, dtype)
    model.config.use_cache = False
    if args.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-5, fused=device.type == "cuda")
    batch = synthetic_batch(
        config, args.batch_size, args.width, args.height, args.prompt_tokens, args.answer_tokens, device
    )
    tokens_per_sample = int(batch["input_ids"].shape[1])

    def step():
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(args.warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    samples = args.steps * args.batch_size
    tokens = samples * tokens_per_sample
    params = sum(p.numel() for p in model.parameters())
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None
    ratio = None
    if device.type == "cuda":
        # 4-bit weights count as the parameters they stand for: the FLOPs are the same.
        full_params = params if method != "qlora" else args.nominal_params
        ratio = (6 * full_params * tokens / seconds) / (args.peak_tflops * 1e12)
    result = Result(
        method,
        "trl",
        params,
        sum(p.numel() for p in trainable),
        args.batch_size,
        tokens_per_sample,
        args.steps,
        seconds,
        samples / seconds,
        tokens / seconds,
        peak,
        ratio,
    )
    return result


def run_unsloth(args) -> Result | None:
    """QLoRA through Unsloth on a local model folder (Unsloth loads by name, not from a config)."""
    import importlib.util

    if importlib.util.find_spec("unsloth") is None:
        logger.info("unsloth not installed: skipping qlora-unsloth")
        return None
    if not args.unsloth_model:
        logger.info("qlora-unsloth needs --unsloth-model PATH (a local Qwen2.5-VL folder): skipping")
        return None
    import unsloth  # noqa: F401  -- GPU checked by the caller
    from unsloth import FastVisionModel

    model, _ = FastVisionModel.from_pretrained(
        args.unsloth_model,
        load_in_4bit=True,
        use_gradient_checkpointing="unsloth",
        use_exact_model_name=True,  # the local folder, never a pre-quantised hub copy
        local_files_only=True,
    )
    model = FastVisionModel.get_peft_model(
        model,
        finetune_vision_layers=False,
        finetune_language_layers=True,
        r=64,
        lora_alpha=128,
        lora_dropout=0.0,
        use_gradient_checkpointing="unsloth",
    )
    FastVisionModel.for_training(model)
    device = torch.device("cuda")
    config = model.config
    batch = synthetic_batch(
        config, args.batch_size, args.width, args.height, args.prompt_tokens, args.answer_tokens, device
    )
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    for i in range(args.warmup + args.steps):
        if i == args.warmup:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            start = time.perf_counter()
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    samples = args.steps * args.batch_size
    tokens = samples * int(batch["input_ids"].shape[1])
    return Result(
        "qlora",
        "unsloth",
        sum(p.numel() for p in model.parameters()),
        sum(p.numel() for p in model.parameters() if p.requires_grad),
        args.batch_size,
        int(batch["input_ids"].shape[1]),
        args.steps,
        seconds,
        samples / seconds,
        tokens / seconds,
        torch.cuda.max_memory_allocated() / 2**30,
        (6 * args.nominal_params * tokens / seconds) / (args.peak_tflops * 1e12),
    )


def print_table(results: list[Result]) -> None:
    print(
        f"{'method':<8} {'engine':<8} {'trainable':>12} {'tok/sample':>10} {'samples/s':>10} {'tokens/s':>10} "
        f"{'peak GiB':>9} {'6NT/peak':>9}"
    )
    for r in results:
        peak = f"{r.peak_memory_gib:.1f}" if r.peak_memory_gib is not None else "-"
        ratio = f"{r.flop_bound_ratio:.1%}" if r.flop_bound_ratio is not None else "-"
        print(
            f"{r.method:<8} {r.engine:<8} {r.trainable:>12,} {r.tokens_per_sample:>10} {r.samples_per_s:>10.2f} "
            f"{r.tokens_per_s:>10.0f} {peak:>9} {ratio:>9}  {r.note}"
        )


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_train", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--methods", default="qlora,lora,full", help="comma-separated: qlora, lora, full")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--width", type=int, default=400, help="formula image width (px)")
    parser.add_argument("--height", type=int, default=120, help="formula image height (px)")
    parser.add_argument(
        "--prompt-tokens", type=int, default=50, help="chat-formatted prompt tokens besides the image"
    )
    parser.add_argument("--answer-tokens", type=int, default=40)
    parser.add_argument("--no-gradient-checkpointing", dest="gradient_checkpointing", action="store_false")
    parser.add_argument(
        "--peak-tflops", type=float, default=H200_PEAK_BF16 / 1e12, help="GPU peak bf16 TFLOP/s"
    )
    parser.add_argument("--unsloth-model", default=None, help="local Qwen2.5-VL folder for the Unsloth run")
    parser.add_argument(
        "--no-smoke", action="store_true", help="without a GPU, exit without the tiny CPU run"
    )
    parser.add_argument("--smoke-steps", type=int, default=2)
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = set(methods) - {"qlora", "lora", "full"}
    if unknown:
        raise SystemExit(f"unknown method(s): {', '.join(sorted(unknown))}")
    results: list[Result] = []
    if torch.cuda.is_available():
        device = torch.device("cuda")
        config = qwen2_5_vl_config("3b")
        args.nominal_params = count_parameters("3b").total
        print(
            f"Qwen2.5-VL-3B architecture, random weights: {args.nominal_params / 1e9:.2f} B parameters on "
            f"{torch.cuda.get_device_name()}; {args.width}x{args.height} px images, batch {args.batch_size}"
        )
        for method in methods:
            results.append(run_method(method, config, args, device))
            torch.cuda.empty_cache()  # the method's model and optimizer are gone with its frame
            print_table(results[-1:])
        if "qlora" in methods:
            unsloth_result = run_unsloth(args)
            if unsloth_result:
                results.append(unsloth_result)
    else:
        print("no CUDA GPU: bench-train measures the 3B model on a GPU; nothing to measure here.")
        if args.no_smoke:
            return 0
        print("CPU smoke run on a tiny model (checks the code path; the figures mean nothing):")
        args.steps, args.warmup, args.batch_size = args.smoke_steps, 1, 2
        args.nominal_params = None
        # 4-bit and bf16 kernels are a GPU matter: on the CPU the smoke run uses fp32.
        for method in methods:
            results.append(run_method(method, tiny_config(), args, torch.device("cpu")))
            results[-1].note = "cpu smoke"
    print_table(results)
    if args.json:
        write_text_atomic(args.json, json.dumps([asdict(r) for r in results], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
