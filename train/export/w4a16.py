"""``w4a16``: 4-bit weights, 16-bit activations (GPTQ, group size 128) made with llm-compressor and
calibrated on training images; saved in the compressed-tensors format vLLM serves. llm-compressor
cannot share an environment with vllm: it runs in ``.venv-quant`` (``make install-quant``)."""

from __future__ import annotations

import json
import logging
import random
import sys
from pathlib import Path
from typing import Any

from data_prep.contract import DEFAULT_BOUNDS, MAIN_PROMPT, ImageBounds
from train.export.card import CardOptions, usage, write_card
from train.export.common import (
    ExportError,
    check_input,
    load_merged,
    processor_for,
    weights_size,
)
from train.export.provenance import export_directory
from train.modeling import ModelSource

logger = logging.getLogger("train.export")

#: Modules left in 16 bits by the W4A16 export: lm_head and the vision tower (transformers 5 names it
#: ``model.visual``; checkpoints in the older layout ``visual``).
W4A16_IGNORE = ["re:.*lm_head", "re:model.visual.*", "re:visual.*"]
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def check_group_size(source: ModelSource, group_size: int) -> None:
    """GPTQ groups split each quantised Linear's input width: a group size that does not divide
    the language model's widths fails deep inside llm-compressor, so refuse it here in one line."""
    if group_size < 1:
        raise ExportError(f"--group-size must be a positive integer, not {group_size}")
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(source.base)
    except OSError as err:
        raise ExportError(f"cannot read the model config of {source.base!r}: {err}") from None
    text = getattr(config, "text_config", None) or config
    widths = {"hidden_size": text.hidden_size, "intermediate_size": text.intermediate_size}
    bad = {name: width for name, width in widths.items() if width % group_size}
    if bad:
        divisors = [g for g in (32, 64, 128, 256) if all(w % g == 0 for w in widths.values())]
        hint = f"; use --group-size {max(divisors)}" if divisors else ""
        shown = ", ".join(f"{name} {width}" for name, width in bad.items())
        raise ExportError(f"--group-size {group_size} does not divide the model's {shown}{hint}")


def _require_llmcompressor():
    try:
        from llmcompressor import oneshot
        from llmcompressor.modifiers.quantization import GPTQModifier
    except ImportError as err:
        raise ExportError(
            f"the w4a16 export needs llm-compressor ({err}). It cannot share an environment with vllm "
            "(they pin different compressed-tensors), so it has its own: `make install-quant` creates "
            ".venv-quant (requirements.txt + requirements/quant.txt) and `make export FORMAT=w4a16` "
            "runs there; by hand: `.venv-quant/bin/python -m train.export ...`."
        ) from None
    return oneshot, GPTQModifier


def calibration_examples(
    *,
    dataset_dir: str | None = None,
    split: str = "train",
    images_dir: str | None = None,
    num_samples: int = 256,
    seed: int = 0,
) -> list[tuple[Any, str, str | None]]:
    """``(image, prompt, answer)`` triples to calibrate on: a seeded random draw from a built
    dataset's split (prompt and answer as trained), or the images of a folder with the main prompt.

    Folder images are used as they are: give dark ink on a light background (as a built dataset
    stores them), not raw CROHME white-on-black bitmaps.
    """
    if num_samples < 1:
        raise ExportError("--num-calibration-samples must be at least 1")
    if bool(dataset_dir) == bool(images_dir):
        raise ExportError(
            "w4a16 needs calibration data: give --calibration-data DIR (a built dataset) "
            "or --calibration-images DIR (a folder of formula images), one of the two"
        )
    rng = random.Random(seed)
    if dataset_dir:
        from data_prep.dataset import load_split

        try:
            table = load_split(dataset_dir, split)
        except (FileNotFoundError, KeyError) as err:
            raise ExportError(f"calibration data: {err}") from None
        indices = sorted(rng.sample(range(len(table)), min(num_samples, len(table))))
        rows = table.select(indices)
        return [(row["image"], row["prompt"], row["answer"]) for row in rows]
    from PIL import Image

    folder = Path(images_dir)
    if not folder.is_dir():
        raise ExportError(f"calibration images folder {folder} does not exist")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise ExportError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    paths = sorted(rng.sample(paths, min(num_samples, len(paths))))
    examples = []
    for path in paths:
        with Image.open(path) as image:
            examples.append((image.convert("RGB"), MAIN_PROMPT, None))
    return examples


def _encode_calibration(processor, examples, bounds: ImageBounds) -> list[dict[str, Any]]:
    """Model inputs per example: prompt and answer (as in training) or the prompt alone."""
    from tqdm import tqdm

    from train.inputs import encode_for_generation, encode_for_training

    encoded = []
    for image, prompt, answer in tqdm(examples, desc="calibration inputs", unit="img", file=sys.stderr):
        if answer:
            batch = encode_for_training(processor, [image], [prompt], [answer], bounds)
            batch.pop("labels")
        else:
            batch = dict(encode_for_generation(processor, [image], [prompt], bounds))
        encoded.append(batch)
    return encoded


def _decoder_layer_class(model) -> str:
    """The language model's decoder-layer class name (GPTQ works through the model one layer at a time)."""
    for name, module in model.named_modules():
        if name.endswith("language_model.layers") and len(module):
            return type(module[0]).__name__
    raise ExportError("cannot find the language model's decoder layers (model.language_model.layers)")


def _add_ignore_patterns(config_path: Path, patterns: list[str]) -> None:
    """Keep the ignore patterns in the saved config, beside the module names llm-compressor lists.

    The names are written in the checkpoint's layout (``visual.blocks...``, what vLLM matches),
    while transformers 5 names the same modules ``model.visual.blocks...`` when it loads the
    checkpoint; without the patterns it would build 4-bit layers for the vision tower and find no
    weights for them.
    """
    config = json.loads(config_path.read_text())
    ignore = config["quantization_config"].setdefault("ignore", [])
    ignore.extend(p for p in patterns if p not in ignore)
    config_path.write_text(json.dumps(config, indent=2) + "\n")


def export_w4a16(
    source_dir: str | Path | ModelSource,
    output_dir: str | Path,
    *,
    calibration_data: str | None = None,
    calibration_split: str = "train",
    calibration_images: str | None = None,
    num_calibration_samples: int = 256,
    group_size: int = 128,
    dtype: str = "bfloat16",
    bounds: ImageBounds = DEFAULT_BOUNDS,
    seed: int = 0,
    card: CardOptions | None = None,
    overwrite: bool = False,
) -> Path:
    """GPTQ 4-bit weights (group ``group_size``), 16-bit activations, compressed-tensors format.

    The vision tower and lm_head stay in 16 bits. Calibration runs the model on training-like inputs
    (a few hundred images with their prompts and answers).
    """
    source = check_input(source_dir, "w4a16", accepts_model_folder=True)
    check_group_size(source, group_size)
    oneshot, GPTQModifier = _require_llmcompressor()
    examples = calibration_examples(
        dataset_dir=calibration_data,
        split=calibration_split,
        images_dir=calibration_images,
        num_samples=num_calibration_samples,
        seed=seed,
    )
    output_dir = Path(output_dir)
    with export_directory(output_dir, source, "w4a16", overwrite) as staging:
        import torch

        processor = processor_for(source)
        # Left on the CPU: llm-compressor's sequential pipeline moves one decoder layer at a time to
        # the GPU, so calibration needs little GPU memory.
        model = load_merged(source, dtype)
        samples = _encode_calibration(processor, examples, bounds)
        loader = torch.utils.data.DataLoader(samples, batch_size=1, collate_fn=lambda rows: rows[0])
        from compressed_tensors.quantization import QuantizationArgs, QuantizationScheme

        # llm-compressor's "W4A16" preset (int4, symmetric, per group of 128, static), spelled out so
        # the group size can change (the tiny test model is only 64 wide).
        weights = QuantizationArgs(
            num_bits=4, type="int", symmetric=True, strategy="group", group_size=group_size, dynamic=False
        )
        recipe = GPTQModifier(
            config_groups={"group_0": QuantizationScheme(targets=["Linear"], weights=weights)},
            ignore=W4A16_IGNORE,
        )
        logger.info("GPTQ W4A16 (group size %d) on %d calibration samples ...", group_size, len(samples))
        oneshot(
            model=model,
            processor=processor,
            dataset=loader,
            recipe=recipe,
            num_calibration_samples=len(samples),
            sequential_targets=[_decoder_layer_class(model)],
        )
        model.save_pretrained(staging, save_compressed=True)
        _add_ignore_patterns(staging / "config.json", W4A16_IGNORE)
        from train.modeling import save_processor

        save_processor(processor, staging)
        write_card(
            staging,
            source,
            "w4a16",
            f"GPTQ int4 weights, group size {group_size}, 16-bit activations, compressed-tensors; "
            f"calibrated on {len(samples)} samples; vision tower and lm_head in {dtype}",
            card or CardOptions(),
            usage=usage(output_dir, staging, vllm=True),
        )
    logger.info(
        "W4A16 model written to %s (%.1f MiB of weights)", output_dir, weights_size(output_dir) / 2**20
    )
    return output_dir


def run(source: ModelSource, output_dir: Path, options) -> Path:
    """The registry's entry point (``options``: :class:`train.export.options.ExportOptions`)."""
    return export_w4a16(
        source,
        output_dir,
        calibration_data=options.calibration_data,
        calibration_split=options.calibration_split,
        calibration_images=options.calibration_images,
        num_calibration_samples=options.num_calibration_samples,
        group_size=options.group_size,
        dtype=options.dtype,
        seed=options.seed,
        card=options.card(),
        overwrite=options.overwrite,
    )
