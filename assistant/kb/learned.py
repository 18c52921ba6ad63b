"""Learned weight corrections (``knowledge/learned/weights.yaml``), applied on top of the hand-set weights.

``assistant kb fit --write`` (:mod:`.fit`) writes the file; it names every rule and tree leaf whose
weight it changes by where it is written (cause, ``supports``/``contradicts`` and position; tree,
leaf and cause), with the hand weight it was fitted against, so that a weight or condition edited
by hand since makes the file stale and the knowledge base refuses to load until it is fitted again
or deleted: a learned number never silently overrides a reviewed edit.
"""
from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, Mapping

from .model import Cause, Tree, frozen

#: The file, within the knowledge base.
PATH = "learned/weights.yaml"
#: Its schema, in ``schemas/``.
SCHEMA = "weights.schema.json"
#: A hand weight equal to the one fitted against, to within this.
SAME = 1e-9


class Stale(Exception):
    """The file names a rule, leaf or weight that is no longer as it was fitted."""


def _same_condition(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def apply(data: Mapping[str, Any], causes: dict[str, Cause],
          trees: dict[str, Tree]) -> tuple[dict[str, Cause], dict[str, Tree]]:
    """The causes and trees with the learned weights in place of the hand ones; Stale names the first mismatch."""
    causes, trees = dict(causes), dict(trees)
    for n, entry in enumerate(data.get("rules", ())):
        where = f"rules[{n}] ({entry['cause']} {entry['kind']}[{entry['index']}])"
        cause = causes.get(entry["cause"])
        rules = list(getattr(cause, entry["kind"])) if cause else []
        if not 0 <= entry["index"] < len(rules):
            raise Stale(f"{where}: no such rule")
        rule = rules[entry["index"]]
        if not _same_condition(rule.when, entry["when"]) or abs(rule.weight - entry["weight"]) > SAME:
            raise Stale(f"{where}: the rule's condition or weight was edited since the fit")
        rules[entry["index"]] = replace(rule, weight=float(entry["learned"]))
        causes[cause.id] = replace(cause, **{entry["kind"]: tuple(rules)})
    for n, entry in enumerate(data.get("leaves", ())):
        where = f"leaves[{n}] ({entry['tree']} {entry['leaf']} {entry['cause']})"
        tree = trees.get(entry["tree"])
        found = [i for i, b in enumerate(tree.branches) if b.leaf == entry["leaf"]] if tree else []
        if not found or entry["cause"] not in tree.branches[found[0]].weigh:
            raise Stale(f"{where}: no such leaf weight")
        branch = tree.branches[found[0]]
        if abs(branch.weigh[entry["cause"]] - entry["weight"]) > SAME:
            raise Stale(f"{where}: the leaf's weight was edited since the fit")
        weigh = frozen({**branch.weigh, entry["cause"]: float(entry["learned"])})
        branches = list(tree.branches)
        branches[found[0]] = replace(branch, weigh=weigh)
        trees[tree.id] = replace(tree, branches=tuple(branches))
    return causes, trees


def summary(data: Mapping[str, Any]) -> str:
    """One line for ``kb check``: how many weights the file changes, and from what."""
    fitted = data["fitted"]
    return (f"learned weights: {len(data.get('rules', ()))} rule and {len(data.get('leaves', ()))} leaf weight(s) "
            f"from {fitted['cases']} case(s) and {fitted['reports']} feedback report(s)")
