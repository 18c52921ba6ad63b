"""Facts that follow from other facts: the formulas of ``derived.yaml``, worked out again whenever the known facts change.

They combine what different inputs told us (class counts with an accuracy curve, batch size
with the sample count), so no single reader can produce them. The formulas are data; this
module only evaluates them, in the order the knowledge base compiled them in.
"""
from __future__ import annotations

from typing import Any, Mapping

from ..kb import KnowledgeBase
from ..kb.formulas import evaluate


def derive(kb: KnowledgeBase, values: Mapping[str, Any]) -> dict[str, Any]:
    """Every derived fact that the known values determine (known values themselves win)."""
    formulas = kb.formulas
    scope = {**formulas.blank, **values}
    out: dict[str, Any] = {}
    for derivation in formulas.derivations:
        if derivation.name in values:
            continue
        value = evaluate(derivation, scope, formulas.functions)
        if value is not None:
            out[derivation.name] = scope[derivation.name] = value
    return out
