"""The mistakes in a knowledge base that its JSON schemas cannot see.

Unknown names, texts missing, leaves that no facts can reach: each problem names the file
to fix, so a domain expert's slip fails here, not in a user's reply.
"""
from __future__ import annotations

from typing import Any

from .conditions import Condition, compile_condition, facts_in, references
from .model import KnowledgeBase, Tree


#: The condition of an entry without `when`: it holds whatever the facts.
ALWAYS: Condition = {"all": []}


def _candidates(refs: list[tuple[str, Any]]) -> list[Any]:
    """Values of one fact that fall on each side of every comparison made on it."""
    values: list[Any] = ["__other__"]
    for op, ref in refs:
        if op == "in":
            values.extend(ref)
        elif isinstance(ref, bool):
            values.extend([True, False])
        elif isinstance(ref, (int, float)):
            values.extend([ref - 1e-9, ref, ref + 1e-9])
        elif op != "known":
            values.append(ref)
    return list(dict.fromkeys(values))


def _reachable(path: list[tuple[bool, Condition]]) -> bool:
    """Whether some facts make every condition of a path come out as it says: a backtracking search."""
    refs: dict[str, list[tuple[str, Any]]] = {}
    for _, cond in path:
        for name, op, ref in references(cond):
            refs.setdefault(name, []).append((op, ref))
    names = sorted(refs)
    tests = [(wanted, compile_condition(cond)) for wanted, cond in path]

    def consistent(values: dict[str, Any], complete: bool) -> bool:
        for wanted, test in tests:
            result = test(values)
            if (result is not None or complete) and result is not wanted:
                return False
        return True

    def search(i: int, values: dict[str, Any]) -> bool:
        if i == len(names):
            return consistent(values, complete=True)
        for candidate in _candidates(refs[names[i]]):
            trial = {**values, names[i]: candidate}
            if consistent(trial, complete=False) and search(i + 1, trial):
                return True
        return False

    return search(0, {})


def _tree_problems(kb: KnowledgeBase, tree: Tree) -> list[str]:
    where = f"trees/{tree.id}.yaml"
    problems = []
    earlier: list[tuple[bool, Condition]] = []
    for i, branch in enumerate(tree.branches):
        problems += [f"{where}: leaf '{branch.leaf}' names unknown cause '{c}'"
                     for c in branch.weigh if c not in kb.causes]
        if branch.when is None:
            if i != len(tree.branches) - 1:
                problems.append(f"{where}: leaf '{branch.leaf}' has no 'when' but is not the last entry, "
                                "so no entry after it can be reached")
            path = earlier
            earlier = [*earlier, (False, ALWAYS)]
        else:
            problems += [f"{where}: unknown fact '{f}'" for f in facts_in(branch.when) if f not in kb.facts]
            path = [*earlier, (True, branch.when)]
            earlier = [*earlier, (False, branch.when)]
        if not _reachable(path):
            problems.append(f"{where}: leaf '{branch.leaf}' is unreachable: its conditions contradict")
    return problems


def check(kb: KnowledgeBase) -> list[str]:
    """Every problem a reviewer must fix: unknown names, missing texts, unreachable leaves."""
    problems: list[str] = []
    for cause in kb.causes.values():
        where = f"causes/{cause.id}.yaml"
        if not cause.explanation.strip() or not cause.fix.strip():
            problems.append(f"{where}: needs an explanation and a fix")
        if cause.snippet not in kb.snippets:
            problems.append(f"{where}: snippet '{cause.snippet}' has no template snippets/{cause.snippet}.py.j2")
        if not cause.supports:
            problems.append(f"{where}: no supporting evidence")
        for rule in (*cause.supports, *cause.contradicts):
            problems.extend(f"{where}: unknown fact '{f}'" for f in facts_in(rule.when) if f not in kb.facts)
    for tree in kb.trees.values():
        problems += _tree_problems(kb, tree)
    return sorted(set(problems))
