"""Symbol confusion tables: which token a reader is likely to write in place of another.

Two sources:

* :meth:`ConfusionTable.builtin` -- a hand-written table of visually similar handwritten symbols
  (``1 / l / |``, ``0 / o / O``, ``x / \\times / X`` ...; see :data:`BUILTIN_CONFUSABLE_GROUPS`).
  Every member of a group may be confused with every other member, with weight 1. It encodes
  common sense about handwriting, not measured rates.
* :meth:`ConfusionTable.from_prediction_files` -- counts of substituted token pairs (ground truth
  -> prediction) learned from evaluation predictions files through
  :func:`data_prep.tasks.error_driven.alignment.token_confusions`.

Tables serialise to JSON (``{"format": "hmer-confusions/1", "confusions": {gt: {pred: count}}}``).

Learn one from predictions files::

    python -m data_prep.tasks.error_driven.confusions --predictions outputs/eval/crohme2014.jsonl --output confusions.json
"""

from __future__ import annotations

import argparse
import json
import logging
import random
from collections.abc import Iterable
from pathlib import Path

from data_prep import io_utils
from data_prep.predictions import iter_prediction_rows
from data_prep.rejects import Rejects
from data_prep.tasks.error_driven.alignment import token_confusions

logger = logging.getLogger(__name__)

FORMAT = "hmer-confusions/1"

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
