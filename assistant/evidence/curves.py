"""Curve facts: what a training history shows, each fact citing the epochs that show it.

The knowledge base reasons over these measurements, not over raw series. Every threshold
that turns a series into a yes/no is a named value of ``thresholds.yaml``, with its reason.
"""
from __future__ import annotations

import math
import operator
from itertools import pairwise

from ..kb import KnowledgeBase
from ..kb.formulas import uniform_classes
from .facts import Fact
from .metrics import History

#: A metric's reported values: ``(epoch, value)``, epochs ascending.
Series = list[tuple[int, float]]
#: A point's value. Histories run to thousands of epochs, so the passes over them that can run at C
#: speed (``map`` with this, ``math.isfinite``) do.
_value = operator.itemgetter(1)

#: Every fact :func:`curve_facts` may emit (facts.yaml, kind ``curve``): declared here, next to the code
#: that measures them, so ``assistant kb check`` refuses a curve fact that nothing measures.
PRODUCES = frozenset({
    "epochs_run", "epochs_planned", "loss_is_nan", "nan_epoch", "loss_first", "loss_last", "loss_max", "loss_negative",
    "loss_zero", "loss_change_fraction", "loss_constant", "loss_flat", "loss_oscillates", "loss_roughness",
    "loss_diverges", "loss_steady_decline", "loss_still_falling", "loss_spikes", "loss_rebounds", "loss_at_uniform",
    "uniform_classes",
    "val_min_epoch", "val_gap_growing", "val_better_than_train",
    "accuracy_last", "accuracy_max", "accuracy_constant", "val_accuracy_last", "val_accuracy_max",
    "val_accuracy_constant", "metric_stuck_while_loss_falls", "recall_zero", "lr_dropped",
    # What of the sent history could not be read: ``gather`` states these from the metrics reader.
    "history_unreadable", "history_partial", "history_unread",
})


#: The yes/no signs a single epoch can show. The rest describe a curve's shape: a history of one
#: epoch leaves them unknown rather than absent (a first epoch is not a plateau).
ONE_EPOCH_SIGNS = frozenset({"loss_is_nan", "loss_negative", "loss_zero", "recall_zero", "history_partial"})


def told_absent(sign: str, history: History) -> bool:
    """Whether a history that does not show ``sign`` shows that it is absent."""
    return len(history.epochs) >= 2 or sign in ONE_EPOCH_SIGNS


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
    """Accumulates facts with the history's own provenance wording; ``limit`` reads a threshold."""

    def __init__(self, kb: KnowledgeBase, history: History) -> None:
        self.history = history
        self.limit = kb.thresholds.__getitem__
        self.facts: list[Fact] = []

    def add(self, key: str, value, note: str, epoch: int | None = None) -> None:
        source = self.history.where(epoch) if epoch is not None else f"the whole {self.history.format} history"
        self.facts.append(Fact(key, value, source, note))


def curve_facts(kb: KnowledgeBase, history: History) -> list[Fact]:
    """Measure the loss, accuracy and validation curves of one training history."""
    out = _Collector(kb, history)
    out.add("epochs_run", len(history.epochs), f"{len(history.epochs)} epochs in the history")
    if history.planned is not None:
        out.add("epochs_planned", history.planned, f"the log's epoch lines count to {history.planned}")
    loss = history.reported("loss")
    if loss:
        _loss_facts(out, loss)
        _validation_facts(out, loss, history.reported("val_loss"))
    for name in ("accuracy", "val_accuracy"):
        acc = history.reported(name)
        if acc:
            _accuracy_facts(out, name, acc, loss)
    recall = [value for _, value in history.reported("recall") if not math.isnan(value)]
    if recall and max(recall) < out.limit("recall_zero"):
        out.add("recall_zero", True, f"recall stayed at {_fmt(history.reported('recall')[-1][1])} in every epoch")
    lr = history.reported("learning_rate")
    if len(lr) > 1 and lr[-1][1] < lr[0][1] * 0.99:
        drop_epoch = next((epoch for epoch, value in lr if value < lr[0][1]), lr[-1][0])
        out.add("lr_dropped", True, f"learning rate fell from {_fmt(lr[0][1])} to {_fmt(lr[-1][1])}", drop_epoch)
    return out.facts


def _first_epoch_of(series: Series, value: float) -> int:
    return series[list(map(_value, series)).index(value)][0]


def _finite(series: Series) -> Series:
    """The points whose value is finite: the series itself when all are, as in most histories."""
    if all(map(math.isfinite, map(_value, series))):
        return series
    return [(epoch, value) for epoch, value in series if math.isfinite(value)]


def _loss_facts(out: _Collector, loss: Series) -> None:
    good = _finite(loss)
    if len(good) < len(loss):
        epoch, value = next((epoch, value) for epoch, value in loss if not math.isfinite(value))
        out.add("loss_is_nan", True, f"loss became {value} at epoch {epoch}", epoch)
        out.add("nan_epoch", epoch, f"first non-finite loss at epoch {epoch}", epoch)
    else:
        out.add("loss_is_nan", False, "every loss value is finite")
    if not good:
        return
    values = list(map(_value, good))
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
        _shape_facts(out, values, last_epoch, scale, ended=math.isfinite(loss[-1][1]))
        _uniform_facts(out, values, last_epoch)


def _shape_facts(out: _Collector, values: list[float], last_epoch: int, scale: float, *, ended: bool) -> None:
    """The shape of the finite losses; ``ended`` is false when the run went on into NaN, so it cannot be "still falling"."""
    steps = list(map(operator.sub, values[1:], values))  # each epoch's value less the one before
    low, high = min(values), max(values)
    span = high - low
    flat, identical = out.limit("flat_change") * scale, out.limit("identical") * scale
    if span <= identical:
        out.add("loss_constant", True, f"loss is {_fmt(values[0])} at every epoch")
    elif span < flat:
        out.add("loss_flat", True, f"loss stayed between {_fmt(low)} and {_fmt(high)} for all {len(values)} epochs")
    # A rise counts when it is a real part of the loss's range: at a converged 5e-4 the epoch-to-epoch
    # noise goes up half the time, yet it is nothing beside the fall from 0.1.
    rise = max(identical, out.limit("swing_min_share") * span)
    ups = sum([step > rise for step in steps]) / len(steps)
    if len(steps) >= 3 and ups >= out.limit("oscillation_share") and span > flat:
        swings = _mean([abs(b - a) for a, b in pairwise(steps)])
        roughness = swings / max(abs(_mean(values)), 1e-12)
        out.add("loss_oscillates", True, f"loss rose in {ups:.0%} of epochs instead of falling steadily", last_epoch)
        out.add("loss_roughness", round(roughness, 6), f"epoch-to-epoch swings average {roughness:.1%} of the loss")
    if values[-1] > values[0] * out.limit("diverge_factor") and values[-1] > low * 2:
        out.add("loss_diverges", True, f"loss grew from {_fmt(values[0])} to {_fmt(values[-1])}", last_epoch)
    _jump_facts(out, values, last_epoch)
    if not ended:
        return
    third = len(values) // 3
    drop = values[0] - values[-1]
    if len(values) >= 6 and drop > flat and (values[-third - 1] - values[-1]) / drop >= out.limit("steady_share"):
        out.add("loss_steady_decline", True,
                f"loss fell evenly from {_fmt(values[0])} to {_fmt(values[-1])}, still improving in the last "
                f"{third} epochs", last_epoch)
    recent = values[-3:]
    rate = (recent[0] - recent[-1]) / (len(recent) - 1) / max(abs(recent[0]), 1e-12)
    if rate > out.limit("still_falling") and span >= flat:
        out.add("loss_still_falling", True, f"loss was still falling by {rate:.1%} per epoch at the last epoch",
                last_epoch)


def _jump_facts(out: _Collector, values: list[float], last_epoch: int) -> None:
    """A loss that leaps up in one epoch, or climbs back after its best: steps that overshoot."""
    spike = 1 + out.limit("spike_share")
    jumps = [(i, b / a - 1) for i, (a, b) in enumerate(pairwise(values), 1) if a > 0 and b > a * spike]
    if jumps:
        i, rise = max(jumps, key=lambda jump: jump[1])
        out.add("loss_spikes", True, f"loss jumped {rise:.0%} in one epoch, from {_fmt(values[i - 1])} to "
                                     f"{_fmt(values[i])} (epoch {i + 1} of the history)", last_epoch)
    low = min(values)
    best = values.index(low)
    if len(values) - best >= 3 and low > 0 and values[-1] > low * (1 + out.limit("rebound_share")):
        out.add("loss_rebounds", True, f"training loss climbed back from its best, {_fmt(low)}, to {_fmt(values[-1])}",
                last_epoch)


def _uniform_facts(out: _Collector, values: list[float], last_epoch: int) -> None:
    """A cross-entropy stuck at ln(K) means the model predicts 1/K for every class."""
    last, tolerance = values[-1], out.limit("uniform_tolerance")
    k = uniform_classes(last, tolerance)
    if k is not None:
        uniform = math.log(k)
        if all(abs(value - uniform) <= 2 * tolerance * uniform for value in values[len(values) // 2:]):
            out.add("loss_at_uniform", True, f"loss {_fmt(last)} = ln {k}: the model predicts 1/{k} for every class",
                    last_epoch)
            out.add("uniform_classes", k, f"ln {k} = {uniform:.4f}")


def _validation_facts(out: _Collector, loss: Series, val: Series) -> None:
    val = _finite(val)
    if len(val) < 2:
        return
    values = list(map(_value, val))
    low, last = min(values), values[-1]
    best = _first_epoch_of(val, low)
    out.add("val_min_epoch", best, f"validation loss was lowest ({_fmt(low)}) at epoch {best}", best)
    train_last = loss[-1][1]
    trained = {epoch: value for epoch, value in loss if not math.isnan(value)}
    after = values[values.index(low):]
    rising = len(after) >= 3 and sum([b > a for a, b in pairwise(after)]) / (len(after) - 1) >= 0.5
    train_fell = trained.get(best) is not None and math.isfinite(train_last) and train_last < trained[best]
    if rising and last > low * (1 + out.limit("val_rise")) and train_fell and train_last < last:
        out.add("val_gap_growing", True,
                f"validation loss rose from {_fmt(low)} at epoch {best} to {_fmt(last)} "
                f"while training loss fell to {_fmt(train_last)}", val[-1][0])
    both = [(trained[epoch], value) for epoch, value in val if epoch in trained]
    below = out.limit("val_below_train")
    if len(both) >= 2 and sum([v < t * below for t, v in both]) / len(both) > 0.8:
        out.add("val_better_than_train", True,
                f"validation loss ({_fmt(last)}) stays below training loss ({_fmt(train_last)})")


def _accuracy_facts(out: _Collector, name: str, acc: Series, loss: Series) -> None:
    label = name.replace("_", " ")
    finite = _finite(acc)
    if not finite:
        return
    values = list(map(_value, finite))
    last, best = values[-1], max(values)
    out.add(f"{name}_last", round(last, 6), f"{label} {last:.4g} at the last epoch", acc[-1][0])
    out.add(f"{name}_max", round(best, 6), f"best {label} {best:.4g}", _first_epoch_of(finite, best))
    if len(values) >= 2 and best - min(values) <= out.limit("identical"):
        out.add(f"{name}_constant", True, f"{label} is exactly {last:.4g} at every epoch")
    if name == "accuracy" and len(values) >= 2 and loss:
        lv = list(map(_value, loss))
        # (an accuracy already at 100% has nowhere left to follow the loss)
        stuck = best < out.limit("stuck_metric") or (best - min(values) <= out.limit("stuck_metric_range")
                                                      and best < out.limit("perfect_accuracy"))
        fell = lv[0] > 0 and lv[-1] < lv[0] * out.limit("loss_fell_share")
        if all(map(math.isfinite, lv)) and fell and stuck:
            out.add("metric_stuck_while_loss_falls", True,
                    f"loss fell from {_fmt(lv[0])} to {_fmt(lv[-1])} but accuracy stayed at {best:.4g}")
