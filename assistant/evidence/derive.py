"""Facts that follow from other facts: the formulas of ``derived.yaml``, worked out again whenever the known facts change.

They combine what different inputs told us (class counts with an accuracy curve, batch size
with the sample count), so no single reader can produce them. The formulas are data; this
module only evaluates them, in the order the knowledge base compiled them in.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Collection, Mapping

from ..kb import KnowledgeBase
from ..kb.formulas import Derivation, evaluate


def derive(kb: KnowledgeBase, values: Mapping[str, Any]) -> dict[str, Any]:
    """Every derived fact that the known values determine (known values themselves win)."""
    formulas = kb.formulas
    scope = formulas.scope(values)
    out: dict[str, Any] = {}
    for derivation in formulas.derivations:
        if derivation.name in values:
            continue
        value = evaluate(derivation, scope, formulas.functions)
        if value is not None:
            out[derivation.name] = scope[derivation.name] = value
    return out


def rederive(kb: KnowledgeBase, values: Mapping[str, Any], established: Collection[str],
             changed: Collection[str]) -> tuple[dict[str, Any], set[str]]:
    """``values`` (known and derived) after the facts ``changed`` took new values, and every name whose value changed.

    Only the formulas that read a changed name, directly or through another formula, are worked
    out again: the same result as :func:`derive` over the known facts, at a fraction of the cost
    when one hypothetical answer is tried after another. ``established`` facts are never derived.
    """
    formulas = kb.formulas
    out, dirty, scope = dict(values), set(changed), None
    for derivation in _downstream(kb, frozenset(changed)):
        if derivation.name in established or not (derivation.reads & dirty or dirty.intersection(derivation.needs)):
            continue
        if scope is None:
            scope = formulas.scope(values)
        value = evaluate(derivation, scope, formulas.functions)
        if value != out.get(derivation.name):
            scope[derivation.name] = value
            if value is None:
                del out[derivation.name]
            else:
                out[derivation.name] = value
            dirty.add(derivation.name)
    return out, dirty


@lru_cache(maxsize=1024)
def _downstream(kb: KnowledgeBase, changed: frozenset[str]) -> tuple[Derivation, ...]:
    """The formulas that read ``changed`` names, directly or through other formulas, in the order they are worked out."""
    reached, found = set(changed), []
    for derivation in kb.formulas.derivations:
        if derivation.reads & reached or reached.intersection(derivation.needs):
            reached.add(derivation.name)
            found.append(derivation)
    return tuple(found)
