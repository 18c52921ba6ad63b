"""Training histories, read from whatever the user has at hand.

People send what they have: a ``CSVLogger`` file, console output copied from a
notebook or a terminal, ``history.history``, ``RemoteMonitor`` payloads, or a
TensorBoard or Lightning CSV export.  Each reader below only lays out the cells
and says where each row came from (a ``line``, ``epoch``, ``record`` or
``payload``); one shared path, :func:`_assemble`, turns the cells into numbers,
normalises metric names, merges repeated epochs and checks the result.  So every
format follows the same rules, and bad input is reported the same way: an
:class:`EvidenceError` naming the place, never a raw exception.

Plain Python, no pandas: a web worker reads a history on every turn, and lists of
a few thousand floats need neither its import time nor its memory.
"""
from __future__ import annotations

import csv
import io
import json
import math
import numbers
import re
from dataclasses import dataclass

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

    #: The 1-based epochs, ascending.
    epochs: list[int]
    #: Each metric's value at each epoch; None where the input had no value (a reported nan or inf is a float).
    columns: dict[str, list[float | None]]
    #: Which format it was read from: ``csvlogger``, ``console``, ``history``, ``records``,
    #: ``remote_monitor``, ``tensorboard`` or ``lightning``.
    format: str

    def reported(self, name: str) -> list[tuple[int, float]]:
        """``(epoch, value)`` for every epoch that reported the metric; empty for a metric not in the history."""
        return [(epoch, value) for epoch, value in zip(self.epochs, self.columns.get(name, ())) if value is not None]

    def where(self, epoch: int) -> str:
        """Say where a value came from, in words the user recognises."""
        return f"epoch {epoch} of {_SOURCES[self.format]}"


@dataclass(frozen=True)
class _Cells:
    """A reader's output: cells as the user wrote them, a column per name, and where each row came from."""

    names: list[str]
    #: One list per name, a cell per row: text, a number, or None.
    columns: list[list[object]]
    #: What a row is called in messages (``line``, ``epoch``, ``record``, ``payload``), and each row's number.
    noun: str
    rows: list[int]

    def place(self, row: int) -> str:
        return f"{self.noun} {self.rows[row]}"


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


def _read(raw: object, filename: str | None) -> tuple[_Cells, str]:
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


def _read_csv(text: str, filename: str | None) -> tuple[_Cells, str]:
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
    columns = [list(column) for column in zip(*(row for _, row in body))] or [[] for _ in names]
    return _Cells(names, columns, "line", [line for line, _ in body]), format


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


def _read_console(text: str) -> _Cells:
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
    return _from_records(records, "epoch", [epoch + 1 for epoch in epochs])


def _read_history(history: dict) -> _Cells:
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
    return _Cells([str(name) for name in history], [list(values) for values in history.values()], "epoch",
                  list(range(1, lengths[reference] + 1)))


def _read_records(items: list, noun: str) -> _Cells:
    """Read a list of per-epoch dicts (records, or RemoteMonitor payloads)."""
    for number, item in enumerate(items, 1):
        if not isinstance(item, dict):
            raise _error(f"{noun} {number} should be a dict of metric values, got {type(item).__name__}")
    return _from_records(items, noun, list(range(1, len(items) + 1)))


def _from_records(records: list[dict], noun: str, rows: list[int]) -> _Cells:
    """Lay out per-epoch dicts as cells; a key that a record lacks is None, i.e. not reported."""
    names = dict.fromkeys(name for record in records for name in record)
    return _Cells([str(name) for name in names], [[record.get(name) for record in records] for name in names],
                  noun, rows)


def _assemble(cells: _Cells, format: str) -> History:
    """Turn cells into a :class:`History`: the one path that every format goes through.

    An ``epoch`` column, if there is one, counts from 0.
    """
    names = _normalise_names(cells.names)
    used = [i for i, name in enumerate(names) if name not in _IGNORED]
    if not cells.rows:
        raise _error("the history is empty")
    if all(names[i] == "epoch" for i in used):
        raise _error("no metrics found: expected columns such as loss, accuracy or val_loss")

    numbers = dict(zip(used, _floats(cells, used)))
    epoch_column = next((i for i in used if names[i] == "epoch"), None)
    epochs = _epochs(cells, epoch_column, numbers.get(epoch_column))
    columns: dict[str, list[float | None]] = {}
    for i in used:
        if names[i] != "epoch":  # a name seen before (Lightning's train_loss and train_loss_epoch): merged
            columns[names[i]] = _merged(columns[names[i]], numbers[i]) if names[i] in columns else numbers[i]
    if any(later <= earlier for earlier, later in zip(epochs, epochs[1:])):  # repeated (Lightning, resumed runs)
        epochs, columns = _by_epoch(epochs, columns)

    columns = {name: values for name, values in columns.items() if any(value is not None for value in values)}
    if not columns:
        raise _error("no metric values found: every cell is empty")
    return History(epochs, columns, format)


def _normalise_names(columns: list[str]) -> list[str]:
    """Map every spelling of a metric to one name (``val_acc`` -> ``val_accuracy``)."""
    names = [re.sub(_NUMBERED, r"\1", name.strip().lower()) for name in columns]
    names = [_RENAMES.get(name, name) for name in names]
    taken = set(names)
    accuracy = [re.sub(_ACCURACY_VARIANT, r"\1accuracy", name) for name in names]
    return [renamed if renamed != name and renamed not in taken else name for name, renamed in zip(names, accuracy)]


def _floats(cells: _Cells, used: list[int]) -> list[list[float | None]]:
    """Every used column as floats, None where not reported.

    Raises at the first cell, in reading order, that is no number.
    """
    out, bad = [], None
    for position, i in enumerate(used):
        if set(map(type, cells.columns[i])) <= {float}:  # history.history's lists: nothing to read, just copy
            out.append(list(cells.columns[i]))
            continue
        column: list[float | None] = []
        for row, cell in enumerate(cells.columns[i]):
            number = None if cell in _MISSING else _number(cell)
            if number is None and cell not in _MISSING:
                bad = min(bad or (row, position, i), (row, position, i))
                break
            column.append(number)
        out.append(column)
    if bad is not None:
        row, _, i = bad
        raise _error(f"{cells.place(row)}: expected a number in column {cells.names[i]}, "
                     f"got {_shown(cells.columns[i][row])}")
    return out


def _number(cell: object) -> float | None:
    """A cell as a float when it reads as a number: a real (not a bool) or text like ``0.69``, ``nan``, ``-inf``."""
    if isinstance(cell, str):
        return float(cell) if _NUMBER.fullmatch(cell.strip()) else None
    if isinstance(cell, bool) or not isinstance(cell, numbers.Real):
        return None
    try:
        return float(cell)
    except OverflowError:
        return None


def _shown(cell: object) -> str:
    shown = repr(cell)
    return shown if len(shown) <= 40 else shown[:37] + "..."


def _epochs(cells: _Cells, column: int | None, numbers: list[float | None] | None) -> list[int]:
    """The 1-based epoch of each row: from the 0-based ``numbers`` of the ``epoch`` column, else counted."""
    if numbers is None:
        numbers = [float(row) for row in range(len(cells.rows))]
    for row, number in enumerate(numbers):
        if number is None or not number >= 0 or not (number == math.inf or number.is_integer()):
            raise _error(f"{cells.place(row)}: expected a whole epoch number, counting from 0, in column "
                         f"{cells.names[column]}, got {_shown(cells.columns[column][row])}")
    if numbers and max(numbers) >= MAX_EPOCHS:
        raise _error(f"the history has more than {MAX_EPOCHS:,} epochs; at most {MAX_EPOCHS:,} can be read")
    return [int(number) + 1 for number in numbers]


def _merged(earlier: list[float | None], later: list[float | None]) -> list[float | None]:
    """Two columns of one metric as one: each cell keeps the later column's value where it has one."""
    return [b if b is not None else a for a, b in zip(earlier, later)]


def _by_epoch(epochs: list[int], columns: dict[str, list[float | None]]
              ) -> tuple[list[int], dict[str, list[float | None]]]:
    """Rows merged per epoch, in epoch order: each cell keeps the last value reported for that epoch."""
    order = sorted(set(epochs))
    position = {epoch: n for n, epoch in enumerate(order)}
    merged = {}
    for name, values in columns.items():
        cells: list[float | None] = [None] * len(order)
        for epoch, value in zip(epochs, values):
            if value is not None:
                cells[position[epoch]] = value
        merged[name] = cells
    return order, merged
