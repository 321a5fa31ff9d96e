"""The learning-curve plot: held-out ExpRate against training step, one line per run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def plot_learning_curve(
    curves: Mapping[str, Sequence[dict[str, Any]]], path: Path, title: str
) -> Path | None:
    """Write ``path`` (PNG, atomically) from ``{label: [{"step", "exprate"}]}``; None when no curve has
    a point (a run that never validated)."""
    if not any(curves.values()):
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from data_prep.io_utils import atomic_output

    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=110)
    for label, points in curves.items():
        if points:
            ax.plot([p["step"] for p in points], [p["exprate"] for p in points], marker="o", label=label)
    ax.set_xlabel("training step")
    ax.set_ylabel("ExpRate (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_output(Path(path)) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return Path(path)
