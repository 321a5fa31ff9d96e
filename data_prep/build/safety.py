"""What keeps a dataset build from losing data: it never writes into (or around) a source, and it
deletes only files it wrote itself.

:func:`check_output_dir` refuses, before anything is written, an output folder that is a source
folder, lies inside one, or contains one (a rebuild would otherwise delete raw images: a split
folder named ``2016`` is also CROHME's ``2016/`` folder). :func:`remove_own_files` deletes an earlier
build's files by name (shards, reports, card, resume state), never a folder with anything else in
it.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from data_prep.build.recipe import DataRecipe, RecipeError
from data_prep.path_guard import find_overlap

logger = logging.getLogger("data_prep.build")

#: Reader options that name files or folders (relative to the source root unless absolute).
PATH_OPTIONS = (
    "file",
    "labels",
    "images",
    "caption_file",
    "images_dir",
    "labels_file",
    "formulas_file",
    "split_file",
    "inkml_dir",
)
#: Corpus kinds of the ``synthetic`` reader that name a file or folder (data_prep.render.corpus).
CORPUS_FILE_KINDS = ("caption_file", "im2latex_formulas", "text_file", "dataset")
#: Files the build writes at the top of its output folder.
TOP_FILES = ("manifest.json", "report.json", "report.md", "vocab.txt")


def source_paths(recipe: DataRecipe) -> list[tuple[str, Path]]:
    """``(description, path)`` of every source root and path option the recipe reads from."""
    paths = []
    for spec in (*recipe.train, *recipe.test_sets):
        root = Path(spec.root)
        if spec.reader == "synthetic":
            # A rendering source reads only its corpus file (a generator reads nothing), not its root.
            corpus = spec.options.get("corpus")
            for kind in CORPUS_FILE_KINDS:
                value = corpus.get(kind) if isinstance(corpus, dict) else None
                if isinstance(value, str) and value:
                    path = Path(value)
                    paths.append(
                        (f"source {spec.name!r} (corpus.{kind})", path if path.is_absolute() else root / path)
                    )
            bank = spec.options.get("ink_bank")  # the InkML folder of renderer: ink
            if isinstance(bank, str) and bank:
                path = Path(bank)
                paths.append(
                    (f"source {spec.name!r} (ink_bank)", path if path.is_absolute() else root / path)
                )
            continue
        paths.append((f"source {spec.name!r} (root)", root))
        for key in PATH_OPTIONS:
            value = spec.options.get(key)
            if isinstance(value, str) and value and not any(c in value for c in "*?["):
                path = Path(value)
                paths.append(
                    (f"source {spec.name!r} (options.{key})", path if path.is_absolute() else root / path)
                )
    return paths


def check_output_dir(out: str | Path, recipe: DataRecipe) -> None:
    """A :class:`RecipeError` when ``out`` is, lies inside or contains a folder the recipe reads."""
    overlap = find_overlap(out, source_paths(recipe))  # the one check training uses too
    if overlap is not None:
        relation, what, path = overlap
        raise RecipeError(
            f"{recipe.path}: output_dir {out} {relation} {what} {path}: a build writes and deletes "
            "files in its output folder, so it must be a folder of its own, outside every source "
            "(e.g. outputs/data/NAME); nothing was written"
        )
    from data_prep.build.card import CARD_MARKER

    card = Path(out) / "README.md"
    if card.is_file() and CARD_MARKER not in card.read_text(encoding="utf-8", errors="replace"):
        raise RecipeError(
            f"{recipe.path}: output_dir {out} holds a README.md the build did not write (the build "
            "writes its dataset card there): choose an empty folder; nothing was written"
        )


def _unlink_matching(folder: Path, patterns: tuple[str, ...]) -> None:
    if not folder.is_dir():
        return
    for pattern in patterns:
        for path in folder.glob(pattern):
            if path.is_file() or path.is_symlink():
                path.unlink()


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass  # absent, or holds files the build did not write: left alone


def remove_own_files(out: Path, splits: list[str], work_dir: str, card_marker: str) -> None:
    """Delete what an earlier build wrote in ``out``: its shards in ``<out>/<split>/``, its resume
    folder ``work_dir``, its ShareGPT export, reports, vocabulary and dataset card (only a card
    holding ``card_marker``); folders are removed only once empty."""
    for split in splits:
        _unlink_matching(out / split, ("shard-*.parquet", ".shard-*.tmp"))
        _remove_if_empty(out / split)
    work = out / work_dir
    if work.is_dir() and not work.is_symlink():
        shutil.rmtree(work)
    sharegpt = out / "sharegpt"
    for split in splits:
        _unlink_matching(sharegpt / "images" / split, ("*.png",))
        _remove_if_empty(sharegpt / "images" / split)
        _unlink_matching(sharegpt, (f"{split}.json",))
    _unlink_matching(sharegpt, ("dataset_info.json",))
    _remove_if_empty(sharegpt / "images")
    _remove_if_empty(sharegpt)
    for name in TOP_FILES:
        (out / name).unlink(missing_ok=True)
    card = out / "README.md"
    if card.is_file() and card_marker in card.read_text(encoding="utf-8", errors="replace"):
        card.unlink()


__all__ = ["PATH_OPTIONS", "check_output_dir", "remove_own_files", "source_paths"]


def remove_leftovers(out: Path, split: str, work_dir: Path, keep: set[str]) -> None:
    """Remove temporary files and shards of an interrupted run that the manifest never recorded."""
    for path in work_dir.iterdir():
        stem = path.name.split(".")[0]
        if path.name.endswith(".tmp") or stem not in keep:
            logger.info("removing leftover %s", path)
            path.unlink()
    final_dir = out / split
    if final_dir.is_dir():
        for path in final_dir.glob("shard-*.parquet"):  # only the build's own shards
            if path.name.split("-of-")[0] not in keep:
                path.unlink()
