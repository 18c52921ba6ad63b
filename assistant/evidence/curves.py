"""Curve facts: what a training history shows, each fact citing the epochs that show it.

The knowledge base reasons over these measurements, not over raw series, so every
threshold that turns a series into a yes/no lives here, named and documented.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .facts import Fact
from .metrics import History

#: Loss changed by less than this fraction of its first value over the whole run: "flat".
FLAT_CHANGE = 0.02
#: Consecutive values this close (relative) count as identical: frozen weights.
IDENTICAL = 1e-6
#: A loss within this relative distance of ln(K) is the loss of a uniform guess over K classes.
UNIFORM_TOLERANCE = 0.01
#: Share of epoch-to-epoch steps that go up before a falling curve counts as oscillating.
OSCILLATION_SHARE = 0.3
#: The validation loss rose this far (relative) above its minimum: the gap is growing.
VAL_RISE = 0.10
#: The last epochs still improved the loss by this fraction per epoch: training stopped early.
STILL_FALLING = 0.01
#: The last third of the run still made this share of the total improvement: a steady, slow decline
#: rather than a plateau.
STEADY_SHARE = 0.2


def _series(history: History, column: str) -> pd.Series | None:
    """The reported values of a column (non-finite values kept, missing cells dropped)."""
    if column not in history.frame:
        return None
    values = history.frame[column][history.present[column]]
    return values if len(values) else None


def _fmt(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    if value != 0 and (abs(value) >= 1e4 or abs(value) < 1e-3):
        return f"{value:.3g}"
    return f"{value:.4g}"


class _Collector:
    """Accumulates facts with the history's own provenance wording."""

    def __init__(self, history: History) -> None:
        self.history = history
        self.facts: list[Fact] = []

    def add(self, key: str, value, note: str, epoch: int | None = None) -> None:
        source = self.history.where(epoch) if epoch is not None else f"the whole {self.history.format} history"
        self.facts.append(Fact(key, value, source, note))


def curve_facts(history: History) -> list[Fact]:
    """Measure the loss, accuracy and validation curves of one training history."""
    out = _Collector(history)
    out.add("epochs_run", int(len(history.frame)), f"{len(history.frame)} epochs in the history")
    loss = _series(history, "loss")
    if loss is not None:
        _loss_facts(out, loss)
        _validation_facts(out, loss, _series(history, "val_loss"))
    for name in ("accuracy", "val_accuracy"):
        acc = _series(history, name)
        if acc is not None:
            _accuracy_facts(out, name, acc, loss)
    recall = _series(history, "recall")
    if recall is not None and float(np.nanmax(recall.to_numpy())) < 0.01:
        out.add("recall_zero", True, f"recall stayed at {_fmt(float(recall.iloc[-1]))} in every epoch")
    lr = _series(history, "learning_rate")
    if lr is not None and len(lr) > 1 and float(lr.iloc[-1]) < float(lr.iloc[0]) * 0.99:
        drop_epoch = int(lr.index[np.argmax(lr.to_numpy() < lr.iloc[0])])
        out.add("lr_dropped", True, f"learning rate fell from {_fmt(lr.iloc[0])} to {_fmt(lr.iloc[-1])}",
                drop_epoch)
    return out.facts


def _loss_facts(out: _Collector, loss: pd.Series) -> None:
    values = loss.to_numpy(dtype=float)
    finite = np.isfinite(values)
    if not finite.all():
        epoch = int(loss.index[np.argmin(finite)])
        bad = values[~finite][0]
        out.add("loss_is_nan", True, f"loss became {bad} at epoch {epoch}", epoch)
        out.add("nan_epoch", epoch, f"first non-finite loss at epoch {epoch}", epoch)
    else:
        out.add("loss_is_nan", False, "every loss value is finite")
    good = loss[finite]
    if good.empty:
        return
    first, last = float(good.iloc[0]), float(good.iloc[-1])
    low, high = float(good.min()), float(good.max())
    out.add("loss_first", first, f"loss {_fmt(first)} at epoch {int(good.index[0])}", int(good.index[0]))
    out.add("loss_last", last, f"loss {_fmt(last)} at epoch {int(good.index[-1])}", int(good.index[-1]))
    out.add("loss_max", high, f"loss peaked at {_fmt(high)} (epoch {int(good.idxmax())})", int(good.idxmax()))
    if low < 0:
        out.add("loss_negative", True, f"loss went below zero: {_fmt(low)} at epoch {int(good.idxmin())}",
                int(good.idxmin()))
    if high < 1e-6:
        out.add("loss_zero", True, f"loss is {_fmt(high)} in every epoch")
    scale = max(abs(first), 1e-12)
    change = (first - last) / scale
    out.add("loss_change_fraction", round(change, 6),
            f"loss went from {_fmt(first)} to {_fmt(last)} ({change:+.1%} of its first value)")
    if len(good) >= 2:
        _shape_facts(out, good, scale)
        _uniform_facts(out, good)


def _shape_facts(out: _Collector, good: pd.Series, scale: float) -> None:
    values = good.to_numpy(dtype=float)
    steps = np.diff(values)
    span = float(values.max() - values.min())
    if span <= IDENTICAL * scale:
        out.add("loss_constant", True, f"loss is {_fmt(values[0])} at every epoch")
    elif span < FLAT_CHANGE * scale:
        out.add("loss_flat", True, f"loss stayed between {_fmt(values.min())} and {_fmt(values.max())}"
                f" for all {len(values)} epochs")
    ups = float((steps > IDENTICAL * scale).mean())
    if len(steps) >= 3 and ups >= OSCILLATION_SHARE and span > FLAT_CHANGE * scale:
        roughness = float(np.abs(np.diff(steps)).mean() / max(abs(values.mean()), 1e-12))
        out.add("loss_oscillates", True,
                f"loss rose in {ups:.0%} of epochs instead of falling steadily", int(good.index[-1]))
        out.add("loss_roughness", round(roughness, 6), f"epoch-to-epoch swings average {roughness:.1%} of the loss")
    if values[-1] > values[0] * 1.5 and values[-1] > values.min() * 2:
        out.add("loss_diverges", True, f"loss grew from {_fmt(values[0])} to {_fmt(values[-1])}",
                int(good.index[-1]))
    third = len(values) // 3
    drop = values[0] - values[-1]
    if len(values) >= 6 and drop > FLAT_CHANGE * scale and (values[-third - 1] - values[-1]) / drop >= STEADY_SHARE:
        out.add("loss_steady_decline", True,
                f"loss fell evenly from {_fmt(values[0])} to {_fmt(values[-1])}, still improving in the last "
                f"{third} epochs", int(good.index[-1]))
    recent = values[-3:]
    if len(recent) >= 2:
        rate = float((recent[0] - recent[-1]) / (len(recent) - 1) / max(abs(recent[0]), 1e-12))
        if rate > STILL_FALLING:
            out.add("loss_still_falling", True,
                    f"loss was still falling by {rate:.1%} per epoch at the last epoch", int(good.index[-1]))


def _uniform_facts(out: _Collector, good: pd.Series) -> None:
    """A cross-entropy stuck at ln(K) means the model predicts 1/K for every class."""
    last = float(good.iloc[-1])
    if not 0.5 < last < 12:
        return
    k = int(round(math.exp(last)))
    if k >= 2 and abs(last - math.log(k)) <= UNIFORM_TOLERANCE * math.log(k):
        tail = good.iloc[len(good) // 2:]
        if (abs(tail - math.log(k)) <= 2 * UNIFORM_TOLERANCE * math.log(k)).all():
            out.add("loss_at_uniform", True,
                    f"loss {_fmt(last)} = ln {k}: the model predicts 1/{k} for every class",
                    int(good.index[-1]))
            out.add("uniform_classes", k, f"ln {k} = {math.log(k):.4f}")


def _validation_facts(out: _Collector, loss: pd.Series, val: pd.Series | None) -> None:
    if val is None:
        return
    val = val[np.isfinite(val.to_numpy(dtype=float))]
    if len(val) < 2:
        return
    best = int(val.idxmin())
    low, last = float(val.min()), float(val.iloc[-1])
    out.add("val_min_epoch", best, f"validation loss was lowest ({_fmt(low)}) at epoch {best}", best)
    train_last = loss.iloc[-1]
    after = val.to_numpy(dtype=float)[list(val.index).index(best):]
    rising = len(after) >= 3 and (np.diff(after) > 0).mean() >= 0.5
    if rising and last > low * (1 + VAL_RISE) and math.isfinite(train_last) and train_last < last:
        out.add("val_gap_growing", True,
                f"validation loss rose from {_fmt(low)} at epoch {best} to {_fmt(last)} "
                f"while training loss fell to {_fmt(float(train_last))}", int(val.index[-1]))
    both = pd.concat([loss, val], axis=1, keys=["loss", "val"]).dropna()
    if len(both) >= 2 and (both["val"] < both["loss"] * 0.9).mean() > 0.8:
        out.add("val_better_than_train", True,
                f"validation loss ({_fmt(last)}) stays below training loss ({_fmt(float(train_last))})")


def _accuracy_facts(out: _Collector, name: str, acc: pd.Series, loss: pd.Series | None) -> None:
    label = name.replace("_", " ")
    values = acc.to_numpy(dtype=float)
    values = values[np.isfinite(values)]
    if not len(values):
        return
    last, best = float(values[-1]), float(values.max())
    out.add(f"{name}_last", round(last, 6), f"{label} {last:.4g} at the last epoch", int(acc.index[-1]))
    out.add(f"{name}_max", round(best, 6), f"best {label} {best:.4g}", int(acc.idxmax()))
    if len(values) >= 2 and float(values.max() - values.min()) <= IDENTICAL:
        out.add(f"{name}_constant", True, f"{label} is exactly {last:.4g} at every epoch")
    if name == "accuracy" and loss is not None and len(values) >= 2:
        lv = loss.to_numpy(dtype=float)
        if np.isfinite(lv).all() and lv[-1] < lv[0] * 0.8 and best < 0.05:
            out.add("metric_stuck_while_loss_falls", True,
                    f"loss fell from {_fmt(lv[0])} to {_fmt(lv[-1])} but accuracy stayed at {best:.4g}")
