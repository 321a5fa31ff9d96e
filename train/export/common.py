"""What every export format shares: checking its input folder, loading the merged model, the
processor and the size of the weights written."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from train.modeling import ADAPTER_CONFIG, ModelLoadError, ModelSource, resolve_source

logger = logging.getLogger("train.export")

ADAPTER_WEIGHTS = "adapter_model.safetensors"


class ExportError(RuntimeError):
    """An export cannot be made; the message says what to fix."""


def check_input(
    path: str | Path | ModelSource, export_format: str, accepts_model_folder: bool
) -> ModelSource:
    """Resolve ``path`` (an adapter folder or, when ``accepts_model_folder``, a model folder) into
    the :class:`ModelSource` the export works from, once; refuse what cannot be exported. A source
    resolved already is checked as it is (no second resolution)."""
    if isinstance(path, ModelSource):
        check_resolved(path, export_format, accepts_model_folder)
        return path
    path = Path(path)
    if not path.exists():
        raise ExportError(f"{path} does not exist: give the folder the trainer wrote (with {ADAPTER_CONFIG})")
    if not path.is_dir():
        raise ExportError(f"{path} is a file: give the adapter folder (with {ADAPTER_CONFIG})")
    if (path / ADAPTER_CONFIG).is_file():
        try:
            json.loads((path / ADAPTER_CONFIG).read_text())
        except json.JSONDecodeError as err:
            raise ExportError(f"{path / ADAPTER_CONFIG} is not valid JSON: {err}") from None
        try:
            source = resolve_source(str(path))
        except ModelLoadError as err:
            raise ExportError(str(err)) from None
        check_resolved(source, export_format, accepts_model_folder)
        return source
    if (path / "config.json").is_file():
        source = ModelSource(base=str(path))
        check_resolved(source, export_format, accepts_model_folder)
        return source
    raise ExportError(f"{path} is neither a LoRA adapter folder (no {ADAPTER_CONFIG}) nor a model folder")


def check_resolved(source: ModelSource, export_format: str, accepts_model_folder: bool) -> None:
    """The checks of :func:`check_input` on a source already resolved (no second resolution)."""
    if source.adapter:
        path = Path(source.adapter)
        config = json.loads((path / ADAPTER_CONFIG).read_text())
        peft_type = config.get("peft_type")
        if peft_type not in (None, "LORA"):
            raise ExportError(f"{path} holds a {peft_type} adapter; only LoRA adapters can be merged")
        if not (path / ADAPTER_WEIGHTS).is_file():
            found = ", ".join(sorted(p.name for p in path.iterdir())) or "nothing"
            hint = " (pickled .bin weights are never loaded)" if (path / "adapter_model.bin").exists() else ""
            raise ExportError(f"{path} has no {ADAPTER_WEIGHTS}{hint}; found: {found}")
        base = Path(source.base)
        if (source.base.startswith((".", "/")) or base.exists()) and not (base / "config.json").is_file():
            raise ExportError(
                f"the adapter's base model {source.base!r} (adapter_config.json: base_model_name_or_path) "
                "is not a model folder here"
            )
        return
    path = Path(source.base)
    if not accepts_model_folder:
        raise ExportError(
            f"{path} is a full model, not a LoRA adapter (no {ADAPTER_CONFIG}): there is nothing to merge"
            f" ({export_format} needs an adapter)"
        )
    if not any(path.glob("*.safetensors")):
        raise ExportError(f"{path} has config.json but no *.safetensors weights")


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
    try:
        # Merging in float32 and rounding once keeps the merged weights as close as possible to
        # base + B @ A; merging in bf16 would round the base and the update separately.
        model = load_model(source, dtype="float32", merge_adapter=source.adapter is not None)
    except ModelLoadError as err:
        raise ExportError(str(err)) from None
    if getattr(model, "peft_config", None):
        raise ExportError(f"{source.name}: the adapter was not merged (peft model returned)")
    model = model.to(target).eval()
    _set_config_dtype(model, target)
    return model


def processor_for(source: ModelSource):
    """The processor saved with the adapter (or the model folder), with its trained pixel bounds."""
    from train.modeling import load_processor

    return load_processor(source)
