"""Read the knowledge base from a directory, validate each file against its JSON schema, compile it.

This is the only code that reads `knowledge/`: the app builds one :class:`KnowledgeBase` at
start (``create_app``) and hands it to every part that needs it.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import jsonschema
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from . import learned as learned_weights
from .conditions import compile_condition, facts_in, references
from .formulas import Derivation, FormulaError, compile_formula, library
from .model import Alarm, Branch, Catalog, Cause, Formulas, Keras, KnowledgeBase, Rule, Spec, Tree, frozen
from .phrases import PhrasesError, compile_phrases
from .places import LOADER, Composed, Places, lines_of
from .words import PATH as WORDS_PATH
from .words import Words

#: The knowledge base shipped with the package.
DEFAULT_DIR = Path(__file__).resolve().parents[2] / "knowledge"
#: What each fix achieved on a short run with its fault, as ``benchmarks/fix_effect.py --write`` measured it.
EFFECTS_PATH = "effects.yaml"


class KnowledgeError(Exception):
    """The knowledge base is malformed; the message lists every problem found."""


def read_yaml(path: Path, name: str | None = None) -> Any:
    """A YAML file's content; ``name`` (the path within the knowledge base) leads any error, with the line."""
    name = name or path.name
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=LOADER)  # noqa: S506 (a safe loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise KnowledgeError(f"{name}{f':{mark.line + 1}' if mark else ''}: not valid YAML: {exc}") from exc
    except OSError as exc:
        raise KnowledgeError(f"{name}: cannot be read: {exc.strerror}") from exc


@lru_cache(maxsize=4)
def _schemas(schemas: Path) -> tuple[dict[str, Any], Registry]:
    """Every schema file of a folder, read once, and the registry that resolves references between them."""
    docs = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in schemas.glob("*.json")}
    return docs, Registry().with_resources(
        (n, Resource.from_contents(d, default_specification=DRAFT202012)) for n, d in docs.items())


@lru_cache(maxsize=16)
def _validator(schemas: Path, name: str) -> jsonschema.Draft202012Validator:
    """A validator for one schema file, resolving references to its sibling files."""
    docs, registry = _schemas(schemas)
    return jsonschema.Draft202012Validator(docs[name], registry=registry)


#: What each schema found wrong with each text, by the text's digest: the texts themselves (a quarter of a
#: megabyte for the shipped knowledge base) are not kept. The last ``FOUND_KEPT`` are remembered.
_FOUND: OrderedDict[tuple[Path, str, bytes], tuple[jsonschema.ValidationError, ...]] = OrderedDict()
FOUND_KEPT = 256


def _schema_errors(schemas: Path, schema_name: str, text: str) -> tuple[jsonschema.ValidationError, ...]:
    """What a schema finds wrong with a file's text; a text seen before (another app, a copied
    knowledge base) is not validated twice."""
    key = (schemas, schema_name, hashlib.sha256(text.encode()).digest())
    if key not in _FOUND:
        data = yaml.load(text, Loader=LOADER)  # noqa: S506 (a safe loader)
        if len(_FOUND) >= FOUND_KEPT:
            _FOUND.popitem(last=False)
        _FOUND[key] = tuple(sorted(_validator(schemas, schema_name).iter_errors(data),
                                   key=lambda e: list(map(str, e.path))))
    return _FOUND[key]


def _validated(directory: Path, relative: str, schema_name: str) -> Any:
    """One file's content, after its schema found nothing wrong."""
    data = read_yaml(directory / relative, relative)
    errors = _schema_errors(directory / "schemas", schema_name, (directory / relative).read_text(encoding="utf-8"))
    if errors:
        places = Places({relative: lines_of((directory / relative).read_text(encoding="utf-8"))})
        raise KnowledgeError("\n".join(
            f"{places.where(relative, *e.path)}: {'/'.join(map(str, e.path)) or '(top)'}: {e.message}"
            for e in errors))
    return data


def _named_after(path: Path, ident: str) -> None:
    """A cause's or a tree's id is its file's name, so a problem about it names the right file."""
    if ident != path.stem:
        relative = f"{path.parent.name}/{path.name}"
        where = Places({relative: lines_of(path.read_text(encoding="utf-8"))}).where(relative, "id")
        raise KnowledgeError(f"{where}: id '{ident}' is not the file's name: name the file {ident}.yaml")


def places(directory: Path) -> Places:
    """The line of every entry of every YAML file of a knowledge base, for problems that name it (each file is
    read for them when a problem first needs it)."""
    return Places(Composed(directory, (path.relative_to(directory).as_posix() for path in directory.rglob("*.yaml"))))


def _rules(items: list[dict[str, Any]] | None) -> tuple[Rule, ...]:
    return tuple(Rule(r["when"], float(r["weight"]), r.get("says")) for r in items or ())


def _cause(doc: dict[str, Any]) -> Cause:
    return Cause(id=doc["id"], category=doc["category"], title=doc["title"],
                 explanation=" ".join(doc["explanation"].split()), fix=" ".join(doc["fix"].split()),
                 snippet=doc["snippet"], prior=float(doc.get("prior", 0.0)),
                 supports=_rules(doc.get("supports")), contradicts=_rules(doc.get("contradicts")),
                 scenarios=tuple(frozen(scenario) for scenario in doc.get("scenarios", ())))


def tree_of(doc: dict[str, Any]) -> Tree:
    """A tree file's content, compiled."""
    branches = tuple(Branch(b["leaf"], frozen(b.get("weigh", {})), b.get("says"), b.get("when"),
                            compile_condition(b["when"]) if "when" in b else None) for b in doc["branches"])
    applies = doc.get("applies_when")
    reads = {f for b in doc["branches"] for f in facts_in(b.get("when", {}))} | set(facts_in(applies or {}))
    return Tree(doc["id"], branches, compile_condition(applies) if applies else None, frozenset(reads))


def _spec(entry: dict[str, Any], keras: Keras) -> Spec:
    """A contract key's facts.yaml entry as a Spec: Keras names, closed choices, or plain values."""
    kind, names = entry["type"], None
    if "names" in entry:
        kind, names = "name", keras.names(entry["names"])
    elif kind == "text" and "choices" in entry:
        aliases = entry.get("aliases", {})
        kind, names = "choice", {choice: tuple(aliases.get(choice, ())) for choice in entry["choices"]}
    elif kind == "text":
        kind, names = "name", {}
    return Spec(kind, entry.get("min"), entry.get("max"), names, entry.get("label"), entry.get("not_above"))


def _formulas(doc: dict[str, Any], facts: dict[str, Any], thresholds: Mapping[str, float],
              keras: Keras, at: Places = Places()) -> tuple[Formulas, dict[str, Any]]:
    """The derived facts compiled in dependency order, and their declarations to join facts.yaml's."""
    def where(name: str) -> str:
        return at.where("derived.yaml", "derived", name)

    declared = {name: {"kind": "derived", "type": entry["type"], "description": entry["description"]}
                for name, entry in doc.items() if name not in facts and "type" in entry}
    problems = [f"{where(name)}: {name}: a new fact needs a type and a description"
                for name, entry in doc.items() if name not in facts and name not in declared]
    problems += [f"{where(name)}: {name}: declared in facts.yaml already; give only its formula here"
                 for name, entry in doc.items() if name in facts and ("type" in entry or "description" in entry)]
    problems += [f"{where(name)}: {name}: a threshold of the same name exists" for name in doc if name in thresholds]
    functions = library(keras.get, thresholds)
    known = set(facts) | set(declared) | set(thresholds) | set(functions)
    compiled = {}
    for name, entry in doc.items():
        try:
            compiled[name] = compile_formula(name, entry["formula"], entry.get("needs", ()), known)
        except FormulaError as exc:
            problems.append(f"{where(name)}: {exc}")
    if problems:
        raise KnowledgeError("\n".join(problems))
    ordered: list[Derivation] = []
    pending = dict(compiled)
    while pending:
        ready = [d for d in pending.values() if not (d.reads | set(d.needs)) & (pending.keys() - {d.name})]
        if not ready:
            raise KnowledgeError(f"{where(next(iter(pending)))}: these formulas read each other in a circle: "
                                 f"{', '.join(pending)}")
        for derivation in ready:
            ordered.append(derivation)
            del pending[derivation.name]
    blank = {**dict.fromkeys([*facts, *declared]), **thresholds}
    return Formulas(tuple(ordered), {"__builtins__": {}, **functions}, frozen(blank)), declared


def _inputs_read(formulas: Formulas, askable: set[str]):
    """The input facts a fact rests on: itself if the user can tell us, else what its formula reads, in turn."""
    reads = {d.name: d.reads | set(d.needs) for d in formulas.derivations}

    def inputs(name: str, seen: frozenset[str] = frozenset()) -> set[str]:
        if name in askable:
            return {name}
        return {i for read in reads.get(name, set()) - seen for i in inputs(read, seen | {name})}

    return inputs


def load(directory: Path | str = DEFAULT_DIR, *, learned: bool = True) -> KnowledgeBase:
    """Read, schema-validate and compile every knowledge file; raises KnowledgeError on the first bad file.

    ``learned=False`` leaves out the learned weights, for the fit that replaces them.
    """
    directory = Path(directory)
    facts = _validated(directory, "facts.yaml", "facts.schema.json")["facts"]
    causes = {}
    for path in sorted((directory / "causes").glob("*.yaml")):
        cause = _cause(_validated(directory, f"causes/{path.name}", "cause.schema.json"))
        _named_after(path, cause.id)
        causes[cause.id] = cause
    trees = {}
    for path in sorted((directory / "trees").glob("*.yaml")):
        tree = tree_of(_validated(directory, f"trees/{path.name}", "tree.schema.json"))
        _named_after(path, tree.id)
        trees[tree.id] = tree
    corrections = _corrections(directory) if learned else None
    if corrections is not None:
        try:
            causes, trees = learned_weights.apply(corrections, causes, trees)
        except learned_weights.Stale as exc:
            raise KnowledgeError(f"{learned_weights.PATH}: {exc}: fit again (assistant kb fit --write) "
                                 "or delete the file") from None
    snippets = {p.name.removesuffix(".py.j2"): p.read_text(encoding="utf-8")
                for p in sorted((directory / "snippets").glob("*.py.j2"))}
    experiments = _validated(directory, "experiments.yaml", "experiments.schema.json")
    catalog = Catalog(frozen(experiments["fixes"]), frozen(experiments["checks"]), frozen(experiments["symptoms"]),
                      frozenset(experiments["broken"]))
    keras = _validated(directory, "keras.yaml", "keras.schema.json")
    tables = frozen({name: frozen({k: frozen(v) for k, v in table.items()})
                     for name, table in keras.items() if isinstance(table, dict)})
    keras_names = Keras(tables, frozenset(keras["model_json_classes"]))
    thresholds = {name: float(entry["value"]) for name, entry in
                  _validated(directory, "thresholds.yaml", "thresholds.schema.json")["thresholds"].items()}
    where = places(directory)
    formulas, derived = _formulas(_validated(directory, "derived.yaml", "derived.schema.json")["derived"], facts,
                                  thresholds, keras_names, where)
    facts = {**facts, **derived}
    askable = {name for name, spec in facts.items() if spec["kind"] == "input"}
    vocabulary = {name: _spec(spec, keras_names) for name, spec in facts.items() if name in askable}
    rules = tuple((c.id, sign * r.weight, r, frozenset(facts_in(r.when)))
                  for c in causes.values() for sign, rules in ((1, c.supports), (-1, c.contradicts)) for r in rules)
    inputs = _inputs_read(formulas, askable)
    asks = {c.id: frozenset(i for r in (*c.supports, *c.contradicts) for f in facts_in(r.when) for i in inputs(f))
            for c in causes.values()}
    answers = {name: tuple(_answers(facts[name], rules, name)) for name in sorted(askable)}
    try:
        phrases = compile_phrases(_validated(directory, "phrases.yaml", "phrases.schema.json"), facts, thresholds,
                                  where)
    except PhrasesError as exc:
        raise KnowledgeError(str(exc)) from None
    return KnowledgeBase(directory=directory, facts=frozen(facts), causes=frozen(causes), trees=frozen(trees),
                         snippets=frozen(snippets), experiments=catalog,
                         keras=keras_names, vocabulary=frozen(vocabulary), thresholds=frozen(thresholds),
                         formulas=formulas, asks=frozen(asks), rules=rules, answers=frozen(answers), phrases=phrases,
                         alarms=tuple(Alarm(**entry) for entry in
                                      _validated(directory, "alarms.yaml", "alarms.schema.json")["alarms"]),
                         places=where, words=_words(directory, causes), corrections=corrections,
                         effects=_effects(directory, causes))


def _effects(directory: Path, causes: Mapping[str, Cause]) -> Mapping[str, str]:
    """The sentence a reply adds after each cause's fix, when ``effects.yaml`` measured one."""
    if not (directory / EFFECTS_PATH).is_file():
        return frozen({})
    measured = _validated(directory, EFFECTS_PATH, "effects.schema.json")
    unknown = sorted(set(measured["effects"]) - set(causes))
    if unknown:
        raise KnowledgeError(f"{EFFECTS_PATH}: effects: no cause is named {', '.join(map(repr, unknown))}: measure "
                             "again (benchmarks/fix_effect.py --write) or delete the entry")
    return frozen({cause: measured["says"].format(score=effect["score"], before=_figure(effect["before"]),
                                                  after=_figure(effect["after"]))
                   for cause, effect in measured["effects"].items()})


def _figure(value: float) -> str:
    """A measured score as a person reads it: three figures, or NaN."""
    return f"{value:.3g}" if math.isfinite(value) else "NaN"


def _corrections(directory: Path) -> dict[str, Any] | None:
    """The learned weight corrections when ``learned/weights.yaml`` is there, schema-checked."""
    if not (directory / learned_weights.PATH).is_file():
        return None
    return _validated(directory, learned_weights.PATH, learned_weights.SCHEMA)


def _words(directory: Path, causes: Mapping[str, Cause]) -> Words | None:
    """The learned text model when ``learned/words.json`` is there, checked against its schema and the causes."""
    path = directory / WORDS_PATH
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise KnowledgeError(f"{WORDS_PATH}: not valid JSON: {exc}") from None
    except OSError as exc:
        raise KnowledgeError(f"{WORDS_PATH}: cannot be read: {exc.strerror}") from None
    errors = sorted(_validator(directory / "schemas", "words.schema.json").iter_errors(data),
                    key=lambda e: list(map(str, e.path)))
    if errors:
        raise KnowledgeError("\n".join(f"{WORDS_PATH}: {'/'.join(map(str, e.path)) or '(top)'}: {e.message[:200]}"
                                       for e in errors[:20]))
    unknown = [cause for cause in data["classes"] if cause not in causes]
    if unknown:
        raise KnowledgeError(f"{WORDS_PATH}: classes: no cause is named {', '.join(map(repr, unknown))}: learn the "
                             "words again (assistant kb learn-words --write) or delete the file")
    try:
        return Words.from_data(data)
    except (ValueError, re.error) as exc:
        raise KnowledgeError(f"{WORDS_PATH}: {exc}") from None


def _answers(spec: dict[str, Any], rules: tuple[tuple[str, float, Rule, frozenset[str]], ...],
             name: str) -> list[Any]:
    """Representative answers to a question: its choices, or one value per threshold interval.

    A number that only formulas read (the output units) has no thresholds of
    its own: its declared ``examples`` stand for its answers, so that it can be asked at all.
    """
    if spec["type"] == "boolean":
        return [True, False]
    if spec["type"] == "mapping":
        return list(spec.get("examples", []))
    refs = [(op, ref) for _, _, rule, _ in rules for fact, op, ref in references(rule.when) if fact == name]
    if spec["type"] == "text":
        said = {v for _, ref in refs for v in (ref if isinstance(ref, list) else [ref])}
        return sorted(said | set(spec.get("choices", [])) | {"__other__"}, key=str)
    cuts = sorted({float(ref) for op, ref in refs if op in ("above", "below", "at_least", "at_most")})
    if not cuts:
        return list(spec.get("examples", []))
    points = [cuts[0] / 2 if cuts[0] > 0 else cuts[0] - 1]
    points += [(a + b) / 2 for a, b in zip(cuts, cuts[1:])]
    points.append(cuts[-1] * 2 if cuts[-1] > 0 else cuts[-1] + 1)
    return points
