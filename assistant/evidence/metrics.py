"""Training histories, read from whatever the user has at hand.

People send what they have: a ``CSVLogger`` file (comma, semicolon or tab separated), console
output copied from a notebook or a terminal (finished epochs, or a progress bar stopped inside
one), ``history.history`` as JSON or as Python prints it, ``RemoteMonitor`` payloads, a TensorBoard
or Lightning CSV export, the epoch table that nolearn, skorch and fastai print, tqdm and Lightning
progress bars, or the lines a custom training loop prints (``epoch 3: loss 0.69``), often with
their own words around the log.  Each reader below only lays out the cells and says where each
row came from (a ``line``, ``epoch``, ``record`` or ``payload``); one shared path,
:func:`_assemble`, turns the cells into numbers, normalises metric names, merges repeated epochs
and checks the result.  So every format follows the same rules, and bad input is reported the
same way: an :class:`EvidenceError` naming the place, never a raw exception.  What a reader left
out of a log it could otherwise read (an unfinished epoch, an unreadable row) is listed in
:attr:`History.skipped`, so the reply can say so.

Plain Python, no pandas: a web worker reads a history on every turn, and lists of
a few thousand floats need neither its import time nor its memory.  Python reprs are read with
:func:`ast.literal_eval` on a sanitised copy, never executed.
"""
from __future__ import annotations

import codecs
import csv
import io
import json
import math
import numbers
import re
import warnings
from dataclasses import dataclass, replace

from ..kb import syntax
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
    "table": "the pasted table of epochs",
    "progress_bar": "the pasted progress bars",
    "printed": "the lines your training loop printed",
}

_NUMBER = re.compile(r"[-+]?(?:(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?|nan|inf(?:inity)?)", re.I)
#: A CSV file's first line: comma-separated names (or numbers, when the header is missing).
_CSV_HEADER = re.compile(r"\s*(?:wall time|[^\s:,]*)\s*(?:,\s*(?:wall time|[^\s:,]*)\s*)+", re.I)
#: The first line of each delimited file, by its delimiter: ``CSVLogger(separator=";")`` and TSV
#: name every column (the comma's looser pattern is the one files have always been read by).
_HEADERS = {
    ",": _CSV_HEADER,
    ";": re.compile(r"\s*(?:wall time|[^\s:;,]*)\s*(?:;\s*(?:wall time|[^\s:;,]+)\s*)+", re.I),
    "\t": re.compile(r"[ \r]*(?:wall time|[^\s:]*) *(?:\t *(?:wall time|[^\s:]+) *)+\r?", re.I),
}
#: A decimal comma, as a spreadsheet in a European locale saves a semicolon-separated file.
_DECIMAL_COMMA = re.compile(r"\s*-?\d+,\d+(?:e[-+]?\d+)?\s*", re.I)
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
        "train_accuracy": "accuracy",
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
_MARKER = re.compile(r"Epoch\s+(\d{1,9})\s*/\s*(\d{1,9})", re.I)
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
    #: ``remote_monitor``, ``tensorboard``, ``lightning``, ``table``, ``progress_bar`` or ``printed``.
    format: str
    #: What was left out of a log that was otherwise read, each as a phrase for the reply
    #: ("line 7 was left out (...)", "epoch 3 was still running, ..."); empty when all of it was read.
    skipped: tuple[str, ...] = ()
    #: The epochs the run was set to train, from a console log's ``Epoch k/N`` lines; None when the
    #: history does not say. People paste a piece of a log: one epoch of ``Epoch 1/50`` is not a short run.
    planned: int | None = None

    def reported(self, name: str) -> list[tuple[int, float]]:
        """``(epoch, value)`` for every epoch that reported the metric; empty for a metric not in the history."""
        column = self.columns.get(name, ())
        if None not in column:  # the usual case, done at C speed: a 1,000-epoch history is read several times a turn
            return list(zip(self.epochs, column))
        return [(epoch, value) for epoch, value in zip(self.epochs, column) if value is not None]

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
    #: What the reader left out, as :attr:`History.skipped` says it.
    skipped: tuple[str, ...] = ()
    #: The epochs the run was set to train, as :attr:`History.planned` says it.
    planned: int | None = None

    def place(self, row: int) -> str:
        return f"{self.noun} {self.rows[row]}"


#: A Keras console log among a message's words: a line that starts an epoch.
_CONSOLE_LOG = re.compile(r"^\W*Epoch \d+/\d+", re.MULTILINE)


def pasted_log(words: str) -> str | None:
    """The Keras console log a person pasted among their words, as metrics text; None without one.

    People write one message: what they see, their code, and part of the log. Code fences are
    dropped so that the epochs inside them read as lines of the log.
    """
    return words.replace("```", "\n") if _CONSOLE_LOG.search(words) else None


def parse_metrics(raw: str | bytes | dict | list, *, filename: str | None = None, lenient: bool = False) -> History:
    """Read a training history in any supported format, detected from the value itself.

    ``filename`` names the metric of a TensorBoard export (``run-validation-tag-epoch_loss.csv``
    holds ``val_loss``).  Raises :class:`EvidenceError` with ``field="metrics"`` for input
    that cannot be read.  With ``lenient``, the rows of a CSV file that cannot be read are left
    out and listed in :attr:`History.skipped` instead of refusing the file (what a person who
    pasted a log wants: the rest read, and to be told what was not).
    """
    if isinstance(raw, (bytes, bytearray)):
        raw = decode_text(bytes(raw))
        if looks_binary(raw):
            raise _error("the metrics file is not UTF-8 or UTF-16 text but binary data (an image or a saved model?)")
    if isinstance(raw, str):
        return _parse_text(raw, filename, lenient)
    cells, format = _read_value(raw)
    return _assemble(cells, format)


def _error(message: str) -> EvidenceError:
    return EvidenceError(message, field="metrics")


def _read_value(raw: object) -> tuple[_Cells, str]:
    """Pick the reader for a parsed (JSON or Python literal) value by its type."""
    if isinstance(raw, dict):
        if "epoch" in raw and not any(isinstance(value, (list, tuple)) for value in raw.values()):
            return _read_records([raw], "payload"), "remote_monitor"
        return _read_history(raw), "history"
    if isinstance(raw, list):
        return _read_records(raw, "record"), "records"
    raise _error(f"expected metrics as text, a dict or a list, got {type(raw).__name__}")


def _parse_text(raw: str, filename: str | None, lenient: bool) -> History:
    """Read text: JSON or a Python repr, a delimited file, Keras console output, or what :func:`_salvaged` finds."""
    text = _repaired(raw)
    stripped = text.strip()
    if not stripped:
        raise _error("the metrics are empty")
    if "\x00" in stripped:
        raise _error("the metrics contain binary data, not text")
    if stripped[0] == "{" or stripped[0] + stripped[-1] == "[]":
        try:
            value = _load_json(stripped)
        except EvidenceError as error:
            value = _python_literal(stripped)  # print(history.history): single quotes, nan, np.float32(...)
            if value is None:
                return _salvaged(text, error)
        return _assemble(*_read_value(value))
    first = stripped.partition("\n")[0]
    delimiter = next((mark for mark, header in _HEADERS.items() if header.fullmatch(first)), None)
    if delimiter is not None:
        return _assemble(*_read_csv(text.rstrip(), filename, delimiter, lenient), lenient)
    try:
        return _assemble(_read_console(stripped), "console")
    except EvidenceError as error:
        return _salvaged(text, error)


def decode_text(data: bytes) -> str:
    """Bytes as text, whatever wrote them: UTF-8 (with or without a BOM), UTF-16 (PowerShell's ``>``
    writes it with a BOM; without one it is recognised by its NUL bytes), else Windows-1252 or
    Latin-1, which read any byte.  Never raises: binary data comes back with its NUL bytes, for
    the reader to refuse in words.
    """
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8):].decode("utf-8", errors="replace")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", errors="replace")
    sample = data[:4096]
    if len(sample) >= 4:
        even, odd = sample[0::2].count(0), sample[1::2].count(0)
        half = len(sample) // 2
        if odd >= 0.4 * half and even <= 0.05 * half:
            return data.decode("utf-16-le", errors="replace")
        if even >= 0.4 * half and odd <= 0.05 * half:
            return data.decode("utf-16-be", errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if b"\x00" in data:
        return data.decode("latin-1")
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


#: Control characters that no text file holds (a terminal log may hold tabs, backspaces and ANSI escapes).
_BINARY = re.compile(r"[\x00-\x07\x0e-\x1a\x1c-\x1f]")


def looks_binary(text: str) -> bool:
    """Whether decoded bytes are binary data (an image, a saved model) rather than text."""
    return _BINARY.search(text[:65536]) is not None


def _utf16_misread(text: str) -> bool:
    """Whether text is UTF-16 read as UTF-8 (a browser's ``file.text()``): a NUL in every other character."""
    sample = text[:4096]
    nuls = [i % 2 for i, char in enumerate(sample) if char == "\x00"]
    if len(nuls) < 0.3 * len(sample) or len(nuls) < 2:
        return False
    odd = sum(nuls)
    return odd <= 0.05 * len(nuls) or odd >= 0.95 * len(nuls)


def _repaired(text: str) -> str:
    """The text without its BOM, and UTF-16 that was read as UTF-8 put right."""
    if "\x00" in text and _utf16_misread(text):
        text = text.replace("\x00", "").lstrip("\ufffd")
    return text.lstrip("\ufeff")


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


def _read_csv(text: str, filename: str | None, delimiter: str = ",", lenient: bool = False) -> tuple[_Cells, str]:
    """Read a CSVLogger, TensorBoard or Lightning CSV file, or its semicolon or tab separated form.

    The header tells which format it is.

    With ``lenient``, a row whose cells do not match the header is left out (and said so) instead of refused.
    """
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
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
    skipped = []
    for line, row in body:
        if len(row) != len(header):
            problem = f"expected {len(header)} cells as in the header, found {len(row)}"
            if not lenient:
                raise _error(f"line {line}: {problem}")
            skipped.append(f"line {line} was left out ({problem})")
    body = [(line, row) for line, row in body if len(row) == len(header)]
    if delimiter == ";":  # 0,6931 from a spreadsheet saved in a European locale
        body = [(line, [cell.replace(",", ".") if _DECIMAL_COMMA.fullmatch(cell) else cell for cell in row])
                for line, row in body]

    if names == ["wall time", "step", "value"]:
        names, format = ["wall time", "epoch", _tensorboard_metric(filename)], "tensorboard"
    elif {"epoch", "step"} <= set(names):
        format = "lightning"
    else:
        format = "csvlogger"
    columns = [list(column) for column in zip(*(row for _, row in body))] or [[] for _ in names]
    return _Cells(names, columns, "line", [line for line, _ in body], tuple(skipped)), format


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
    """Read pasted Keras console output: the final progress line of each epoch.

    An epoch that never reached its last step (a log copied while it trained) is read from its
    last redraw, and said so; without ``Epoch k/N`` lines, a step count that starts again starts
    a new epoch.
    """
    text = _ANSI.sub("", text)
    numbered = _MARKER.search(text) is not None
    epochs: dict[int, tuple[bool, dict[str, str]]] = {}
    #: Each epoch's last redraw before its last step: its ``step/steps`` and entries.
    unfinished: dict[int, tuple[str, dict[str, str]]] = {}
    epoch, counted, open_step = None, 0, None
    for segment in _SEGMENTS.split(text):
        marker = _MARKER.match(segment)
        if marker:
            epoch = int(marker[1]) - 1
            segment = segment[marker.end() :]
        entries = dict(_ENTRY.findall(segment))
        progress = _PROGRESS.match(segment)
        if not entries:
            continue  # not a metrics line
        if progress and progress[1] != progress[2]:  # a redraw before the epoch's last step
            if not numbered:
                if open_step is None or int(progress[1]) <= open_step:
                    epoch, counted = counted, counted + 1
                open_step = int(progress[1])
            if epoch is not None:
                unfinished[epoch] = (f"{progress[1]} of {progress[2]}", entries)
            continue
        if not numbered:
            if open_step is None:
                epoch, counted = counted, counted + 1
            open_step = None
        elif epoch is None:
            continue
        # The epoch's last line carries the val_ metrics; a later line without
        # them (model.evaluate output pasted along) must not replace it.
        validated = any(name.lower().startswith("val_") for name in entries)
        if validated or epoch not in epochs or not epochs[epoch][0]:
            epochs[epoch] = (validated, entries)
    skipped = []
    for epoch, (step, entries) in unfinished.items():
        if epoch not in epochs:
            epochs[epoch] = (False, entries)
            skipped.append(f"epoch {epoch + 1} was still running, so its values are those at step {step}")
    if not epochs:
        raise _error('no epochs found: the pasted log has no "loss: <number>" entries')
    order = sorted(epochs)
    records = [{**epochs[epoch][1], "epoch": epoch} for epoch in order]
    planned = max((int(marker[2]) for marker in _MARKER.finditer(text)), default=None)
    return replace(_from_records(records, "epoch", [epoch + 1 for epoch in order]), skipped=tuple(skipped),
                   planned=planned)


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


def _assemble(cells: _Cells, format: str, lenient: bool = False) -> History:
    """Turn cells into a :class:`History`: the one path that every format goes through.

    An ``epoch`` column, if there is one, counts from 0.  With ``lenient``, rows with a cell that
    is no number are left out and listed in :attr:`History.skipped`, unless no row is left.
    """
    if not cells.rows:
        raise _error("the history is empty")
    names = _normalise_names(cells.names)
    used = [i for i, name in enumerate(names) if name not in _IGNORED]
    if all(names[i] == "epoch" for i in used):
        raise _error("no metrics found: expected columns such as loss, accuracy or val_loss")
    if lenient:
        cells = _without_unreadable_rows(cells, names, used)

    numbers = dict(zip(used, _floats(cells, used)))
    epoch_column = next((i for i in used if names[i] == "epoch"), None)
    epochs = _epochs(cells, epoch_column, numbers.get(epoch_column))
    columns: dict[str, list[float | None]] = {}
    for i in used:
        if names[i] != "epoch":  # a name seen before (Lightning's train_loss and train_loss_epoch): merged
            columns[names[i]] = _merged(columns[names[i]], numbers[i]) if names[i] in columns else numbers[i]
    if any(later <= earlier for earlier, later in zip(epochs, epochs[1:])):  # repeated (Lightning, resumed runs)
        epochs, columns = _by_epoch(epochs, columns)

    columns = {name: values for name, values in columns.items() if values.count(None) < len(values)}
    if not columns:
        raise _error("no metric values found: every cell is empty")
    skipped = tuple(sorted(cells.skipped, key=_line_order))
    if len(skipped) > _SKIPPED_SHOWN:
        skipped = (*skipped[:_SKIPPED_SHOWN - 1], f"{len(skipped) - _SKIPPED_SHOWN + 1} more were left out")
    return History(epochs, columns, format, skipped, cells.planned)


#: How many of the things left out a history lists one by one.
_SKIPPED_SHOWN = 4


def _line_order(left_out: str) -> float:
    """Rows left out in the order of their lines (a reader and :func:`_assemble` each leave some out)."""
    line = re.match(r"line (\d+) ", left_out)
    return int(line[1]) if line else math.inf


def _without_unreadable_rows(cells: _Cells, names: list[str], used: list[int]) -> _Cells:
    """The cells less each row that has a cell that is no number (or no whole epoch), each such row said in ``skipped``.

    When no row would be left, the cells come back whole, for the strict reading to say what is wrong.
    """
    epoch_column = next((i for i in used if names[i] == "epoch"), None)
    keep, skipped = [], list(cells.skipped)
    for row in range(len(cells.rows)):
        problem = None
        for i in used:
            cell = cells.columns[i][row]
            number = None if cell in _MISSING else _number(cell)
            if i == epoch_column and (number is None or not number >= 0
                                      or not (number == math.inf or number.is_integer())):
                problem = f"expected a whole epoch number in column {cells.names[i]}, got {_shown(cell)}"
            elif number is None and cell not in _MISSING:
                problem = f"expected a number in column {cells.names[i]}, got {_shown(cell)}"
            if problem:
                skipped.append(f"{cells.place(row)} was left out ({problem})")
                break
        else:
            keep.append(row)
    if len(keep) == len(cells.rows) or not keep:
        return cells
    return _Cells(cells.names, [[column[row] for row in keep] for column in cells.columns], cells.noun,
                  [cells.rows[row] for row in keep], tuple(skipped))


def _normalise_names(columns: list[str]) -> list[str]:
    """Map every spelling of a metric to one name (``val_acc`` -> ``val_accuracy``, ``valid_loss`` -> ``val_loss``)."""
    names = [re.sub(_NUMBERED, r"\1", name.strip().lower()) for name in columns]
    if {"train_loss", "valid_loss"} <= set(names):  # fastai and skorch: their other metrics are validation metrics
        names = [f"val_{name}" if _unprefixed_metric(name) else name for name in names]
    names = [_prefixed(name) for name in names]
    names = [_RENAMES.get(name, name) for name in names]
    taken = set(names)
    accuracy = [re.sub(_ACCURACY_VARIANT, r"\1accuracy", name) for name in names]
    return [renamed if renamed != name and renamed not in taken else name for name, renamed in zip(names, accuracy)]


#: Other libraries' words for the data a metric was measured on: nolearn's ``trn``, fastai's and skorch's ``valid``.
_PREFIXES = {"trn": "train", "training": "train", "valid": "val", "validation": "val"}


def _prefixed(name: str) -> str:
    """``trn_loss`` -> ``train_loss``, ``valid_acc`` -> ``val_acc``."""
    head, underscore, tail = name.partition("_")
    return f"{_PREFIXES[head]}_{tail}" if underscore and head in _PREFIXES else name


def _unprefixed_metric(name: str) -> bool:
    """Whether a column names a metric without saying on which data (fastai's ``accuracy``, ``error_rate``)."""
    return (not re.match(r"(?:train|trn|training|val|valid|validation)_", name) and "loss" not in name
            and name not in {"epoch", "step", "time", "wall time", "dur", "lr", "learning_rate"})


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


def _epochs(cells: _Cells, column: int | None, numbers: list[float | None] | range | None) -> list[int]:
    """The 1-based epoch of each row: from the 0-based ``numbers`` of the ``epoch`` column, else counted."""
    if numbers is None:  # counted: whole numbers from 0, nothing to check but the largest
        numbers = range(len(cells.rows))
    else:
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


# --- Python reprs: print(history.history) ----------------------------------------------------

#: ``np.float32(0.69)`` (NumPy 2's repr of a scalar), ``float32(0.69)``, ``tf.Tensor(0.69, shape=(), dtype=float32)``
#: and ``<tf.Tensor: shape=(), dtype=float32, numpy=0.69>``: the number alone.
_SCALAR_REPR = re.compile(
    rf"\b(?:(?:np|numpy)\.)?(?:float|int|uint)(?:16|32|64|128)?\(\s*({_NUMBER.pattern})\s*\)"
    rf"|\btf\.Tensor\(\s*({_NUMBER.pattern})\s*,\s*shape=\(\)\s*,\s*dtype=[\w.]+\s*\)"
    rf"|<tf\.Tensor:[^<>]*?numpy=({_NUMBER.pattern})\s*>", re.I)
#: ``array([0.69, 0.68], dtype=float32)``: the list alone.
_ARRAY_REPR = re.compile(r"\b(?:(?:np|numpy)\.)?array\(\s*(\[[^()\[\]]*\])\s*(?:,\s*dtype=[\w.]+\s*)?\)")
#: ``nan``, ``inf``, ``np.nan``, ``-np.inf``, ``float('nan')`` outside quotes: names that literal_eval refuses.
_NON_FINITE_REPR = re.compile(
    r"""(?<![\w.'"])(-?)(?:(?:np|numpy|math)\.)?(nan|inf(?:inity)?)(?![\w'"])|float\(\s*['"](-?(?:nan|inf))['"]\s*\)""",
    re.I)
#: Longer literals are not read (ast.literal_eval's time and memory grow with them).
_MAX_LITERAL = 1_000_000


def _python_literal(text: str) -> object | None:
    """A dict or list printed by Python (``print(history.history)``), read with ast.literal_eval, never executed.

    NumPy and TensorFlow reprs of numbers and arrays become plain numbers and lists, ``nan`` and
    ``inf`` become strings the cell reader knows.  None for anything that is not such a literal.
    """
    if len(text) > _MAX_LITERAL:
        return None
    sanitised = _SCALAR_REPR.sub(lambda m: next(group for group in m.groups() if group is not None), text)
    sanitised = _ARRAY_REPR.sub(r"\1", sanitised)
    sanitised = _NON_FINITE_REPR.sub(lambda m: f'"{m[3] or m[1] + m[2]}"', sanitised)
    try:
        with warnings.catch_warnings():  # "invalid decimal literal" and the like: the text is no literal, not a fault
            warnings.simplefilter("ignore", SyntaxWarning)
            value = syntax.literal_eval(sanitised)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    return value if isinstance(value, (dict, list)) else None


# --- logs in other shapes, read when the formats above find nothing ----------------------------

#: ``key: value`` pairs of printed lines: ``Epoch 1 | loss 0.693``, ``Epoch: 0, Iteration: 3, Loss: nan``,
#: ``Epoch [1/10], Step [100/600], Loss: 0.6931``, ``Test Loss: 0.06``, ``cost= 0.69``, ``Accuracy: 96.0%``.
_PAIR = re.compile(
    r"(?<![\w.\-/])(?P<key>(?:(?:train|training|trn|val|valid|validation|test|eval|dev|avg|average|mean|total|running)"
    r"[ _-])?[a-z][a-z0-9_]*)\s*(?::=|[:=])?\s*[\[(]?\s*"
    rf"(?P<value>{_NUMBER.pattern})(?!\w|\.\d)(?:\s*/\s*(?P<total>\d+))?(?P<percent>\s*%)?", re.I)
#: Keys that count or time the run, not metrics; and words of prose that a number follows.
_BOOKKEEPING = frozenset({
    "step", "steps", "iteration", "iter", "it", "batch", "batches", "global_step", "time", "sec", "secs",
    "seconds", "dur", "duration", "eta", "elapsed", "v_num", "samples", "examples", "images", "cp",
    "of", "is", "at", "in", "to", "for", "after", "with", "on", "and", "the", "a", "by", "was", "than", "from",
})
_EPOCH_KEYS = frozenset({"epoch", "ep", "epochs", "train_epoch", "epoch_num", "epoch_no"})
#: A printed line with more words than this outside its ``key value`` pairs is prose, not a log line.
_PROSE_WORDS = 4
#: Longer lines are no line of a log, a table or a list: they are not read as one.
_MAX_LINE = 4000


def _salvaged(text: str, error: EvidenceError) -> History:
    """Read text that the main formats could not: the first reader that finds epochs wins; else ``error``.

    What these readers find is read leniently (they read pastes, logs among other lines), and
    what they leave out is said.
    """
    lines = [(number, segment) for number, line in enumerate(_ANSI.sub("", text).split("\n"), 1)
             for segment in re.split(r"[\r\b]+", line) if segment.strip()]  # a terminal's redraws, each on its own
    for read in (_embedded_literal, _embedded_csv, _read_table, _read_bars, _read_printed):
        found = read(text, lines)
        if found is None:
            continue
        cells, format = found
        try:
            return _assemble(cells, format, lenient=True)
        except EvidenceError:
            continue
    raise error


#: The lines of a text as :func:`_salvaged` hands them to each reader: each with its number, a line that a
#: terminal redrew (``\r``, backspaces) once per redraw.
_Lines = list[tuple[int, str]]


def _embedded_literal(text: str, lines: _Lines) -> tuple[_Cells, str] | None:
    """A history dict printed among other lines: from its first ``{'`` or ``{"`` to the last ``}``."""
    start = re.search(r"\{\s*['\"]", text)
    end = text.rfind("}")
    if start is None or end < start.start():
        return None
    value = _python_literal(text[start.start():end + 1])
    if not isinstance(value, dict):
        return None
    try:
        return _read_value(value)
    except EvidenceError:
        return None


def _embedded_csv(text: str, lines: _Lines) -> tuple[_Cells, str] | None:
    """A delimited file pasted among other lines: a header naming epochs or losses, and the rows with as many cells.

    Its rows are read leniently: this is a paste, and what is left out is said.
    """
    for index, (number, line) in enumerate(lines):
        for delimiter, header in _HEADERS.items():
            names = [name.strip().lower() for name in line.split(delimiter)]
            if not header.fullmatch(line) or not any(name == "epoch" or "loss" in name for name in names):
                continue
            block = [(number, line)]
            for row in lines[index + 1:]:
                if row[1].count(delimiter) != line.count(delimiter) or not re.search(r"\d", row[1]):
                    break
                block.append(row)
            if len(block) > 1:
                cells, format = _read_csv("\n".join(row for _, row in block), None, delimiter, lenient=True)
                return replace(cells, rows=[block[row - 1][0] for row in cells.rows]), format
    return None


def _lines_read(names: list[str], records: list[tuple[int, dict[str, float | None]]], skipped: list[str],
                format: str) -> tuple[_Cells, str] | None:
    """Per-epoch values (0-based epochs) as cells, with the main loss called ``loss``; None when there are none."""
    if not records:
        return None
    renames = _main_loss(names)
    rows = [{renames.get(name, name): value for name, value in values.items()} | {"epoch": epoch}
            for epoch, values in records]
    cells = _from_records(rows, "epoch", [epoch + 1 for epoch, _ in records])
    return replace(cells, skipped=tuple(skipped)), format


def _main_loss(names: list[str]) -> dict[str, str]:
    """Renames that make the run's main loss ``loss``: a key named loss, total_loss or train_loss, else the first loss.

    Other losses keep their names (``latloss``); the validation form of the main one becomes ``val_loss``.
    """
    losses = [name for name in names if _lossy(name) and not name.startswith("val_")]
    if not losses or "loss" in _normalise_names(losses):  # loss, train_loss, trn_loss, Lightning's loss_epoch
        return {}
    main = "total_loss" if "total_loss" in losses else losses[0]
    renames = {main: "loss"}
    validation = "val_" + main.removeprefix("train_")
    if "val_loss" not in names and validation in names:
        renames[validation] = "val_loss"
    return renames


def _lossy(name: str) -> bool:
    return "loss" in name or name == "cost" or name.endswith("_cost")


def _key(raw: str) -> str:
    """A printed key as a column name: ``Test Loss`` -> ``val_loss``, ``trn loss`` -> ``train_loss``."""
    name = re.sub(r"[\s\-]+", "_", raw.strip().lower())
    name = re.sub(r"^(?:training|trn)_", "train_", name)
    return re.sub(r"^(?:valid|validation|test|eval|dev)_", "val_", name)


def _pairs(text: str) -> tuple[int | None, dict[str, float | None], int]:
    """The printed epoch (or None), the ``key value`` pairs of a line as numbers, and how many words of prose are left."""
    epoch, values, rest, end = None, {}, [], 0
    for match in _PAIR.finditer(text):
        rest.append(text[end:match.start()])
        end = match.end()
        name, value = _key(match["key"]), float(match["value"])
        if name in _EPOCH_KEYS:
            if epoch is None and value.is_integer() and value >= 0:
                epoch = int(value)
            continue
        if name in _BOOKKEEPING or name in values:
            continue
        if match["percent"]:
            value /= 100
        elif match["total"] and "acc" in name and 0 < float(match["total"]) and value <= float(match["total"]):
            value /= float(match["total"])  # Accuracy: 9829/10000
        values[name] = value
    rest.append(text[end:])
    prose = len(re.findall(r"[A-Za-z]{2,}", " ".join(rest)))
    return epoch, values, prose


def _percent_accuracy(records: list[tuple[int, dict[str, float | None]]]) -> None:
    """An accuracy printed in percent (``Accuracy: 96.0``) as a fraction.

    Taken as a percentage when every value lies in [0, 100] and one is above 1.
    """
    names = {name for _, values in records for name in values if "acc" in name}
    for name in names:
        seen = [values[name] for _, values in records if values.get(name) is not None and math.isfinite(values[name])]
        if seen and all(0 <= value <= 100 for value in seen) and any(value > 1 for value in seen):
            for _, values in records:
                if values.get(name) is not None:
                    values[name] /= 100


def _by_printed_epoch(rows: list[tuple[int | None, dict[str, float | None]]]) -> list[tuple[int, dict]]:
    """Per-line values grouped by the epoch each line printed (lines without one belong to the epoch before them),
    each epoch's later lines overriding its earlier ones; 0-based.  Without any epoch numbers, each line is an epoch.
    """
    if all(epoch is None for epoch, _ in rows):
        return [(number, dict(values)) for number, (_, values) in enumerate(rows)]
    base = 0 if min(epoch for epoch, _ in rows if epoch is not None) == 0 else 1
    grouped: dict[int, dict[str, float | None]] = {}
    current = None
    for epoch, values in rows:
        current = current if epoch is None else epoch - base
        if current is not None:
            grouped.setdefault(current, {}).update(values)
    return list(grouped.items())


def _read_printed(text: str, lines: _Lines) -> tuple[_Cells, str] | None:
    """Lines a custom training loop prints: ``epoch 427: genloss 74090.6 latloss 126.2``, ``Epoch 1 | loss 0.693``.

    A line counts when a number follows a key that names a loss (loss, ``*_loss``, cost) and it is
    not prose; each epoch's last line wins.
    """
    rows = []
    for _, line in lines:
        if len(line) > _MAX_LINE or not re.search(r"loss|cost", line, re.I):
            continue
        epoch, values, prose = _pairs(line)
        if prose <= _PROSE_WORDS and any(_lossy(name) for name in values):
            rows.append((epoch, values))
    if not rows:
        return None
    records = _by_printed_epoch(rows)
    _percent_accuracy(records)
    names = list(dict.fromkeys(name for _, values in records for name in values))
    return _lines_read(names, records, [], "printed")


# --- tqdm and Lightning progress bars -----------------------------------------------------------

#: ``Epoch 3: 100%|████| 50/50 [00:02<00:00, 20.1it/s, loss=0.693, v_num=0, val_loss=0.690]``.
#: The text before a bar (back to the previous one) is its description.
_BAR = re.compile(r"(?P<percent>\d{1,3})%\s*\|[^|]{0,300}\|\s*(?P<step>\d{1,9})/(?P<steps>\d{1,9})"
                  r"\s*\[(?P<info>[^\]]{0,2000})\]")
_POSTFIX = re.compile(rf"([a-z_][\w/.\-]*)\s*=\s*({_NUMBER.pattern})(?!\w|\.\d)", re.I)
_BAR_EPOCH = re.compile(r"\bepoch\s*[:#\[]?\s*(\d+)", re.I)


def _read_bars(text: str, lines: _Lines) -> tuple[_Cells, str] | None:
    """tqdm bars with metrics in their postfix or description, as PyTorch Lightning and custom loops draw them.

    Each epoch's redraws are merged, the later values winning; an epoch whose last redraw is short
    of its last step was still running.  Bars that name no epoch start a new one when their step
    count starts again.
    """
    rows = []  # (printed epoch, values, step, steps)
    for _, line in lines:
        if "%" not in line:
            continue
        end = 0
        for bar in _BAR.finditer(line):
            description, end = line[max(end, bar.start() - 300):bar.start()], bar.end()
            values = {_key(name): float(value) for name, value in _POSTFIX.findall(bar["info"])}
            _, described, _ = _pairs(description)
            values = {name: value for name, value in {**described, **values}.items()
                      if name not in _BOOKKEEPING and name not in _EPOCH_KEYS}
            if values:
                epoch = _BAR_EPOCH.search(description)
                rows.append((int(epoch[1]) if epoch else None, values, int(bar["step"]), int(bar["steps"])))
    if not rows:
        return None
    numbered = any(epoch is not None for epoch, *_ in rows)
    base = 0 if numbered and min(epoch for epoch, *_ in rows if epoch is not None) == 0 else 1
    grouped: dict[int, dict] = {}
    last: dict[int, tuple[int, int]] = {}
    current, previous = None, None
    for epoch, values, step, steps in rows:
        if numbered:
            current = current if epoch is None else epoch - base
        elif previous is None or step <= previous[0] or steps != previous[1]:
            current = len(grouped)
        previous = (step, steps)
        if current is not None:
            grouped.setdefault(current, {}).update(values)
            last[current] = (step, steps)
    skipped = [f"epoch {epoch + 1} was still running, so its values are those at step {step} of {steps}"
               for epoch, (step, steps) in last.items() if step < steps]
    records = list(grouped.items())
    names = list(dict.fromkeys(name for _, values in records for name in values))
    return _lines_read(names, records, skipped, "progress_bar")


# --- tables of epochs: nolearn, skorch, fastai --------------------------------------------------

#: A dashed rule under a header (tabulate's, as nolearn and skorch print it): it gives each column's width.
_RULE = re.compile(r"[\s|+:]*[-=]{3}[-=\s|+:]*")
#: Columns of a table that time or mark the run: skorch's ``dur`` and ``cp``, fastai's ``time``, nolearn's ``dur``.
_TABLE_BOOKKEEPING = frozenset({"dur", "time", "duration", "cp", "elapsed", "wall_time", "eta"})


def _header(line: str) -> list[tuple[str, tuple[int, int]]] | None:
    """The names of a table's header line and where each stands, when the line starts with ``epoch``."""
    if len(line) > _MAX_LINE:
        return None
    list_cells = _list_line(line)
    if list_cells is not None:
        names = list_cells if all(isinstance(name, str) for name in list_cells) else None
        return [(name, (0, 0)) for name in names] if names and names[0].lower() == "epoch" and len(names) > 1 else None
    if not re.match(r"\s*epoch\b", line, re.I):
        return None
    split = r"\S+(?: \S+)*" if re.search(r"\t| {2,}", line.strip()) else r"\S+"
    cells = [(m.group(), m.span()) for m in re.finditer(split, line)]
    if len(cells) < 2 or not all(re.fullmatch(r"[a-z_][\w/.()% -]*", name, re.I) for name, _ in cells):
        return None
    return cells


def _list_line(line: str) -> list | None:
    """A line that Python printed as a list (fastai without its progress bar): ``[0, 0.69, 0.69, 0.5, '00:01']``."""
    stripped = line.strip()
    if not (stripped.startswith("[") and stripped.endswith("]")):
        return None
    value = _python_literal(stripped)
    return value if isinstance(value, list) else None


def _row(line: str, spans: list[tuple[int, int]]) -> list[str] | None:
    """A table row's cells, one per column; a blank cell is ``""``.  None when the line is no row of this table.

    Cells are matched to columns by position when the row has fewer of them than the header (a
    column left blank, like skorch's ``cp``).
    """
    if len(line) > _MAX_LINE:
        return None
    list_cells = _list_line(line)
    if list_cells is not None:
        return [str(cell) for cell in list_cells] if len(list_cells) == len(spans) else None
    tokens = [(m.group(), m.span()) for m in re.finditer(r"\S+", line)]
    if not tokens or not re.fullmatch(r"\d+", tokens[0][0]):
        return None
    if len(tokens) == len(spans):
        return [token for token, _ in tokens]
    if len(tokens) > len(spans) or all(span == (0, 0) for span in spans):
        return None
    cells = [""] * len(spans)
    for token, (start, end) in tokens:
        overlap = [min(end, right) - max(start, left) for left, right in spans]
        column = max(range(len(spans)), key=lambda i: (overlap[i], -abs((start + end) - sum(spans[i]))))
        if cells[column]:
            return None
        cells[column] = token
    return cells


def _read_table(text: str, lines: _Lines) -> tuple[_Cells, str] | None:
    """A whitespace-aligned table of epochs: ``epoch  train_loss  valid_loss  accuracy  time`` and its rows.

    fastai counts epochs from 0, nolearn and skorch from 1; a second table (fastai's
    ``fine_tune``) continues the epochs of the first.
    """
    names: list[str] = []
    spans: list[tuple[int, int]] = []
    records: list[tuple[int, dict[str, float | None]]] = []
    skipped: list[str] = []
    base, offset, last = None, 0, 0
    for number, line in lines:
        header = _header(line)
        if header is not None:
            names = [re.sub(r"\s+", "_", name.strip().lower()) for name, _ in header]
            spans, base, offset = [span for _, span in header], None, last
            continue
        if not names:
            continue
        if _RULE.fullmatch(line):
            rule = [m.span() for m in re.finditer(r"[-=]+", line)]
            spans = rule if len(rule) == len(names) else spans
            continue
        cells = _row(line, spans)
        if cells is None:
            continue
        values, problem = {}, None
        for name, cell in zip(names[1:], cells[1:]):
            if name in _TABLE_BOOKKEEPING:
                continue
            parsed = _number(cell.rstrip("%")) if cell else None
            if cell and parsed is None:
                problem = f"expected a number in column {name}, got {_shown(cell)}"
                break
            values[name] = parsed
        if problem:
            skipped.append(f"line {number} was left out ({problem})")
            continue
        printed = int(cells[0])
        if base is None:
            base = 0 if printed == 0 else 1
        epoch = printed - base + offset
        if epoch >= MAX_EPOCHS:
            continue
        last = max(last, epoch + 1)
        records.append((epoch, values))
    if not any(value is not None for _, values in records for value in values.values()):
        return None
    return _lines_read(list(dict.fromkeys(name for _, values in records for name in values)), records, skipped, "table")
