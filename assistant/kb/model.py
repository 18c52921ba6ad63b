"""The knowledge base as the program holds it: immutable, every condition compiled once at load.

The files in `knowledge/` say what a domain expert knows; these classes are that knowledge
read, checked and made fast to use. Nothing here reads a file (see :mod:`.loader`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any, Iterator, Mapping

from .conditions import Condition, Predicate, compile_condition
from .formulas import Derivation
from .places import Places
from .words import Words


def squash(text: str) -> str:
    """Fold case and drop separators, so ``Sparse-Categorical CrossEntropy`` meets its alias."""
    return re.sub(r"[\W_]+", "", text).lower()


@dataclass(frozen=True)
class Spec:
    """How one contract key is read: its type, the values it allows, and its name in a sentence.

    ``type`` is ``number``, ``integer``, ``boolean``, ``mapping`` (class label → count),
    ``choice`` (a closed set: ``names`` maps each value to its other spellings) or ``name``
    (an open set of Keras identifiers; ``names`` lists the known ones so their spellings
    are unified). ``min`` and ``max`` are inclusive bounds; ``not_above`` names another key
    whose value this one cannot exceed.
    """

    type: str
    min: float | None = None
    max: float | None = None
    names: Mapping[str, tuple[str, ...]] | None = None
    label: str | None = None
    not_above: str | None = None

    @cached_property
    def aliases(self) -> dict[str, str]:
        """Squashed spelling → canonical value, for ``choice`` and ``name`` keys."""
        names = self.names or {}
        return {squash(alias): canon for canon, aliases in names.items() for alias in (canon, *aliases)}

    @cached_property
    def prefixes(self) -> frozenset[str]:
        """Every start of a squashed spelling: where a reader of names spelled over several words can stop looking."""
        return frozenset(alias[:n] for alias in self.aliases for n in range(1, len(alias) + 1))


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
    #: Forum-style cases this cause must lead (``scenarios:``): name, symptom, metrics, dataset, training, expect.
    #: The reasoning never reads them; tests/reasoning/test_scenarios.py runs each through the API.
    scenarios: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class Alarm:
    """A sign in a live run worth interrupting training for (``alarms.yaml``)."""

    #: A yes/no fact that rings the alarm when it is true.
    fact: str
    #: The warning when the fact carries no note of its own; ``{name}`` takes a fact's value.
    says: str
    #: Epochs the run must have reached first.
    after: int


@dataclass(frozen=True)
class Catalog:
    """The reproduction runs' experiments (``experiments.yaml``): the fix of each cause, and the checks."""

    fixes: Mapping[str, Mapping[str, Any]]
    checks: Mapping[str, Mapping[str, Any]]
    symptoms: Mapping[str, list[str]]
    broken: frozenset[str]


def head(heads: Mapping[str, Mapping[str, Any]], *, regression: bool, binary: bool, one_hot: bool,
         classes: int | None) -> dict[str, Any]:
    """The output layer, loss and metrics that fit a target (``heads`` of keras.yaml), units counted.

    A plain function over the plain table, so that a reproduction worker, which has no knowledge
    base, chooses as the web tier does.
    """
    kind = "regression" if regression else ("binary" if binary else "classes") + ("_one_hot" if one_hot else "")
    fit = dict(heads[kind])
    if fit["units"] == "classes":
        fit["units"] = max(int(classes or 2), 2)
    return fit


@dataclass(frozen=True)
class Keras:
    """Keras's own names (``keras.yaml``): each table maps a canonical name to what it is."""

    #: Table (optimizers, losses, activations, ...) → canonical name → properties.
    tables: Mapping[str, Mapping[str, Mapping[str, Any]]]
    #: Classes an uploaded ``model.to_json()`` may name.
    model_json_classes: frozenset[str]

    def names(self, table: str) -> dict[str, tuple[str, ...]]:
        """Each canonical name of a table with its other spellings."""
        return {name: tuple(entry.get("aliases", ())) for name, entry in self.tables[table].items()}

    def having(self, table: str, prop: str, value: Any = True) -> frozenset[str]:
        """The names of a table whose ``prop`` is ``value``: the cross-entropies, the optimizers a run can use."""
        return frozenset(name for name, entry in self.tables[table].items() if entry.get(prop) == value)

    def get(self, table: str, name: str | None, prop: str, default: Any = None) -> Any:
        """One property of one name, ``default`` for a name the table does not know."""
        return self.tables[table].get(name or "", {}).get(prop, default)


@dataclass(frozen=True)
class Formulas:
    """The derived facts (``derived.yaml``), compiled and in an order where each reads only earlier ones."""

    derivations: tuple[Derivation, ...]
    #: What a formula's globals hold: the formula library, and no builtins.
    functions: dict[str, Any]
    #: Every name a formula may read, None for a fact, a threshold's value for a threshold.
    blank: MappingProxyType[str, Any]

    def scope(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """What a formula reads: ``values`` over :attr:`blank`.

        Copied through the proxy's own ``copy`` (its dict's): unpacking a proxy with ``**`` reads it
        name by name, and each hypothetical answer a question is weighed with builds a scope.
        """
        scope = self.blank.copy()
        scope.update(values)
        return scope


@dataclass(frozen=True)
class Implication:
    """A stated number that implies a yes/no symptom (``phrases.yaml``, ``numbers: implied``)."""

    symptom: str
    #: The subject whose numbers are tested ("loss", "val_accuracy", ...).
    subject: str
    #: With it, the last number of ``subject`` minus the last of ``minus`` is tested instead.
    minus: str | None
    #: ``is``, ``below``, ``above``, ``at_least`` or ``at_most``.
    op: str
    limit: float

    def holds(self, value: float) -> bool:
        return {"is": value == self.limit, "below": value < self.limit, "above": value > self.limit,
                "at_least": value >= self.limit, "at_most": value <= self.limit}[self.op]


@dataclass(frozen=True)
class KeyPhrase:
    """How a reply names one contract key (``phrases.yaml``, ``answers: keys``), compiled three ways."""

    #: The name, then its value: "lr was 0.5" (group ``value``).
    named: re.Pattern[str]
    #: The name alone: "no batch norm".
    mention: re.Pattern[str]
    #: A count, then the name: "50 epochs" (group ``value``).
    counted: re.Pattern[str]


@dataclass(frozen=True)
class Default:
    """A setting said to be at its default ("the default lr"): Keras's default for the stated ``of`` value."""

    #: The input fact whose stated value names the Keras entry (``optimizer``), and its keras.yaml table.
    of: str
    table: str
    #: The entry's property that holds the default (``default_learning_rate``).
    property: str
    phrases: tuple[re.Pattern[str], ...]


@dataclass(frozen=True)
class Implied:
    """A stated count that implies another setting (``stated: implied``): n_classes 2 → a binary task."""

    key: str
    value: str
    #: The input fact whose stated number is compared, the comparison, and the number compared with.
    fact: str
    op: str
    limit: float

    def holds(self, value: float) -> bool:
        return Implication(self.value, self.fact, None, self.op, self.limit).holds(value)


@dataclass(frozen=True)
class Stated:
    """Setup facts said in prose (``phrases.yaml``, ``stated:``): the language; the reader holds the mechanism."""

    #: Searched in a value's sentence before it: the value was tried or compared, not (surely) used.
    hedges: re.Pattern[str]
    #: Where a hedge's reach starts again: the end of a sentence, "but", "now".
    hedge_ends: re.Pattern[str]
    #: Matched right after a value, or searched right before a count: one of several numbers ("0.1, 0.01").
    several_after: re.Pattern[str]
    several_before: re.Pattern[str]
    #: Counting word → its number ("two" → 2).
    counting: Mapping[str, int]
    #: Input fact → phrases with a group ``count``.
    counts: Mapping[str, tuple[re.Pattern[str], ...]]
    #: Searched in the clause before a count's number, and matched right after its phrase: not the setting.
    not_before: re.Pattern[str]
    not_after: re.Pattern[str]
    #: Input fact → value → phrases.
    values: Mapping[str, Mapping[str, tuple[re.Pattern[str], ...]]]
    #: Input fact → value → the values it drops when both are found.
    outranks: Mapping[str, Mapping[str, tuple[str, ...]]]
    #: Input fact → searched in the clause before a value's phrase: the words are about something else.
    unless: Mapping[str, re.Pattern[str]]
    #: Settings that stated counts imply.
    implied: tuple[Implied, ...]
    #: Input fact (one whose values are Keras names) → phrases with a group ``name`` over masked names.
    names: Mapping[str, tuple[re.Pattern[str], ...]]
    #: Squashed Keras names that are ordinary words too: read only with more words than the name.
    ordinary: frozenset[str]
    #: Searched in the line before a Keras name: the name is not the setting ("metrics=['mae']").
    name_not_after: re.Pattern[str]
    #: Input fact → how it is said to be at its default.
    defaults: Mapping[str, Default]


@dataclass(frozen=True)
class Form:
    """One way of saying that a change worked, or did not: each change in a group named after the symptom it shows."""

    pattern: re.Pattern[str]
    #: A part of the form (an outcome such as ``{helped}``) that must match somewhere in a text for the
    #: form to match at all: most texts say none, and it is searched for much faster than the form.
    needs: re.Pattern[str] | None = None


@dataclass(frozen=True)
class Remedies:
    """How a change the user made is said (``phrases.yaml``, ``remedies:``). What a form that says it worked
    covers is the changed setup, not the one in question."""

    #: The forms that say a change made the run work.
    helped: tuple[Form, ...]
    #: The forms that say a change was tried in vain.
    futile: tuple[Form, ...]

    @cached_property
    def symptoms(self) -> tuple[str, ...]:
        """Every symptom a form can show."""
        return tuple(dict.fromkeys(key for form in self.helped + self.futile for key in form.pattern.groupindex))

    @staticmethod
    def able(forms: tuple[Form, ...], text: str) -> Iterator[re.Pattern[str]]:
        """The patterns of ``forms`` that can match ``text``: those whose outcome it says somewhere, if they need one."""
        said: dict[int, bool] = {}  # each outcome searched for once, by identity (a pattern hashes its whole code)
        for form in forms:
            if form.needs is not None and id(form.needs) not in said:
                said[id(form.needs)] = form.needs.search(text) is not None
            if form.needs is None or said[id(form.needs)]:
                yield form.pattern


@dataclass(frozen=True)
class Phrases:
    """How the user's words become facts (``phrases.yaml``): every regular expression compiled once, macros expanded.

    The reader (:mod:`assistant.evidence.symptom`) holds the mechanism; this holds the language.
    """

    #: Yes/no symptom → its phrases, in the order facts are listed.
    symptoms: Mapping[str, tuple[re.Pattern[str], ...]]
    #: How a change the user tried is said, as one that worked or one that did not.
    remedies: Remedies
    #: Symptom → the symptoms it outranks (drops when both are found).
    outranks: Mapping[str, tuple[str, ...]]
    #: One whole word that negates a phrase after it in the same clause.
    negation: re.Pattern[str]
    #: Words that cast doubt on everything after them in the clause ("I don't think it's overfitting").
    doubt: re.Pattern[str]
    #: A clause boundary: punctuation, a dash, or a word of ``clauses: words``.
    clause: re.Pattern[str]
    #: The subjects a number can measure, one named group each, in their order.
    subject: re.Pattern[str]
    #: A subject named right after a number ("50% on test"), matched at the number's end; it wins.
    subject_after: re.Pattern[str]
    #: A number as people type it (groups ``value`` and ``percent``).
    number: re.Pattern[str]
    #: A word read as the number 0 (full match).
    zero: re.Pattern[str]
    #: Matched right after a number: a count ("15 epochs").
    count_noun: re.Pattern[str]
    #: Searched in the text before a number: a position ("epoch 2").
    position: re.Pattern[str]
    #: Searched in the text before a number: a bound ("below 0") or a comparison ("98% vs").
    bound: re.Pattern[str]
    #: Searched in the text before a bound: a negation that makes it a floor ("can't get below 5.5").
    floor: re.Pattern[str]
    #: Matched right after a number: a comparison ("98% vs 40%").
    versus: re.Pattern[str]
    #: Searched in a loss number's clause before it, and after it: the first loss.
    first_before: re.Pattern[str]
    first_after: re.Pattern[str]
    #: Searched in a loss number's clause, before and after it: the worst loss.
    worst: re.Pattern[str]
    #: The epoch a NaN appeared (group 1 or 2).
    epoch: re.Pattern[str]
    #: What stated numbers imply.
    implied: tuple[Implication, ...]
    #: Replies that say the user does not know; replies that start with yes, or no.
    dont_know: re.Pattern[str]
    yes: re.Pattern[str]
    no: re.Pattern[str]
    #: Contract key → how a reply names it, in the order they are read.
    keys: Mapping[str, KeyPhrase]
    #: Setup facts said in prose, without the key's name ("only 300 images", "I use Adam").
    stated: Stated

    @cached_property
    def order(self) -> tuple[str, ...]:
        """Every yes/no symptom the phrases or the numbers can show, in the order facts are listed."""
        return tuple(dict.fromkeys([*self.symptoms, *self.remedies.symptoms, *(rule.symptom for rule in self.implied)]))


@dataclass(frozen=True, eq=False)
class KnowledgeBase:
    """Everything the assistant knows about why a model does not learn, loaded from one directory."""

    directory: Path
    facts: Mapping[str, Mapping[str, Any]]
    causes: Mapping[str, Cause]
    trees: Mapping[str, Tree]
    snippets: Mapping[str, str]
    experiments: Catalog
    keras: Keras
    #: How each contract key (an ``input`` fact) is read from what clients send.
    vocabulary: Mapping[str, Spec]
    #: Named numbers (``thresholds.yaml``) that turn measurements into facts.
    thresholds: Mapping[str, float]
    formulas: Formulas
    alarms: tuple[Alarm, ...]
    #: Input facts each cause's rules mention: where the questions come from.
    asks: Mapping[str, frozenset[str]]
    #: Every rule as (cause, signed weight, rule, facts it reads), for incremental scoring.
    rules: tuple[tuple[str, float, Rule, frozenset[str]], ...]
    #: Representative answers to each input fact's question, for weighing what asking would gain.
    answers: Mapping[str, tuple[Any, ...]]
    #: How the user's words and answers become facts (``phrases.yaml``).
    phrases: Phrases
    #: The line of every entry of the knowledge files, for problems that name where to fix them.
    places: Places = Places()
    #: The learned text model (``learned/words.json``), when there is one: one more source of evidence.
    words: Words | None = None
    #: The learned weight corrections (``learned/weights.yaml``) already applied to the rules and leaves, if any.
    corrections: Mapping[str, Any] | None = None
    #: Cause → the sentence on what its fix achieved on a short run with its fault (``effects.yaml``).
    effects: Mapping[str, str] = field(default_factory=dict)

    def askable(self, name: str) -> bool:
        return name in self._inputs

    def signs(self, kind: str) -> tuple[str, ...]:
        """The yes/no facts of one kind ("curve", "symptom"): false unless a reader finds them."""
        return self._signs.get(kind, ())

    @cached_property
    def _inputs(self) -> frozenset[str]:
        """The facts a user can tell: every tree test of every hypothetical answer asks, so it is worked out once."""
        return frozenset(name for name, spec in self.facts.items() if spec.get("kind") == "input")

    @cached_property
    def _signs(self) -> dict[str, tuple[str, ...]]:
        """The yes/no facts of each kind, in the order facts are listed: every turn reads them, so once per load."""
        signs: dict[str, list[str]] = {}
        for name, spec in self.facts.items():
            if spec["type"] == "boolean":
                signs.setdefault(spec["kind"], []).append(name)
        return {kind: tuple(names) for kind, names in signs.items()}


def frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    """A read-only view, so no request can change what every other request reads."""
    return MappingProxyType(dict(mapping))
