"""Contract facts from the ``dataset``, ``training`` and ``facts`` mappings a client sends.

Clients fill these mappings from many places: a live Keras model, a pandas summary, a
hand-written curl body, a multipart form where every value is a string. This module is the
one place that decides which values each contract key accepts and how a loosely written
value ("0.001", "yes", ``SparseCategoricalCrossentropy``) becomes the canonical one, so
reasoning never has to second-guess a fact's type.

Types, bounds, choices, spellings and labels come from the knowledge base (``facts.yaml``'s
``kind: input`` entries, with Keras's names from ``keras.yaml``), as ``kb.vocabulary``.
A value that cannot be read raises :class:`EvidenceError` naming the field and key; keys
outside the vocabulary are left out, and :func:`unknown_keys` lists them for a warning.
"""
from __future__ import annotations

import json
import math
import numbers
import re
from typing import Any, Callable, Mapping

from ..kb import KnowledgeBase
from ..kb.model import Spec, squash
from .facts import EvidenceError, Fact

_COUNT = Spec("integer", min=0)
_TRUE = {"true", "yes", "y", "on", "1", "t"}
_FALSE = {"false", "no", "n", "off", "0", "f"}
_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")


def _snake(text: str) -> str:
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", text.strip())
    return re.sub(r"[\s\-]+", "_", text).lower()


def _shown(value: Any) -> str:
    """A value as the user wrote it, quoted if a string, cut short if long."""
    try:
        text = json.dumps(value, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "…"


def _fmt(number: float) -> str:
    return f"{number:g}"


def _expected(spec: Spec) -> str:
    """The phrase after "expected", e.g. ``a number between 0 and 1``."""
    listed = ", ".join(list(spec.names or ())[:6])
    if spec.type == "choice":
        return f"one of {listed}"
    if spec.type == "name":
        return f"a name such as {listed}" if listed else "a name"
    if spec.type == "boolean":
        return "true or false"
    if spec.type == "mapping":
        return "an object of class label → number of samples"
    noun = "a number" if spec.type == "number" else "a whole number"
    if spec.min is not None and spec.max is not None:
        return f"{noun} between {_fmt(spec.min)} and {_fmt(spec.max)}"
    if spec.min is not None:
        return f"{noun} of at least {_fmt(spec.min)}"
    return noun


def _number(value: Any) -> float | None:
    """A finite float from a number or numeric string, else None (bools are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, (str, numbers.Real)):
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _in_range(number: float, spec: Spec) -> bool:
    return (spec.min is None or number >= spec.min) and (spec.max is None or number <= spec.max)


def _as_number(value: Any, spec: Spec) -> float | None:
    number = _number(value)
    return number if number is not None and _in_range(number, spec) else None


def _as_integer(value: Any, spec: Spec) -> int | None:
    number = _number(value)
    if number is None or not number.is_integer() or not _in_range(number, spec):
        return None
    return int(number)


def _as_boolean(value: Any, spec: Spec) -> bool | None:
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, numbers.Real) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        return True if word in _TRUE else False if word in _FALSE else None
    return None


def _identifier(value: Any) -> str | None:
    """The bare identifier in ``tf.keras.losses.BinaryCrossentropy()`` and similar spellings."""
    if not isinstance(value, str):
        return None
    text = re.sub(r"\(.*\)\s*$", "", value.strip())
    return text.rsplit(".", 1)[-1].strip() or None


def _as_choice(value: Any, spec: Spec) -> str | None:
    text = _identifier(value)
    return None if text is None else spec.aliases.get(squash(text))


def _as_name(value: Any, spec: Spec) -> str | None:
    text = _identifier(value)
    if text is None:
        return None
    known = spec.aliases.get(squash(text))
    if known:
        return known
    name = _snake(text)
    return name if _NAME.fullmatch(name) else None


def _label_key(label: Any) -> str:
    number = _number(label)
    if number is not None and number.is_integer():
        return str(int(number))
    return str(label).strip()


def _as_mapping(value: Any, spec: Spec) -> dict[str, int] | None:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            return None
    if isinstance(value, (list, tuple)):
        value = dict(enumerate(value))
    if not isinstance(value, Mapping) or not value:
        return None
    counts: dict[str, int] = {}
    for label, count in value.items():
        number = _as_integer(count, _COUNT)
        if number is None:
            return None
        key = _label_key(label)
        counts[key] = counts.get(key, 0) + number
    return counts


_READERS: dict[str, Callable[[Any, Spec], Any]] = {
    "number": _as_number,
    "integer": _as_integer,
    "boolean": _as_boolean,
    "choice": _as_choice,
    "name": _as_name,
    "mapping": _as_mapping,
}


def normal_key(key: Any) -> str:
    """``"Learning Rate"`` and ``"learning-rate"`` both name ``learning_rate``."""
    return re.sub(r"[\s\-]+", "_", str(key).strip()).lower()


def coerce(kb: KnowledgeBase, key: str, value: Any, *, field: str = "facts") -> Any:
    """The canonical value of contract key ``key``, or :class:`EvidenceError` naming ``field.key``."""
    spec = kb.vocabulary[key]
    result = _READERS[spec.type](value, spec)
    if result is None:
        raise EvidenceError(
            f"{field}.{key}: expected {_expected(spec)}, got {_shown(value)}", field=f"{field}.{key}"
        )
    return result


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _mapping(mapping: Any, field: str | None) -> Mapping:
    if not isinstance(mapping, Mapping):
        where = f"{field}: " if field else ""
        raise EvidenceError(f"{where}expected an object of fact keys, got {_shown(mapping)}", field=field)
    return mapping


def unknown_keys(kb: KnowledgeBase, mapping: Mapping, *, field: str | None = None) -> list[str]:
    """Keys of ``mapping`` that are not contract facts, as sent, for a warning."""
    return [str(key) for key in _mapping(mapping, field) if normal_key(key) not in kb.vocabulary]


def describe(kb: KnowledgeBase, key: str, value: Any) -> str:
    """How a note names a fact: ``learning rate 0.5``, ``shuffle: yes``, ``class counts 0: 760, 1: 40``."""
    spec = kb.vocabulary[key]
    label = spec.label or key.replace("_", " ")
    if spec.type == "boolean":
        return f"{label}: {'yes' if value else 'no'}"
    if spec.type == "number":
        return f"{label} {_fmt(value)}"
    if spec.type == "mapping":
        pairs = [f"{k}: {v}" for k, v in value.items()]
        return f"{label} " + ", ".join(pairs[:6]) + (", …" if len(pairs) > 6 else "")
    return f"{label} {value}"


def contract_facts(kb: KnowledgeBase, mapping: Mapping, *, source: str, field: str) -> list[Fact]:
    """Typed facts for the contract keys in ``mapping``; blank values (None, "") count as absent.

    ``source`` says where the mapping came from ("the training config you sent"), ``field``
    which part of the request it was ("training"), for error messages. Every contract key is
    accepted in every field.
    """
    values: dict[str, Any] = {}
    for raw_key, raw_value in _mapping(mapping, field).items():
        key = normal_key(raw_key)
        if key in kb.vocabulary and not _is_blank(raw_value):
            values[key] = coerce(kb, key, raw_value, field=field)
    for low, high in ((key, kb.vocabulary[key].not_above) for key in values):
        if high in values and values[low] > values[high]:
            raise EvidenceError(
                f"{field}.{low}: {_fmt(values[low])} is larger than {high} {_fmt(values[high])}",
                field=f"{field}.{low}",
            )
    return [Fact(key, value, source, f"{describe(kb, key, value)} (from {source})") for key, value in values.items()]
