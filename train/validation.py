"""Validation while training: a loss on held-out rows and a greedy ExpRate on a few images.

Recipe keys (:class:`train.config.ScriptArguments`): ``eval_split`` (a split of the dataset,
e.g. a built test set) or ``eval_holdout`` (a fraction or a number of training *images* held out:
every task row of a held-out image leaves training, so no answer leaks), ``eval_max_items``
(main-task images decoded for ExpRate; the loss covers every task row of those images), ``eval_max_new_tokens``,
and the usual ``eval_strategy: steps`` / ``eval_steps``. With ``metric_for_best_model: exprate``
and ``load_best_model_at_end: true`` the best checkpoint by ExpRate is the final model.

The answers are generated with :func:`train.generation.generate_texts` (what ``eval``'s HF
backend runs) from the contract's main prompt, and scored like ``eval``: the last LaTeX line of the
answer against the truth, whitespace tokens, exact match (ExpRate) and edit distance <= 1.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from typing import Any

from data_prep.contract import TASK_MAIN, ImageBounds, extract_latex, prompt_for
from data_prep.exprate import exprate_scores

logger = logging.getLogger(__name__)


def image_key(row_id: str) -> str:
    """The image a row belongs to: auxiliary rows are ``ID#task`` beside the main row ``ID``."""
    return str(row_id).split("#", 1)[0]


def holdout_split(dataset, holdout: float, seed: int):
    """``(train, held_out)``: a seeded choice of images (a fraction < 1, else a count), with all
    their rows, out of ``dataset``."""
    keys = [image_key(i) for i in dataset["id"]]
    unique = sorted(set(keys))
    count = round(holdout * len(unique)) if holdout < 1 else int(holdout)
    count = max(1, min(count, len(unique) - 1))
    if len(unique) < 2:
        raise ValueError("eval_holdout needs at least two training images")
    chosen = set(random.Random(seed).sample(unique, count))
    keep = [i for i, k in enumerate(keys) if k not in chosen]
    held = [i for i, k in enumerate(keys) if k in chosen]
    return dataset.select(keep), dataset.select(held)


@dataclass
class ValidationItem:
    id: str
    image: Any
    gt: str


def exprate_items(eval_dataset, max_items: int) -> list[ValidationItem]:
    """The first ``max_items`` main-task rows (images decoded), skipping unreadable ones."""
    items: list[ValidationItem] = []
    for row in eval_dataset:
        if row.get("task", TASK_MAIN) != TASK_MAIN:
            continue
        items.append(ValidationItem(str(row["id"]), row["image"], extract_latex(row["answer"])))
        if len(items) >= max_items:
            break
    return items


def cap_loss_rows(eval_dataset, items: list[ValidationItem]):
    """The rows (every task) of the images ExpRate is measured on: loss and ExpRate see the same
    images, and the loss costs a bounded number of forward passes."""
    keys = {image_key(item.id) for item in items}
    keep = [i for i, row_id in enumerate(eval_dataset["id"]) if image_key(row_id) in keys]
    return eval_dataset.select(keep)


def score_answers(gts: list[str], raws: list[str]) -> dict[str, float]:
    """ExpRate and ``<= 1`` (percent) of raw answers against truths, as ``eval`` scores them."""
    return exprate_scores(((gt, extract_latex(raw or "")) for gt, raw in zip(gts, raws)), thresholds=(1,))


class Validator:
    """Greedy ExpRate of the model being trained on a fixed list of items."""

    def __init__(
        self,
        processor: Any,
        items: list[ValidationItem],
        bounds: ImageBounds,
        max_new_tokens: int = 256,
        batch_size: int = 8,
    ) -> None:
        self.processor = processor
        self.items = items
        self.bounds = bounds
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size

    def __call__(self, model: Any) -> dict[str, float]:
        import torch.distributed as dist

        from train.generation import generate_texts, generation_config

        # Under ZeRO-3 every rank must run every forward pass (the weights are gathered across ranks).
        synced = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
        if not self.items:
            return {}
        was_training = model.training
        model.eval()
        try:
            config = generation_config(self.processor.tokenizer, self.max_new_tokens)
            raws = generate_texts(
                model,
                self.processor,
                [item.image for item in self.items],
                [prompt_for(TASK_MAIN)] * len(self.items),
                config,
                self.bounds,
                self.batch_size,
                synced_gpus=synced,
            )
        finally:
            model.train(was_training)
        scores = score_answers([item.gt for item in self.items], raws)
        scores["exprate_items"] = len(self.items)
        return scores
