"""One way to load a model and its processor, for training, evaluation, export and prediction.

``load_processor`` and ``load_model`` take a hub id, a local model folder, or a LoRA adapter folder
(its base found from ``adapter_config.json``), on machines with or without torchvision:

* With torchvision (GPU machines), ``AutoProcessor`` builds Qwen's full processor.
* Without it (the CPU stack: torchvision has no CPU build for torch 2.13), Qwen2.5-VL's processor
  cannot build its video processor; we then assemble the processor from the PIL image processor and
  the tokenizer ourselves. ``AutoProcessor`` may also *silently* return a bare tokenizer when the
  processor class is unknown; that is detected and treated the same way.

Either way the image processor gets the contract's pixel bounds, so every backend resizes alike.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from data_prep.contract import DEFAULT_BOUNDS, ImageBounds
from train.model_source import (  # noqa: F401 (re-exported: callers import them from here)
    ADAPTER_CONFIG,
    ModelLoadError,
    ModelSource,
    as_source,
    check_hub_reachable,
    resolve_source,
)

logger = logging.getLogger(__name__)

#: Modules kept in full precision when the base is quantised to 4 bits: the vision tower (its
#: module path is ``model.visual`` in transformers 5; plain ``visual`` does not match) and lm_head.
QUANT_SKIP_MODULES = ["model.visual", "visual", "lm_head"]


# --------------------------------------------------------------------------- #
# Processor
# --------------------------------------------------------------------------- #


def _image_only_processor_class():
    from transformers import Qwen2_5_VLProcessor

    class ImageOnlyQwen2_5_VLProcessor(Qwen2_5_VLProcessor):
        """Qwen2.5-VL's processor without a video processor (which needs torchvision)."""

        def check_argument_for_proper_class(self, argument_name, argument):
            if argument_name == "video_processor" and argument is None:
                return None
            return super().check_argument_for_proper_class(argument_name, argument)

    return ImageOnlyQwen2_5_VLProcessor


def _size(bounds: ImageBounds) -> dict[str, int]:
    return {"shortest_edge": bounds.min_pixels, "longest_edge": bounds.max_pixels}


def _assemble_processor(path: str, bounds: ImageBounds, trust_remote_code: bool):
    from transformers import AutoTokenizer
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    image_processor = Qwen2VLImageProcessorPil.from_pretrained(path, size=_size(bounds))
    chat_template = getattr(tokenizer, "chat_template", None)
    template_file = Path(path) / "chat_template.jinja"
    if template_file.is_file():
        chat_template = template_file.read_text()
    if not chat_template:
        raise ModelLoadError(f"{path} has no chat template (tokenizer_config.json or chat_template.jinja)")
    cls = _image_only_processor_class()
    return cls(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=None,
        chat_template=chat_template,
    )


#: Key our saved processors carry so evaluation reuses the bounds a model was trained with.
BOUNDS_KEY = "hmer_image_bounds"


def saved_bounds(name_or_path: str | ModelSource) -> ImageBounds | None:
    """The pixel bounds a model folder was fine-tuned with (None for other folders and hub ids)."""
    config = Path(as_source(name_or_path).processor_path) / "preprocessor_config.json"
    if not config.is_file():
        return None
    saved = json.loads(config.read_text()).get(BOUNDS_KEY)
    return ImageBounds(**saved) if saved else None


def processor_bounds(processor: Any) -> ImageBounds:
    """The pixel bounds a loaded processor applies."""
    size = processor.image_processor.size
    return ImageBounds(min_pixels=int(size["shortest_edge"]), max_pixels=int(size["longest_edge"]))


def load_processor(
    name_or_path: str | ModelSource, bounds: ImageBounds | None = None, trust_remote_code: bool = False
) -> Any:
    """The processor for ``name_or_path`` (model or adapter) with its pixel bounds.

    ``bounds`` None means: the bounds the model was fine-tuned with when the folder records them
    (our trainer does), else the contract's defaults; a hub model's own (much larger) default is
    never used, so evaluation matches training.
    """
    source = as_source(name_or_path)
    path = source.processor_path
    check_hub_reachable(path)
    if bounds is None:
        bounds = saved_bounds(source) or DEFAULT_BOUNDS
    processor = None
    try:
        from transformers import AutoProcessor

        processor = AutoProcessor.from_pretrained(
            path, trust_remote_code=trust_remote_code, size=_size(bounds)
        )
    except (ImportError, ModuleNotFoundError, TypeError, ValueError, OSError) as err:
        logger.debug("AutoProcessor failed for %s (%s); assembling the image-only processor", path, err)
    if processor is None or not hasattr(processor, "image_processor"):
        # No torchvision, or AutoProcessor fell back to a bare tokenizer.
        try:
            processor = _assemble_processor(path, bounds, trust_remote_code)
        except OSError as err:
            raise ModelLoadError(f"cannot load a processor from {path}: {err}") from err
    processor.image_processor.size = _size(bounds)
    # Generation wants left padding for batches; training collators set what they need.
    processor.tokenizer.padding_side = "left"
    return processor


def save_processor_files(out_dir: str | Path, tokenizer, image_processor, chat_template: str) -> None:
    """Write tokenizer, image processor and chat template the way the hub models lay them out.

    ``processor.save_pretrained`` cannot be used without a video processor, so the parts are saved
    one by one; ``processor_class`` and a video processor config are recorded so that AutoProcessor
    (and vLLM, which loads it) rebuilds the full processor on machines that have torchvision.
    """
    out_dir = Path(out_dir)
    tokenizer.save_pretrained(out_dir)
    image_processor.save_pretrained(out_dir)
    (out_dir / "chat_template.jinja").write_text(chat_template)
    write_video_processor_config(out_dir, image_processor)
    for name in ("tokenizer_config.json", "preprocessor_config.json"):
        path = out_dir / name
        config = json.loads(path.read_text())
        config["processor_class"] = "Qwen2_5_VLProcessor"
        if name == "tokenizer_config.json":
            config.setdefault("chat_template", chat_template)
        path.write_text(json.dumps(config, indent=2, ensure_ascii=False))
    _record_bounds(out_dir, image_processor)


VIDEO_PROCESSOR_CONFIG = "video_preprocessor_config.json"
#: Qwen2VLVideoProcessor's own frame bounds (transformers 5.17 class defaults). Videos are never
#: sent (one image per request), but without this file transformers would build the video
#: processor from preprocessor_config.json, i.e. with the image bounds.
VIDEO_SIZE = {"shortest_edge": 128 * 28 * 28, "longest_edge": 768 * 28 * 28}


def write_video_processor_config(out_dir: str | Path, image_processor) -> Path:
    """The ``video_preprocessor_config.json`` a Qwen2-VL-family processor loads with torchvision:
    the video processor class, the image processor's patch geometry and normalisation."""
    config = {
        "video_processor_type": "Qwen2VLVideoProcessor",
        "processor_class": "Qwen2_5_VLProcessor",
        "size": dict(VIDEO_SIZE),
        "patch_size": int(image_processor.patch_size),
        "temporal_patch_size": int(image_processor.temporal_patch_size),
        "merge_size": int(image_processor.merge_size),
        "image_mean": [float(x) for x in image_processor.image_mean],
        "image_std": [float(x) for x in image_processor.image_std],
        "do_resize": True,
        "do_rescale": True,
        "rescale_factor": float(image_processor.rescale_factor),
        "do_normalize": True,
        "do_convert_rgb": True,
        "resample": 3,
    }
    path = Path(out_dir) / VIDEO_PROCESSOR_CONFIG
    path.write_text(json.dumps(config, indent=2))
    return path


def _record_bounds(out_dir: Path, image_processor) -> None:
    path = Path(out_dir) / "preprocessor_config.json"
    config = json.loads(path.read_text())
    size = image_processor.size
    config[BOUNDS_KEY] = {"min_pixels": int(size["shortest_edge"]), "max_pixels": int(size["longest_edge"])}
    path.write_text(json.dumps(config, indent=2, ensure_ascii=False))


def save_processor(processor, out_dir: str | Path) -> None:
    """Save any processor we loaded (full or image-only) into ``out_dir``."""
    if getattr(processor, "video_processor", None) is not None:
        processor.save_pretrained(out_dir)
        _record_bounds(Path(out_dir), processor.image_processor)
        return
    save_processor_files(out_dir, processor.tokenizer, processor.image_processor, processor.chat_template)


# --------------------------------------------------------------------------- #
# Model
# --------------------------------------------------------------------------- #


def _torch_dtype(dtype: str | Any):
    import torch

    if dtype in (None, "auto"):
        return "auto"
    if isinstance(dtype, torch.dtype):
        return dtype
    try:
        return {
            "bf16": torch.bfloat16,
            "bfloat16": torch.bfloat16,
            "fp16": torch.float16,
            "float16": torch.float16,
            "fp32": torch.float32,
            "float32": torch.float32,
        }[dtype]
    except KeyError as err:
        raise ValueError(f"unknown dtype {dtype!r}; use auto, bfloat16, float16 or float32") from err


def quantization_config(load_in_4bit: bool, compute_dtype: str | Any = "bfloat16"):
    """NF4 4-bit config that leaves the vision tower and lm_head unquantised, or None."""
    if not load_in_4bit:
        return None
    from transformers import BitsAndBytesConfig

    dtype = _torch_dtype(compute_dtype)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=dtype if dtype != "auto" else None,
        llm_int8_skip_modules=QUANT_SKIP_MODULES,
    )


def load_model(
    name_or_path: str | ModelSource,
    *,
    dtype: str | Any = "auto",
    load_in_4bit: bool = False,
    device_map: str | dict | None = None,
    attn_implementation: str | None = None,
    trust_remote_code: bool = False,
    merge_adapter: bool = False,
    is_trainable: bool = False,
):
    """Load a vision-language model (and its LoRA adapter, when given an adapter folder).

    Uses ``AutoModelForImageTextToText`` so Qwen2.5-VL, Qwen3-VL and other supported VLMs load
    through the same call; only safetensors weights are accepted.
    """
    from transformers import AutoModelForImageTextToText

    source = as_source(name_or_path)
    check_hub_reachable(source.base)
    kwargs: dict[str, Any] = {
        "dtype": _torch_dtype(dtype),
        "trust_remote_code": trust_remote_code,
        "use_safetensors": True,
    }
    if device_map is not None:
        kwargs["device_map"] = device_map
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    qconfig = quantization_config(load_in_4bit, dtype if dtype != "auto" else "bfloat16")
    if qconfig is not None:
        kwargs["quantization_config"] = qconfig
    from safetensors import SafetensorError

    try:
        model = AutoModelForImageTextToText.from_pretrained(source.base, **kwargs)
    except OSError as err:
        raise ModelLoadError(
            f"cannot load model weights from {source.base!r}: {err}. Give a local folder with "
            "config.json and *.safetensors, or a hub id on a machine with hub access."
        ) from err
    except SafetensorError as err:  # a truncated or damaged file (a copy cut short, a full disk)
        raise ModelLoadError(
            f"the weights in {source.base!r} are damaged or truncated ({err}); copy or download "
            "the model again"
        ) from None
    if source.adapter:
        from peft import PeftModel

        try:
            model = PeftModel.from_pretrained(model, source.adapter, is_trainable=is_trainable)
        except SafetensorError as err:
            raise ModelLoadError(
                f"the adapter weights in {source.adapter!r} are damaged or truncated ({err}); copy "
                "or train the adapter again"
            ) from None
        if merge_adapter:
            model = model.merge_and_unload()
    return model


def load_model_and_processor(
    name_or_path: str | ModelSource, bounds: ImageBounds | None = None, **model_kwargs: Any
) -> tuple[Any, Any]:
    """Model and processor for a hub id, model folder or adapter folder (see :func:`load_model`)."""
    source = as_source(name_or_path)
    processor = load_processor(
        source, bounds=bounds, trust_remote_code=model_kwargs.get("trust_remote_code", False)
    )
    model = load_model(source, **model_kwargs)
    return model, processor


def weights_sha256(name_or_path: str | ModelSource) -> str:
    """A SHA-256 over the weights a model folder or adapter folder loads (file names and bytes of
    its ``*.safetensors``, an adapter's base included); ``hub:<id>`` for a hub id, which is not
    downloaded for this. Predictions record it, so a folder retrained in place is told apart."""
    import hashlib

    source = as_source(name_or_path)
    digest = hashlib.sha256()
    for folder in [source.base, source.adapter]:
        if folder is None:
            continue
        path = Path(folder)
        if not path.is_dir():
            digest.update(f"hub:{folder}".encode())
            continue
        for file in sorted(path.glob("*.safetensors")):
            digest.update(file.name.encode())
            with file.open("rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()
