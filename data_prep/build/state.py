"""What the dataset build saves beside its shards so a resumed build reports the whole split:
per-shard statistics and the rejections so far, as JSON."""

from __future__ import annotations

import collections
import dataclasses
from typing import Any

from data_prep.contract import Record
from data_prep.rejects import Reject, Rejects


def rejects_to_state(rejects: Rejects) -> dict[str, Any]:
    return {
        "counts": [[s, r, n] for (s, r), n in rejects.counts.items()],
        "examples": [dataclasses.asdict(x) for items in rejects.examples.values() for x in items],
    }


def rejects_from_state(state: dict[str, Any] | None, rejects: Rejects) -> Rejects:
    """Restore counts and examples saved with a shard into ``rejects`` (which is returned)."""
    if state:
        for source, reason, n in state["counts"]:
            rejects.counts[(source, reason)] = n
        for example in state["examples"]:
            reject = Reject(**example)
            rejects.examples[(reject.source, reject.reason)].append(reject)
    return rejects


# --------------------------------------------------------------------------- #
# Statistics of one shard (saved beside it so a resumed build reports the whole split)
# --------------------------------------------------------------------------- #


@dataclasses.dataclass
class ShardStats:
    rows: collections.Counter = dataclasses.field(default_factory=collections.Counter)  # "source|task" -> n
    latex_lengths: list[int] = dataclasses.field(default_factory=list)
    answer_lengths: dict[str, list[int]] = dataclasses.field(default_factory=dict)
    widths: list[int] = dataclasses.field(default_factory=list)
    heights: list[int] = dataclasses.field(default_factory=list)
    vocab: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    main_ids: list[str] = dataclasses.field(default_factory=list)
    index: list[list[str]] = dataclasses.field(default_factory=list)  # test sets: id, exact, dhash, formula
    contamination: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    #: Records the readers gave (main or, from ``sharegpt``, any task): what reject shares count.
    inputs: int = 0
    #: Source -> images whose ink polarity was inverted (light ink on dark made dark on light).
    inverted: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    #: ``answers: published``: reason -> answers kept with that problem, and the first few.
    kept_answer_problems: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    kept_answer_examples: list[str] = dataclasses.field(default_factory=list)

    def add_row(self, source: str, record: Record) -> None:
        self.rows[f"{source}|{record.task}"] += 1
        self.answer_lengths.setdefault(record.task, []).append(len(record.answer.split()))

    def to_json(self) -> dict[str, Any]:
        # Not dataclasses.asdict: it rebuilds a Counter from (key, value) pairs, counting the pairs.
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ShardStats:
        stats = cls(**data)
        stats.rows = collections.Counter(stats.rows)
        stats.vocab = collections.Counter(stats.vocab)
        stats.inverted = collections.Counter(stats.inverted)
        stats.kept_answer_problems = collections.Counter(stats.kept_answer_problems)
        return stats
