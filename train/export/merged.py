"""``merged``: the LoRA merged into its base (in float32, then cast), 16-bit safetensors, the
processor files and the chat template; loads in transformers and in vLLM unchanged."""

from __future__ import annotations

import logging
from pathlib import Path

from train.export.card import CardOptions, usage, write_card
from train.export.common import check_input, load_merged, processor_for, weights_size
from train.export.provenance import export_directory
from train.modeling import ModelSource

logger = logging.getLogger("train.export")


def export_merged(
    adapter: str | Path | ModelSource,
    output_dir: str | Path,
    *,
    dtype: str = "bfloat16",
    card: CardOptions | None = None,
    overwrite: bool = False,
) -> Path:
    """Merge the LoRA ``adapter`` (a folder, or a source resolved already) into its base and save a
    plain model folder; returns it."""
    source = check_input(adapter, "merged", accepts_model_folder=False)
    output_dir = Path(output_dir)
    with export_directory(output_dir, source, "merged", overwrite) as staging:
        model = load_merged(source, dtype)
        logger.info("saving the merged model (%s) ...", dtype)
        model.save_pretrained(staging, safe_serialization=True)
        from train.modeling import save_processor

        save_processor(processor_for(source), staging)
        write_card(
            staging,
            source,
            "merged",
            f"LoRA merged into the base, {dtype} safetensors",
            card or CardOptions(),
            usage=usage(output_dir, staging, vllm=True),
        )
    logger.info(
        "merged model written to %s (%.1f MiB of weights)", output_dir, weights_size(output_dir) / 2**20
    )
    return output_dir


def run(source: ModelSource, output_dir: Path, options) -> Path:
    """The registry's entry point (``options``: :class:`train.export.options.ExportOptions`)."""
    return export_merged(
        source, output_dir, dtype=options.dtype, card=options.card(), overwrite=options.overwrite
    )
