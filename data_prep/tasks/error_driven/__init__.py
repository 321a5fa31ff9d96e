"""Error-driven learning samples: error detection and error correction (Uni-MuMER's EDL task).

A wrong prediction of a formula becomes two samples on the same image:

* detection -- the prompt shows the prediction; the answer is the prediction with its wrong spans
  wrapped ``<error_start> ... <error_end>`` and one ``<deleted>`` per missing token;
* correction -- the prompt shows that marked prediction; the answer lists one edit per marker, in
  order, then the correct LaTeX on the last line::

      REPLACE:a b -> c       (the k-th marked span a b must become c)
      DELETE:a b             (the k-th marked span a b must go)
      INSERT:c d             (the k-th gap, here <deleted> <deleted>, receives c d)
      x ^ { 2 } + c d

``REPLACE:d -> a`` is the spelling of the paper's Fig. 2 (keyword, colon, no space); ``DELETE:``
and ``INSERT:`` follow it (the figure shows only a replacement; see docs/error_driven.md). The
prompts are the figure's (``data_prep.contract``): detection ends ``Expression: PRED``,
correction ``Marked Expression: MARKED``.

Markers come from the token alignment (:func:`data_prep.tasks.error_driven.alignment.error_regions`): adjacent
wrong blocks are merged into one marker (a span, or a gap of consecutive ``<deleted>``), so markers
are always separated by at least one correct token, and the k-th marker takes the k-th edit. :func:`apply_edits` applying a correction answer's
edits to its marked prediction gives the truth exactly; every generated pair is checked so.

Wrong predictions come from a model (``read_predictions`` of eval predictions files) or, before a
model exists, from :func:`synthetic_errors` (confusable symbols, dropped or duplicated tokens,
misplaced scripts).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import logging
import random
from collections.abc import Iterable, Sequence
from pathlib import Path

from data_prep.contract import (
    DELETED,
    ERROR_END,
    ERROR_START,
    TASK_ERROR_CORRECTION,
    TASK_ERROR_DETECTION,
    TASK_MAIN,
    Record,
    extract_latex,
    normalize_answer,
    prompt_for,
)
from data_prep.io_utils import write_text_atomic
from data_prep.rejects import Rejects
from data_prep.tasks.error_driven.alignment import align, edit_distance, error_regions
from data_prep.tasks.error_driven.confusions import ConfusionTable, iter_prediction_rows

logger = logging.getLogger(__name__)

SOURCE = "error_driven"
ARROW = "->"
#: Tokens a prediction or truth may not contain: they would make the marked text or the edit
#: lines ambiguous.
RESERVED_TOKENS = frozenset({ERROR_START, ERROR_END, DELETED, ARROW})
EDIT_KINDS = ("replace", "delete", "insert")
_KIND_BY_KEYWORD = {"REPLACE:": "replace", "DELETE:": "delete", "INSERT:": "insert"}
_BRACES = frozenset({"{", "}"})
_SCRIPTS = ("^", "_")


# --------------------------------------------------------------------------- #
# Edits and marked predictions
# --------------------------------------------------------------------------- #


@dataclasses.dataclass(frozen=True)
class Edit:
    """One correction: ``source`` tokens (the marked span; empty for an insert) become ``target``."""

    kind: str
    source: tuple[str, ...] = ()
    target: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in EDIT_KINDS:
            raise ValueError(f"unknown edit kind {self.kind!r}; expected one of {EDIT_KINDS}")
        need_source = self.kind in ("replace", "delete")
        need_target = self.kind in ("replace", "insert")
        if bool(self.source) != need_source or bool(self.target) != need_target:
            raise ValueError(f"{self.kind} edit with source {self.source!r} and target {self.target!r}")
        if RESERVED_TOKENS.intersection(self.source + self.target):
            raise ValueError(f"edit contains a reserved token ({', '.join(sorted(RESERVED_TOKENS))})")

    def to_line(self) -> str:
        if self.kind == "replace":
            return f"REPLACE:{' '.join(self.source)} {ARROW} {' '.join(self.target)}"
        if self.kind == "delete":
            return f"DELETE:{' '.join(self.source)}"
        return f"INSERT:{' '.join(self.target)}"

    @classmethod
    def from_line(cls, line: str) -> Edit:
        """Read one edit line; a space after the keyword's colon is accepted too."""
        text = line.strip()
        keyword = next((k for k in _KIND_BY_KEYWORD if text.startswith(k)), None)
        if keyword is None:
            raise ValueError(f"not an edit line (expected REPLACE:, DELETE: or INSERT:): {line!r}")
        kind, tokens = _KIND_BY_KEYWORD[keyword], text[len(keyword) :].split()
        if kind == "replace":
            if tokens.count(ARROW) != 1:
                raise ValueError(f"a REPLACE line needs exactly one {ARROW!r}: {line!r}")
            cut = tokens.index(ARROW)
            return cls(kind, tuple(tokens[:cut]), tuple(tokens[cut + 1 :]))
        if kind == "delete":
            return cls(kind, source=tuple(tokens))
        return cls(kind, target=tuple(tokens))


def _check_tokens(tokens: Sequence[str], what: str) -> None:
    reserved = RESERVED_TOKENS.intersection(tokens)
    if reserved:
        raise ValueError(f"{what} contains reserved token(s) {sorted(reserved)}")


def _regions(truth: str, prediction: str):
    gt, pred = truth.split(), prediction.split()
    _check_tokens(gt, "truth")
    _check_tokens(pred, "prediction")
    return pred, error_regions(align(gt, pred))


def mark_errors(truth: str, prediction: str) -> str:
    """The detection answer: ``prediction`` with wrong spans wrapped and missing-token gaps marked."""
    pred, regions = _regions(truth, prediction)
    out: list[str] = []
    cursor = 0
    for region in regions:
        out += pred[cursor : region.pred_start]
        if region.tag == "insert":
            out += [DELETED] * len(region.gt_tokens)
        else:
            out += [ERROR_START, *region.pred_tokens, ERROR_END]
        cursor = region.pred_end
    return " ".join(out + pred[cursor:])


def edits_for(truth: str, prediction: str) -> list[Edit]:
    """The edits, one per marker of :func:`mark_errors`, in order."""
    _, regions = _regions(truth, prediction)
    return [Edit(region.tag, region.pred_tokens, region.gt_tokens) for region in regions]


def correction_answer(truth: str, prediction: str) -> str:
    """The correction answer: one edit per line, then the truth on the last line."""
    lines = [edit.to_line() for edit in edits_for(truth, prediction)]
    return "\n".join([*lines, normalize_answer(truth)])


def _parse_marked(marked: str) -> list[tuple[str, tuple[str, ...]]]:
    """Split a marked prediction into ``("token"|"span"|"gap", tokens)`` pieces; strict.

    A gap's tokens are its consecutive ``<deleted>`` markers (one per missing token).
    """
    pieces: list[tuple[str, tuple[str, ...]]] = []
    span: list[str] | None = None
    for token in marked.split():
        if token == ERROR_START:
            if span is not None:
                raise ValueError(f"nested {ERROR_START} in marked prediction: {marked!r}")
            span = []
        elif token == ERROR_END:
            if span is None:
                raise ValueError(f"{ERROR_END} without {ERROR_START} in marked prediction: {marked!r}")
            if not span:
                raise ValueError(f"empty error span in marked prediction: {marked!r}")
            pieces.append(("span", tuple(span)))
            span = None
        elif token == DELETED:
            if span is not None:
                raise ValueError(f"{DELETED} inside an error span in marked prediction: {marked!r}")
            if pieces and pieces[-1][0] == "gap":
                pieces[-1] = ("gap", pieces[-1][1] + (DELETED,))
            else:
                pieces.append(("gap", (DELETED,)))
        elif span is not None:
            span.append(token)
        else:
            pieces.append(("token", (token,)))
    if span is not None:
        raise ValueError(f"unclosed {ERROR_START} in marked prediction: {marked!r}")
    return pieces


def apply_detection(marked: str) -> str:
    """Strip the markers of a detection answer: the prediction it was made from."""
    return " ".join(t for kind, tokens in _parse_marked(marked) if kind != "gap" for t in tokens)


def parse_edits(answer: str) -> list[Edit]:
    """The edits of a correction answer: every non-empty line but the last (the LaTeX)."""
    lines = [line for line in answer.strip().splitlines() if line.strip()]
    edits = []
    for number, line in enumerate(lines[:-1], start=1):
        try:
            edits.append(Edit.from_line(line))
        except ValueError as error:
            raise ValueError(f"correction answer line {number}: {error}") from error
    return edits


def apply_edits(marked_prediction: str, edits: Sequence[Edit]) -> str:
    """Apply the k-th edit at the k-th marker of ``marked_prediction``; return the corrected LaTeX.

    Raises ``ValueError`` when the edits do not fit the markers (count, kind or span text).
    """
    pieces = _parse_marked(marked_prediction)
    markers = sum(kind != "token" for kind, _ in pieces)
    if markers != len(edits):
        raise ValueError(f"{len(edits)} edits for {markers} markers in {marked_prediction!r}")
    out: list[str] = []
    remaining = iter(enumerate(edits, start=1))
    for kind, tokens in pieces:
        if kind == "token":
            out += tokens
            continue
        k, edit = next(remaining)
        if kind == "gap" and (edit.kind != "insert" or len(edit.target) != len(tokens)):
            raise ValueError(
                f"edit {k} ({edit.to_line()}) does not fit a gap of {len(tokens)} {DELETED}: "
                f"needs INSERT of {len(tokens)} token(s)"
            )
        if kind == "span" and (edit.kind == "insert" or edit.source != tokens):
            raise ValueError(f"edit {k} ({edit.to_line()}) does not match marked span {' '.join(tokens)!r}")
        out += edit.target
    return " ".join(out)


# --------------------------------------------------------------------------- #
# Samples
# --------------------------------------------------------------------------- #


def samples_from_predictions(
    record: Record,
    wrong_predictions: Iterable[str],
    max_per_record: int = 2,
    origin: str = "model",
    rejects: Rejects | None = None,
) -> list[Record]:
    """Detection and correction records (``[det 0, cor 0, det 1, cor 1, ...]``) for ``record``.

    ``record`` is a main-task record; predictions are normalised and deduplicated, correct ones
    skipped, the first ``max_per_record`` others used. Empty predictions and texts holding a
    reserved token are counted in ``rejects``. Ids are ``{record.id}#error_detection#{k}`` and
    ``{record.id}#error_correction#{k}``; the image, source and split are the record's; ``meta``
    adds ``base_id``, ``prediction``, ``origin`` and ``edit_distance``.
    """
    if record.task != TASK_MAIN:
        raise ValueError(
            f"record {record.id}: error-driven samples need a main-task record, not {record.task!r}"
        )
    rejects = rejects if rejects is not None else Rejects()
    truth = record.latex
    if RESERVED_TOKENS.intersection(truth.split()):
        rejects.add(SOURCE, "reserved_token_in_truth", record.id, detail=truth)
        return []
    out: list[Record] = []
    seen = {truth}
    for raw in wrong_predictions:
        if len(out) >= 2 * max_per_record:
            break
        prediction = normalize_answer(raw)
        if prediction in seen:
            continue
        seen.add(prediction)
        if not prediction:
            rejects.add(SOURCE, "empty_prediction", record.id)
            continue
        if RESERVED_TOKENS.intersection(prediction.split()):
            rejects.add(SOURCE, "reserved_token_in_prediction", record.id, detail=prediction)
            continue
        k = len(out) // 2
        marked = mark_errors(truth, prediction)
        correction = correction_answer(truth, prediction)
        # Every pair is checked: the markers undo to the prediction, the edits redo the truth.
        if (
            apply_detection(marked) != prediction
            or apply_edits(marked, parse_edits(correction)) != truth
            or extract_latex(correction) != truth
        ):
            raise RuntimeError(f"record {record.id}: inconsistent error-driven pair for {prediction!r}")
        meta = {
            **record.meta,
            "base_id": record.id,
            "prediction": prediction,
            "origin": origin,
            "edit_distance": edit_distance(truth, prediction),
        }
        # Detection sees the plain prediction and answers with it marked; correction sees the
        # marked prediction and answers with the edits.
        for task, shown, answer in (
            (TASK_ERROR_DETECTION, prediction, marked),
            (TASK_ERROR_CORRECTION, marked, correction),
        ):
            out.append(
                Record(
                    id=f"{record.id}#{task}#{k}",
                    source=record.source,
                    split=record.split,
                    task=task,
                    image=record.image,
                    prompt=prompt_for(task, prediction=shown),
                    answer=answer,
                    meta=dict(meta),
                )
            )
    return out


def read_predictions(path: str | Path, rejects: Rejects | None = None) -> dict[str, list[str]]:
    """Wrong predictions per id from an eval predictions JSONL file (``id``, ``gt``, ``pred``).

    Several rows per id (sampled predictions) are kept in file order, deduplicated. Malformed rows
    and rows whose ``gt`` contradicts an earlier row of the same id are counted in ``rejects``.
    """
    rejects = rejects if rejects is not None else Rejects()
    truths: dict[str, str] = {}
    wrong: dict[str, list[str]] = {}
    for row in iter_prediction_rows(path, rejects):
        if truths.setdefault(row.id, row.gt) != row.gt:
            rejects.add("predictions", "conflicting_gt", row.file, row.line, f"id {row.id}")
            continue
        if row.is_correct:
            continue
        predictions = wrong.setdefault(row.id, [])
        if row.pred not in predictions:
            predictions.append(row.pred)
    logger.info(
        "%s: %d ids, %d with wrong predictions (%d distinct wrong predictions)",
        path,
        len(truths),
        len(wrong),
        sum(map(len, wrong.values())),
    )
    return wrong


# --------------------------------------------------------------------------- #
# Synthetic errors
# --------------------------------------------------------------------------- #


def braces_balanced(tokens: Sequence[str]) -> bool:
    depth = 0
    for token in tokens:
        depth += (token == "{") - (token == "}")
        if depth < 0:
            return False
    return depth == 0


def _matching_brace(tokens: Sequence[str], open_index: int) -> int:
    depth = 0
    for index in range(open_index, len(tokens)):
        depth += (tokens[index] == "{") - (tokens[index] == "}")
        if depth == 0:
            return index
    raise ValueError("unbalanced braces")


def _is_plain(tokens: Sequence[str], index: int) -> bool:
    """A symbol, not a brace, a script marker or a command that takes a braced argument."""
    token = tokens[index]
    follows = tokens[index + 1] if index + 1 < len(tokens) else None
    takes_argument = token.startswith("\\") and follows == "{"
    return token not in _BRACES and token not in _SCRIPTS and not takes_argument


def _is_droppable(tokens: Sequence[str], index: int) -> bool:
    """A plain symbol that is not the only content of a group (no ``{ }`` left behind)."""
    alone = 0 < index < len(tokens) - 1 and tokens[index - 1] == "{" and tokens[index + 1] == "}"
    return _is_plain(tokens, index) and not alone


def _substitute(tokens: list[str], rng: random.Random, table: ConfusionTable) -> list[str] | None:
    def usable(token: str) -> list[str]:
        return [c for c in table.candidates(token) if c not in _BRACES and c not in RESERVED_TOKENS]

    indices = [i for i, t in enumerate(tokens) if t not in _BRACES and usable(t)]
    if not indices:
        return None
    index = rng.choice(indices)
    excluded = set(table.candidates(tokens[index])) - set(usable(tokens[index]))
    return tokens[:index] + [table.sample(tokens[index], rng, exclude=excluded)] + tokens[index + 1 :]


def _drop(tokens: list[str], rng: random.Random, table: ConfusionTable) -> list[str] | None:
    indices = [i for i in range(len(tokens)) if _is_droppable(tokens, i)]
    if not indices or len(tokens) < 2:
        return None
    index = rng.choice(indices)
    return tokens[:index] + tokens[index + 1 :]


def _duplicate(tokens: list[str], rng: random.Random, table: ConfusionTable) -> list[str] | None:
    indices = [i for i in range(len(tokens)) if _is_plain(tokens, i)]
    if not indices:
        return None
    index = rng.choice(indices)
    return tokens[: index + 1] + tokens[index:]


def _swap_script(tokens: list[str], rng: random.Random, table: ConfusionTable) -> list[str] | None:
    """``x ^ { 2 }`` -> ``x _ { 2 }`` and back."""
    indices = [i for i, t in enumerate(tokens) if t in _SCRIPTS]
    if not indices:
        return None
    index = rng.choice(indices)
    return tokens[:index] + ["_" if tokens[index] == "^" else "^"] + tokens[index + 1 :]


def _script_to_baseline(tokens: list[str], rng: random.Random, table: ConfusionTable) -> list[str] | None:
    """``x ^ { 2 }`` -> ``x 2``: the script's content written on the baseline."""
    indices = [i for i, t in enumerate(tokens) if t in _SCRIPTS and i + 1 < len(tokens)]
    if not indices:
        return None
    index = rng.choice(indices)
    if tokens[index + 1] != "{":
        return tokens[:index] + tokens[index + 1 :]
    close = _matching_brace(tokens, index + 1)
    return tokens[:index] + tokens[index + 2 : close] + tokens[close + 1 :]


@functools.cache
def _builtin_table() -> ConfusionTable:
    return ConfusionTable.builtin()  # built once; synthetic_errors only reads it


#: Synthetic error kinds and their relative weights (applicable kinds only are drawn from).
SYNTHETIC_KINDS = {
    _substitute: 0.45,
    _drop: 0.15,
    _duplicate: 0.1,
    _swap_script: 0.15,
    _script_to_baseline: 0.15,
}
#: Probability that a synthetic prediction carries a second error.
SECOND_ERROR_PROBABILITY = 0.25


def synthetic_errors(
    latex: str, rng: random.Random, n: int, confusions: ConfusionTable | None = None
) -> list[str]:
    """Up to ``n`` distinct plausible wrong predictions of ``latex`` (fewer when it allows fewer).

    Each carries one error (a second with probability :data:`SECOND_ERROR_PROBABILITY`): a
    confusable symbol from ``confusions`` (default: the built-in table), a dropped or duplicated
    token, a sub/superscript swapped, or a script's content moved to the baseline. Results always
    differ from ``latex``, are non-empty and keep braces balanced.
    """
    tokens = latex.split()
    if not tokens:
        raise ValueError("synthetic_errors needs a non-empty LaTeX string")
    if not braces_balanced(tokens):
        raise ValueError(f"unbalanced braces in {latex!r}")
    _check_tokens(tokens, "truth")
    table = confusions if confusions is not None else _builtin_table()
    results: list[str] = []
    for _ in range(20 * n + 20):
        if len(results) >= n:
            break
        candidate = tokens
        for step in range(2):
            if step and rng.random() >= SECOND_ERROR_PROBABILITY:
                break
            kinds = list(SYNTHETIC_KINDS)
            weights = list(SYNTHETIC_KINDS.values())
            while kinds:
                pick = rng.choices(range(len(kinds)), weights=weights)[0]
                mutated = kinds[pick](candidate, rng, table)
                if mutated is not None:
                    candidate = mutated
                    break
                del kinds[pick], weights[pick]
        text = " ".join(candidate)
        if candidate != tokens and candidate and braces_balanced(candidate) and text not in results:
            results.append(text)
    return results


def synthetic_samples(
    record: Record,
    rng: random.Random,
    n: int = 2,
    confusions: ConfusionTable | None = None,
    rejects: Rejects | None = None,
) -> list[Record]:
    """Error-driven records for ``record`` from ``n`` synthetic wrong predictions."""
    rejects = rejects if rejects is not None else Rejects()
    try:
        predictions = synthetic_errors(record.latex, rng, n, confusions)
    except ValueError as error:
        rejects.add(SOURCE, "unusable_truth", record.id, detail=str(error))
        return []
    return samples_from_predictions(record, predictions, n, origin="synthetic", rejects=rejects)


# --------------------------------------------------------------------------- #
# Entry point: text-only preview / export
# --------------------------------------------------------------------------- #


def _truth_records(args: argparse.Namespace, rejects: Rejects) -> list[tuple[Record, list[str], str]]:
    """(main record without image, wrong predictions, origin) for each input id."""
    jobs: list[tuple[Record, list[str], str]] = []
    if args.predictions:
        truths: dict[str, str] = {}
        for path in args.predictions:
            # First pass for the truths only; read_predictions below counts the rejects.
            for row in iter_prediction_rows(path, Rejects(log=False)):
                truths.setdefault(row.id, row.gt)
            for base_id, wrong in read_predictions(path, rejects).items():
                record = Record(base_id, "predictions", "train", TASK_MAIN, None, "", truths[base_id])
                jobs.append((record, wrong, "model"))
    if args.truths:
        rng = random.Random(args.seed)
        table = ConfusionTable.from_json(args.confusions) if args.confusions else None
        with open(args.truths, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                base_id, _, latex = line.rstrip("\n").partition("\t")
                if not base_id.strip() or not latex.strip():
                    rejects.add(SOURCE, "malformed_truth_line", args.truths, number)
                    continue
                try:
                    wrong = synthetic_errors(latex, rng, args.per_record, table)
                except ValueError as error:
                    rejects.add(SOURCE, "unusable_truth", args.truths, number, str(error))
                    continue
                record = Record(base_id, "truths", "train", TASK_MAIN, None, "", normalize_answer(latex))
                jobs.append((record, wrong, "synthetic"))
    return jobs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Write error-driven detection/correction samples (text only; meta.base_id names "
        "the image's record) from eval predictions or, synthetically, from ID<TAB>LaTeX truths."
    )
    parser.add_argument("--predictions", nargs="*", default=[], help="eval predictions JSONL files")
    parser.add_argument("--truths", help="ID<TAB>LaTeX lines (e.g. a CROHME caption file): synthetic mode")
    parser.add_argument("--confusions", help="confusion table JSON for synthetic mode (default built-in)")
    parser.add_argument("--per-record", type=int, default=2, help="wrong predictions used per record")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", required=True, help="output JSONL")
    args = parser.parse_args(argv)
    if not args.predictions and not args.truths:
        parser.error("give --predictions and/or --truths")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    rejects = Rejects()
    rows = []
    for record, wrong, origin in _truth_records(args, rejects):
        for sample in samples_from_predictions(record, wrong, args.per_record, origin, rejects):
            row = sample.to_row()
            del row["image"]
            rows.append(json.dumps(row, ensure_ascii=False))
    write_text_atomic(Path(args.output), "".join(f"{row}\n" for row in rows))
    print(f"wrote {len(rows)} error-driven samples to {args.output}; {rejects.summary()}")


if __name__ == "__main__":
    main()
