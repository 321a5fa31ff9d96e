"""Screening a training record against the test sets (the recipe's contamination policy)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from data_prep.build.contamination import ContaminationIndex, Match
from data_prep.build.records import Prepared, where_of
from data_prep.build.state import ShardStats
from data_prep.rejects import Rejects

if TYPE_CHECKING:
    from data_prep.build.recipe import ContaminationSpec


def passes_contamination(
    policy: ContaminationSpec,
    index: ContaminationIndex,
    source: str,
    prepared: Prepared,
    current: ShardStats,
    excluded: Rejects,
) -> bool:
    """Whether a training record may be kept under the recipe's contamination ``policy``; every
    match with a test set is recorded in ``current``, an excluded record counted in ``excluded``."""
    record = prepared.record
    matches: list[tuple[Match, str]] = []
    if policy.image != "off":
        match = index.image_match(prepared.print_)
        if match is not None:
            matches.append((match, policy.image))
    # A rendered formula is the formula itself: it follows its own (stricter) policy.
    formula_action = policy.rendered_formula if record.meta.get("rendered") else policy.formula
    if formula_action != "off":
        match = index.formula_match(record.latex)
        if match is not None:
            matches.append((match, formula_action))
    keep = True
    for match, action in matches:
        reason = "contaminated_formula" if match.kind == "formula" else "contaminated_image"
        current.contamination.append(
            {
                "train_source": source,
                "train_id": record.id,
                "kind": match.kind,
                "test_set": match.test_set,
                "test_id": match.test_id,
                "distance": match.distance,
                "excluded": action == "exclude" and keep,
                "rendered": bool(record.meta.get("rendered")),
            }
        )
        if action == "exclude" and keep:
            file, line = where_of(record)
            excluded.add(source, reason, file, line, f"{record.id}: {match.describe()}")
            keep = False
    return keep
