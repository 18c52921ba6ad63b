"""Training histories, read from whatever the user has at hand.

People send what they have: a ``CSVLogger`` file, console output copied from a
notebook or a terminal, ``history.history``, ``RemoteMonitor`` payloads, or a
TensorBoard or Lightning CSV export.  Each reader below only lays out the cells
and says where each row came from (its index is named ``line``, ``epoch``,
``record`` or ``payload``); one shared path, :func:`_assemble`, turns the cells
into numbers, normalises metric names, merges repeated epochs and checks the
result.  So every format follows the same rules, and bad input is reported the
same way: an :class:`EvidenceError` naming the place, never a raw exception.
"""
from __future__ import annotations

import csv
import io
import json
import numbers
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .facts import EvidenceError

#: Longer histories are refused rather than read.
MAX_EPOCHS = 100_000

#: How :meth:`History.where` names each format's source.
_SOURCES = {
    "csvlogger": "the uploaded CSVLogger file",
    "console": "the pasted console log",
    "history": "the history.history dict",
    "records": "the per-epoch records",
    "remote_monitor": "the RemoteMonitor payloads",
    "tensorboard": "the TensorBoard scalar export",
    "lightning": "the Lightning metrics.csv",
}

_NUMBER = re.compile(r"[-+]?(?:(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?|nan|inf(?:inity)?)", re.I)
#: A CSV file's first line: comma-separated names (or numbers, when the header is missing).
_CSV_HEADER = re.compile(r"\s*(?:wall time|[^\s:,]*)\s*(?:,\s*(?:wall time|[^\s:,]*)\s*)+", re.I)
#: Cells that mean "not reported": CSVLogger's NA, an empty cell, JSON null.
_MISSING = (None, "", "NA")

#: One spelling per metric; names are compared lowercased, and each entry also
#: covers its ``val_`` form.
_RENAMES = {
    prefix + name: prefix + canonical
    for prefix in ("", "val_")
    for name, canonical in {
        "acc": "accuracy",
        "lr": "learning_rate",
        "mean_absolute_error": "mae",
        "mean_squared_error": "mse",
        "train_loss": "loss",
        "train_loss_epoch": "loss",
        "loss_epoch": "loss",
        "train_acc": "accuracy",
        "train_acc_epoch": "accuracy",
        "acc_epoch": "accuracy",
    }.items()
}
#: Keras numbers a repeated metric object: ``recall_1``, ``val_auc_3``.
_NUMBERED = r"^((?:val_)?(?:auc|precision|recall|f1_score|fbeta_score|(?:true|false)_(?:positives|negatives)))_\d+$"
#: Called ``accuracy`` unless the history also has a column by that name.
_ACCURACY_VARIANT = r"^(val_)?(?:binary|categorical|sparse_categorical)_accuracy$"
#: Bookkeeping columns, not metrics.
_IGNORED = ["step", "wall time", "time"]

# Console logs.  Progress bars redraw with ``\r`` or runs of ``\b``: each redraw
# is read as its own segment, and so is every ``Epoch k/N`` marker, even where a
# paste lost the newlines between epochs.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-_]|\[[0-9;]*m")
_MARKER = re.compile(r"Epoch\s+(\d{1,9})\s*/\s*\d+", re.I)
_SEGMENTS = re.compile(r"[\r\n\b]+|(?=Epoch\s+\d+\s*/\s*\d)", re.I)
_PROGRESS = re.compile(r"\s*(\d+)/(\d+)\b")
#: ``name: value`` at the start of a segment or after Keras's `` - `` separator;
#: the look-ahead leaves out ``ETA: 0s`` and ``ETA: 1:23``.
_ENTRY = re.compile(rf"(?:^|\s-)\s*([a-z_][\w.]*):\s*({_NUMBER.pattern})(?![\w.:])", re.I | re.M)


@dataclass(frozen=True, eq=False)
class History:
    """One training run's metrics per epoch, and which cells the user actually reported."""

    #: Float metrics indexed by the 1-based ``epoch``; cells not reported are NaN.
    frame: pd.DataFrame
    #: Same shape, True where the input had a value (a reported nan or inf counts).
    present: pd.DataFrame
    #: Which format it was read from: ``csvlogger``, ``console``, ``history``, ``records``,
    #: ``remote_monitor``, ``tensorboard`` or ``lightning``.
    format: str

    def where(self, epoch: int) -> str:
        """Say where a value came from, in words the user recognises."""
        return f"epoch {epoch} of {_SOURCES[self.format]}"


def parse_metrics(raw: str | bytes | dict | list, *, filename: str | None = None) -> History:
    """Read a training history in any supported format, detected from the value itself.

    ``filename`` names the metric of a TensorBoard export (``run-validation-tag-epoch_loss.csv``
    holds ``val_loss``).  Raises :class:`EvidenceError` with ``field="metrics"`` for input
    that cannot be read.
    """
    cells, format = _read(raw, filename)
    return _assemble(cells, format)


def _error(message: str) -> EvidenceError:
    return EvidenceError(message, field="metrics")


def _read(raw: object, filename: str | None) -> tuple[pd.DataFrame, str]:
    """Pick the reader for the value's type and content."""
    if isinstance(raw, (bytes, bytearray)):
        raw = _decode(bytes(raw))
    if isinstance(raw, str):
        text = raw.lstrip("\ufeff")
        stripped = text.strip()
        if not stripped:
            raise _error("the metrics are empty")
        if "\x00" in stripped:
            raise _error("the metrics contain binary data, not text")
        if stripped[0] == "{" or stripped[0] + stripped[-1] == "[]":
            raw = _load_json(stripped)
        elif _CSV_HEADER.fullmatch(stripped.partition("\n")[0]):
            return _read_csv(text.rstrip(), filename)
        else:
            return _read_console(stripped), "console"
    if isinstance(raw, dict):
        if "epoch" in raw and not any(isinstance(value, (list, tuple)) for value in raw.values()):
            return _read_records([raw], "payload"), "remote_monitor"
        return _read_history(raw), "history"
    if isinstance(raw, list):
        return _read_records(raw, "record"), "records"
    raise _error(f"expected metrics as text, a dict or a list, got {type(raw).__name__}")


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise _error(f"the metrics file is not UTF-8 text (byte {error.start} is not)") from None


def _load_json(text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise _error(
            f"the metrics look like JSON but are not valid: {error.msg}"
            f" at line {error.lineno}, column {error.colno}"
        ) from None
    except RecursionError:
        raise _error("the metrics JSON is nested too deeply") from None


def _read_csv(text: str, filename: str | None) -> tuple[pd.DataFrame, str]:
    """Read a CSVLogger, TensorBoard or Lightning CSV file; its header tells which."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        rows = [(reader.line_num, row) for row in reader if row]
    except csv.Error as error:
        raise _error(f"line {reader.line_num}: {error}") from None
    (_, header), body = rows[0], rows[1:]
    names = [name.strip().lower() for name in header]
    if any(_NUMBER.fullmatch(name) for name in names):
        raise _error("the CSV has no header: line 1 should name the columns, like epoch,loss,val_loss")
    if names[0] == "":
        names[0] = "epoch"  # the unnamed index column that pandas' DataFrame.to_csv writes
    if "" in names:
        raise _error(f"line 1: column {names.index('') + 1} has no name")
    for line, row in body:
        if len(row) != len(header):
            raise _error(f"line {line}: expected {len(header)} cells as in the header, found {len(row)}")

    if names == ["wall time", "step", "value"]:
        names, format = ["wall time", "epoch", _tensorboard_metric(filename)], "tensorboard"
    elif {"epoch", "step"} <= set(names):
        format = "lightning"
    else:
        format = "csvlogger"
    cells = np.array([row for _, row in body], dtype=object).reshape(len(body), len(names))
    return pd.DataFrame(cells, columns=names, index=pd.Index([line for line, _ in body], name="line")), format


def _tensorboard_metric(filename: str | None) -> str:
    """Name the one metric of a TensorBoard export from its file name; ``loss`` when there is none.

    TensorBoard names a download ``run-<run>-tag-<tag>.csv``; Keras logs its tags as
    ``epoch_<metric>`` and its validation run as ``validation``.
    """
    stem = re.sub(r"\.csv$", "", re.split(r"[\\/]", filename or "")[-1], flags=re.I)
    run, _, tag = stem.rpartition("-tag-")
    metric = tag.removeprefix("epoch_") or "loss"
    if "valid" in run.lower() and not metric.startswith("val_"):
        metric = "val_" + metric
    return metric


def _read_console(text: str) -> pd.DataFrame:
    """Read pasted Keras console output: the final progress line of each epoch."""
    text = _ANSI.sub("", text)
    numbered = _MARKER.search(text) is not None
    epochs: dict[int, tuple[bool, dict[str, str]]] = {}
    epoch = None
    for segment in _SEGMENTS.split(text):
        marker = _MARKER.match(segment)
        if marker:
            epoch = int(marker[1]) - 1
            segment = segment[marker.end() :]
        entries = dict(_ENTRY.findall(segment))
        progress = _PROGRESS.match(segment)
        if not entries or (progress and progress[1] != progress[2]):
            continue  # not a metrics line, or a redraw before the epoch's last step
        if not numbered:
            epoch = len(epochs)
        elif epoch is None:
            continue
        # The epoch's last line carries the val_ metrics; a later line without
        # them (model.evaluate output pasted along) must not replace it.
        validated = any(name.lower().startswith("val_") for name in entries)
        if validated or epoch not in epochs or not epochs[epoch][0]:
            epochs[epoch] = (validated, entries)
    if not epochs:
        raise _error('no epochs found: the pasted log has no "loss: <number>" entries')
    records = [{**entries, "epoch": epoch} for epoch, (_, entries) in epochs.items()]
    return _frame(records, pd.Index([epoch + 1 for epoch in epochs], name="epoch"))


def _read_history(history: dict) -> pd.DataFrame:
    """Read ``history.history``: each metric's list of per-epoch values."""
    if not history:
        raise _error("the history is empty")
    for name, values in history.items():
        if not isinstance(values, (list, tuple)):
            raise _error(f"metric {name!r} should be a list of per-epoch values, got {type(values).__name__}")
    lengths = {str(name): len(values) for name, values in history.items()}
    reference = "loss" if "loss" in lengths else next(iter(lengths))
    for name, length in lengths.items():
        if length != lengths[reference]:
            raise _error(f"metric {name!r} has {length} values but {reference!r} has {lengths[reference]}")
    columns = {str(name): list(values) for name, values in history.items()}
    return pd.DataFrame(columns, index=pd.RangeIndex(1, lengths[reference] + 1, name="epoch"), dtype=object)


def _read_records(items: list, noun: str) -> pd.DataFrame:
    """Read a list of per-epoch dicts (records, or RemoteMonitor payloads)."""
    for number, item in enumerate(items, 1):
        if not isinstance(item, dict):
            raise _error(f"{noun} {number} should be a dict of metric values, got {type(item).__name__}")
    return _frame(items, pd.RangeIndex(1, len(items) + 1, name=noun))


def _frame(records: list[dict], index: pd.Index) -> pd.DataFrame:
    """Lay out per-epoch dicts as cells; a key that a record lacks is None, i.e. not reported."""
    names = dict.fromkeys(name for record in records for name in record)
    columns = {str(name): [record.get(name) for record in records] for name in names}
    return pd.DataFrame(columns, index=index, dtype=object)


def _assemble(cells: pd.DataFrame, format: str) -> History:
    """Turn cells into a :class:`History`: the one path that every format goes through.

    ``cells`` holds text, numbers or None, one row per input row, its index saying
    where each row came from; an ``epoch`` column, if there is one, counts from 0.
    """
    names = _normalise_names(cells.columns)
    used = ~names.isin(_IGNORED)
    cells, names = cells.loc[:, used], names[used]
    is_epoch = np.asarray(names == "epoch")
    if len(cells) == 0:
        raise _error("the history is empty")
    if is_epoch.all():
        raise _error("no metrics found: expected columns such as loss, accuracy or val_loss")

    data = cells.to_numpy(dtype=object)
    missing = np.logical_or.reduce([np.equal(data, token) for token in _MISSING])
    numbers = _floats(data, missing, cells)
    epochs = _epochs(numbers[:, is_epoch], missing[:, is_epoch], cells.loc[:, is_epoch])
    values, present, names = numbers[:, ~is_epoch], ~missing[:, ~is_epoch], names[~is_epoch]
    if names.has_duplicates:  # e.g. Lightning's train_loss and train_loss_epoch
        values, present, names = _last_reported(values.T, present.T, names, sort=False)
        values, present = values.T, present.T
    if not (np.diff(epochs) > 0).all():  # repeated epochs (Lightning rows, resumed runs) or out of order
        values, present, epochs = _last_reported(values, present, epochs, sort=True)

    reported = present.any(axis=0)
    if not reported.any():
        raise _error("no metric values found: every cell is empty")
    index = pd.Index(epochs, name="epoch")
    columns = pd.Index(names[reported], dtype=object)
    return History(
        frame=pd.DataFrame(values[:, reported], index=index, columns=columns),
        present=pd.DataFrame(present[:, reported], index=index, columns=columns),
        format=format,
    )


def _normalise_names(columns: pd.Index) -> pd.Index:
    """Map every spelling of a metric to one name (``val_acc`` -> ``val_accuracy``)."""
    names = pd.Series(columns, dtype=object).map(lambda name: str(name).strip().lower())
    names = names.str.replace(_NUMBERED, r"\1", regex=True).map(lambda name: _RENAMES.get(name, name))
    accuracy = names.str.replace(_ACCURACY_VARIANT, r"\1accuracy", regex=True)
    renamed = (accuracy != names) & ~accuracy.isin(names)
    return pd.Index(np.where(renamed, accuracy, names), dtype=object)


def _floats(data: np.ndarray, missing: np.ndarray, cells: pd.DataFrame) -> np.ndarray:
    """Every cell as a float (NaN where not reported); raise at the first cell that is no number."""
    masked = np.where(missing, np.nan, data)
    try:
        if not (np.frompyfunc(type, 1, 1)(masked) == bool).any():  # float() would take True for 1.0
            return masked.astype(float)
    except (TypeError, ValueError, OverflowError):
        pass
    _reject(missing | np.frompyfunc(_is_number, 1, 1)(data).astype(bool), cells, "expected a number in column {}")
    return masked.astype(float)


def _is_number(cell: object) -> bool:
    """Whether a cell reads as a number: a real (not a bool) or text like ``0.69``, ``nan``, ``-inf``."""
    if isinstance(cell, str):
        return _NUMBER.fullmatch(cell.strip()) is not None
    if isinstance(cell, (bool, np.bool_)) or not isinstance(cell, numbers.Real):
        return False
    try:
        float(cell)
    except OverflowError:
        return False
    return True


def _epochs(numbers: np.ndarray, missing: np.ndarray, cells: pd.DataFrame) -> np.ndarray:
    """The 1-based epoch of each row: from a 0-based ``epoch`` column, else counted."""
    if numbers.shape[1] == 0:
        epochs = np.arange(len(numbers), dtype=float)
    else:
        epochs = numbers[:, 0]
        whole = ~missing[:, 0] & (epochs >= 0) & (epochs == np.floor(epochs))
        _reject(whole[:, None], cells, "expected a whole epoch number, counting from 0, in column {}")
    if len(epochs) and epochs.max() >= MAX_EPOCHS:
        raise _error(f"the history has more than {MAX_EPOCHS:,} epochs; at most {MAX_EPOCHS:,} can be read")
    return epochs.astype(np.int64) + 1


def _last_reported(
    values: np.ndarray, present: np.ndarray, keys: pd.Index | np.ndarray, *, sort: bool
) -> tuple[np.ndarray, np.ndarray, pd.Index]:
    """Merge rows that share a key: each cell keeps the last value reported for it."""
    rows = np.where(present, np.arange(len(keys))[:, None], -1)
    last = pd.DataFrame(rows).groupby(np.asarray(keys), sort=sort).max()
    picked = last.to_numpy()
    merged = np.take_along_axis(values, np.maximum(picked, 0), axis=0)
    return np.where(picked >= 0, merged, np.nan), picked >= 0, last.index


def _reject(ok: np.ndarray, cells: pd.DataFrame, problem: str) -> None:
    """Raise for the first cell, in reading order, that is not ok."""
    bad = np.argwhere(~ok)
    if len(bad):
        row, column = bad[0]
        shown = repr(cells.iat[row, column])
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        where = f"{cells.index.name} {cells.index[row]}"
        raise _error(f"{where}: {problem.format(cells.columns[column])}, got {shown}")
