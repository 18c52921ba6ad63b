"""The small condition language of the knowledge base, evaluated in three-valued logic.

A condition over facts is true, false, or unknown (None) when a fact it needs is not known;
unknown conditions are what the assistant asks questions about.
"""
from __future__ import annotations

from typing import Any, Iterator, Mapping

Condition = Mapping[str, Any]
#: The value of a measurement that was looked for and not seen: every comparison with it is false.
NOT_OBSERVED = object()
COMPARISONS = {
    "is": lambda value, ref: value == ref,
    "in": lambda value, ref: value in ref,
    "above": lambda value, ref: value > ref,
    "below": lambda value, ref: value < ref,
    "at_least": lambda value, ref: value >= ref,
    "at_most": lambda value, ref: value <= ref,
}


def evaluate(cond: Condition, values: Mapping[str, Any]) -> bool | None:
    """True, False, or None when the facts needed to decide are unknown."""
    if "all" in cond:
        results = [evaluate(c, values) for c in cond["all"]]
        return False if False in results else (None if None in results else True)
    if "any" in cond:
        results = [evaluate(c, values) for c in cond["any"]]
        return True if True in results else (None if None in results else False)
    if "not" in cond:
        inner = evaluate(cond["not"], values)
        return None if inner is None else not inner
    value = values.get(cond["fact"])
    if "known" in cond:
        return (value is not None and value is not NOT_OBSERVED) == cond["known"]
    if value is None:
        return None
    op = next(k for k in COMPARISONS if k in cond)
    try:
        return bool(COMPARISONS[op](value, cond[op]))
    except TypeError:  # a text fact compared with a number: the condition simply does not hold
        return False


def references(cond: Condition) -> Iterator[tuple[str, str, Any]]:
    """(fact, operator, reference value) for every comparison in a condition."""
    for key in ("all", "any"):
        for c in cond.get(key, ()):
            yield from references(c)
    if "not" in cond:
        yield from references(cond["not"])
    if "fact" in cond:
        for op in (*COMPARISONS, "known"):
            if op in cond:
                yield cond["fact"], op, cond[op]


def facts_in(cond: Condition) -> Iterator[str]:
    """Every fact name a condition mentions."""
    return (name for name, _, _ in references(cond))
