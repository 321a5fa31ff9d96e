"""The export command's options, declared once (parsed by ``HfArgumentParser``, ``--config YAML``
accepted as in training)."""

from __future__ import annotations

import dataclasses

from train.export.card import CardOptions
from train.export.registry import FORMATS

DTYPES = ("bfloat16", "float16", "float32")


def _field(default, help: str, **metadata):
    return dataclasses.field(default=default, metadata={"help": help, **metadata})


@dataclasses.dataclass
class ExportOptions:
    """``python -m train.export`` options; every flag also reads as a key of a ``--config`` YAML."""

    adapter: str | None = _field(None, "LoRA adapter folder (or, for bnb-4bit/w4a16/gguf, a merged model)")
    format: str = _field("merged", "export format (train/export/registry.py)", choices=FORMATS)
    output_dir: str | None = _field(
        None, "where the export goes (default: outputs/exports/<adapter name>-<format>)"
    )
    overwrite: bool = _field(False, "replace an existing, non-empty output folder")
    dtype: str = _field(
        "bfloat16",
        "dtype of the merged weights (and the 16-bit parts of the quantised formats)",
        choices=DTYPES,
    )
    recipe: str | None = _field(
        None, "training recipe to cite in the model card (default: recipe.yaml in the adapter)"
    )
    data: str | None = _field(None, "a sentence on the training data, for the model card")
    eval_summary: str | None = _field(
        None, "summary.json of eval.evaluate: its table goes into the model card"
    )
    gguf_type: str = _field(
        "f16", "gguf: f32, f16, bf16, q8_0 (written by the converter) or Q4_K_M ... (needs llama-quantize)"
    )
    calibration_data: str | None = _field(
        None, "w4a16 calibration: a built dataset folder (python -m data_prep.build)"
    )
    calibration_split: str = _field("train", "w4a16 calibration: the split of --calibration-data")
    calibration_images: str | None = _field(
        None, "w4a16 calibration: or a folder of formula images (dark ink on light)"
    )
    num_calibration_samples: int = _field(256, "w4a16 calibration: samples drawn")
    group_size: int = _field(128, "w4a16: GPTQ group size")
    seed: int = _field(0, "w4a16: seed of the calibration draw")
    estimate_sizes: bool = _field(
        False, "print each format's size for the real Qwen2.5-VL architecture and exit"
    )
    arch: str = _field("3b,7b", "architectures for --estimate-sizes (3b, 7b)")

    def card(self) -> CardOptions:
        return CardOptions(recipe=self.recipe, data=self.data, eval_summary=self.eval_summary)
