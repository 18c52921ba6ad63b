"""A training history as the API's ``metrics`` field takes it, from whatever a notebook holds."""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .errors import InputError

EXPECTED = "a Keras History, a history.history dict, a pandas DataFrame or the path of a CSVLogger file"


def metrics_payload(history: Any) -> str | dict[str, list[Any]] | list[dict[str, Any]]:
    """The ``metrics`` to send for ``history``.

    Accepts a Keras ``History`` (what ``fit`` returns), its ``history`` dict, a pandas DataFrame
    (``pd.read_csv`` of a CSVLogger file), a list of per-epoch dicts, the path of a CSVLogger file
    or saved console log, or such text itself (text has a line break; a path does not).
    """
    if isinstance(history, os.PathLike) or (isinstance(history, str) and "\n" not in history):
        return _read(Path(history))
    if isinstance(history, str):
        return history
    data = getattr(history, "history", history)  # keras.callbacks.History keeps the dict here
    if hasattr(data, "columns") and hasattr(data, "to_numpy"):  # a pandas DataFrame, without importing pandas
        data = {str(column): data[column].tolist() for column in data.columns}
    if isinstance(data, Mapping):
        columns = {str(name): _series(str(name), values) for name, values in data.items()}
        if not any(columns.values()):
            raise InputError("history: it has no epochs yet; pass it once model.fit has finished an epoch")
        return columns
    if isinstance(data, Sequence) and data and all(isinstance(row, Mapping) for row in data):
        return [{str(name): _plain(value) for name, value in row.items()} for row in data]
    if isinstance(data, Sequence) and not data:
        raise InputError("history: it has no epochs yet; pass it once model.fit has finished an epoch")
    raise InputError(f"history: expected {EXPECTED}, got {type(history).__name__}")


def _read(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"history: there is no file {path}") from None
    except IsADirectoryError:
        raise InputError(f"history: {path} is a directory, not a CSVLogger file") from None
    except UnicodeDecodeError:
        raise InputError(f"history: {path} is not a text file; expected a CSVLogger file") from None
    except OSError as exc:
        raise InputError(f"history: cannot read {path}: {exc.strerror}") from None
    if not text.strip():
        raise InputError(f"history: {path} is empty; it has no epochs yet")
    return text


def _series(name: str, values: Any) -> list[Any]:
    if hasattr(values, "tolist"):  # numpy arrays and pandas Series
        values = values.tolist()
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise InputError(f"history: {name!r} should be a list of per-epoch values, got {type(values).__name__}")
    return [_plain(value) for value in values]


def _plain(value: Any) -> Any:
    """A JSON-ready value: numpy scalars and 0-d tensors become Python numbers."""
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        return value.item()
    return value
