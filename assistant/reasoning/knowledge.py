"""Load the knowledge base from `knowledge/`, validate it, and find what a reviewer must fix.

The knowledge base is data a domain expert edits: YAML files for facts, causes and trees,
Jinja templates for snippets. JSON schemas catch malformed files; `check` catches the
mistakes a schema cannot see (unknown names, leaves no answer can reach).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import click
import jsonschema
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from .conditions import Condition, Predicate, compile_condition, facts_in, references

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "knowledge"


class KnowledgeError(Exception):
    """The knowledge base is malformed; the message lists every problem found."""


@dataclass(frozen=True)
class Rule:
    when: Condition
    weight: float
    says: str | None = None

    @cached_property
    def test(self) -> Predicate:
        """The condition, compiled once: every turn evaluates every rule."""
        return compile_condition(self.when)


@dataclass(frozen=True)
class Branch:
    """A tree's test node, its condition compiled; leaves stay the dicts the YAML file gives."""

    test: Predicate
    then: Branch | dict[str, Any]
    otherwise: Branch | dict[str, Any]

    @classmethod
    def of(cls, node: dict[str, Any]) -> Branch | dict[str, Any]:
        if "leaf" in node:
            return node
        return cls(compile_condition(node["test"]), cls.of(node["then"]), cls.of(node["else"]))


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


@dataclass
class KnowledgeBase:
    facts: dict[str, dict[str, Any]]
    causes: dict[str, Cause]
    trees: dict[str, dict[str, Any]]
    snippets: dict[str, str]
    directory: Path
    #: input facts each cause's rules mention: where the questions come from.
    asks: dict[str, set[str]] = field(default_factory=dict)
    #: every rule as (cause, signed weight, rule, facts it reads), for incremental scoring.
    rules: list[tuple[str, float, Rule, frozenset[str]]] = field(default_factory=list)
    #: representative answers to each input fact's question, for weighing what asking would gain.
    answers: dict[str, list[Any]] = field(default_factory=dict)
    #: each tree compiled: its applicability test (None: it always applies) and its root.
    decisions: dict[str, tuple[Predicate | None, Branch | dict[str, Any]]] = field(default_factory=dict)
    #: the facts each tree reads, its applicability test included.
    tree_facts: dict[str, frozenset[str]] = field(default_factory=dict)

    def askable(self, name: str) -> bool:
        return self.facts.get(name, {}).get("kind") == "input"


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise KnowledgeError(f"{path.name}: not valid YAML: {exc}") from exc


@lru_cache(maxsize=16)
def _validator(schemas: Path, name: str) -> jsonschema.Draft202012Validator:
    """A validator for one schema file, resolving references to its sibling files."""
    docs = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in schemas.glob("*.json")}
    registry = Registry().with_resources(
        (n, Resource.from_contents(d, default_specification=DRAFT202012)) for n, d in docs.items())
    return jsonschema.Draft202012Validator(docs[name], registry=registry)


def _validate(data: Any, schema_name: str, directory: Path, label: str) -> None:
    validator = _validator(directory / "schemas", schema_name)
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.path))
    if errors:
        raise KnowledgeError("\n".join(
            f"{label}: {'/'.join(map(str, e.path)) or '(top)'}: {e.message}" for e in errors))


def _rules(items: list[dict[str, Any]]) -> tuple[Rule, ...]:
    return tuple(Rule(r["when"], float(r["weight"]), r.get("says")) for r in items or ())


def load(directory: Path | str = DEFAULT_DIR) -> KnowledgeBase:
    """Read and schema-validate every knowledge file; raises KnowledgeError on the first bad file."""
    directory = Path(directory)
    facts_doc = _read_yaml(directory / "facts.yaml")
    _validate(facts_doc, "facts.schema.json", directory, "facts.yaml")
    causes: dict[str, Cause] = {}
    for path in sorted((directory / "causes").glob("*.yaml")):
        doc = _read_yaml(path)
        _validate(doc, "cause.schema.json", directory, f"causes/{path.name}")
        causes[doc["id"]] = Cause(
            id=doc["id"], category=doc["category"], title=doc["title"],
            explanation=" ".join(doc["explanation"].split()), fix=" ".join(doc["fix"].split()),
            snippet=doc["snippet"], prior=float(doc.get("prior", 0.0)),
            supports=_rules(doc.get("supports")), contradicts=_rules(doc.get("contradicts")))
    trees = {}
    for path in sorted((directory / "trees").glob("*.yaml")):
        doc = _read_yaml(path)
        _validate(doc, "tree.schema.json", directory, f"trees/{path.name}")
        trees[doc["id"]] = doc
    snippets = {p.name.removesuffix(".py.j2"): p.read_text(encoding="utf-8")
                for p in sorted((directory / "snippets").glob("*.py.j2"))}
    kb = KnowledgeBase(facts_doc["facts"], causes, trees, snippets, directory)
    kb.asks = {c.id: {f for r in (*c.supports, *c.contradicts) for f in facts_in(r.when) if kb.askable(f)}
               for c in causes.values()}
    kb.rules = [(c.id, sign * r.weight, r, frozenset(facts_in(r.when)))
                for c in causes.values() for sign, rules in ((1, c.supports), (-1, c.contradicts)) for r in rules]
    kb.answers = {name: _answers(kb, name) for name in kb.facts if kb.askable(name)}
    kb.tree_facts = {tid: frozenset(f for _, path in walk(t["root"]) for _, cond in path for f in facts_in(cond))
                     | frozenset(facts_in(t.get("applies_when", {}))) for tid, t in trees.items()}
    kb.decisions = {tid: (compile_condition(t["applies_when"]) if "applies_when" in t else None, Branch.of(t["root"]))
                    for tid, t in trees.items()}
    return kb


@lru_cache(maxsize=4)
def load_cached(directory: str = str(DEFAULT_DIR)) -> KnowledgeBase:
    """The knowledge base of a directory, loaded once per process."""
    kb = load(directory)
    problems = check(kb)
    if problems:
        raise KnowledgeError("\n".join(problems))
    return kb


def _answers(kb: KnowledgeBase, name: str) -> list[Any]:
    """Representative answers to a question: its choices, or one value per threshold interval."""
    spec = kb.facts[name]
    if spec["type"] == "boolean":
        return [True, False]
    if spec["type"] == "mapping":
        return []
    refs = [(op, ref) for _, _, rule, _ in kb.rules for fact, op, ref in references(rule.when) if fact == name]
    if spec["type"] == "text":
        said = {v for _, ref in refs for v in (ref if isinstance(ref, list) else [ref])}
        return sorted(said | set(spec.get("choices", [])) | {"__other__"}, key=str)
    cuts = sorted({float(ref) for op, ref in refs if op in ("above", "below", "at_least", "at_most")})
    if not cuts:
        return []
    points = [cuts[0] / 2 if cuts[0] > 0 else cuts[0] - 1]
    points += [(a + b) / 2 for a, b in zip(cuts, cuts[1:])]
    points.append(cuts[-1] * 2 if cuts[-1] > 0 else cuts[-1] + 1)
    return points


def walk(node: dict[str, Any], path: tuple[Condition | tuple[str, Condition], ...] = ()):
    """Yield (leaf, path) for every leaf; the path lists (branch, condition) pairs taken."""
    if "leaf" in node:
        yield node, path
        return
    yield from walk(node["then"], (*path, ("then", node["test"])))
    yield from walk(node["else"], (*path, ("else", node["test"])))


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


def _reachable(path: tuple[tuple[str, Condition], ...]) -> bool:
    """Whether some facts take every branch of a path: a backtracking search over candidate values."""
    refs: dict[str, list[tuple[str, Any]]] = {}
    for _, cond in path:
        for name, op, ref in references(cond):
            refs.setdefault(name, []).append((op, ref))
    names = sorted(refs)
    tests = [(branch, compile_condition(cond)) for branch, cond in path]

    def consistent(values: dict[str, Any], complete: bool) -> bool:
        for branch, test in tests:
            result = test(values)
            if (result is not None or complete) and result is not (branch == "then"):
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


def check(kb: KnowledgeBase) -> list[str]:
    """Every problem a reviewer must fix: unknown names, missing texts, unreachable leaves."""
    problems: list[str] = []
    contract = _contract_causes()
    for missing in sorted(contract - kb.causes.keys()):
        problems.append(f"cause {missing} of the contract has no file in causes/")
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
    for tree_id, tree in kb.trees.items():
        where = f"trees/{tree_id}.yaml"
        for leaf, path in walk(tree["root"]):
            problems.extend(f"{where}: leaf '{leaf['leaf']}' names unknown cause '{c}'"
                            for c in leaf.get("weigh", {}) if c not in kb.causes)
            problems.extend(f"{where}: unknown fact '{f}'" for _, cond in path for f in facts_in(cond)
                            if f not in kb.facts)
            if not _reachable(path):
                problems.append(f"{where}: leaf '{leaf['leaf']}' is unreachable: its conditions contradict")
    return sorted(set(problems))


def _contract_causes() -> set[str]:
    """Cause ids the wire contract fixes, when the shared contract is beside the checkout."""
    path = DEFAULT_DIR.parent.parent / "shared" / "contract" / "causes.json"
    if not path.exists():
        return set()
    return set(json.loads(path.read_text(encoding="utf-8"))["causes"])


@click.group("kb")
def kb_command() -> None:
    """Inspect the knowledge base in knowledge/."""


@kb_command.command("check")
@click.option("--directory", type=click.Path(exists=True, file_okay=False), default=str(DEFAULT_DIR),
              show_default=True, help="The knowledge base to check.")
def check_command(directory: str) -> None:
    """Validate every file against its schema and report what a reviewer must fix."""
    try:
        kb = load(directory)
    except KnowledgeError as exc:
        raise click.ClickException(str(exc)) from None
    problems = check(kb)
    for problem in problems:
        click.echo(problem, err=True)
    if problems:
        raise click.ClickException(f"{len(problems)} problem(s) in the knowledge base")
    click.echo(f"knowledge base OK: {len(kb.causes)} causes, {len(kb.trees)} trees, "
               f"{len(kb.facts)} facts, {len(kb.snippets)} snippet templates")
