"""Symbol confusion tables: which token a reader is likely to write in place of another.

Two sources:

* :meth:`ConfusionTable.builtin` -- a hand-written table of visually similar handwritten symbols
  (``1 / l / |``, ``0 / o / O``, ``x / \\times / X`` ...; see :data:`BUILTIN_CONFUSABLE_GROUPS`).
  Every member of a group may be confused with every other member, with weight 1. It encodes
  common sense about handwriting, not measured rates.
* :meth:`ConfusionTable.from_prediction_files` -- counts of substituted token pairs (ground truth
  -> prediction) learned from evaluation predictions files through
  :func:`data_prep.alignment.token_confusions`.

Tables serialise to JSON (``{"format": "hmer-confusions/1", "confusions": {gt: {pred: count}}}``).

Learn one from predictions files::

    python -m data_prep.confusions --predictions outputs/eval/crohme2014.jsonl --output confusions.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import random
from collections.abc import Iterable, Iterator
from pathlib import Path

from data_prep import io_utils
from data_prep.alignment import token_confusions
from data_prep.contract import normalize_answer
from data_prep.rejects import Rejects

logger = logging.getLogger(__name__)

FORMAT = "hmer-confusions/1"
#: Source name used for rejected prediction rows.
PREDICTIONS_SOURCE = "predictions"

#: Groups of symbols that look alike in handwriting; each member may be read as any other.
BUILTIN_CONFUSABLE_GROUPS: tuple[tuple[str, ...], ...] = (
    ("1", "l", "|", "I"),
    ("0", "o", "O"),
    ("x", "\\times", "X"),
    ("z", "2", "Z"),
    ("5", "s", "S"),
    ("9", "g", "q"),
    ("\\alpha", "a"),
    ("c", "C", "("),
    ("(", "["),
    (")", "]"),
    ("v", "V", "\\nu"),
    ("u", "U", "\\mu"),
    ("p", "P", "\\rho"),
    ("k", "K"),
    ("w", "W", "\\omega"),
    ("y", "Y", "\\gamma"),
    ("\\beta", "B"),
    ("\\theta", "0"),
    ("\\pi", "n"),
    ("+", "t", "\\pm"),
    ("\\cdot", "."),
    (",", "."),
    ("\\ldots", "\\cdots"),
    ("\\sum", "\\Sigma"),
    ("<", "\\leq"),
    (">", "\\geq"),
    ("=", "\\equiv"),
    ("e", "\\epsilon", "\\in"),
    ("b", "6"),
    ("4", "y"),
    ("7", "1"),
    ("3", "\\beta"),
    ("\\phi", "\\Phi"),
    ("\\prime", "'"),
)


@dataclasses.dataclass(frozen=True)
class PredictionRow:
    """One usable row of an evaluation predictions JSONL file."""

    id: str
    gt: str
    pred: str
    file: str
    line: int

    @property
    def is_correct(self) -> bool:
        """Exact match of the whitespace token sequences (the ExpRate criterion)."""
        return self.gt.split() == self.pred.split()


def iter_prediction_rows(path: str | Path, rejects: Rejects | None = None) -> Iterator[PredictionRow]:
    """Rows ``{"id", "gt", "pred", ...}`` of a predictions JSONL file; other keys are ignored.

    This is the format ``eval`` writes (``eval.predictions``); integer ids are read as text. Rows
    that are malformed (bad JSON, not an object, a missing or non-string ``id``/``gt``/``pred``, an
    empty ``id`` or ``gt``) or that record a generation failure (a non-empty ``error`` field) are
    counted in ``rejects`` with file, line and reason, and skipped.
    """
    rejects = rejects if rejects is not None else Rejects()
    path = Path(path)
    with path.open(encoding="utf-8") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                row = json.loads(text)
            except json.JSONDecodeError as error:
                rejects.add(PREDICTIONS_SOURCE, "invalid_json", path, number, str(error))
                continue
            if not isinstance(row, dict):
                rejects.add(PREDICTIONS_SOURCE, "not_an_object", path, number, type(row).__name__)
                continue
            missing = [key for key in ("id", "gt", "pred") if key not in row]
            if missing:
                rejects.add(PREDICTIONS_SOURCE, "missing_field", path, number, ", ".join(missing))
                continue
            if isinstance(row["id"], int) and not isinstance(row["id"], bool):
                row["id"] = str(row["id"])
            wrong = [key for key in ("id", "gt", "pred") if not isinstance(row[key], str)]
            if wrong:
                rejects.add(PREDICTIONS_SOURCE, "not_a_string", path, number, ", ".join(wrong))
                continue
            if not row["id"].strip() or not row["gt"].strip():
                rejects.add(PREDICTIONS_SOURCE, "empty_id_or_gt", path, number)
                continue
            if row.get("error"):
                # A failed generation (unreadable image, crash, missing output) is not a misreading.
                rejects.add(PREDICTIONS_SOURCE, "generation_error", path, number, str(row["error"]))
                continue
            yield PredictionRow(
                row["id"], normalize_answer(row["gt"]), normalize_answer(row["pred"]), str(path), number
            )


class ConfusionTable:
    """Weighted confusions ``gt token -> {predicted token: weight}``."""

    def __init__(self, counts: dict[str, dict[str, float]] | None = None) -> None:
        self.counts: dict[str, dict[str, float]] = {}
        for gt, preds in (counts or {}).items():
            for pred, weight in preds.items():
                self.add(gt, pred, weight)

    # -- building ---------------------------------------------------------------------------- #

    def add(self, gt: str, pred: str, weight: float = 1.0) -> None:
        if not gt or not pred or gt.split() != [gt] or pred.split() != [pred]:
            raise ValueError(f"confusion tokens must be single non-empty tokens, got {gt!r} -> {pred!r}")
        if weight <= 0:
            raise ValueError(f"confusion weight must be positive, got {weight} for {gt!r} -> {pred!r}")
        if gt == pred:
            return
        row = self.counts.setdefault(gt, {})
        row[pred] = row.get(pred, 0.0) + float(weight)

    @classmethod
    def builtin(cls) -> ConfusionTable:
        """The hand-written table of :data:`BUILTIN_CONFUSABLE_GROUPS` (weight 1 per pair)."""
        table = cls()
        for group in BUILTIN_CONFUSABLE_GROUPS:
            for gt in group:
                for pred in group:
                    if gt != pred and pred not in table.counts.get(gt, {}):
                        table.add(gt, pred)
        return table

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, str]]) -> ConfusionTable:
        table = cls()
        for gt, pred in pairs:
            table.add(gt, pred)
        return table

    @classmethod
    def from_prediction_files(
        cls, paths: Iterable[str | Path], rejects: Rejects | None = None
    ) -> ConfusionTable:
        """Count substituted pairs over the wrong predictions of evaluation predictions files."""
        rejects = rejects if rejects is not None else Rejects()
        table = cls()
        rows = wrong = 0
        for path in paths:
            for row in iter_prediction_rows(path, rejects):
                rows += 1
                if row.is_correct:
                    continue
                wrong += 1
                for gt, pred in token_confusions(row.gt, row.pred):
                    table.add(gt, pred)
        logger.info(
            "learned %d confusion pairs (%d substitutions) from %d wrong of %d prediction rows; %s",
            len(table),
            int(table.total()),
            wrong,
            rows,
            rejects.summary(),
        )
        return table

    def merged(self, other: ConfusionTable, weight: float = 1.0) -> ConfusionTable:
        """A new table: this one plus ``weight`` times ``other``."""
        table = ConfusionTable(self.counts)
        for gt, preds in other.counts.items():
            for pred, count in preds.items():
                table.add(gt, pred, count * weight)
        return table

    # -- reading ----------------------------------------------------------------------------- #

    def __len__(self) -> int:
        """Number of distinct (gt, pred) pairs."""
        return sum(len(preds) for preds in self.counts.values())

    def __contains__(self, token: object) -> bool:
        return token in self.counts

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ConfusionTable) and self.counts == other.counts

    def total(self) -> float:
        return sum(sum(preds.values()) for preds in self.counts.values())

    def candidates(self, token: str) -> dict[str, float]:
        """What ``token`` may be misread as, with weights (empty when unknown)."""
        return dict(self.counts.get(token, {}))

    def sample(self, token: str, rng: random.Random, exclude: Iterable[str] = ()) -> str | None:
        """A weighted random misreading of ``token`` (``None`` when it has none left)."""
        excluded = set(exclude)
        options = sorted((pred, w) for pred, w in self.counts.get(token, {}).items() if pred not in excluded)
        if not options:
            return None
        return rng.choices([p for p, _ in options], weights=[w for _, w in options])[0]

    def most_common(self, n: int | None = None) -> list[tuple[str, str, float]]:
        flat = [(gt, pred, w) for gt, preds in self.counts.items() for pred, w in preds.items()]
        flat.sort(key=lambda item: (-item[2], item[0], item[1]))
        return flat[:n] if n is not None else flat

    # -- serialisation ----------------------------------------------------------------------- #

    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "confusions": {gt: dict(sorted(preds.items())) for gt, preds in sorted(self.counts.items())},
        }

    @classmethod
    def from_dict(cls, data: dict) -> ConfusionTable:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"not a confusion table: expected an object with format {FORMAT!r}")
        confusions = data.get("confusions")
        if not isinstance(confusions, dict) or not all(
            isinstance(preds, dict) and all(isinstance(w, (int, float)) for w in preds.values())
            for preds in confusions.values()
        ):
            raise ValueError("confusion table: 'confusions' must map tokens to {token: number}")
        return cls(confusions)

    def to_json(self, path: str | Path) -> None:
        """Write atomically (temp file, then rename)."""
        io_utils.write_text_atomic(
            Path(path), json.dumps(self.to_dict(), ensure_ascii=False, indent=1) + "\n"
        )

    @classmethod
    def from_json(cls, path: str | Path) -> ConfusionTable:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not valid JSON ({error})") from error
        try:
            return cls.from_dict(data)
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from error


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Learn a symbol confusion table from evaluation predictions files (JSONL)."
    )
    parser.add_argument("--predictions", nargs="+", required=True, help="predictions JSONL files")
    parser.add_argument("--output", required=True, help="where to write the table (JSON)")
    parser.add_argument(
        "--with-builtin", action="store_true", help="add the built-in table (weight 1 per pair) to it"
    )
    parser.add_argument("--show", type=int, default=20, help="print the N most frequent confusions")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    rejects = Rejects()
    table = ConfusionTable.from_prediction_files(args.predictions, rejects)
    if args.with_builtin:
        table = table.merged(ConfusionTable.builtin())
    table.to_json(args.output)
    for gt, pred, weight in table.most_common(args.show):
        print(f"{weight:8g}  {gt} -> {pred}")
    print(f"wrote {len(table)} confusion pairs to {args.output}; {rejects.summary()}")


if __name__ == "__main__":
    main()
