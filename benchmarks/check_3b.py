"""One QLoRA step of the real Qwen2.5-VL-3B architecture on the CPU, through the recipe's own path.

    python -m benchmarks.check_3b [--recipe recipes/qwen2.5-vl-3b/qlora.yaml] [--work-dir outputs/check-3b]

What it does, offline (no hub):

1. builds Qwen2.5-VL-3B from its config (``train.architectures``) with random weights and saves it
   (bf16 safetensors + the project's tokenizer and processor files), in a child process so its
   memory is not counted below;
2. parses the QLoRA recipe with ``train.config.parse_recipe`` (overrides: that folder,
   ``dtype float32`` - this CPU has no fast bf16 - one step of batch 1) and builds the trainer with
   the recipe's engine (``train.engines.trl_engine.build_trainer``: 4-bit NF4 load through
   ``train.modeling``, LoRA, the project's collator);
3. prints the trainable parameters, the LoRA-wrapped modules, that the vision tower, the merger and
   ``lm_head`` stayed unquantised, then runs one optimizer step on a bundled CROHME 2014 image
   and its caption, and prints the step time and the peak memory (max RSS of this process);
4. saves the adapter, loads it back into the model as a second adapter and checks that every
   LoRA tensor is identical, that none sits on the vision tower, and that the step moved them.

Needs about 13 GiB of RAM and several minutes; not part of the test suite (``make check-3b``).
Figures go to ``--output`` (JSON) and BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import subprocess
import sys
import time
from pathlib import Path

from data_prep.io_utils import write_text_atomic

logger = logging.getLogger("check_3b")
REPO = Path(__file__).resolve().parent.parent
CROHME = REPO / "samples" / "crohme2014_test"


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def crohme_rows(n: int = 1) -> list[dict]:
    """``n`` bundled CROHME 2014 test bitmaps (inverted to dark-on-light) with their captions."""
    from PIL import Image

    from data_prep.contract import MAIN_PROMPT
    from data_prep.images import invert

    captions = dict(
        line.split("\t", 1)
        for line in (CROHME / "caption_comer.txt").read_text().splitlines()
        if "\t" in line
    )
    rows = []
    for path in sorted((CROHME / "off_image_test").glob("*.bmp")):
        key = path.stem if path.stem in captions else path.stem.rsplit("_", 1)[0]  # 18_em_5_0.bmp -> 18_em_5
        if key in captions:
            image = invert(Image.open(path)).convert("RGB")
            rows.append({"id": key, "image": image, "prompt": MAIN_PROMPT, "answer": captions[key].strip()})
    rows.sort(key=lambda r: -r["image"].size[0] * r["image"].size[1])  # the largest first
    return rows[:n]


def lora_report(model) -> dict:
    """Trainable parameters, LoRA-wrapped modules, and which parts stayed unquantised."""
    import bitsandbytes as bnb

    wrapped = [name for name, module in model.named_modules() if hasattr(module, "lora_A")]
    four_bit = [name for name, module in model.named_modules() if isinstance(module, bnb.nn.Linear4bit)]
    base = model.get_base_model()
    visual_4bit = [n for n in four_bit if ".visual." in f".{n}"]
    return {
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "total_parameters": sum(p.numel() for p in model.parameters()),
        "lora_wrapped_modules": len(wrapped),
        "lora_module_kinds": sorted({n.rsplit(".", 1)[-1] for n in wrapped}),
        "lora_on_vision_tower": sum(".visual." in f".{n}" for n in wrapped),
        "linear4bit_modules": len(four_bit),
        "vision_tower_unquantised": not visual_4bit,
        "merger_unquantised": not any(".merger." in n for n in visual_4bit),
        "lm_head_unquantised": not isinstance(base.lm_head, bnb.nn.Linear4bit),
        "lm_head_dtype": str(base.lm_head.weight.dtype),
    }


def check_reloaded(model, adapter_dir: Path, before: dict) -> dict:
    """Load the saved adapter as ``reloaded`` and compare it with the trained ``default`` adapter."""
    import torch

    model.load_adapter(str(adapter_dir), adapter_name="reloaded")
    trained = {n: p for n, p in model.named_parameters() if ".default." in n and "lora_" in n}
    reloaded = {
        n.replace(".reloaded.", ".default."): p for n, p in model.named_parameters() if ".reloaded." in n
    }
    identical = sorted(trained) == sorted(reloaded) and all(
        torch.equal(trained[n].detach().cpu(), reloaded[n].detach().cpu()) for n in trained
    )
    moved = sum(not torch.equal(before[n], trained[n].detach().cpu()) for n in trained)
    return {
        "reloaded_tensors": len(reloaded),
        "reloaded_identical": identical,
        "tensors_moved_by_step": moved,
    }


def run(args) -> dict:
    import datasets
    import torch
    from transformers import TrainerCallback

    from train.config import parse_recipe
    from train.engines.trl_engine import build_trainer

    torch.set_num_threads(max(1, args.threads))
    model_dir = args.model_dir or args.work_dir / "random-qwen2.5-vl-3b"
    if not (model_dir / "config.json").is_file():
        start = time.monotonic()
        print(f"[check-3b] building the random 3B in a child process -> {model_dir}", flush=True)
        subprocess.run(
            [sys.executable, "-m", "benchmarks.check_3b", "--build-only", str(model_dir)], check=True
        )
        print(f"[check-3b] built and saved in {time.monotonic() - start:.0f} s", flush=True)
    out_dir = args.work_dir / "adapter"
    model_args, script_args, training_args = parse_recipe(
        [
            "--config", str(args.recipe),
            "--model_name_or_path", str(model_dir),
            "--dtype", "float32",
            "--bf16", "false",
            "--per_device_train_batch_size", "1",
            "--gradient_accumulation_steps", "1",
            "--max_steps", "1",
            "--warmup_steps", "0",  # one step: the recipe's warm-up would make its learning rate 0
            "--lr_scheduler_type", "constant",
            "--dataloader_num_workers", "0",
            "--report_to", "none",
            "--save_strategy", "no",
            "--logging_steps", "1",
            "--output_dir", str(out_dir),
            "--dataset_dir", str(args.work_dir),
        ]
    )  # fmt: skip
    rows = crohme_rows(1)
    if not rows:
        raise SystemExit(f"no captioned CROHME bitmaps under {CROHME}")
    dataset = datasets.Dataset.from_list(rows, features=None)
    dataset = dataset.cast_column("image", datasets.Image())

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.times: list[float] = []

        def on_step_begin(self, *_, **__):
            self._start = time.monotonic()

        def on_step_end(self, *_, **__):
            self.times.append(time.monotonic() - self._start)

    timer = StepTimer()
    start = time.monotonic()
    trainer, processor = build_trainer(model_args, script_args, training_args, dataset, [timer])
    load_s = time.monotonic() - start
    report = {
        "recipe": str(args.recipe),
        "load_s": round(load_s, 1),
        "load_peak_rss_gib": round(peak_rss_gib(), 2),
    }
    report.update(lora_report(trainer.model))
    before = {n: p.detach().cpu().clone() for n, p in trainer.model.named_parameters() if "lora_" in n}
    print(f"[check-3b] loaded in {load_s:.0f} s: " + json.dumps(report), flush=True)
    image = rows[0]["image"]
    batch = trainer.data_collator(rows)
    report.update(
        sample_id=rows[0]["id"],
        image_size=list(image.size),
        image_tokens=int((batch["input_ids"] == trainer.model.config.image_token_id).sum()),
        sequence_tokens=int(batch["input_ids"].shape[1]),
    )
    result = trainer.train()
    report.update(
        step_s=round(timer.times[0], 1) if timer.times else None,
        train_loss=round(float(result.training_loss), 4),
        peak_rss_gib=round(peak_rss_gib(), 2),
    )
    trainer.save_model(str(out_dir))
    report.update(check_reloaded(trainer.model, out_dir, before))
    report["adapter_files"] = sorted(p.name for p in out_dir.iterdir())
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.check_3b", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--recipe", type=Path, default=REPO / "recipes" / "qwen2.5-vl-3b" / "qlora.yaml")
    parser.add_argument("--work-dir", type=Path, default=REPO / "outputs" / "check-3b")
    parser.add_argument("--output", type=Path, default=REPO / "outputs" / "check-3b" / "check_3b.json")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--model-dir", type=Path, default=None, help="use this model folder (e.g. the tiny model)"
    )
    parser.add_argument("--build-only", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.build_only:
        from benchmarks.bench_eval import build_random_3b

        build_random_3b(args.build_only, device="cpu")
        return 0
    args.work_dir.mkdir(parents=True, exist_ok=True)
    report = run(args)
    write_text_atomic(args.output, json.dumps(report, indent=2) + "\n")
    ok = (
        report["vision_tower_unquantised"]
        and report["lm_head_unquantised"]
        and report["lora_on_vision_tower"] == 0
        and report["reloaded_identical"]
        and report["tensors_moved_by_step"] > 0
    )
    for key, value in report.items():
        print(f"  {key:28s} {value}")
    print(f"[check-3b] {'OK' if ok else 'FAILED'}; figures in {args.output}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
