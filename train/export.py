"""Turn a fine-tuned LoRA adapter into a model people can run: on vLLM, on an 8-12 GB GPU, from a script.

    python -m train.export --adapter outputs/sft --format merged   --output-dir exports/merged
    python -m train.export --adapter outputs/sft --format bnb-4bit --output-dir exports/nf4
    python -m train.export --adapter outputs/sft --format w4a16    --output-dir exports/w4a16 \\
        --calibration-data data/crohme              # GPU machine, llmcompressor installed
    python -m train.export --adapter exports/merged --format gguf  --output-dir exports/gguf
    python -m train.export --estimate-sizes         # size of each format for the real 3B / 7B

Formats:

* ``merged``: the LoRA merged into the base (in float32, then cast), bf16 safetensors, the
  processor files and the chat template; loads in transformers and in vLLM unchanged.
* ``bnb-4bit``: NF4 (double quantisation) through bitsandbytes, vision tower and lm_head kept in
  bf16 (``train.modeling.quantization_config``); loads with ``from_pretrained`` on a GPU or a CPU.
  Not servable by vLLM 0.33 (no bitsandbytes method): use ``w4a16`` for vLLM.
* ``w4a16``: 4-bit weights, 16-bit activations (GPTQ, group size 128) made with llm-compressor and
  calibrated on training images; saved in the compressed-tensors format vLLM serves.
* ``gguf``: llama.cpp's converter is not a Python package, so this prints the commands instead.

``--adapter`` takes a LoRA adapter folder as the trainer writes it; the quantised formats also take
a model folder (a merged export). Every export is built in a temporary folder beside the output and
renamed into place only when complete, and carries a model card (README.md).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import random
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from data_prep.contract import DEFAULT_BOUNDS, MAIN_PROMPT, ImageBounds
from data_prep.io_utils import atomic_directory
from train.architectures import count_parameters
from train.model_card import ModelCardInfo, load_eval_summary, write_model_card
from train.modeling import ADAPTER_CONFIG, ModelLoadError, ModelSource, resolve_source

logger = logging.getLogger(__name__)

FORMATS = ("merged", "bnb-4bit", "w4a16", "gguf")
ADAPTER_WEIGHTS = "adapter_model.safetensors"
#: Names the trainer may give the recipe it copies into its output folder.
RECIPE_NAMES = ("recipe.yaml", "training_recipe.yaml")
#: Modules left in 16 bits by the W4A16 export: lm_head and the vision tower (transformers 5 names it
#: ``model.visual``; checkpoints in the older layout ``visual``).
W4A16_IGNORE = ["re:.*lm_head", "re:model.visual.*", "re:visual.*"]
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


class ExportError(RuntimeError):
    """An export cannot be made; the message says what to fix."""


# --------------------------------------------------------------------------- #
# Inputs
# --------------------------------------------------------------------------- #


def check_source(path: str | Path, export_format: str) -> ModelSource:
    """Validate ``path`` as an adapter folder (or, for the quantised formats, a model folder)."""
    if export_format not in FORMATS:
        raise ExportError(f"unknown format {export_format!r}; choose one of {', '.join(FORMATS)}")
    path = Path(path)
    if not path.exists():
        raise ExportError(f"{path} does not exist: give the folder the trainer wrote (with {ADAPTER_CONFIG})")
    if not path.is_dir():
        raise ExportError(f"{path} is a file: give the adapter folder (with {ADAPTER_CONFIG})")
    if (path / ADAPTER_CONFIG).is_file():
        try:
            config = json.loads((path / ADAPTER_CONFIG).read_text())
        except json.JSONDecodeError as err:
            raise ExportError(f"{path / ADAPTER_CONFIG} is not valid JSON: {err}") from None
        peft_type = config.get("peft_type")
        if peft_type not in (None, "LORA"):
            raise ExportError(f"{path} holds a {peft_type} adapter; only LoRA adapters can be merged")
        if not (path / ADAPTER_WEIGHTS).is_file():
            found = ", ".join(sorted(p.name for p in path.iterdir())) or "nothing"
            hint = " (pickled .bin weights are never loaded)" if (path / "adapter_model.bin").exists() else ""
            raise ExportError(f"{path} has no {ADAPTER_WEIGHTS}{hint}; found: {found}")
        try:
            source = resolve_source(str(path))
        except ModelLoadError as err:
            raise ExportError(str(err)) from None
        base = Path(source.base)
        if (source.base.startswith((".", "/")) or base.exists()) and not (base / "config.json").is_file():
            raise ExportError(
                f"the adapter's base model {source.base!r} (adapter_config.json: base_model_name_or_path) "
                "is not a model folder here"
            )
        return source
    if (path / "config.json").is_file():
        if export_format == "merged":
            raise ExportError(
                f"{path} is a full model, not a LoRA adapter (no {ADAPTER_CONFIG}): there is nothing to merge"
            )
        if not any(path.glob("*.safetensors")):
            raise ExportError(f"{path} has config.json but no *.safetensors weights")
        return ModelSource(base=str(path))
    raise ExportError(f"{path} is neither a LoRA adapter folder (no {ADAPTER_CONFIG}) nor a model folder")


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


def weights_size(folder: str | Path) -> int:
    """Bytes of the weight files (``*.safetensors``) in ``folder``."""
    return sum(p.stat().st_size for p in Path(folder).glob("*.safetensors"))


def _set_config_dtype(model, dtype) -> None:
    """Record ``dtype`` in the config and its sub-configs (vLLM and transformers read either)."""
    for config in (
        model.config,
        getattr(model.config, "text_config", None),
        getattr(model.config, "vision_config", None),
    ):
        if config is not None:
            config.dtype = dtype


def load_merged(source: ModelSource, dtype: str = "bfloat16"):
    """The base with the adapter merged in (merged in float32, then cast to ``dtype``), or the
    model folder itself when ``source`` has no adapter."""
    from train.modeling import _torch_dtype, load_model

    target = _torch_dtype(dtype)
    if target == "auto":
        raise ExportError("give an explicit --dtype for an export (bfloat16, float16 or float32)")
    name = source.adapter or source.base
    try:
        # Merging in float32 and rounding once keeps the merged weights as close as possible to
        # base + B @ A; merging in bf16 would round the base and the update separately.
        model = load_model(name, dtype="float32", merge_adapter=source.adapter is not None)
    except ModelLoadError as err:
        raise ExportError(str(err)) from None
    if getattr(model, "peft_config", None):
        raise ExportError(f"{name}: the adapter was not merged (peft model returned)")
    model = model.to(target).eval()
    _set_config_dtype(model, target)
    return model


def _processor_for(source: ModelSource):
    from train.modeling import load_processor

    return load_processor(source.adapter or source.base)


def _recipe_path(source: ModelSource, recipe: str | None) -> Path | None:
    if recipe:
        path = Path(recipe)
        if not path.is_file():
            raise ExportError(f"recipe {path} does not exist")
        return path
    # train.sft writes the resolved recipe into the run folder (the adapter's, or a full model's).
    for folder in (source.adapter, source.base):
        if folder and Path(folder).is_dir():
            for name in RECIPE_NAMES:
                if (Path(folder) / name).is_file():
                    return Path(folder) / name
    return None


def _copy_training_items(staging: Path, source: ModelSource) -> None:
    """Carry the run folder's list of training images into the export, so evaluating the export
    still warns about test items it was trained on (eval.provenance.training_overlap)."""
    import shutil

    from train.run_folder import TRAINING_ITEMS

    for folder in (source.adapter, source.base):
        if folder and (Path(folder) / TRAINING_ITEMS).is_file():
            shutil.copy2(Path(folder) / TRAINING_ITEMS, staging / TRAINING_ITEMS)
            return


def _recorded_data(recipe: Path | None) -> str | None:
    """The dataset a run folder's recipe names (``dataset_dir``, ``train_split``)."""
    if recipe is None:
        return None
    import yaml

    try:
        keys = yaml.safe_load(recipe.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError:
        return None
    if not isinstance(keys, dict) or not keys.get("dataset_dir"):
        return None
    return f"`{keys['dataset_dir']}` (split `{keys.get('train_split', 'train')}`)"


# --------------------------------------------------------------------------- #
# Exports
# --------------------------------------------------------------------------- #


@dataclasses.dataclass
class CardOptions:
    """Model-card inputs given on the command line."""

    recipe: str | None = None
    data: str | None = None
    eval_summary: str | None = None


def _write_card(
    staging: Path,
    source: ModelSource,
    export_format: str,
    details: str,
    card: CardOptions,
    base_model: str | None = None,
    usage: str = "",
) -> None:
    recipe = _recipe_path(source, card.recipe)
    _copy_training_items(staging, source)
    summary = load_eval_summary(card.eval_summary) if card.eval_summary else None
    write_model_card(
        staging,
        ModelCardInfo(
            base_model=base_model or _original_base(source),
            export_format=export_format,
            format_details=details,
            adapter=source.adapter,
            recipe_path=str(recipe) if recipe else None,
            recipe_text=recipe.read_text(encoding="utf-8") if recipe else None,
            data=card.data or _recorded_data(recipe),
            eval_summary=summary,
            eval_summary_path=card.eval_summary,
            size_bytes=weights_size(staging),
            usage=usage,
        ),
    )


def _original_base(source: ModelSource) -> str:
    """The hub base model: for a merged export, the ``base_model`` its own card recorded."""
    if source.adapter:
        return source.base
    card = Path(source.base) / "README.md"
    if card.is_file():
        import yaml

        text = card.read_text(encoding="utf-8")
        if text.startswith("---"):
            meta = yaml.safe_load(text.split("---", 2)[1]) or {}
            if isinstance(meta, dict) and meta.get("base_model"):
                return str(meta["base_model"])
    return source.base


#: Why a bnb-4bit export gets no ``vllm serve`` line: vLLM 0.33.0 (requirements-gpu.txt) has no
#: bitsandbytes quantization method (vllm/model_executor/layers/quantization/__init__.py).
BNB_NOT_SERVABLE = (
    "vLLM 0.33 (the pinned version) cannot serve bitsandbytes checkpoints: run this export with "
    "transformers (`eval.predict --backend hf`, as above); for vLLM export `--format w4a16` instead."
)


def _usage(output_dir: Path, staging: Path, vllm: bool, note: str = "") -> str:
    """How to run the export; the served pixel bounds are those its processor records."""
    from train.modeling import saved_bounds

    bounds = saved_bounds(str(staging)) or DEFAULT_BOUNDS
    lines = [
        "```bash",
        f"python -m eval.predict --model {output_dir} formula.png",
    ]
    if vllm:
        lines += [
            f"vllm serve {output_dir} --served-model-name hmer --max-model-len 2048 \\",
            '  --limit-mm-per-prompt \'{"image":1,"video":0}\' \\',
            f"  --mm-processor-kwargs '{json.dumps(bounds.processor_kwargs(), separators=(',', ':'))}'",
            "python -m eval.client --url http://localhost:8000 --model hmer formula.png",
        ]
    lines.append("```")
    if note:
        lines += ["", note]
    return "\n".join(lines)


def export_merged(
    adapter: str | Path,
    output_dir: str | Path,
    *,
    dtype: str = "bfloat16",
    card: CardOptions | None = None,
    overwrite: bool = False,
) -> Path:
    """Merge the LoRA ``adapter`` into its base and save a plain model folder; returns it."""
    source = check_source(adapter, "merged")
    output_dir = Path(output_dir)
    with atomic_directory(output_dir, overwrite) as staging:
        model = load_merged(source, dtype)
        logger.info("saving the merged model (%s) ...", dtype)
        model.save_pretrained(staging, safe_serialization=True)
        from train.modeling import save_processor

        save_processor(_processor_for(source), staging)
        _write_card(
            staging,
            source,
            "merged",
            f"LoRA merged into the base, {dtype} safetensors",
            card or CardOptions(),
            usage=_usage(output_dir, staging, vllm=True),
        )
    logger.info(
        "merged model written to %s (%.1f MiB of weights)", output_dir, weights_size(output_dir) / 2**20
    )
    return output_dir


def export_bnb_4bit(
    source_dir: str | Path,
    output_dir: str | Path,
    *,
    compute_dtype: str = "bfloat16",
    card: CardOptions | None = None,
    overwrite: bool = False,
) -> Path:
    """NF4-quantise a merged model (or an adapter, merged first) with bitsandbytes; returns the folder.

    bitsandbytes quantises while loading, so the merged weights go through a temporary folder.
    """
    from train.modeling import load_model, save_processor

    source = check_source(source_dir, "bnb-4bit")
    output_dir = Path(output_dir)
    with atomic_directory(output_dir, overwrite) as staging:
        with contextlib.ExitStack() as stack:
            merged_dir = source.base
            if source.adapter:
                merged_dir = stack.enter_context(
                    tempfile.TemporaryDirectory(prefix=".merged-", dir=output_dir.parent)
                )
                load_merged(source, compute_dtype).save_pretrained(merged_dir, safe_serialization=True)
            logger.info("quantising to NF4 (vision tower and lm_head stay in %s) ...", compute_dtype)
            model = load_model(str(merged_dir), dtype=compute_dtype, load_in_4bit=True)
            model.save_pretrained(staging, safe_serialization=True)
        save_processor(_processor_for(source), staging)
        _write_card(
            staging,
            source,
            "bnb-4bit",
            f"bitsandbytes NF4 with double quantisation, vision tower and lm_head in {compute_dtype}",
            card or CardOptions(),
            usage=_usage(output_dir, staging, vllm=False, note=BNB_NOT_SERVABLE),
        )
    logger.info("NF4 model written to %s (%.1f MiB of weights)", output_dir, weights_size(output_dir) / 2**20)
    return output_dir


def _require_llmcompressor():
    try:
        from llmcompressor import oneshot
        from llmcompressor.modifiers.quantization import GPTQModifier
    except ImportError as err:
        raise ExportError(
            f"the w4a16 export needs llm-compressor ({err}). It cannot share an environment with vllm "
            "(they pin different compressed-tensors), so it has its own: `make install-quant` creates "
            ".venv-quant (requirements.txt + requirements-quant.txt) and `make export FORMAT=w4a16` "
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
    source_dir: str | Path,
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
    source = check_source(source_dir, "w4a16")
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
    with atomic_directory(output_dir, overwrite) as staging:
        import torch

        processor = _processor_for(source)
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
        _write_card(
            staging,
            source,
            "w4a16",
            f"GPTQ int4 weights, group size {group_size}, 16-bit activations, compressed-tensors; "
            f"calibrated on {len(samples)} samples; vision tower and lm_head in {dtype}",
            card or CardOptions(),
            usage=_usage(output_dir, staging, vllm=True),
        )
    logger.info(
        "W4A16 model written to %s (%.1f MiB of weights)", output_dir, weights_size(output_dir) / 2**20
    )
    return output_dir


def gguf_instructions(source_dir: str | Path, output_dir: str | Path) -> str:
    """How to make the GGUF pair (language model + ``mmproj`` vision projector) with llama.cpp."""
    source = Path(source_dir)
    out = Path(output_dir)
    merged = source
    lines = [
        "GGUF is not produced by this command: llama.cpp's converter (convert_hf_to_gguf.py, which "
        "writes Qwen2.5-VL's language model and its vision projector `mmproj` file) is not a Python "
        "package. Make it with llama.cpp:",
        "",
    ]
    step = 1
    if (source / ADAPTER_CONFIG).is_file():
        merged = out.parent / f"{out.name}-merged"
        lines += [
            f"  # {step}. merge the adapter (llama.cpp converts a plain model folder)",
            f"  python -m train.export --adapter {source} --format merged --output-dir {merged}",
            "",
        ]
        step += 1
    lines += [
        f"  # {step}. get llama.cpp and its converter's Python requirements",
        "  git clone https://github.com/ggml-org/llama.cpp && cd llama.cpp",
        "  pip install -r requirements/requirements-convert_hf_to_gguf.txt",
        "  cmake -B build && cmake --build build --config Release -j",
        "",
        f"  # {step + 1}. the language model (f16), then 4-bit K-quants",
        f"  mkdir -p {out}",
        f"  python convert_hf_to_gguf.py {merged} --outtype f16 --outfile {out}/model-f16.gguf",
        f"  ./build/bin/llama-quantize {out}/model-f16.gguf {out}/model-Q4_K_M.gguf Q4_K_M",
        "",
        f"  # {step + 2}. the vision tower + projector (keep it f16: it is small and quantising it hurts)",
        f"  python convert_hf_to_gguf.py {merged} --mmproj --outtype f16 --outfile {out}/mmproj-model-f16.gguf",
        "",
        f"  # {step + 3}. run it (the image must be prepared as in training: dark ink on white)",
        f"  ./build/bin/llama-mtmd-cli -m {out}/model-Q4_K_M.gguf --mmproj {out}/mmproj-model-f16.gguf \\",
        f"      --temp 0 --image formula.png -p '{MAIN_PROMPT}'",
        "",
        "See docs/export.md (GGUF) for the caveats: llama.cpp resizes images itself (not with the "
        "project's pixel bounds), so check its accuracy with eval.client against llama-server.",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- #
# Sizes of the real architectures
# --------------------------------------------------------------------------- #

#: NF4: 4 bits a weight plus, with double quantisation, an 8-bit absmax per block of 64 and an
#: fp32 scale per 256 blocks.
NF4_BYTES_PER_WEIGHT = 0.5 + 1 / 64 + 4 / (64 * 256)
#: Q4_K_M averages about 4.85 bits a weight over a llama.cpp model.
Q4_K_M_BYTES_PER_WEIGHT = 4.85 / 8


def estimate_sizes(arch: str = "3b", group_size: int = 128) -> list[tuple[str, float, str]]:
    """``(format, bytes, what stays in 16 bits)`` for each export format of the real architecture."""
    c = count_parameters(arch)
    sixteen = 2 * (c.vision + c.embeddings + c.lm_head + c.decoder_other)
    w4a16 = 0.5 + 2 / group_size  # packed int4 + one bf16 scale per group (symmetric: no zero point)
    kept = "vision tower, embeddings, lm_head, norms"
    return [
        ("merged (bf16)", 2.0 * c.total, "everything"),
        ("bnb-4bit (NF4)", sixteen + NF4_BYTES_PER_WEIGHT * c.decoder_linear, kept),
        (f"w4a16 (GPTQ g{group_size})", sixteen + w4a16 * c.decoder_linear, kept),
        (
            "gguf Q4_K_M + mmproj f16 (approx.)",
            Q4_K_M_BYTES_PER_WEIGHT * (c.embeddings + c.lm_head + c.decoder_linear + c.decoder_other)
            + 2 * c.vision,
            "vision projector (mmproj)",
        ),
    ]


def format_size_table(arch: str = "3b", group_size: int = 128) -> str:
    """A Markdown table of parameter counts and export sizes for ``arch``."""
    c = count_parameters(arch)
    lines = [
        f"Qwen2.5-VL-{arch.upper()}: {c.total / 1e9:.3f} B parameters = vision tower {c.vision / 1e6:.1f} M"
        f" + embeddings {c.embeddings / 1e6:.1f} M + lm_head {c.lm_head / 1e6:.1f} M"
        f"{' (tied)' if not c.lm_head else ''} + decoder linear {c.decoder_linear / 1e6:.1f} M"
        f" + decoder norms/biases {c.decoder_other / 1e6:.2f} M",
        "",
        "| format | weights (GiB) | weights (GB) | kept in 16 bits |",
        "|---|---:|---:|---|",
    ]
    for name, size, kept in estimate_sizes(arch, group_size):
        lines.append(f"| {name} | {size / 2**30:.2f} | {size / 1e9:.2f} | {kept} |")
    lines += [
        "",
        f"KV cache (bf16): {c.kv_bytes_per_token / 1024:.0f} KiB a token; a 512x512 image is 334 tokens, "
        f"so a 2,048-token sequence needs {2048 * c.kv_bytes_per_token / 2**20:.0f} MiB.",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- #
# Command line
# --------------------------------------------------------------------------- #


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m train.export",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--adapter", help="LoRA adapter folder (or, for bnb-4bit/w4a16/gguf, a merged model)")
    parser.add_argument("--format", choices=FORMATS, default="merged")
    parser.add_argument(
        "--output-dir", help="where the export goes (default: outputs/exports/<adapter name>-<format>)"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing, non-empty output folder"
    )
    parser.add_argument(
        "--dtype",
        default="bfloat16",
        choices=("bfloat16", "float16", "float32"),
        help="dtype of the merged weights (and the 16-bit parts of the quantised formats)",
    )
    parser.add_argument(
        "--recipe", help="training recipe to cite in the model card (default: recipe.yaml in the adapter)"
    )
    parser.add_argument("--data", help="a sentence on the training data, for the model card")
    parser.add_argument(
        "--eval-summary", help="summary.json of eval.evaluate: its table goes into the model card"
    )
    group = parser.add_argument_group("w4a16 calibration")
    group.add_argument("--calibration-data", help="a built dataset folder (python -m data_prep.build)")
    group.add_argument("--calibration-split", default="train")
    group.add_argument("--calibration-images", help="or a folder of formula images (dark ink on light)")
    group.add_argument("--num-calibration-samples", type=int, default=256)
    group.add_argument("--group-size", type=int, default=128)
    group.add_argument("--seed", type=int, default=0)
    sizes = parser.add_argument_group("sizes")
    sizes.add_argument(
        "--estimate-sizes",
        action="store_true",
        help="print each format's size for the real Qwen2.5-VL architecture and exit",
    )
    sizes.add_argument("--arch", default="3b,7b", help="architectures for --estimate-sizes (3b, 7b)")
    return parser


def run(args: argparse.Namespace) -> Path | None:
    if args.estimate_sizes:
        for arch in [a.strip() for a in args.arch.split(",") if a.strip()]:
            print(format_size_table(arch, args.group_size))
            print()
        return None
    if not args.adapter:
        raise ExportError("give --adapter DIR (the folder the trainer wrote) or --estimate-sizes")
    output_dir = Path(
        args.output_dir or Path("outputs") / "exports" / f"{Path(args.adapter).resolve().name}-{args.format}"
    )
    card = CardOptions(recipe=args.recipe, data=args.data, eval_summary=args.eval_summary)
    if args.eval_summary:
        load_eval_summary(args.eval_summary)  # a bad summary fails before minutes of export work
    if args.format == "merged":
        return export_merged(args.adapter, output_dir, dtype=args.dtype, card=card, overwrite=args.overwrite)
    if args.format == "bnb-4bit":
        return export_bnb_4bit(
            args.adapter, output_dir, compute_dtype=args.dtype, card=card, overwrite=args.overwrite
        )
    if args.format == "w4a16":
        return export_w4a16(
            args.adapter,
            output_dir,
            calibration_data=args.calibration_data,
            calibration_split=args.calibration_split,
            calibration_images=args.calibration_images,
            num_calibration_samples=args.num_calibration_samples,
            group_size=args.group_size,
            dtype=args.dtype,
            seed=args.seed,
            card=card,
            overwrite=args.overwrite,
        )
    check_source(args.adapter, "gguf")
    print(gguf_instructions(args.adapter, output_dir))
    return None


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = build_parser().parse_args(argv)
    try:
        run(args)
    except FileExistsError as err:
        print(f"export failed: {err}; pass --overwrite to replace it", file=sys.stderr)
        return 2
    except (ExportError, FileNotFoundError, ValueError) as err:
        print(f"export failed: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
