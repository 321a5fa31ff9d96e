"""Row-by-row parity with LLaMA-Factory (the reference's trainer): the project's training collator and
LLaMA-Factory 0.9.5's supervised pipeline (``qwen2_vl`` template) give the same input_ids and the
same labels for every training row of the bundled sample, at the same image pixel caps.

LLaMA-Factory caps transformers <= 5.6 and datasets <= 4.0, so it lives in its own environment
(``LLAMAFACTORY_PYTHON``, default /work/venvs/llamafactory/bin/python; see docs/training.md) and
encodes the rows there (tests/llamafactory_rows.py); the test is skipped, with that reason, where it
is not installed. Both sides read the same model folder, whose processor carries the project's
bounds (see docs/training.md, "LLaMA-Factory parity", for what differs with Qwen's stock processor).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from data_prep.contract import ImageBounds
from tests.conftest import REPO
from tests.train.test_train import sample_dataset_dir  # noqa: F401
from train.collator import VisionSFTCollator
from train.modeling import load_processor

LLAMAFACTORY_PYTHON = Path(os.environ.get("LLAMAFACTORY_PYTHON", "/work/venvs/llamafactory/bin/python"))


def _llamafactory_available() -> bool:
    if not LLAMAFACTORY_PYTHON.is_file():
        return False
    probe = subprocess.run(
        [str(LLAMAFACTORY_PYTHON), "-c", "import llamafactory"], capture_output=True, timeout=300
    )
    return probe.returncode == 0


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not _llamafactory_available(),
        reason=f"LLaMA-Factory is not installed at {LLAMAFACTORY_PYTHON} (set LLAMAFACTORY_PYTHON; "
        "docs/training.md says how to make its venv)",
    ),
]


#: Qwen2.5-VL's stock processor bounds (what the reference's LLaMA-Factory run loaded).
STOCK_SIZE = {"shortest_edge": 3136, "longest_edge": 12_845_056}


def model_with_processor_size(tiny_model_dir: Path, folder: Path, size: dict[str, int]) -> Path:
    """A copy of the tiny model folder (weights linked) whose image processor has ``size``."""
    folder.mkdir()
    for item in tiny_model_dir.iterdir():
        (folder / item.name).symlink_to(item)
    config = json.loads((tiny_model_dir / "preprocessor_config.json").read_text())
    config["size"] = size
    (folder / "preprocessor_config.json").unlink()
    (folder / "preprocessor_config.json").write_text(json.dumps(config))
    return folder


def encode_both(rows, bounds: ImageBounds, model: Path, tmp_path: Path):
    """(ours, theirs): per row, input_ids, labels and image grid from each pipeline."""
    job_rows = []
    for i, row in enumerate(rows):
        path = tmp_path / f"{i}.png"
        row["image"].convert("RGB").save(path)
        job_rows.append({"image": str(path), "prompt": row["prompt"], "answer": row["answer"]})
    job = {
        "model": str(model),
        "image_max_pixels": bounds.max_pixels,
        "image_min_pixels": bounds.min_pixels,
        "rows": job_rows,
    }
    (tmp_path / "job.json").write_text(json.dumps(job))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    result = subprocess.run(
        [str(LLAMAFACTORY_PYTHON), str(REPO / "tests" / "llamafactory_rows.py"), "job.json", "out.json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    theirs = json.loads((tmp_path / "out.json").read_text())
    processor = load_processor(str(model), bounds=bounds)
    collate = VisionSFTCollator(processor, bounds, max_length=None)
    ours = []
    for row in rows:
        batch = collate([row])
        ours.append(
            {
                "input_ids": batch["input_ids"][0].tolist(),
                "labels": batch["labels"][0].tolist(),
                "image_grid_thw": batch["image_grid_thw"].tolist(),
            }
        )
    return ours, theirs


@pytest.fixture(scope="module")
def train_rows(sample_dataset_dir):  # noqa: F811
    from data_prep.dataset import load_split

    return list(load_split(sample_dataset_dir, "train"))


@pytest.mark.parametrize("max_pixels", [12_544, 262_144])
def test_input_ids_and_labels_equal_llamafactory_row_by_row(max_pixels, tmp_path, train_rows, tiny_model_dir):
    """The model folder's processor carries the caps (as every model this project saves does):
    LLaMA-Factory's ``image_max_pixels`` resize then the processor give our image-token counts, and
    the labels (answer + ``<|im_end|>`` + ``\\n``) are the same: every row equal."""
    bounds = ImageBounds(max_pixels=max_pixels)
    size = {"shortest_edge": bounds.min_pixels, "longest_edge": bounds.max_pixels}
    model = model_with_processor_size(tiny_model_dir, tmp_path / "model", size)
    ours, theirs = encode_both(train_rows, bounds, model, tmp_path)
    equal = [i for i in range(len(ours)) if ours[i] == theirs[i]]
    print(f"max_pixels={max_pixels}, processor at the caps: {len(equal)}/{len(ours)} rows equal")
    first = next((i for i in range(len(ours)) if ours[i] != theirs[i]), None)
    assert len(equal) == len(ours), (train_rows[first]["id"], ours[first], theirs[first])


def test_with_qwens_stock_processor_only_image_token_counts_differ(tmp_path, train_rows, tiny_model_dir):
    """With Qwen's stock processor (max 12,845,056 px), LLaMA-Factory caps the image at
    ``image_max_pixels`` and the processor then rounds each side to the *nearest* multiple of 28,
    past the cap; ours rounds down within it. The rows that differ differ only there: same text
    tokens, same labels, a larger image grid on LLaMA-Factory's side."""
    bounds = ImageBounds(max_pixels=12_544)
    model = model_with_processor_size(tiny_model_dir, tmp_path / "model", STOCK_SIZE)
    ours, theirs = encode_both(train_rows, bounds, model, tmp_path)
    image_pad = load_processor(str(tiny_model_dir)).tokenizer.convert_tokens_to_ids("<|image_pad|>")
    differing = [i for i in range(len(ours)) if ours[i] != theirs[i]]
    print(f"stock processor, image_max_pixels=12544: {len(ours) - len(differing)}/{len(ours)} rows equal")
    for i in differing:
        strip = [t for t in ours[i]["input_ids"] if t != image_pad]
        assert strip == [t for t in theirs[i]["input_ids"] if t != image_pad]
        assert [t for t in ours[i]["labels"] if t != -100] == [t for t in theirs[i]["labels"] if t != -100]
        (_, oh, ow), (_, th, tw) = ours[i]["image_grid_thw"][0], theirs[i]["image_grid_thw"][0]
        assert th * tw > oh * ow and th * tw * 14 * 14 > bounds.max_pixels
