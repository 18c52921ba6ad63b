"""Beliefs over causes from facts, the evidence trail behind each, and the questions worth asking.

A cause's score is its prior plus the weights of the triage-tree leaves reached and of the
supporting and contradicting rules that hold (log-odds, so weights add), plus, where the knowledge
base has a learned text model (``learned/words.json``), ``λ·ln(K·p(cause))`` for what it reads in
the user's words; confidence is the softmax of the scores. A question's value is the expected
drop in the entropy of that distribution once the fact is known, each possible answer weighted by
how likely the causes make it: the fact that best separates the leaders is asked first.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cache, cached_property, lru_cache, partial
from itertools import compress
from typing import Any, Callable, Collection, Iterator, Mapping

from ..evidence import SETTINGS
from ..evidence.derive import derive, rederive
from ..evidence.facts import Facts
from ..kb import Branch, Cause, KnowledgeBase, Rule, Tree
from ..kb.conditions import NOT_OBSERVED, Condition, facts_in, reads_as, references
from ..kb.words import FACT as WORDS

#: How confidence is spread (``confidence_temperature``), when questions stop (``ask_below``) and
#: which are worth asking (``question_min_gain``) are thresholds of the knowledge base.
MAX_QUESTIONS = 3
#: A line of evidence quotes at most this many of the user's own sentences or lines of code.
QUOTED = 2
#: Causes a reply shows: the leaders, and any other above this confidence.
SHOWN = 3
ALSO_SHOWN_ABOVE = 0.15
#: The learned text model's part in a cause's score is shown in its evidence from this size on (log-odds).
WORDS_SHOWN = 0.5


@dataclass
class Belief:
    """A cause as the facts weigh it. Its lines of evidence for and against are worked out when first read:
    a reply shows those of the few leading causes, and every turn weighs all of them."""

    cause: Cause
    score: float
    confidence: float = 0.0
    #: Makes the lines (for, against); none means there are none.
    lines: Callable[[], tuple[list[str], list[str]]] | None = field(default=None, repr=False, compare=False)

    @cached_property
    def _lines(self) -> tuple[list[str], list[str]]:
        return self.lines() if self.lines is not None else ([], [])

    @property
    def evidence(self) -> list[str]:
        return self._lines[0]

    @property
    def against(self) -> list[str]:
        return self._lines[1]


@dataclass(frozen=True)
class Question:
    fact: str
    text: str
    choices: tuple[str, ...]
    gain: float


@dataclass
class Diagnosis:
    """Everything a reply says, decided: it only renders this."""

    beliefs: list[Belief]
    questions: list[Question]
    #: what the triage trees read in the facts ("the loss became NaN"), for the reply's opening.
    readings: list[str]
    #: the facts and the facts derived from them, worked out once for this turn.
    values: dict[str, Any]
    #: the causes the reply lists, most likely first.
    shown: list[Belief] = field(default_factory=list)
    #: the evidence cannot rank the causes yet: the reply says so and asks, rather than list guesses.
    unsure: bool = False


def _shown(value: Any) -> Any:
    return f"{value:.4g}" if isinstance(value, float) else value


class _Shown(dict):
    """The user's values as a rule's sentence shows them; `{name_pct}` shows a fraction as a percentage."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        super().__init__((k, _shown(v)) for k, v in values.items())
        self.values = values

    def __missing__(self, key: str) -> str:
        base = self.values.get(key.removesuffix("_pct"))
        return f"{base:.1%}" if key.endswith("_pct") and isinstance(base, (int, float)) else "?"


def _cite(cond: Condition, facts: Facts) -> list[str]:
    """The notes of the measured facts behind a condition: the user's own numbers."""
    notes = []
    for name in dict.fromkeys(facts_in(cond)):
        fact = facts.fact(name)
        if fact is not None and fact.note:
            notes.append(fact.note)
    return notes


def _reached(tree: Tree, values: Mapping[str, Any]) -> Iterator[tuple[int, Branch, float]]:
    """A tree's branches reached, with the share each takes: one whose test is unknown takes half of what is left."""
    share = 1.0
    for i, branch in enumerate(tree.branches):
        result = True if branch.test is None else branch.test(values)
        if result is False:
            continue
        taken = share if result else share / 2
        yield i, branch, taken
        if result:
            return
        share -= taken


def _tree_weights(tree: Tree, values: Mapping[str, Any], out: dict[str, float],
                  readings: list[tuple[float, str]] | None) -> None:
    """Add the weights of the leaves a tree reaches, each by its share."""
    for _, branch, taken in _reached(tree, values):
        for cause, weight in branch.weigh.items():
            out[cause] = out.get(cause, 0.0) + taken * weight
        if branch.says and readings is not None:
            readings.append((taken, branch.says))


class _Observed:
    """The facts as a tree sees them: a sign nobody measured was not observed; only inputs are unknown.

    Without this a history lacking an accuracy column would split every accuracy test in
    half, although the user cannot tell us more about it. A view, not a copy: a tree is tested
    again for every hypothetical answer that changes what it reads, and its tests only ``get``.
    """

    __slots__ = ("values", "kb")

    def __init__(self, values: Mapping[str, Any], kb: KnowledgeBase) -> None:
        self.values = values
        self.kb = kb

    def get(self, key: str, default: Any = None) -> Any:
        if key in self.values:
            return self.values[key]
        return None if self.kb.askable(key) else NOT_OBSERVED


def leaves(kb: KnowledgeBase, values: Mapping[str, Any]) -> Iterator[tuple[str, int, float]]:
    """Every tree's leaves the facts reach, as (tree, branch's position, share): what a leaf's weights counted by."""
    for tree_id, tree in kb.trees.items():
        if tree.applies is None or tree.applies(values):
            for i, _, taken in _reached(tree, _Observed(values, kb)):
                yield tree_id, i, taken


def _tree_scores(kb: KnowledgeBase, values: Mapping[str, Any], tree_id: str,
                 readings: list[tuple[float, str]] | None = None) -> dict[str, float]:
    """What one tree adds to each cause (and the leaves' readings); nothing when the tree does not apply."""
    tree = kb.trees[tree_id]
    weights: dict[str, float] = {}
    if tree.applies is None or tree.applies(values):
        _tree_weights(tree, _Observed(values, kb), weights, readings)
    return weights


@dataclass
class _Scoring:
    """The parts of every cause's score, so a hypothetical answer re-evaluates only what reads it."""

    hits: list[bool]
    trees: dict[str, dict[str, float]]
    #: What the learned text model adds to each cause: it reads only the symptom text, which no answer changes.
    words: dict[str, float] = field(default_factory=dict)

    @classmethod
    def of(cls, kb: KnowledgeBase, values: Mapping[str, Any],
           readings: list[tuple[float, str]] | None = None) -> "_Scoring":
        return cls([rule.test(values) is True for _, _, rule, _ in kb.rules],
                   {tid: _tree_scores(kb, values, tid, readings) for tid in kb.trees}, _words(kb, values))

    def rescored(self, kb: KnowledgeBase, scores: Mapping[str, float], values: Mapping[str, Any],
                 keys: Collection[str]) -> dict[str, float]:
        """``scores`` (this scoring's) once the facts ``keys`` took their ``values``: only the rules and
        trees that read them are worked out again, and only what they add changes."""
        out = dict(scores)
        rules, trees, _ = _read_by(kb, frozenset(keys))
        for i in rules:
            cid, weight, rule, _ = kb.rules[i]
            if (rule.test(values) is True) != self.hits[i]:
                out[cid] += -weight if self.hits[i] else weight
        for tid in trees:
            for cid, w in self.trees[tid].items():
                out[cid] -= w
            for cid, w in _tree_scores(kb, values, tid).items():
                out[cid] += w
        if WORDS in keys:
            for cid, w in self.words.items():
                out[cid] -= w
            for cid, w in _words(kb, values).items():
                out[cid] += w
        return out

    def held(self, kb: KnowledgeBase) -> set[int]:
        """The rules that hold, by identity (a rule's condition is a dict, so rules do not hash)."""
        return {id(rule) for (_, _, rule, _), hit in zip(kb.rules, self.hits) if hit}

    def scores(self, kb: KnowledgeBase) -> dict[str, float]:
        scores = {cid: cause.prior for cid, cause in kb.causes.items()}
        for weights in self.trees.values():
            for cid, w in weights.items():
                scores[cid] += w
        for cid, weight, _, _ in compress(kb.rules, self.hits):
            scores[cid] += weight
        for cid, w in self.words.items():
            scores[cid] += w
        return scores


@cache
def _rules_reading(kb: KnowledgeBase) -> dict[str, tuple[int, ...]]:
    """The rules (by position) that read each fact: what a hypothetical answer must test again."""
    index: dict[str, list[int]] = {}
    for i, (_, _, _, names) in enumerate(kb.rules):
        for name in names:
            index.setdefault(name, []).append(i)
    return {name: tuple(rules) for name, rules in index.items()}


@lru_cache(maxsize=4096)
def _read_by(kb: KnowledgeBase, keys: frozenset[str]) -> tuple[tuple[int, ...], tuple[str, ...], tuple[str, ...]]:
    """The rules (by position) and trees that read any of ``keys``, and the causes whose score they can change."""
    rules = tuple(sorted({i for key in keys for i in _rules_reading(kb).get(key, ())}))
    trees = tuple(tid for tid, tree in kb.trees.items() if tree.reads & keys)
    causes = {kb.rules[i][0] for i in rules} | {cause for tid in trees for branch in kb.trees[tid].branches
                                                  for cause in branch.weigh}
    if WORDS in keys:
        causes |= set(kb.causes)
    return rules, trees, tuple(sorted(causes & set(kb.causes)))


def _words(kb: KnowledgeBase, values: Mapping[str, Any]) -> dict[str, float]:
    """What the learned text model's reading of the user's words adds to each cause (none without a model)."""
    read = values.get(WORDS)
    if kb.words is None or not isinstance(read, Mapping):
        return {}
    return {cid: shift for cid, shift in kb.words.shifts(read).items() if cid in kb.causes}


def _heard(kb: KnowledgeBase, values: Mapping[str, Any], shift: float, cause: str) -> tuple[list[str], list[str]]:
    """The text model's part in a cause's score as a line of evidence (for, against), when it moved the cause much.

    It says what the words resemble, never what the user's run is.
    """
    if kb.words is None or abs(shift) < WORDS_SHOWN:
        return [], []
    share = float(values[WORDS][cause])
    said = f"{share:.0%}" if share >= 0.005 else "under 1%"
    line = (f"in the {kb.words.cases} real threads the text model learned from, words like yours went with this "
            f"cause {'only ' if shift < 0 else 'about '}{said} of the time")
    return ([line], []) if shift > 0 else ([], [line])


def _softmax(scores: Mapping[str, float], temperature: float) -> dict[str, float]:
    top = max(scores.values())
    exp = {k: math.exp((s - top) / temperature) for k, s in scores.items()}
    total = sum(exp.values())
    return {k: e / total for k, e in exp.items()}


class _Spread:
    """The softmax of the current scores kept as its sums, so that the entropy once a few scores
    change is worked out from those few: ``H = ln Z - M / Z`` for ``Z = Σ e^z`` and ``M = Σ z e^z``,
    z the scores less the top one, over the temperature (the same for any such shift)."""

    def __init__(self, scores: Mapping[str, float], temperature: float) -> None:
        self.top, self.temperature = max(scores.values()), temperature
        self.scaled = {c: (s - self.top) / temperature for c, s in scores.items()}
        self.weight = {c: math.exp(z) for c, z in self.scaled.items()}
        self.total = sum(self.weight.values())
        self.moment = sum(w * self.scaled[c] for c, w in self.weight.items())
        self.entropy = math.log(self.total) - self.moment / self.total

    def entropy_with(self, scores: Mapping[str, float], changed: Collection[str]) -> float:
        """The entropy once the causes ``changed`` have the scores in ``scores``."""
        total, moment = self.total, self.moment
        for cause in changed:
            z = (scores[cause] - self.top) / self.temperature
            w = math.exp(z)
            total += w - self.weight[cause]
            moment += w * z - self.weight[cause] * self.scaled[cause]
        return math.log(total) - moment / total


def _all_values(kb: KnowledgeBase, facts: Facts) -> dict[str, Any]:
    values = facts.values()
    values.update(derive(kb, values))
    return values


def _answer_odds(scores: Mapping[str, float], outcomes: list[dict[str, float]], moved: Collection[str],
                 probs: Mapping[str, float], temperature: float) -> list[float]:
    """How likely each hypothetical answer is, given what each cause would make of it.

    If cause c is the problem, an answer is likelier the more it raises c's score (rule weights
    read as log-likelihood ratios). A cause the question does not bear on expects an unremarkable
    answer, one that raises no cause more than the others do: most models have no missing values
    and a usual initializer, so asking about them is worth little unless their causes lead.
    Only the causes in ``moved`` have a score that some answer changes.
    """
    shifts = [[outcome[c] - scores[c] for c in moved] for outcome in outcomes]
    remarkable = [sum([shift for shift in row if shift > 0]) for row in shifts]
    least = min(remarkable) + 1e-9
    usual = [i for i, r in enumerate(remarkable) if r <= least]
    odds = [0.0] * len(outcomes)
    bears = set(moved)
    unmoved = sum([p for cause, p in probs.items() if cause not in bears])
    for cause, moves in zip(moved, zip(*shifts)):  # each cause's shift under every answer
        top = max(moves)
        if top - min(moves) < 1e-9:
            unmoved += probs[cause]
            continue
        likelihood = [math.exp((move - top) / temperature) for move in moves]
        total = sum(likelihood)
        for i, weight in enumerate(likelihood):
            odds[i] += probs[cause] * weight / total
    for i in usual:
        odds[i] += unmoved / len(usual)
    return odds


@cache
def _alike(kb: KnowledgeBase) -> dict[str, tuple[int, ...]]:
    """For each question whose answers some rules cannot tell apart, the first answer each of them reads as.

    Weighing a question tries every representative answer (16 initializers), but a fact that no formula
    and no tree reads changes a score only through the rules' comparisons of it with written values: answers
    that every one of those reads alike ("glorot_uniform" and "he_normal", "sigmoid" and "tanh") lead to the
    same scores, worked out once.
    """
    opaque = {name for d in kb.formulas.derivations for name in (*d.reads, *d.needs)}
    opaque |= {name for tree in kb.trees.values() for name in tree.reads}
    leaves: dict[str, list[tuple[str, Any]]] = {}
    for _, _, rule, _ in kb.rules:
        for name, op, ref in references(rule.when):
            leaves.setdefault(name, []).append((op, ref))
    alike = {}
    for name, answers in kb.answers.items():
        if name in opaque or name not in leaves:
            continue
        first: dict[tuple[bool, ...], int] = {}
        readings = [tuple(reads_as(answer, op, ref) for op, ref in leaves[name]) for answer in answers]
        alike[name] = tuple(first.setdefault(reading, i) for i, reading in enumerate(readings))
    return alike


def _gain(kb: KnowledgeBase, known: set[str], values: dict[str, Any], scoring: _Scoring, scores: dict[str, float],
          probs: dict[str, float], spread: _Spread, name: str, answers: list[Any]) -> float:
    """The expected drop in the entropy over causes once ``name`` is known to be one of ``answers``; ``known`` are the
    facts the conversation established."""
    outcomes, entropies, moved = [], [], set()
    established = known | {name}
    alike = _alike(kb).get(name)
    for i, answer in enumerate(answers):
        if alike is not None and alike[i] < i:  # every rule reads it as an earlier answer: the same outcome
            outcomes.append(outcomes[alike[i]])
            entropies.append(entropies[alike[i]])
            continue
        trial, changed = rederive(kb, {**values, name: answer}, established, {name})
        keys = frozenset(changed)  # built once, for both lookups of what reads it
        outcome = scoring.rescored(kb, scores, trial, keys)
        touched = [cause for cause in _read_by(kb, keys)[2] if outcome[cause] != scores[cause]]
        outcomes.append(outcome)
        entropies.append(spread.entropy_with(outcome, touched))
        moved.update(touched)
    likely = _answer_odds(scores, outcomes, sorted(moved), probs, spread.temperature)
    return spread.entropy - sum(p * entropy for p, entropy in zip(likely, entropies))


def _questions(kb: KnowledgeBase, facts: Facts, values: dict[str, Any], scoring: _Scoring,
               probs: dict[str, float], declined: Collection[str]) -> list[Question]:
    # Every cause's questions, not only the leaders': when little is known the leaders are the
    # commonest causes, and the answer that would lift a rarer one (the optimizer, once the
    # learning rate is known) is worth as much as any.
    candidates = sorted(set().union(*kb.asks.values()) - set(facts.values()) - set(declined))
    scores = scoring.scores(kb)
    spread = _Spread(scores, kb.thresholds["confidence_temperature"])
    known = {fact.key for fact in facts}
    questions = []
    for name in candidates:
        answers = kb.answers.get(name, [])
        if not answers:
            continue
        # Rounded: equal gains stay equal (ties go by name) whatever order the sums were taken in.
        gain = round(_gain(kb, known, values, scoring, scores, probs, spread, name, answers), 9)
        if gain >= kb.thresholds["question_min_gain"]:
            spec = kb.facts[name]
            questions.append(Question(name, spec["question"], tuple(map(str, spec.get("choices", ()))), gain))
    # Most questions asked are those worth most: what the answer would tell, times the chance that
    # the user can give one. The most telling question joins them even when few can answer it; the
    # user answers what they can, the most telling first.
    by_worth = sorted(questions, key=lambda q: (-q.gain * kb.facts[q.fact].get("answerable", 1.0), q.fact))
    chosen = by_worth[:MAX_QUESTIONS - 1]
    chosen += [q for q in sorted(questions, key=lambda q: (-q.gain, q.fact)) if q not in chosen][:1]
    return sorted(chosen, key=lambda q: (-q.gain, q.fact))


@cache
def _grounds(kb: KnowledgeBase) -> dict[str, tuple[str, ...]]:
    """The facts each derived fact rests on, through the formulas it reads in turn."""
    reads = {d.name: d.reads | set(d.needs) for d in kb.formulas.derivations}

    def ground(name: str, seen: frozenset[str]) -> frozenset[str]:
        if name not in reads:
            return frozenset({name})
        return frozenset().union(*(ground(r, seen | {name}) for r in reads[name] - seen if r in kb.facts))

    return {name: tuple(sorted(ground(name, frozenset()))) for name in reads}  # sorted: replies must not vary by run


def _quotes(kb: KnowledgeBase, cond: Condition, facts: Facts) -> list[str]:
    """What the user wrote or pasted that a condition rests on ("you wrote ..."), derived facts followed to their inputs."""
    grounds = _grounds(kb)
    names = dict.fromkeys(g for name in facts_in(cond) for g in grounds.get(name, (name,)))
    notes = [fact.note for name in names if (fact := facts.fact(name)) is not None
             and (fact.note or "").startswith("you wrote")]
    return list(dict.fromkeys(notes))[:QUOTED]


def _trail(kb: KnowledgeBase, rules: tuple[Rule, ...], held: set[int], shown: _Shown, facts: Facts) -> list[str]:
    """The sentences of the rules that hold, with the user's own words behind them; or their numbers."""
    said = []
    for rule in rules:
        if id(rule) not in held:
            continue
        if not rule.says:
            said.append("; ".join(_cite(rule.when, facts)))
            continue
        quotes = _quotes(kb, rule.when, facts)
        sentence = rule.says.format_map(shown)
        if "?" in sentence:  # it names a fact the conversation does not know: never state it as known
            said.append("; ".join(quotes or _cite(rule.when, facts)))
            continue
        said.append(sentence + (f" ({'; '.join(quotes)})" if quotes else ""))
    return [s for s in dict.fromkeys(said) if s]


def _evidence_of(kb: KnowledgeBase, cause: Cause, held: set[int], shown: _Shown, facts: Facts, words: float,
           values: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """A cause's lines of evidence, for and against: its rules that hold, and what the text model heard."""
    heard = _heard(kb, values, words, cause.id)
    return (_trail(kb, cause.supports, held, shown, facts) + heard[0],
            _trail(kb, cause.contradicts, held, shown, facts) + heard[1])


def _calibrated(kb: KnowledgeBase, probs: Mapping[str, float], facts: Facts) -> dict[str, float]:
    """Confidences as often right as they say: the leader's rescaled as fitted on real threads, the rest in proportion.

    The softmax ranks well but its leader's share does not match how often the leader is right
    (it is spread over many causes): ``calibration_slope`` and ``calibration_intercept`` map its
    log-odds to those measured on the real-world dev threads, and a diagnosis made without the
    user's settings (only words, a log, code) is right less often (``calibration_without_settings``).
    The ranking does not change.
    """
    best = max(probs, key=probs.get)
    top = min(max(probs[best], 1e-9), 1 - 1e-9)
    settings = any(fact.source in SETTINGS for fact in facts)
    odds = (kb.thresholds["calibration_slope"] * math.log(top / (1 - top)) + kb.thresholds["calibration_intercept"]
            + (0.0 if settings else kb.thresholds["calibration_without_settings"]))
    sure = 1 / (1 + math.exp(-odds))
    rest = (1 - sure) / (1 - top)
    return {cause: sure if cause == best else p * rest for cause, p in probs.items()}


def diagnose(kb: KnowledgeBase, facts: Facts, *, declined: Collection[str] = ()) -> Diagnosis:
    """Rank every cause for the known facts and pick the questions that would separate the leaders."""
    values = _all_values(kb, facts)
    readings: list[tuple[float, str]] = []
    scoring = _Scoring.of(kb, values, readings)
    scores = scoring.scores(kb)
    probs = _softmax(scores, kb.thresholds["confidence_temperature"])
    shown, held = _Shown(values), scoring.held(kb)
    confidence = _calibrated(kb, probs, facts)
    beliefs = sorted((Belief(cause, scores[cid], confidence[cid],
                             partial(_evidence_of, kb, cause, held, shown, facts, scoring.words.get(cid, 0.0), values))
                      for cid, cause in kb.causes.items()),
                     key=lambda b: (-b.confidence, b.cause.id))
    sure = [text.format_map(shown) for share, text in readings if share >= 0.99]
    questions = ([] if beliefs[0].confidence >= kb.thresholds["ask_below"]
                 else _questions(kb, facts, values, scoring, probs, declined))
    listed = [b for i, b in enumerate(beliefs) if i < SHOWN or b.confidence >= ALSO_SHOWN_ABOVE]
    return Diagnosis(beliefs, questions, sure, values, listed, beliefs[0].confidence < kb.thresholds["unsure_below"])
