"""Token-level alignment of a ground truth and a prediction (whitespace tokens).

Built on rapidfuzz's Levenshtein opcodes, which accept lists of strings, so the alignment is the
same minimal token edit script that the ``<= k`` ExpRate metrics count
(:func:`data_prep.exprate.token_distance`).

Direction: every :class:`EditOp` reads from the prediction's point of view, i.e. it says how to
turn the prediction into the ground truth:

* ``equal``   -- ``pred[pred_start:pred_end] == gt[gt_start:gt_end]``;
* ``replace`` -- the predicted tokens are wrong and must become the ground-truth tokens;
* ``delete``  -- the predicted tokens are extra and must be deleted (the gt span is empty);
* ``insert``  -- the ground-truth tokens are missing and must be inserted (the pred span is empty).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from rapidfuzz.distance import Levenshtein

from data_prep.exprate import tokens

TAGS = ("equal", "replace", "delete", "insert")


@dataclasses.dataclass(frozen=True)
class EditOp:
    """One aligned block: ``gt[gt_start:gt_end]`` against ``pred[pred_start:pred_end]``."""

    tag: str
    gt_start: int
    gt_end: int
    pred_start: int
    pred_end: int
    gt_tokens: tuple[str, ...]
    pred_tokens: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.tag not in TAGS:
            raise ValueError(f"unknown edit tag {self.tag!r}; expected one of {TAGS}")
        if len(self.gt_tokens) != self.gt_end - self.gt_start:
            raise ValueError("gt_tokens does not match the gt span")
        if len(self.pred_tokens) != self.pred_end - self.pred_start:
            raise ValueError("pred_tokens does not match the pred span")

    @property
    def is_error(self) -> bool:
        return self.tag != "equal"


def align(gt_tokens: Sequence[str] | str, pred_tokens: Sequence[str] | str) -> list[EditOp]:
    """Minimal token edit script turning ``pred_tokens`` into ``gt_tokens``, as contiguous blocks.

    The blocks cover both sequences in order (``equal`` blocks included). Among equally short
    scripts rapidfuzz picks one deterministically (it depends only on token equality).
    """
    gt, pred = tokens(gt_tokens), tokens(pred_tokens)
    ops = []
    # Source = prediction, destination = ground truth: rapidfuzz's delete/insert then already
    # mean "delete from the prediction" / "insert into the prediction".
    for op in Levenshtein.opcodes(pred, gt):
        ops.append(
            EditOp(
                tag=op.tag,
                gt_start=op.dest_start,
                gt_end=op.dest_end,
                pred_start=op.src_start,
                pred_end=op.src_end,
                gt_tokens=tuple(gt[op.dest_start : op.dest_end]),
                pred_tokens=tuple(pred[op.src_start : op.src_end]),
            )
        )
    return ops


def error_regions(ops: Sequence[EditOp]) -> list[EditOp]:
    """Merge runs of adjacent non-equal blocks into one error region each; drop equal blocks.

    Regions are therefore separated by at least one equal token. A merged region is tagged
    ``insert`` when it has no predicted tokens, ``delete`` when it has no ground-truth tokens and
    ``replace`` otherwise (so a replace region's two sides may differ in length).
    """
    regions: list[EditOp] = []
    run: list[EditOp] = []

    def flush() -> None:
        if not run:
            return
        gt = tuple(t for op in run for t in op.gt_tokens)
        pred = tuple(t for op in run for t in op.pred_tokens)
        tag = "insert" if not pred else "delete" if not gt else "replace"
        regions.append(
            EditOp(tag, run[0].gt_start, run[-1].gt_end, run[0].pred_start, run[-1].pred_end, gt, pred)
        )
        run.clear()

    for op in ops:
        if op.tag == "equal":
            flush()
        else:
            run.append(op)
    flush()
    return regions


def token_confusions(
    gt_tokens: Sequence[str] | str, pred_tokens: Sequence[str] | str
) -> list[tuple[str, str]]:
    """Substituted token pairs ``(gt, pred)``, in order, one-to-one within ``replace`` blocks.

    rapidfuzz's replace blocks are runs of single-token substitutions, so both sides have the
    same length. Should a block ever be uneven, its tokens are paired by position from the
    left and the surplus is left out (it is an insertion or deletion, not a confusion).
    """
    pairs: list[tuple[str, str]] = []
    for op in align(gt_tokens, pred_tokens):
        if op.tag == "replace":
            pairs.extend(zip(op.gt_tokens, op.pred_tokens))
    return pairs
