"""The report's plots: the numbers they draw, and that they are real PNG images."""

from __future__ import annotations

import io

from PIL import Image

from data_prep.tasks.error_driven.confusions import ConfusionTable
from eval.report import plots
from eval.scoring.metrics import score_pairs


def _size(png: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG"
        return image.size


def test_exprate_by_length_counts_each_bucket_per_set():
    short = [("a", "a"), ("a b", "x")]  # 1-5 tokens: 1 of 2 right
    long = [(" ".join("abcdefg"), " ".join("abcdefg"))]  # 6-10 tokens: 1 of 1
    labels, series = plots.length_series({"s1": score_pairs(short + long), "s2": score_pairs(short)})
    assert labels == ["1-5", "6-10"]
    assert series == {"s1": [(2, 1), (1, 1)], "s2": [(2, 1), (0, 0)]}
    width, height = _size(plots.exprate_by_length_png({"s1": score_pairs(short + long)}))
    assert width > 300 and height > 200


def test_confusion_matrix_keeps_the_heaviest_pairs():
    table = ConfusionTable.from_pairs([("1", "l")] * 3 + [("x", "\\times")] * 2 + [("1", "|"), ("$", "s")])
    rows, cols, counts = plots.confusion_matrix(table, top=2)
    assert rows == ["1", "x"] and cols == ["l", "\\times"]
    assert counts == [[3.0, 0.0], [0.0, 2.0]]
    assert _size(plots.confusion_heatmap_png(table))[0] > 200  # '$' is drawn as text, not mathtext
    assert plots.confusion_heatmap_png(ConfusionTable()) is None


def test_paired_plot_is_drawn_with_and_without_an_interval():
    for ci in ((-1.5, 4.0), None):
        width, height = _size(plots.paired_png("base", "tuned", [5, 1, 3, 1], (60.0, 80.0), ci))
        assert width > 500 and height > 200
