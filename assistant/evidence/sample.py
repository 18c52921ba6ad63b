"""A raw data sample (CSV with a label column) → the contract's dataset summary.

Users who cannot describe their data can paste or upload a few thousand rows instead. This
module measures what a person would otherwise be asked for (task, class balance, feature
scale, missing values, duplicates, whether rows are sorted by label), so the result goes
through :func:`~assistant.evidence.inputs.contract_facts` like any summary a client sends.
It needs only pandas: web workers import it, and scikit-learn would add a second to each start.
"""
from __future__ import annotations

import io
import re
import warnings
from typing import Any

import numpy as np
import pandas as pd

from .facts import EvidenceError, OverLimit

#: Samples larger than this are refused; a random subset describes the data just as well.
MAX_ROWS = 200_000
#: Samples wider than this are refused before pandas reads them: reading costs CPU time per column.
MAX_COLUMNS = 2_000
#: Column names taken as the label when none is named, in this order; else the last column.
LABEL_NAMES = ("label", "target", "y", "class")
#: Integer labels count as classes only if there are at most this many distinct values ...
MAX_CLASSES = 100
#: ... and each class has this many rows on average (or the labels are exactly 0..K-1).
MIN_ROWS_PER_CLASS = 5
#: Samples with fewer rows say nothing about row order.
MIN_ROWS_FOR_ORDER = 10
#: Feature columns within these distances of mean 0 / std 1 are taken as standardized.
STANDARDIZED_TOLERANCE = 0.1
#: Separators tried; the one the header line uses most wins.
DELIMITERS = (",", ";", "\t", "|")
#: pandas tokenizer messages → the same problem in a user's terms (pandas counts rows from 0).
PARSE_ERRORS = (
    (re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)"),
     lambda expected, line, saw: f"line {line} of the data sample has {saw} fields,"
                                 f" but the header has {expected}"),
    (re.compile(r"EOF inside string starting at row (\d+)"),
     lambda row: f"the quote opened on line {int(row) + 1} of the data sample is never closed"),
)


def _text(csv_text: str | bytes) -> str:
    if isinstance(csv_text, bytes):
        try:
            return csv_text.decode("utf-8-sig")
        except UnicodeDecodeError:
            return csv_text.decode("latin-1")
    if not isinstance(csv_text, str):
        raise EvidenceError("the data sample must be CSV text", field="sample")
    return csv_text.lstrip("\ufeff")


def _delimiter(text: str) -> str:
    header = text.lstrip().split("\n", 1)[0]
    return max(DELIMITERS, key=header.count)


def _parse_error(error: Exception) -> EvidenceError:
    """pandas' message, rephrased with the line number a user can look up."""
    text = str(error).strip()
    for pattern, explain in PARSE_ERRORS:
        found = pattern.search(text)
        if found:
            return EvidenceError(explain(*found.groups()), field="sample")
    last = text.splitlines()[-1] if text else type(error).__name__
    return EvidenceError(f"the data sample is not readable CSV: {last}", field="sample")


def _read(text: str, max_rows: int, header: int | None) -> pd.DataFrame:
    try:
        with warnings.catch_warnings():
            # A row longer than the header would silently lose cells: refuse it instead.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(io.StringIO(text), sep=_delimiter(text), header=header,
                                nrows=max_rows + 1, skipinitialspace=True, index_col=False)
    except pd.errors.ParserWarning:
        raise EvidenceError("some rows of the data sample have more fields than the header",
                            field="sample") from None
    except pd.errors.EmptyDataError:
        raise EvidenceError("the data sample is empty", field="sample") from None
    except (pd.errors.ParserError, ValueError, OverflowError) as error:
        raise _parse_error(error) from None
    frame.columns = [str(name).strip() for name in frame.columns]
    return frame


def _is_number(name: str) -> bool:
    try:
        float(name)
    except ValueError:
        return False
    return True


def _frame(text: str, max_rows: int) -> pd.DataFrame:
    """The table, reading the first row as data when every "column name" is a number."""
    columns = text.lstrip().split("\n", 1)[0].count(_delimiter(text)) + 1
    if columns > MAX_COLUMNS:
        raise OverLimit(f"the data sample has {columns:,} columns; send at most {MAX_COLUMNS:,} (the label and a "
                        "subset of the features)", field="sample", status=413)
    frame = _read(text, max_rows, header=0)
    if all(_is_number(name) for name in frame.columns):
        frame = _read(text, max_rows, header=None)
        frame.columns = [f"x{i}" for i in range(frame.shape[1] - 1)] + ["label"]
    if len(frame) > max_rows:
        raise OverLimit(
            f"the data sample has more than {max_rows:,} rows; send a random subset of at most"
            f" {max_rows:,}", field="sample", status=413)
    if frame.empty:
        raise EvidenceError("the data sample has a header but no rows", field="sample")
    return frame


def _one_hot_columns(frame: pd.DataFrame, prefixes: tuple[str, ...]) -> list[str]:
    """Columns like ``label_0, label_1, …`` holding one 1 per row, for the first prefix that has them."""
    for prefix in prefixes:
        pattern = re.compile(rf"{re.escape(prefix)}[_.]?\d+", re.IGNORECASE)
        columns = [c for c in frame.columns if pattern.fullmatch(c)]
        block = frame[columns] if len(columns) > 1 else None
        if block is not None and block.isin([0, 1]).all().all() and (block.sum(axis=1) == 1).all():
            return columns
    return []


def _label_column(frame: pd.DataFrame, label: str | None) -> str:
    if label is not None:
        if label not in frame.columns:
            listed = ", ".join(list(frame.columns)[:10])
            raise EvidenceError(f'the data sample has no column "{label}" (columns: {listed})',
                                field="sample")
        return label
    by_lower = {c.lower(): c for c in frame.columns}
    return next((by_lower[n] for n in LABEL_NAMES if n in by_lower), frame.columns[-1])


def _labels(frame: pd.DataFrame, label: str | None) -> tuple[pd.Series, list[str], bool]:
    """The label per row, the label columns, and whether they were one-hot encoded."""
    prefixes = (label,) if label is not None else LABEL_NAMES
    one_hot = [] if label in frame.columns else _one_hot_columns(frame, prefixes)
    if one_hot:
        return pd.Series(frame[one_hot].to_numpy().argmax(axis=1)), one_hot, True
    column = _label_column(frame, label)
    return frame[column], [column], False


def _is_classification(y: pd.Series) -> bool:
    """Text labels are classes; numbers are classes when whole and few, else a regression target."""
    if not pd.api.types.is_numeric_dtype(y):
        return True
    values = y.to_numpy(dtype=float)
    if not np.array_equal(values, np.round(values)):
        return False
    k = y.nunique()
    return k <= 2 or (k <= MAX_CLASSES and (_zero_based(y) or len(y) >= k * MIN_ROWS_PER_CLASS))


def _zero_based(y: pd.Series) -> bool:
    values = set(y.unique().tolist())
    return values == set(range(len(values)))


def _label_key(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def _runs(y: pd.Series) -> int:
    return int((y != y.shift()).sum())


def _sorted_by_label(y: pd.Series, classification: bool) -> bool | None:
    """Labels in blocks (classification) or in order (regression): what unshuffled splits break on.

    None for samples too small to tell order from chance.
    """
    if len(y) < MIN_ROWS_FOR_ORDER or y.nunique() < 2:
        return None
    if classification:
        return _runs(y) == y.nunique()
    return bool(y.is_monotonic_increasing or y.is_monotonic_decreasing)


def _label_summary(y: pd.Series, one_hot: bool) -> dict[str, Any]:
    y = pd.Series(y).dropna().reset_index(drop=True)
    if y.empty:
        raise EvidenceError("the label column of the data sample is empty", field="sample")
    if pd.api.types.is_bool_dtype(y):
        y = y.astype(int)
    classification = one_hot or _is_classification(y)
    ordered = _sorted_by_label(y, classification)
    summary: dict[str, Any] = {} if ordered is None else {"sorted_by_label": ordered}
    if not classification:
        return {"task": "regression", **summary}
    counts = y.value_counts().sort_index()
    k = len(counts)
    integer = pd.api.types.is_numeric_dtype(y) and _zero_based(y)
    return {
        "task": "binary_classification" if k <= 2 else "multiclass_classification",
        "n_classes": k,
        "class_counts": {_label_key(v): int(n) for v, n in counts.items()},
        "label_format": "one_hot" if one_hot else "integer" if integer else "other",
        **summary,
    }


def _scaling(numeric: pd.DataFrame) -> str:
    """A guess at how the features were scaled; 0/1 indicator columns fit any scaling."""
    continuous = numeric.loc[:, numeric.nunique() > 2]
    means, stds = continuous.mean(), continuous.std(ddof=0)
    if not continuous.empty and (means.abs() <= STANDARDIZED_TOLERANCE).all() \
            and ((stds - 1).abs() <= STANDARDIZED_TOLERANCE).all():
        return "standardize"
    if ((numeric >= 0) & (numeric <= 1) | numeric.isna()).all().all():
        return "minmax"
    return "none"


def _feature_summary(features: pd.DataFrame) -> dict[str, Any]:
    """Scale, gaps and spread of the feature cells; non-finite cells count as missing."""
    numeric = features.select_dtypes(include=["number", "bool"]).astype(float)
    numeric = numeric.where(np.isfinite(numeric))
    missing = numeric.isna().sum().sum() + features.drop(columns=numeric.columns).isna().sum().sum()
    summary: dict[str, Any] = {
        "n_features": features.shape[1],
        "missing_fraction": float(missing / features.size),
    }
    cells = numeric.to_numpy().ravel()
    cells = cells[~np.isnan(cells)]
    if cells.size:
        summary.update(
            feature_min=float(cells.min()), feature_max=float(cells.max()),
            feature_mean=float(cells.mean()), feature_std=float(cells.std()),
            input_scaling=_scaling(numeric),
        )
    return summary


def summarize_sample(csv_text: str | bytes, *, label: str | None = None,
                     max_rows: int = MAX_ROWS) -> dict[str, Any]:
    """The contract dataset mapping (plus an ``input_scaling`` guess) measured on a CSV sample.

    The label is the ``label`` column, else one named label/target/y/class (or one-hot
    columns ``label_0, label_1, …``), else the last column. Raises :class:`EvidenceError`
    for unreadable CSV (with its line number), a missing label column, or more than
    ``max_rows`` rows.
    """
    features, y, one_hot = sample_rows(csv_text, label=label, max_rows=max_rows)
    return {
        "n_samples": len(features),
        **_label_summary(y, one_hot),
        **_feature_summary(features),
        "duplicate_fraction": float(pd.concat([features, y.rename("__label__")], axis=1).duplicated().mean()),
    }


def sample_rows(csv_text: str | bytes, *, label: str | None = None,
                max_rows: int = MAX_ROWS) -> tuple[pd.DataFrame, pd.Series, bool]:
    """The feature columns, the label per row, and whether the labels were one-hot columns.

    Read as :func:`summarize_sample` reads them, so a reproduction run trains on the very rows
    the summary describes.
    """
    frame = _frame(_text(csv_text), max_rows)
    y, label_columns, one_hot = _labels(frame, label)
    features = frame.drop(columns=label_columns)
    if features.shape[1] == 0:
        raise EvidenceError("the data sample has a label column but no feature columns", field="sample")
    return features, y.reset_index(drop=True), one_hot
