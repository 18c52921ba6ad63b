"""What the reasoning asks of the knowledge base: every sentence it shows renders.

A rule's ``says`` (causes/*.yaml) becomes a line of a cause's evidence, a tree entry's ``says``
(trees/*.yaml) a reading of the reply's opening; both are filled with the user's values as
:class:`~.engine._Shown` shows them. A name that is no fact would read "learning rate ? is far
above…" in a user's reply; ``assistant kb check`` renders each sentence with sample values
instead, and names its file and line.
"""
from __future__ import annotations

from functools import partial
from typing import Any

from ..kb import KnowledgeBase
from ..kb.check import sentence_problems
from .engine import _Shown

#: What a sentence may write after a fact's name: ``{accuracy_gap_pct}`` shows a fraction as a percentage.
SUFFIXES = ("_pct",)


class _Strict(_Shown):
    """The values as a sentence shows them, raising where the reply would show "?"."""

    def __missing__(self, key: str) -> str:
        shown = super().__missing__(key)
        if shown == "?":
            raise KeyError(key)
        return shown


def _render(text: str, values: dict[str, Any]) -> str:
    return text.format_map(_Strict(values))


def problems(kb: KnowledgeBase) -> list[str]:
    """Every ``says`` of the causes' rules and the trees' entries that names no fact or does not render."""
    found = []
    for cause in kb.causes.values():
        file = f"causes/{cause.id}.yaml"
        for section, rules in (("supports", cause.supports), ("contradicts", cause.contradicts)):
            for i, rule in enumerate(rules):
                if rule.says:
                    found += sentence_problems(kb, partial(kb.places.where, file, section, i, "says"), rule.says,
                                               _render, suffixes=SUFFIXES)
    for tree in kb.trees.values():
        file = f"trees/{tree.id}.yaml"
        for i, branch in enumerate(tree.branches):
            if branch.says:
                found += sentence_problems(kb, partial(kb.places.where, file, "branches", i, "says"), branch.says,
                                           _render, suffixes=SUFFIXES)
    return found
