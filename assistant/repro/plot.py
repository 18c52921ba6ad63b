"""The picture of a reproduction run: the loss curves of the baseline and of each fix, side by side."""
from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # no display: the worker only writes PNG bytes
from matplotlib import pyplot as plt  # noqa: E402


def _finite(values: Sequence[float | None]) -> list[float]:
    return [math.nan if v is None or not math.isfinite(v) else v for v in values]


def curves_png(histories: Mapping[str, Mapping[str, Sequence[float]]]) -> bytes:
    """Training and validation loss per epoch of every run, labelled by title; log scale when they span decades."""
    panels = [("loss", "Training loss"), ("val_loss", "Validation loss")]
    figure, axes = plt.subplots(1, len(panels), figsize=(10, 4), dpi=100)
    for axis, (key, title) in zip(axes, panels):
        shown = []
        for label, history in histories.items():
            values = _finite(history.get(key, []))
            if any(not math.isnan(v) for v in values):
                axis.plot(range(1, len(values) + 1), values, marker="o", markersize=3, label=label)
                shown += [v for v in values if not math.isnan(v)]
        if shown and min(shown) > 0 and max(shown) / min(shown) > 100:
            axis.set_yscale("log")
        axis.set_title(title)
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize="small")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()
