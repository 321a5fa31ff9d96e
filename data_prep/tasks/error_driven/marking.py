"""Edits and marked predictions: the detection answer (marked spans) and the correction answer (edit lines), and their inverses."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from data_prep.contract import (
    DELETED,
    ERROR_END,
    ERROR_START,
    normalize_answer,
)
from data_prep.tasks.error_driven.alignment import align, error_regions

SOURCE = "error_driven"
ARROW = "->"
#: Tokens a prediction or truth may not contain: they would make the marked text or the edit
#: lines ambiguous.
RESERVED_TOKENS = frozenset({ERROR_START, ERROR_END, DELETED, ARROW})
EDIT_KINDS = ("replace", "delete", "insert")
_KIND_BY_KEYWORD = {"REPLACE:": "replace", "DELETE:": "delete", "INSERT:": "insert"}
BRACES = frozenset({"{", "}"})
SCRIPTS = ("^", "_")


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


def check_tokens(tokens: Sequence[str], what: str) -> None:
    reserved = RESERVED_TOKENS.intersection(tokens)
    if reserved:
        raise ValueError(f"{what} contains reserved token(s) {sorted(reserved)}")


def _regions(truth: str, prediction: str):
    gt, pred = truth.split(), prediction.split()
    check_tokens(gt, "truth")
    check_tokens(pred, "prediction")
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
