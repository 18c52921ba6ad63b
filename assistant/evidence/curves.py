"""Curve facts: what a training history shows, each fact citing the epochs that show it.

The knowledge base reasons over these measurements, not over raw series, so every
threshold that turns a series into a yes/no lives here, named and documented.
"""
from __future__ import annotations

import math
from itertools import pairwise

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


#: A metric's reported values: ``(epoch, value)``, epochs ascending.
Series = list[tuple[int, float]]


def _mean(values: list[float]) -> float:
    """The plain mean: huge losses give inf, where statistics.fmean would raise."""
    return sum(values) / len(values)


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
    out.add("epochs_run", len(history.epochs), f"{len(history.epochs)} epochs in the history")
    loss = history.reported("loss")
    if loss:
        _loss_facts(out, loss)
        _validation_facts(out, loss, history.reported("val_loss"))
    for name in ("accuracy", "val_accuracy"):
        acc = history.reported(name)
        if acc:
            _accuracy_facts(out, name, acc, loss)
    recall = [value for _, value in history.reported("recall") if not math.isnan(value)]
    if recall and max(recall) < 0.01:
        out.add("recall_zero", True, f"recall stayed at {_fmt(history.reported('recall')[-1][1])} in every epoch")
    lr = history.reported("learning_rate")
    if len(lr) > 1 and lr[-1][1] < lr[0][1] * 0.99:
        drop_epoch = next((epoch for epoch, value in lr if value < lr[0][1]), lr[-1][0])
        out.add("lr_dropped", True, f"learning rate fell from {_fmt(lr[0][1])} to {_fmt(lr[-1][1])}", drop_epoch)
    return out.facts


def _first_epoch_of(series: Series, value: float) -> int:
    return next(epoch for epoch, v in series if v == value)


def _loss_facts(out: _Collector, loss: Series) -> None:
    bad = next(((epoch, value) for epoch, value in loss if not math.isfinite(value)), None)
    if bad:
        epoch, value = bad
        out.add("loss_is_nan", True, f"loss became {value} at epoch {epoch}", epoch)
        out.add("nan_epoch", epoch, f"first non-finite loss at epoch {epoch}", epoch)
    else:
        out.add("loss_is_nan", False, "every loss value is finite")
    good = [(epoch, value) for epoch, value in loss if math.isfinite(value)]
    if not good:
        return
    values = [value for _, value in good]
    (first_epoch, first), (last_epoch, last) = good[0], good[-1]
    low, high = min(values), max(values)
    out.add("loss_first", first, f"loss {_fmt(first)} at epoch {first_epoch}", first_epoch)
    out.add("loss_last", last, f"loss {_fmt(last)} at epoch {last_epoch}", last_epoch)
    peak = _first_epoch_of(good, high)
    out.add("loss_max", high, f"loss peaked at {_fmt(high)} (epoch {peak})", peak)
    if low < 0:
        lowest = _first_epoch_of(good, low)
        out.add("loss_negative", True, f"loss went below zero: {_fmt(low)} at epoch {lowest}", lowest)
    if high < 1e-6:
        out.add("loss_zero", True, f"loss is {_fmt(high)} in every epoch")
    scale = max(abs(first), 1e-12)
    change = (first - last) / scale
    out.add("loss_change_fraction", round(change, 6),
            f"loss went from {_fmt(first)} to {_fmt(last)} ({change:+.1%} of its first value)")
    if len(good) >= 2:
        _shape_facts(out, values, last_epoch, scale)
        _uniform_facts(out, values, last_epoch)


def _shape_facts(out: _Collector, values: list[float], last_epoch: int, scale: float) -> None:
    steps = [b - a for a, b in pairwise(values)]
    low, high = min(values), max(values)
    span = high - low
    if span <= IDENTICAL * scale:
        out.add("loss_constant", True, f"loss is {_fmt(values[0])} at every epoch")
    elif span < FLAT_CHANGE * scale:
        out.add("loss_flat", True, f"loss stayed between {_fmt(low)} and {_fmt(high)} for all {len(values)} epochs")
    ups = sum(step > IDENTICAL * scale for step in steps) / len(steps)
    if len(steps) >= 3 and ups >= OSCILLATION_SHARE and span > FLAT_CHANGE * scale:
        swings = _mean([abs(b - a) for a, b in pairwise(steps)])
        roughness = swings / max(abs(_mean(values)), 1e-12)
        out.add("loss_oscillates", True, f"loss rose in {ups:.0%} of epochs instead of falling steadily", last_epoch)
        out.add("loss_roughness", round(roughness, 6), f"epoch-to-epoch swings average {roughness:.1%} of the loss")
    if values[-1] > values[0] * 1.5 and values[-1] > low * 2:
        out.add("loss_diverges", True, f"loss grew from {_fmt(values[0])} to {_fmt(values[-1])}", last_epoch)
    third = len(values) // 3
    drop = values[0] - values[-1]
    if len(values) >= 6 and drop > FLAT_CHANGE * scale and (values[-third - 1] - values[-1]) / drop >= STEADY_SHARE:
        out.add("loss_steady_decline", True,
                f"loss fell evenly from {_fmt(values[0])} to {_fmt(values[-1])}, still improving in the last "
                f"{third} epochs", last_epoch)
    recent = values[-3:]
    rate = (recent[0] - recent[-1]) / (len(recent) - 1) / max(abs(recent[0]), 1e-12)
    if rate > STILL_FALLING:
        out.add("loss_still_falling", True, f"loss was still falling by {rate:.1%} per epoch at the last epoch",
                last_epoch)


def uniform_classes(loss: float) -> int | None:
    """K when a loss sits at ln(K), the cross-entropy of a uniform guess over K classes; else None."""
    if not 0.5 < loss < 12:
        return None
    k = round(math.exp(loss))
    return k if k >= 2 and abs(loss - math.log(k)) <= UNIFORM_TOLERANCE * math.log(k) else None


def _uniform_facts(out: _Collector, values: list[float], last_epoch: int) -> None:
    """A cross-entropy stuck at ln(K) means the model predicts 1/K for every class."""
    last = values[-1]
    k = uniform_classes(last)
    if k is not None:
        uniform = math.log(k)
        if all(abs(value - uniform) <= 2 * UNIFORM_TOLERANCE * uniform for value in values[len(values) // 2:]):
            out.add("loss_at_uniform", True, f"loss {_fmt(last)} = ln {k}: the model predicts 1/{k} for every class",
                    last_epoch)
            out.add("uniform_classes", k, f"ln {k} = {uniform:.4f}")


def _validation_facts(out: _Collector, loss: Series, val: Series) -> None:
    val = [(epoch, value) for epoch, value in val if math.isfinite(value)]
    if len(val) < 2:
        return
    values = [value for _, value in val]
    low, last = min(values), values[-1]
    best = _first_epoch_of(val, low)
    out.add("val_min_epoch", best, f"validation loss was lowest ({_fmt(low)}) at epoch {best}", best)
    train_last = loss[-1][1]
    after = values[values.index(low):]
    rising = len(after) >= 3 and sum(b > a for a, b in pairwise(after)) / (len(after) - 1) >= 0.5
    if rising and last > low * (1 + VAL_RISE) and math.isfinite(train_last) and train_last < last:
        out.add("val_gap_growing", True,
                f"validation loss rose from {_fmt(low)} at epoch {best} to {_fmt(last)} "
                f"while training loss fell to {_fmt(train_last)}", val[-1][0])
    trained = {epoch: value for epoch, value in loss if not math.isnan(value)}
    both = [(trained[epoch], value) for epoch, value in val if epoch in trained]
    if len(both) >= 2 and sum(v < t * 0.9 for t, v in both) / len(both) > 0.8:
        out.add("val_better_than_train", True,
                f"validation loss ({_fmt(last)}) stays below training loss ({_fmt(train_last)})")


def _accuracy_facts(out: _Collector, name: str, acc: Series, loss: Series) -> None:
    label = name.replace("_", " ")
    finite = [(epoch, value) for epoch, value in acc if math.isfinite(value)]
    if not finite:
        return
    values = [value for _, value in finite]
    last, best = values[-1], max(values)
    out.add(f"{name}_last", round(last, 6), f"{label} {last:.4g} at the last epoch", acc[-1][0])
    out.add(f"{name}_max", round(best, 6), f"best {label} {best:.4g}", _first_epoch_of(finite, best))
    if len(values) >= 2 and best - min(values) <= IDENTICAL:
        out.add(f"{name}_constant", True, f"{label} is exactly {last:.4g} at every epoch")
    if name == "accuracy" and len(values) >= 2 and loss:
        lv = [value for _, value in loss]
        if all(map(math.isfinite, lv)) and lv[-1] < lv[0] * 0.8 and best < 0.05:
            out.add("metric_stuck_while_loss_falls", True,
                    f"loss fell from {_fmt(lv[0])} to {_fmt(lv[-1])} but accuracy stayed at {best:.4g}")
