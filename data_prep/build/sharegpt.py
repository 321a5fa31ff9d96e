"""Export a built dataset to LLaMA-Factory's ShareGPT format (multimodal).

Per split ``<out>/<split>.json`` is a JSON list of::

    {"images": ["images/<split>/<sha1>.png"],
     "messages": [{"from": "human", "value": "<image>PROMPT"}, {"from": "gpt", "value": ANSWER}]}

with the images written beside it (one file per distinct image: the auxiliary tasks of a formula
share its file), and ``<out>/dataset_info.json`` registers one dataset per split
(``hmer_<split>``, ``formatting: sharegpt``, ``columns: {messages, images}``) so that
``dataset_dir: <out>`` and ``dataset: hmer_train`` work in a LLaMA-Factory config. Image paths are
relative to that folder (LLaMA-Factory's ``media_dir`` defaults to ``dataset_dir``).

The single ``<image>`` goes first in the human turn: our contract puts the image before the
prompt (``contract.user_message``), and LLaMA-Factory requires as many ``<image>`` tags as images.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from data_prep.contract import IMAGE_TAG
from data_prep.dataset import list_splits, load_split
from data_prep.io_utils import write_bytes_atomic, write_text_atomic

logger = logging.getLogger(__name__)

DATASET_PREFIX = "hmer_"


def sharegpt_sample(prompt: str, answer: str, image_path: str) -> dict[str, Any]:
    """One ShareGPT sample: the image tag then the prompt from the human, the answer from gpt."""
    return {
        "images": [image_path],
        "messages": [
            {"from": "human", "value": f"{IMAGE_TAG}{prompt}"},
            {"from": "gpt", "value": answer},
        ],
    }


def dataset_info_entry(file_name: str) -> dict[str, Any]:
    return {
        "file_name": file_name,
        "formatting": "sharegpt",
        "columns": {"messages": "messages", "images": "images"},
        "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt"},
    }


def _write_image(data: bytes, path: Path) -> None:
    if path.exists():
        return
    write_bytes_atomic(path, data)


def export_split(data_dir: Path, split: str, out_dir: Path, progress: bool = True) -> int:
    """Write ``<out_dir>/<split>.json`` and its images; returns the number of samples."""
    import datasets

    rows = load_split(data_dir, split).cast_column("image", datasets.Image(decode=False))
    image_dir = out_dir / "images" / split
    image_dir.mkdir(parents=True, exist_ok=True)
    samples = []
    for row in tqdm(rows, desc=f"sharegpt {split}", unit=" rows", disable=not progress):
        data = row["image"]["bytes"]
        name = f"{hashlib.sha1(data).hexdigest()[:20]}.png"
        _write_image(data, image_dir / name)
        samples.append(sharegpt_sample(row["prompt"], row["answer"], f"images/{split}/{name}"))
    write_text_atomic(out_dir / f"{split}.json", json.dumps(samples, ensure_ascii=False, indent=1))
    return len(samples)


def export_sharegpt(
    data_dir: str | Path, out_dir: str | Path, splits: list[str] | None = None, progress: bool = True
) -> Path:
    """Export ``splits`` (default: all) of the built dataset in ``data_dir`` to ``out_dir``."""
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    info = {}
    for split in splits or list_splits(data_dir):
        count = export_split(data_dir, split, out_dir, progress)
        info[f"{DATASET_PREFIX}{split}"] = dataset_info_entry(f"{split}.json")
        logger.info("sharegpt: %s: %d samples -> %s", split, count, out_dir / f"{split}.json")
    write_text_atomic(out_dir / "dataset_info.json", json.dumps(info, indent=1))
    return out_dir


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m data_prep.build.sharegpt", description="Export a built dataset to ShareGPT JSON"
    )
    parser.add_argument("--data-dir", required=True, help="a folder written by python -m data_prep.build")
    parser.add_argument("--output-dir", help="default: <data-dir>/sharegpt")
    parser.add_argument("--splits", help="comma-separated splits (default: all)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    splits = args.splits.split(",") if args.splits else None
    export_sharegpt(args.data_dir, args.output_dir or Path(args.data_dir) / "sharegpt", splits)


if __name__ == "__main__":
    main()
