"""The swapped-image control: a copy of a test split in which every item shows another item's image.

A model that ignores the image (it answers from memorised formulas or the prompt) scores the same on
the control as on the real split; one that reads scores near zero. The proof of learning in
``make demo``, ``make bench-learning`` and ``make ablation-mini`` evaluates both.
"""

from __future__ import annotations

import shutil
from pathlib import Path


class ControlError(ValueError):
    """A split no control can be made of (one line for the user)."""


def donor_indices(answers: list[str]) -> list[int]:
    """For item ``i``, the next item (cyclically) whose answer differs, so a second rendering of
    the same formula is never the replacement."""
    n = len(answers)
    donors = []
    for i, answer in enumerate(answers):
        donor = next((j % n for j in range(i + 1, i + n) if answers[j % n] != answer), None)
        if donor is None:
            raise ControlError("every item has the same answer; no control is possible")
        donors.append(donor)
    return donors


def write_control_split(data_dir: Path, split: str, control_dir: Path, control: str) -> int:
    """Write split ``control`` of the dataset folder ``control_dir``: split ``split`` of
    ``data_dir`` with every image replaced by its donor's (:func:`donor_indices`). Scored by
    ``eval.evaluate`` like any test set. Returns the number of rows."""
    import pyarrow as pa

    from data_prep.dataset import read_split_table, write_split

    if Path(control_dir).resolve() == Path(data_dir).resolve():
        raise ControlError("the control goes into a dataset folder of its own, not into its input")
    table = read_split_table(data_dir, split)
    if table.num_rows < 2:
        raise ControlError(f"split {split} has {table.num_rows} row(s); a control needs two or more")
    try:
        donors = donor_indices(table.column("answer").to_pylist())
    except ControlError as err:
        raise ControlError(f"split {split}: {err}") from None
    swapped = table.column("image").take(pa.array(donors))
    field = table.schema.get_field_index("image")
    control_table = table.set_column(field, table.schema.field("image"), swapped)
    shutil.rmtree(Path(control_dir) / control, ignore_errors=True)
    write_split(control_dir, control, control_table)
    return table.num_rows
