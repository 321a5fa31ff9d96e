"""What building one split produced (:class:`SplitResult`) and whether it may be kept (:func:`split_problem`)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from data_prep.build.state import ShardStats, rejects_from_state, rejects_to_state
from data_prep.rejects import Rejects

if TYPE_CHECKING:
    from data_prep.build.stream import SplitPlan


@dataclasses.dataclass
class SplitResult:
    name: str
    shards: list[str]
    stats: list[ShardStats]
    reader_rejects: Rejects  # what the readers refused
    rejects: Rejects  # what the build refused (unreadable image, duplicate id)
    task_rejects: Rejects  # auxiliary records that could not be derived
    excluded: Rejects  # training records dropped as test-set contamination
    #: For a holdout carved from a training source: its reader's rejections are counted once, in
    #: ``train`` (the split reading the rest of the source), not again here.
    reader_rejects_in: str | None = None

    @property
    def input_rejects(self) -> Rejects:
        """Reader and build rejections together: the share checked by ``max_reject_fraction``."""
        merged = Rejects(log=False)
        parts = (self.rejects,) if self.reader_rejects_in else (self.reader_rejects, self.rejects)
        for part in parts:
            rejects_from_state(rejects_to_state(part), merged)
        return merged

    @property
    def input_rows(self) -> int:
        """Rows made from the readers' records (auxiliary rows derived from them not counted)."""
        return sum(s.inputs for s in self.stats)

    @property
    def rows(self) -> int:
        return sum(sum(s.rows.values()) for s in self.stats)


def split_problem(
    plan: SplitPlan, result: SplitResult, results: list[SplitResult], limit: float | None
) -> str | None:
    """Why ``result`` cannot be kept (no rows at all; too large a share rejected), or ``None``."""
    rejects = result.input_rejects
    reasons = ", ".join(f"{r}: {n}" for r, n in rejects.by_reason().items())
    if result.rows == 0:
        if len(rejects):
            return f"split {plan.name!r} has no rows: all {len(rejects)} items were rejected ({reasons})"
        if len(result.excluded):
            return (
                f"split {plan.name!r} has no rows: all {len(result.excluded)} records were excluded as "
                "test-set contamination (see the contamination section of the report)"
            )
        where = ", ".join(f"{s.name} ({s.reader} in {s.root}, split {s.split!r})" for s in plan.sources)
        return f"split {plan.name!r} has no rows: the reader found nothing to read in {where}"
    seen = result.input_rows + len(rejects)
    if plan.is_train:  # a holdout's rows came from the same inputs as its reader's rejections
        holdouts = {s.holdout.name for s in plan.sources if s.holdout}
        seen += sum(r.input_rows for r in results if r.name in holdouts)
    if limit is not None and len(rejects) / seen > limit:
        share = len(rejects) / seen
        return (
            f"split {plan.name!r}: {len(rejects)} of {seen} records rejected "
            f"({share:.1%} > {limit:.1%}); reasons: {reasons}"
        )
    return None
