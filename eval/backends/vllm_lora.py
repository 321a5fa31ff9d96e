"""How vLLM runs a LoRA adapter: served directly (``LoRARequest``), or merged into its base first.

What vLLM 0.33.0 can serve, read from its source (vllm/lora/lora_model.py, vllm/lora/model_manager.py,
vllm/model_executor/models/qwen2_5_vl.py; recorded in tests/fixtures/pinned_signatures.json):

* LoRA on the language model's linear layers: always (``enable_lora``).
* LoRA on the vision tower and the merger ("tower" and "connector"): for models that declare
  ``supports_tower_connector_lora`` (Qwen2-VL, Qwen2.5-VL, Qwen3-VL among them), only on layers vLLM
  builds as its own linear layers, and only with ``enable_tower_connector_lora=True``; without the
  flag vLLM leaves the tower's LoRA weights unused. For Qwen2.5-VL those layers are each block's
  ``attn.qkv``, ``attn.proj``, ``mlp.gate_proj/up_proj/down_proj`` and the merger's ``mlp.0``/``mlp.2``.
  The patch embedding (``visual.patch_embed.proj``, a Conv3d) is not one: such adapters are merged.
* ``modules_to_save`` (full weights) and DoRA: not served; merged.

The decision reads only the adapter's config and tensor names (no tensors loaded).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from pathlib import Path
from typing import Any

from train.modeling import ModelSource

logger = logging.getLogger("eval.backends.vllm")

ADAPTER_WEIGHTS = "adapter_model.safetensors"
#: Module-name fragments of Qwen-VL vision towers (transformers 5: ``model.visual``).
VISION_TOWER_MARKERS = ("visual.",)
#: ``model_type`` values whose vLLM 0.33 model class has ``supports_tower_connector_lora = True``.
TOWER_LORA_MODEL_TYPES = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")
#: Vision-tower / merger modules vLLM 0.33 wraps with LoRA for those models (module path suffixes).
TOWER_LORA_MODULE = re.compile(
    r"(^|\.)visual\.(blocks\.\d+\.(attn\.(qkv|proj)|mlp\.(gate_proj|up_proj|down_proj|linear_fc1|linear_fc2))"
    r"|merger\.(mlp\.[02]|linear_fc[12]))$"
)
LORA_KEY = re.compile(
    r"^(?:base_model\.model\.)?(?P<module>.+?)\.lora_(?:A|B|embedding_A|embedding_B)(?:\.[^.]+)?\.weight$"
)


@dataclasses.dataclass(frozen=True)
class AdapterPlan:
    """How vLLM can run a LoRA adapter: served directly, or merged into its base first (and why)."""

    adapter: str
    base: str
    rank: int
    merge_reasons: tuple[str, ...] = ()
    #: The adapter has LoRA weights on the vision tower / merger that vLLM serves with
    #: ``enable_tower_connector_lora=True``.
    tower_lora: bool = False

    @property
    def serve_directly(self) -> bool:
        return not self.merge_reasons

    def engine_options(self) -> dict[str, Any]:
        """Extra ``vllm.LLM`` arguments for serving this adapter directly."""
        return {"enable_tower_connector_lora": True} if self.serve_directly and self.tower_lora else {}


def _target_names(config: dict[str, Any]) -> list[str]:
    targets = config.get("target_modules") or []
    return [targets] if isinstance(targets, str) else list(targets)


def lora_modules(keys: list[str]) -> list[str]:
    """Module paths (``model.visual.blocks.0.attn.qkv``) that the LoRA tensor ``keys`` belong to."""
    modules = {m.group("module") for k in keys if (m := LORA_KEY.match(k))}
    return sorted(modules)


def base_model_type(base: str) -> str | None:
    """``model_type`` of the base's ``config.json`` when the base is a local folder (else None)."""
    config = Path(base) / "config.json"
    if not config.is_file():
        return None
    try:
        return json.loads(config.read_text()).get("model_type")
    except (OSError, json.JSONDecodeError):
        return None


def _tower_reasons(vision: list[str], base: str) -> list[str]:
    """Why vLLM cannot serve these vision-tower LoRA modules directly (empty: it can)."""
    model_type = base_model_type(base)
    if model_type is None and "qwen" in base.lower() and "vl" in base.lower():
        model_type = "qwen2_5_vl"  # a hub id such as Qwen/Qwen2.5-VL-3B-Instruct
    if model_type not in TOWER_LORA_MODEL_TYPES:
        return [
            f"{len(vision)} LoRA modules target the vision tower (e.g. {vision[0]}) of a {model_type or 'unknown'} "
            f"model; vLLM serves tower LoRA only for {', '.join(TOWER_LORA_MODEL_TYPES)}"
        ]
    unsupported = [m for m in vision if not TOWER_LORA_MODULE.search(m)]
    if unsupported:
        return [
            f"{len(unsupported)} LoRA modules on the vision tower are not layers vLLM can give LoRA "
            f"(e.g. {unsupported[0]}; vLLM's tower LoRA covers attn.qkv, attn.proj, the MLP and the merger)"
        ]
    return []


def inspect_adapter(adapter_dir: str | Path) -> AdapterPlan:
    """Read an adapter's config and weight names (no tensors loaded) and decide serve vs merge."""
    adapter_dir = Path(adapter_dir)
    config_file = adapter_dir / "adapter_config.json"
    try:
        config = json.loads(config_file.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{config_file}: cannot read the adapter config ({err})") from err
    base = config.get("base_model_name_or_path") or ""
    reasons: list[str] = []
    tower = False
    weights = adapter_dir / ADAPTER_WEIGHTS
    if weights.is_file():
        from safetensors import safe_open

        with safe_open(str(weights), framework="pt") as handle:
            modules = lora_modules(list(handle.keys()))
        vision = [m for m in modules if any(marker in m for marker in VISION_TOWER_MARKERS)]
        if vision:
            tower = True
            reasons += _tower_reasons(vision, base)
    else:
        # No weights to inspect: judge from the target modules (a regex string or names).
        targets = _target_names(config)
        if any("visual" in t for t in targets):
            reasons.append(
                f"target_modules {targets} include the vision tower; no weights to check them against"
            )
    if config.get("modules_to_save"):
        reasons.append(
            f"modules_to_save {config['modules_to_save']} are full weights vLLM's LoRA cannot load"
        )
    if config.get("use_dora"):
        reasons.append("DoRA adapters are not supported by vLLM's LoRA")
    return AdapterPlan(
        adapter=str(adapter_dir),
        base=base,
        rank=int(config.get("r", 8)),
        merge_reasons=tuple(reasons),
        tower_lora=tower,
    )


def merge_for_vllm(
    plan: AdapterPlan, out_dir: str | Path, dtype: str = "bfloat16", source: ModelSource | None = None
) -> Path:
    """Merge an adapter vLLM cannot serve (``plan.merge_reasons``) into its base, saying why, with
    :func:`train.export.export_merged` (merged in float32 then cast to ``dtype``; safetensors and
    processor files, staged then renamed into ``out_dir``). ``source``: the adapter as the caller
    resolved it (not resolved again)."""
    from train.export import export_merged

    logger.info(
        "vLLM: merging adapter %s into %s first, because: %s",
        plan.adapter,
        plan.base,
        "; ".join(plan.merge_reasons) or "asked to",
    )
    return export_merged(source or ModelSource(base=plan.base, adapter=plan.adapter), out_dir, dtype=dtype)
