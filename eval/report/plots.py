"""The report's pictures, drawn with matplotlib and returned as PNG bytes.

* :func:`exprate_by_length_png`: ExpRate per truth-length bucket, one bar per set (n on each bar);
* :func:`confusion_heatmap_png`: the symbol confusion matrix (truth rows, predicted columns) of the
  most often substituted tokens;
* :func:`paired_png`: two systems on the same items: both right / only A / only B / both wrong,
  and the ExpRate difference B - A with its paired bootstrap 95% interval.

Callers embed the bytes in the HTML report as ``data:`` URIs and also write them beside it.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

from data_prep.tasks.error_driven.confusions import ConfusionTable
from eval.scoring.metrics import Scores, bucket_labels

#: Colour per set, in order (colour-blind safe, Okabe-Ito).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    # No creation date in the metadata, so the same data gives the same bytes.
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    _pyplot().close(fig)
    return buffer.getvalue()


def _label(token: str) -> str:
    """A token as plain text on an axis (``$`` would start matplotlib's mathtext)."""
    return token.replace("$", r"\$")


def length_series(scores_by_set: Mapping[str, Scores]) -> tuple[list[str], dict[str, list[tuple[int, int]]]]:
    """The length buckets any set has, and per set its ``(n, exact)`` in each of them."""
    labels = [b for b in ["0", *bucket_labels()] if any(b in s.by_length for s in scores_by_set.values())]
    series = {
        name: [tuple(s.by_length.get(b, (0, 0))) for b in labels]  # type: ignore[misc]
        for name, s in scores_by_set.items()
    }
    return labels, series


def exprate_by_length_png(scores_by_set: Mapping[str, Scores]) -> bytes:
    plt = _pyplot()
    labels, series = length_series(scores_by_set)
    fig, ax = plt.subplots(figsize=(max(4.5, 0.7 * len(labels) + 1.5), 3.4))
    width = 0.8 / max(1, len(series))
    for i, (name, cells) in enumerate(series.items()):
        xs = [j + (i - (len(series) - 1) / 2) * width for j in range(len(labels))]
        rates = [100 * exact / n if n else 0.0 for n, exact in cells]
        bars = ax.bar(xs, rates, width, label=name, color=PALETTE[i % len(PALETTE)])
        for bar, (n, _) in zip(bars, cells):
            if n:
                ax.annotate(
                    f"n={n}",
                    (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center",
                    va="bottom",
                    fontsize=7,
                )
    ax.set_xticks(range(len(labels)), labels)
    ax.set_xlabel("truth length (tokens)")
    ax.set_ylabel("ExpRate (%)")
    ax.set_ylim(0, 110)
    ax.set_title("ExpRate by answer length")
    ax.legend(fontsize=8, loc="upper right")
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def confusion_matrix(table: ConfusionTable, top: int = 15) -> tuple[list[str], list[str], list[list[float]]]:
    """Truth tokens (rows) and predicted tokens (columns) of the ``top`` heaviest pairs, and counts."""
    pairs = table.most_common()
    rows: list[str] = []
    cols: list[str] = []
    for gt, pred, _ in pairs:
        if len(rows) < top and gt not in rows:
            rows.append(gt)
        if len(cols) < top and pred not in cols:
            cols.append(pred)
    counts = [[table.candidates(gt).get(pred, 0.0) for pred in cols] for gt in rows]
    return rows, cols, counts


def confusion_heatmap_png(table: ConfusionTable, top: int = 15) -> bytes | None:
    """None when there is no substitution to show."""
    if not len(table):
        return None
    plt = _pyplot()
    rows, cols, counts = confusion_matrix(table, top)
    fig, ax = plt.subplots(figsize=(2.2 + 0.28 * len(cols), 1.2 + 0.26 * len(rows)))
    image = ax.imshow(counts, cmap="Reds", aspect="auto")
    ax.set_xticks(range(len(cols)), [_label(c) for c in cols], rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), [_label(r) for r in rows], fontsize=8)
    peak = max(max(r) for r in counts) or 1
    for i, row in enumerate(counts):
        for j, value in enumerate(row):
            if value:
                colour = "white" if value > peak / 2 else "black"
                ax.text(j, i, f"{value:g}", ha="center", va="center", fontsize=7, color=colour)
    ax.set_xlabel("predicted")
    ax.set_ylabel("truth")
    ax.set_title("Symbol confusions (substitutions)")
    fig.colorbar(image, ax=ax, fraction=0.04)
    return _png(fig)


def paired_png(
    name_a: str,
    name_b: str,
    counts: Sequence[int],
    exprates: tuple[float, float],
    ci: tuple[float, float] | None,
) -> bytes:
    """``counts``: both right, only A right, only B right, both wrong."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2), gridspec_kw={"width_ratios": [3, 2]})
    names = ["both right", f"only A right\n({name_a})", f"only B right\n({name_b})", "both wrong"]
    colours = ["#009E73", PALETTE[0], PALETTE[1], "#999999"]
    bars = left.bar(range(4), counts, color=colours)
    left.bar_label(bars, fontsize=8)
    left.set_xticks(range(4), names, fontsize=7)
    left.set_ylabel("items")
    left.set_title("Items, paired")
    a, b = exprates
    diff = b - a
    # The difference, not the two rates: its interval is what says whether B beats A.
    right.axhline(0, color="#999999", linewidth=1)
    if ci is not None:
        right.errorbar(
            [0],
            [diff],
            yerr=[[max(0.0, diff - ci[0])], [max(0.0, ci[1] - diff)]],
            fmt="o",
            color="black",
            capsize=8,
        )
    else:
        right.plot([0], [diff], "o", color="black")
    right.set_xlim(-1, 1)
    right.set_xticks([0], [f"B - A\n(A {a:.2f}, B {b:.2f})"], fontsize=8)
    right.set_ylabel("ExpRate difference (points)")
    title = f"B - A = {diff:+.2f} points"
    if ci is not None:
        title += f"\n95% CI {ci[0]:+.2f} to {ci[1]:+.2f}"
    right.set_title(title, fontsize=9)
    return _png(fig)
