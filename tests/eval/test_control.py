"""The swapped-image control (eval.control)."""

from __future__ import annotations

import pytest

from eval.control import ControlError, donor_indices, write_control_split


def test_each_item_takes_the_next_item_with_another_answer():
    # items 0 and 1 share a formula: 0 skips 1 and takes 2; 3 wraps round to 0.
    assert donor_indices(["a", "a", "b", "c"]) == [2, 2, 3, 0]


def test_no_control_when_every_answer_is_the_same():
    with pytest.raises(ControlError, match="same answer"):
        donor_indices(["x", "x", "x"])


def test_the_control_never_goes_into_its_input_folder(tmp_path):
    with pytest.raises(ControlError, match="not into its input"):
        write_control_split(tmp_path, "heldout", tmp_path, "control")
