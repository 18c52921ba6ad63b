"""The small condition language of the knowledge base, evaluated in three-valued logic.

A condition over facts is true, false, or unknown (None) when a fact it needs is not known;
unknown conditions are what the assistant asks questions about.
"""
from __future__ import annotations

import operator
from typing import Any, Callable, Iterator, Mapping

Condition = Mapping[str, Any]
#: A compiled condition: the facts in, True, False or None (unknown) out.
Predicate = Callable[[Mapping[str, Any]], "bool | None"]
#: The value of a measurement that was looked for and not seen: every comparison with it is false.
NOT_OBSERVED = object()
#: The operator module's functions where one fits (``in`` takes its operands the other way round): every rule
#: of every turn, and of every hypothetical answer a question is weighed with, calls one.
COMPARISONS = {
    "is": operator.eq,
    "in": lambda value, ref: value in ref,
    "above": operator.gt,
    "below": operator.lt,
    "at_least": operator.ge,
    "at_most": operator.le,
}


def compile_condition(cond: Condition) -> Predicate:
    """The condition as a function of the facts, built once so a turn pays no interpretation."""
    if "all" in cond or "any" in cond:
        decisive = "all" not in cond  # the result one part settles: False for all, True for any
        parts = [compile_condition(c) for c in cond["any" if decisive else "all"]]

        def combined(values: Mapping[str, Any]) -> bool | None:
            unknown = False
            for part in parts:
                result = part(values)
                if result is decisive:
                    return decisive
                unknown = unknown or result is None
            return None if unknown else not decisive

        return combined
    if "not" in cond:
        inner = compile_condition(cond["not"])
        return lambda values: None if (result := inner(values)) is None else not result
    name = cond["fact"]
    if "known" in cond:
        known = cond["known"]
        return lambda values: ((value := values.get(name)) is not None and value is not NOT_OBSERVED) == known
    op = next(k for k in COMPARISONS if k in cond)
    compare, ref = COMPARISONS[op], cond[op]

    def comparison(values: Mapping[str, Any]) -> bool | None:
        value = values.get(name)
        if value is None:
            return None
        try:
            return bool(compare(value, ref))
        except TypeError:  # a text fact compared with a number: the condition simply does not hold
            return False

    return comparison


def reads_as(value: Any, op: str, ref: Any) -> bool:
    """What a compiled comparison (or ``known``) of a known ``value`` with ``ref`` gives: the same rule, uncompiled."""
    if op == "known":
        return (value is not None and value is not NOT_OBSERVED) == ref
    try:
        return bool(COMPARISONS[op](value, ref))
    except TypeError:
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
