"""The model card every export carries: recipe, data, evaluation table, size and how to run it."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

from data_prep.contract import DEFAULT_BOUNDS
from train.export.common import ExportError, weights_size
from train.model_card import ModelCardInfo, load_eval_summary, write_model_card
from train.modeling import ModelSource

#: Names the trainer may give the recipe it copies into its output folder.
RECIPE_NAMES = ("recipe.yaml", "training_recipe.yaml")


@dataclasses.dataclass
class CardOptions:
    """Model-card inputs given on the command line."""

    recipe: str | None = None
    data: str | None = None
    eval_summary: str | None = None


def recipe_path(source: ModelSource, recipe: str | None) -> Path | None:
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


def copy_training_items(staging: Path, source: ModelSource) -> None:
    """Carry the run folder's list of training images into the export, so evaluating the export
    still warns about test items it was trained on (eval.provenance.training_overlap)."""
    from train.run_folder import TRAINING_ITEMS

    for folder in (source.adapter, source.base):
        if folder and (Path(folder) / TRAINING_ITEMS).is_file():
            shutil.copy2(Path(folder) / TRAINING_ITEMS, staging / TRAINING_ITEMS)
            return


def recorded_data(recipe: Path | None) -> str | None:
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


def original_base(source: ModelSource) -> str:
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


def write_card(
    staging: Path,
    source: ModelSource,
    export_format: str,
    details: str,
    card: CardOptions,
    base_model: str | None = None,
    usage: str = "",
) -> None:
    recipe = recipe_path(source, card.recipe)
    copy_training_items(staging, source)
    summary = load_eval_summary(card.eval_summary) if card.eval_summary else None
    write_model_card(
        staging,
        ModelCardInfo(
            base_model=base_model or original_base(source),
            export_format=export_format,
            format_details=details,
            adapter=source.adapter,
            recipe_path=str(recipe) if recipe else None,
            recipe_text=recipe.read_text(encoding="utf-8") if recipe else None,
            data=card.data or recorded_data(recipe),
            eval_summary=summary,
            eval_summary_path=card.eval_summary,
            size_bytes=weights_size(staging),
            usage=usage,
        ),
    )
    from train.export.provenance import provenance_markdown, read_export_provenance

    section = provenance_markdown(read_export_provenance(staging))
    if section:
        readme = staging / "README.md"
        readme.write_text(
            readme.read_text(encoding="utf-8").rstrip("\n") + "\n\n" + section, encoding="utf-8"
        )


def usage(output_dir: Path, staging: Path, vllm: bool, note: str = "") -> str:
    """How to run the export; the served pixel bounds are those its processor records."""
    from train.modeling import saved_bounds

    bounds = saved_bounds(ModelSource(base=str(staging))) or DEFAULT_BOUNDS  # the export's own
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
