"""The training collator: loss on the answer tokens only, images within bounds, bad rows refused."""

from __future__ import annotations

import pytest

from data_prep.contract import IMAGE_FACTOR, ImageBounds
from tests.train.test_train import sample_dataset_dir  # noqa: F401  -- the one built-dataset fixture
from train.collator import CollatorError, VisionSFTCollator
from train.inputs import IGNORE_INDEX
from train.modeling import load_processor

BOUNDS = ImageBounds(max_pixels=12_544)


@pytest.fixture(scope="module")
def rows(sample_dataset_dir):  # noqa: F811
    from data_prep.dataset import load_split

    dataset = load_split(sample_dataset_dir, "train")
    # One row per task, so every answer format (one line, tree, counts, edits) is covered.
    by_task = {}
    for row in dataset:
        by_task.setdefault(row["task"], row)
    return list(by_task.values())


@pytest.fixture(scope="module")
def processor(tiny_model_dir):
    return load_processor(str(tiny_model_dir), bounds=BOUNDS)


def test_labels_cover_exactly_the_answer(rows, processor):
    assert len({row["task"] for row in rows}) >= 2
    batch = VisionSFTCollator(processor, BOUNDS, max_length=4096)(rows)
    tokenizer = processor.tokenizer
    for i, row in enumerate(rows):
        trained = batch["input_ids"][i][batch["labels"][i] != IGNORE_INDEX]
        assert len(trained) > 0
        assert tokenizer.decode(trained) == row["answer"] + tokenizer.eos_token + "\n"
    # Image tokens and padding are never trained.
    image_token = tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert not ((batch["input_ids"] == image_token) & (batch["labels"] != IGNORE_INDEX)).any()
    assert (batch["labels"][batch["attention_mask"] == 0] == IGNORE_INDEX).all()


def test_images_respect_the_bounds(rows, processor):
    batch = VisionSFTCollator(processor, BOUNDS, max_length=4096)(rows)
    patches_per_image = batch["image_grid_thw"].prod(dim=1)
    # Each patch is 14 x 14 px; the processor may round each side up to a multiple of 28.
    assert (patches_per_image * 14 * 14 <= BOUNDS.max_pixels * 1.3).all()
    assert (batch["image_grid_thw"][:, 1:] * 14 >= IMAGE_FACTOR).all()


def test_text_only_row_is_refused(rows, processor):
    row = dict(rows[0], image=None)
    with pytest.raises(CollatorError, match="no image"):
        VisionSFTCollator(processor, BOUNDS)([rows[1], row])


def test_missing_columns_are_named(rows, processor):
    row = {k: v for k, v in rows[0].items() if k != "answer"}
    with pytest.raises(CollatorError, match="answer"):
        VisionSFTCollator(processor, BOUNDS)([row])


def test_overlong_samples_are_skipped_and_counted(rows, processor):
    full = VisionSFTCollator(processor, BOUNDS, max_length=None)(rows)
    lengths = full["attention_mask"].sum(dim=1).tolist()
    cutoff = sorted(lengths)[len(lengths) // 2]
    collator = VisionSFTCollator(processor, BOUNDS, max_length=cutoff)
    batch = collator(rows)
    kept = sum(n <= cutoff for n in lengths)
    assert batch["input_ids"].shape[0] == kept < len(rows)
    assert collator.skipped["longer_than_max_length"] == len(rows) - kept
    with pytest.raises(CollatorError, match="max_length"):
        VisionSFTCollator(processor, BOUNDS, max_length=min(lengths) - 1)(rows)


def test_labels_end_with_the_newline_after_im_end_like_llamafactory(rows, processor):
    """LLaMA-Factory's qwen2_vl template (the reference's trainer) ends an answer with
    ``<|im_end|>\\n`` and trains on that newline: the last trained token of every row is the
    newline, right after ``<|im_end|>``. ``final_newline=False`` (recipe ``label_final_newline:
    false``) stops the labels at ``<|im_end|>``, one token fewer."""
    tokenizer = processor.tokenizer
    end_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    (newline_id,) = tokenizer.encode("\n", add_special_tokens=False)
    parity = VisionSFTCollator(processor, BOUNDS, max_length=4096)(rows)
    legacy = VisionSFTCollator(processor, BOUNDS, max_length=4096, final_newline=False)(rows)
    for i in range(len(rows)):
        trained = parity["input_ids"][i][parity["labels"][i] != IGNORE_INDEX].tolist()
        assert trained[-2:] == [end_id, newline_id]
        before = legacy["input_ids"][i][legacy["labels"][i] != IGNORE_INDEX].tolist()
        assert before == trained[:-1] and before[-1] == end_id


def test_unsloth_mask_drops_only_the_newline_after_im_end():
    import torch

    from train.engines.unsloth_engine import mask_newline_after_end

    end, nl, x = 5, 7, 9
    ids = torch.tensor([[x, nl, x, end, nl, 0]])
    batch = {"input_ids": ids, "labels": ids.clone()}
    masked = mask_newline_after_end(batch, end, [nl])["labels"].tolist()
    assert masked == [[x, nl, x, end, IGNORE_INDEX, 0]]  # a newline inside the answer stays trained
