"""``bnb-4bit``: NF4 (double quantisation) through bitsandbytes, vision tower and lm_head kept in
16 bits (``train.modeling.quantization_config``); loads with ``from_pretrained`` on a GPU or a CPU.
Not servable by vLLM 0.33 (no bitsandbytes method): use ``w4a16`` for vLLM."""

from __future__ import annotations

import contextlib
import logging
import tempfile
from pathlib import Path

from train.export.card import CardOptions, usage, write_card
from train.export.common import check_input, load_merged, processor_for, weights_size
from train.export.provenance import export_directory
from train.modeling import ModelSource

logger = logging.getLogger("train.export")

#: Why a bnb-4bit export gets no ``vllm serve`` line: vLLM 0.33.0 (requirements/gpu.txt) has no
#: bitsandbytes quantization method (vllm/model_executor/layers/quantization/__init__.py).
BNB_NOT_SERVABLE = (
    "vLLM 0.33 (the pinned version) cannot serve bitsandbytes checkpoints: run this export with "
    "transformers (`eval.predict --backend hf`, as above); for vLLM export `--format w4a16` instead."
)


def export_bnb_4bit(
    source_dir: str | Path | ModelSource,
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

    source = check_input(source_dir, "bnb-4bit", accepts_model_folder=True)
    output_dir = Path(output_dir)
    with export_directory(output_dir, source, "bnb-4bit", overwrite) as staging:
        with contextlib.ExitStack() as stack:
            merged = source
            if source.adapter:
                merged_dir = stack.enter_context(
                    tempfile.TemporaryDirectory(prefix=".merged-", dir=output_dir.parent)
                )
                load_merged(source, compute_dtype).save_pretrained(merged_dir, safe_serialization=True)
                merged = ModelSource(base=merged_dir)
            logger.info("quantising to NF4 (vision tower and lm_head stay in %s) ...", compute_dtype)
            model = load_model(merged, dtype=compute_dtype, load_in_4bit=True)
            model.save_pretrained(staging, safe_serialization=True)
        save_processor(processor_for(source), staging)
        write_card(
            staging,
            source,
            "bnb-4bit",
            f"bitsandbytes NF4 with double quantisation, vision tower and lm_head in {compute_dtype}",
            card or CardOptions(),
            usage=usage(output_dir, staging, vllm=False, note=BNB_NOT_SERVABLE),
        )
    logger.info("NF4 model written to %s (%.1f MiB of weights)", output_dir, weights_size(output_dir) / 2**20)
    return output_dir


def run(source: ModelSource, output_dir: Path, options) -> Path:
    """The registry's entry point (``options``: :class:`train.export.options.ExportOptions`)."""
    return export_bnb_4bit(
        source, output_dir, compute_dtype=options.dtype, card=options.card(), overwrite=options.overwrite
    )
