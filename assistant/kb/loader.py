"""Read the knowledge base from a directory, validate each file against its JSON schema, compile it.

This is the only code that reads `knowledge/`: the app builds one :class:`KnowledgeBase` at
start (``create_app``) and hands it to every part that needs it.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from .conditions import compile_condition, facts_in, references
from .model import Branch, Catalog, Cause, KnowledgeBase, Rule, Tree, frozen

#: The knowledge base shipped with the package.
DEFAULT_DIR = Path(__file__).resolve().parents[2] / "knowledge"


class KnowledgeError(Exception):
    """The knowledge base is malformed; the message lists every problem found."""


def read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise KnowledgeError(f"{path.name}: not valid YAML: {exc}") from exc
    except OSError as exc:
        raise KnowledgeError(f"{path.name}: cannot be read: {exc.strerror}") from exc


@lru_cache(maxsize=16)
def _validator(schemas: Path, name: str) -> jsonschema.Draft202012Validator:
    """A validator for one schema file, resolving references to its sibling files."""
    docs = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in schemas.glob("*.json")}
    registry = Registry().with_resources(
        (n, Resource.from_contents(d, default_specification=DRAFT202012)) for n, d in docs.items())
    return jsonschema.Draft202012Validator(docs[name], registry=registry)


def _validated(directory: Path, relative: str, schema_name: str) -> Any:
    """One file's content, after its schema found nothing wrong."""
    data = read_yaml(directory / relative)
    validator = _validator(directory / "schemas", schema_name)
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.path))
    if errors:
        raise KnowledgeError("\n".join(
            f"{relative}: {'/'.join(map(str, e.path)) or '(top)'}: {e.message}" for e in errors))
    return data


def _rules(items: list[dict[str, Any]] | None) -> tuple[Rule, ...]:
    return tuple(Rule(r["when"], float(r["weight"]), r.get("says")) for r in items or ())


def _cause(doc: dict[str, Any]) -> Cause:
    return Cause(id=doc["id"], category=doc["category"], title=doc["title"],
                 explanation=" ".join(doc["explanation"].split()), fix=" ".join(doc["fix"].split()),
                 snippet=doc["snippet"], prior=float(doc.get("prior", 0.0)),
                 supports=_rules(doc.get("supports")), contradicts=_rules(doc.get("contradicts")))


def tree_of(doc: dict[str, Any]) -> Tree:
    """A tree file's content, compiled."""
    branches = tuple(Branch(b["leaf"], frozen(b.get("weigh", {})), b.get("says"), b.get("when"),
                            compile_condition(b["when"]) if "when" in b else None) for b in doc["branches"])
    applies = doc.get("applies_when")
    reads = {f for b in doc["branches"] for f in facts_in(b.get("when", {}))} | set(facts_in(applies or {}))
    return Tree(doc["id"], branches, compile_condition(applies) if applies else None, frozenset(reads))


def load(directory: Path | str = DEFAULT_DIR) -> KnowledgeBase:
    """Read, schema-validate and compile every knowledge file; raises KnowledgeError on the first bad file."""
    directory = Path(directory)
    facts = _validated(directory, "facts.yaml", "facts.schema.json")["facts"]
    causes = {}
    for path in sorted((directory / "causes").glob("*.yaml")):
        cause = _cause(_validated(directory, f"causes/{path.name}", "cause.schema.json"))
        causes[cause.id] = cause
    trees = {}
    for path in sorted((directory / "trees").glob("*.yaml")):
        tree = tree_of(_validated(directory, f"trees/{path.name}", "tree.schema.json"))
        trees[tree.id] = tree
    snippets = {p.name.removesuffix(".py.j2"): p.read_text(encoding="utf-8")
                for p in sorted((directory / "snippets").glob("*.py.j2"))}
    experiments = _validated(directory, "experiments.yaml", "experiments.schema.json")
    catalog = Catalog(frozen(experiments["fixes"]), frozen(experiments["checks"]), frozen(experiments["symptoms"]),
                      frozenset(experiments["broken"]))
    askable = {name for name, spec in facts.items() if spec["kind"] == "input"}
    rules = tuple((c.id, sign * r.weight, r, frozenset(facts_in(r.when)))
                  for c in causes.values() for sign, rules in ((1, c.supports), (-1, c.contradicts)) for r in rules)
    asks = {c.id: frozenset(f for r in (*c.supports, *c.contradicts) for f in facts_in(r.when) if f in askable)
            for c in causes.values()}
    answers = {name: tuple(_answers(facts[name], rules, name)) for name in sorted(askable)}
    return KnowledgeBase(directory=directory, facts=frozen(facts), causes=frozen(causes), trees=frozen(trees),
                         snippets=frozen(snippets), experiments=catalog, asks=frozen(asks), rules=rules,
                         answers=frozen(answers))


def _answers(spec: dict[str, Any], rules: tuple[tuple[str, float, Rule, frozenset[str]], ...],
             name: str) -> list[Any]:
    """Representative answers to a question: its choices, or one value per threshold interval."""
    if spec["type"] == "boolean":
        return [True, False]
    if spec["type"] == "mapping":
        return []
    refs = [(op, ref) for _, _, rule, _ in rules for fact, op, ref in references(rule.when) if fact == name]
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
