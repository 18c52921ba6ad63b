"""The mistakes in a knowledge base that its JSON schemas cannot see.

Unknown names, texts missing, leaves that no facts can reach, facts that nothing produces: each
problem names the file and the line to fix ("causes/overfitting.yaml:23: unknown fact 'x'"), so a
domain expert's slip fails here, not in a user's reply. What the knowledge base asks of the code
(the names a sentence or a snippet may use, the facts the readers emit) each layer checks itself;
:mod:`assistant.knowledge` joins every layer's problems.
"""
from __future__ import annotations

import difflib
import re
import string
from functools import partial
from typing import Any, Callable, Collection, Iterator

from .conditions import Condition, compile_condition, references
from .model import KnowledgeBase, Tree


#: The condition of an entry without `when`: it holds whatever the facts.
ALWAYS: Condition = {"all": []}


def _candidates(refs: list[tuple[str, Any]]) -> list[Any]:
    """Values of one fact that fall on each side of every comparison made on it."""
    values: list[Any] = ["__other__"]
    for op, ref in refs:
        if op == "known":
            values.append(None)  # not known: what `known: false` asks for
        elif op == "in":
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


def fact_places(cond: Condition, path: tuple[Any, ...] = ()) -> Iterator[tuple[str, tuple[Any, ...]]]:
    """Every fact a condition names, with the path to its ``fact:`` key inside the condition."""
    for key in ("all", "any"):
        for i, part in enumerate(cond.get(key, ())):
            yield from fact_places(part, (*path, key, i))
    if "not" in cond:
        yield from fact_places(cond["not"], (*path, "not"))
    if "fact" in cond:
        yield cond["fact"], (*path, "fact")


def _unknown_facts(kb: KnowledgeBase, file: str, cond: Condition, path: tuple[Any, ...]) -> list[str]:
    return [f"{kb.places.where(file, *at)}: unknown fact '{name}'"
            for name, at in fact_places(cond, path) if name not in kb.facts]


#: Facts whose test is unknown in most conversations, and stays so: nobody is asked for them (a symptom
#: the words did not show is false, so it is known).
_OFTEN_UNKNOWN = ("curve", "code", "experiment", "derived")


def _unless_problems(kb: KnowledgeBase, file: str, cond: Condition, path: tuple[Any, ...]) -> list[str]:
    """``not`` around a test of a fact that no question makes known: unknown whenever the fact is, so the
    rule never holds in the conversations that lack it (no history, no pasted code) although "unless" was meant."""
    problems = []
    for key in ("all", "any"):
        for i, part in enumerate(cond.get(key, ())):
            problems += _unless_problems(kb, file, part, (*path, key, i))
    inner = cond.get("not")
    if inner is None:
        return problems
    name = inner.get("fact")
    if name in kb.facts and "known" not in inner and kb.facts[name].get("kind") in _OFTEN_UNKNOWN:
        problems.append(f"{kb.places.where(file, *path, 'not')}: `not` around a test of '{name}', which is often not "
                        f"known and never asked for: the rule then never holds; to read \"unless\", write "
                        f"{{any: [{{fact: {name}, known: false}}, {{fact: {name}, is: false}}]}}")
    return problems + _unless_problems(kb, file, inner, (*path, "not"))


def _tree_problems(kb: KnowledgeBase, tree: Tree) -> list[str]:
    file = f"trees/{tree.id}.yaml"
    in_branches = {name for b in tree.branches if b.when is not None for name, _ in fact_places(b.when)}
    problems = [f"{kb.places.where(file, 'applies_when')}: unknown fact '{name}'"
                for name in sorted(tree.reads - in_branches) if name not in kb.facts]
    earlier: list[tuple[bool, Condition]] = []
    for i, branch in enumerate(tree.branches):
        where = partial(kb.places.where, file, "branches", i)
        problems += [f"{kb.places.where(file, 'branches', i, 'weigh', c)}: leaf '{branch.leaf}' names unknown "
                     f"cause '{c}'" for c in branch.weigh if c not in kb.causes]
        if branch.when is None:
            if i != len(tree.branches) - 1:
                problems.append(f"{where()}: leaf '{branch.leaf}' has no 'when' but is not the last entry, "
                                "so no entry after it can be reached")
            path = earlier
            earlier = [*earlier, (False, ALWAYS)]
        else:
            problems += _unknown_facts(kb, file, branch.when, ("branches", i, "when"))
            problems += _unless_problems(kb, file, branch.when, ("branches", i, "when"))
            path = [*earlier, (True, branch.when)]
            earlier = [*earlier, (False, branch.when)]
        if not _reachable(path):
            problems.append(f"{where()}: leaf '{branch.leaf}' is unreachable: its conditions contradict")
    return problems


def _cause_problems(kb: KnowledgeBase) -> list[str]:
    problems: list[str] = []
    for cause in kb.causes.values():
        file = f"causes/{cause.id}.yaml"
        where = kb.places.where
        if not cause.explanation.strip() or not cause.fix.strip():
            problems.append(f"{where(file, 'explanation' if not cause.explanation.strip() else 'fix')}: "
                            "needs an explanation and a fix")
        if cause.snippet not in kb.snippets:
            problems.append(f"{where(file, 'snippet')}: snippet '{cause.snippet}' has no template "
                            f"snippets/{cause.snippet}.py.j2")
        if not cause.supports:
            problems.append(f"{where(file, 'supports')}: no supporting evidence")
        for section, rules in (("supports", cause.supports), ("contradicts", cause.contradicts)):
            for i, rule in enumerate(rules):
                problems += _unknown_facts(kb, file, rule.when, (section, i, "when"))
                problems += _unless_problems(kb, file, rule.when, (section, i, "when"))
    return problems


def _alarm_problems(kb: KnowledgeBase) -> list[str]:
    problems = []
    for i, alarm in enumerate(kb.alarms):
        spec = kb.facts.get(alarm.fact)
        where = partial(kb.places.where, "alarms.yaml", "alarms", i, "fact")
        if spec is None:
            problems.append(f"{where()}: unknown fact '{alarm.fact}'")
        elif spec["type"] != "boolean":
            problems.append(f"{where()}: fact '{alarm.fact}' is a {spec['type']}, but an alarm rings on a yes/no fact")
    return problems


def unproduced(kb: KnowledgeBase, produced: Collection[str]) -> list[str]:
    """The facts of facts.yaml that nothing produces: neither the user (an ``input``), nor a formula, nor ``produced``.

    ``produced`` is what the code's readers declare they emit (the curve and symptom readers, the
    reproduction runs); a rule on a fact outside it would silently never fire.
    """
    made = set(produced) | {derivation.name for derivation in kb.formulas.derivations}
    return [f"{kb.places.where('facts.yaml', 'facts', name)}: fact '{name}' (kind {spec['kind']}) is produced by "
            "nothing, so a rule on it never fires" for name, spec in kb.facts.items()
            if spec["kind"] != "input" and name not in made]


def _unweighed_symptoms(kb: KnowledgeBase) -> list[str]:
    """The yes/no symptoms that phrases.yaml can hear but no rule, tree, formula or alarm reads: hearing them
    would change nothing (a new symptom, or a remedy, whose rule was forgotten)."""
    read = {name for _, _, _, names in kb.rules for name in names} | {alarm.fact for alarm in kb.alarms}
    read |= {name for tree in kb.trees.values() for name in tree.reads}
    read |= {name for d in kb.formulas.derivations for name in (*d.reads, *d.needs)}
    return [f"{kb.places.where('facts.yaml', 'facts', name)}: symptom '{name}' is heard in phrases.yaml but no "
            "rule, tree, formula or alarm reads it, so hearing it changes nothing"
            for name in kb.phrases.order if name in kb.facts and name not in read]


def check(kb: KnowledgeBase) -> list[str]:
    """Every problem a reviewer must fix: unknown names, missing texts, unreachable leaves, symptoms nothing weighs."""
    problems = _cause_problems(kb) + _alarm_problems(kb) + _unweighed_symptoms(kb)
    for tree in kb.trees.values():
        problems += _tree_problems(kb, tree)
    return sorted(set(problems))


# --- sample values, for the layers that render what the knowledge base says ----------------------

#: A value of each type of fact, where its declaration offers nothing better.
SAMPLES: dict[str, Any] = {"boolean": True, "number": 0.25, "integer": 3, "text": "adam",
                           "mapping": {"0": 900, "1": 100}}


def sample_value(kb: KnowledgeBase, name: str) -> Any:
    """A plausible value of one fact: a choice, a name its Keras table knows, or a value of its type within its bounds."""
    spec = kb.facts[name]
    kind, choices = spec["type"], spec.get("choices") or ()
    if kind == "text" and choices:
        return choices[0]
    if kind == "text" and "names" in spec and kb.keras.tables.get(spec["names"]):
        return next(iter(kb.keras.tables[spec["names"]]))
    if kind in ("number", "integer") and choices:
        try:
            return (float if kind == "number" else int)(choices[len(choices) // 2])
        except ValueError:
            pass
    value = SAMPLES[kind]
    if kind in ("number", "integer"):
        value = min(max(value, spec.get("min", value)), spec.get("max", value))
    return value


def sample_values(kb: KnowledgeBase) -> dict[str, Any]:
    """A plausible value of every fact, so that a sentence or template citing any fact can be rendered."""
    return {name: sample_value(kb, name) for name in kb.facts}


def cited(text: str) -> list[tuple[str, str, str]]:
    """(field, name, format spec) of every ``{field:spec}`` of a sentence, ``name`` the field before any ``.`` or ``[``.

    Raises ValueError when the sentence is not a valid format string (an unmatched brace).
    """
    return [(field, re.split(r"[.\[]", field, maxsplit=1)[0], spec or "")
            for _, field, spec, _ in string.Formatter().parse(text) if field is not None]


def sentence_problems(kb: KnowledgeBase, place: Callable[[], str], text: str,
                      render: Callable[[str, dict[str, Any]], str], *, suffixes: Collection[str] = ()) -> list[str]:
    """A sentence of the knowledge base (a ``says``) rendered with sample values, the way its layer renders it.

    Every ``{name}`` must be a fact, or a fact with one of ``suffixes`` (``_pct``); ``render`` must
    not raise on it (a format spec that does not fit the value, an unknown name it cannot show).
    ``place`` says where the sentence is written; it is asked only for a sentence with a problem.
    """
    try:
        fields = cited(text)
    except ValueError as exc:
        return [f"{place()}: {text!r} is not a sentence with {{fact}} names: {exc}"]
    problems = []
    for field, name, _ in fields:
        base = next((name.removesuffix(s) for s in suffixes if name.endswith(s) and name.removesuffix(s) in kb.facts),
                    name)
        if base not in kb.facts:
            hint = difflib.get_close_matches(base, list(kb.facts), n=1)
            problems.append(f"{place()}: {{{field}}} names no fact" + (f" (did you mean '{hint[0]}'?)" if hint else ""))
    if problems:
        return problems
    try:
        render(text, sample_values(kb))
    except Exception as exc:  # noqa: BLE001 (whatever breaks the sentence is the expert's to fix)
        return [f"{place()}: {text!r} does not render with sample values: {type(exc).__name__}: {exc}"]
    return []
