"""The knowledge base as the program holds it: immutable, every condition compiled once at load.

The files in `knowledge/` say what a domain expert knows; these classes are that knowledge
read, checked and made fast to use. Nothing here reads a file (see :mod:`.loader`).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from .conditions import Condition, Predicate, compile_condition


@dataclass(frozen=True)
class Rule:
    """One piece of evidence for or against a cause: when it holds, its weight counts."""

    when: Condition
    weight: float
    says: str | None = None

    @cached_property
    def test(self) -> Predicate:
        """The condition, compiled once: every turn evaluates every rule."""
        return compile_condition(self.when)


@dataclass(frozen=True)
class Branch:
    """One entry of a triage tree: the first entry whose test holds decides the leaf."""

    leaf: str
    weigh: Mapping[str, float]
    says: str | None
    #: The entry's condition as written; None for the last entry, which takes what no other took.
    when: Condition | None
    test: Predicate | None


@dataclass(frozen=True)
class Tree:
    """A triage tree: an ordered, first-match list of branches, and when the tree applies at all."""

    id: str
    branches: tuple[Branch, ...]
    applies: Predicate | None
    #: Every fact the tree reads, its applicability test included.
    reads: frozenset[str]

    def leaves(self) -> list[str]:
        return [branch.leaf for branch in self.branches]


@dataclass(frozen=True)
class Cause:
    id: str
    category: str
    title: str
    explanation: str
    fix: str
    snippet: str
    prior: float = 0.0
    supports: tuple[Rule, ...] = ()
    contradicts: tuple[Rule, ...] = ()


@dataclass(frozen=True)
class Catalog:
    """The reproduction runs' experiments (``experiments.yaml``): the fix of each cause, and the checks."""

    fixes: Mapping[str, Mapping[str, Any]]
    checks: Mapping[str, Mapping[str, Any]]
    symptoms: Mapping[str, list[str]]
    broken: frozenset[str]


@dataclass(frozen=True, eq=False)
class KnowledgeBase:
    """Everything the assistant knows about why a model does not learn, loaded from one directory."""

    directory: Path
    facts: Mapping[str, Mapping[str, Any]]
    causes: Mapping[str, Cause]
    trees: Mapping[str, Tree]
    snippets: Mapping[str, str]
    experiments: Catalog
    #: Input facts each cause's rules mention: where the questions come from.
    asks: Mapping[str, frozenset[str]]
    #: Every rule as (cause, signed weight, rule, facts it reads), for incremental scoring.
    rules: tuple[tuple[str, float, Rule, frozenset[str]], ...]
    #: Representative answers to each input fact's question, for weighing what asking would gain.
    answers: Mapping[str, tuple[Any, ...]]

    def askable(self, name: str) -> bool:
        return self.facts.get(name, {}).get("kind") == "input"


def frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    """A read-only view, so no request can change what every other request reads."""
    return MappingProxyType(dict(mapping))
