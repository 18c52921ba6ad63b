"""``assistant kb fit``: corrections to the rule and tree-leaf weights, learned from labelled cases and feedback.

An example is what the knowledge base knew in one conversation (a labelled case at its first
reply, or a stored conversation someone gave feedback on) and a label: the right cause, or a cause
that did not help. A cause's score is the engine's own (:mod:`assistant.reasoning.engine`, hand
weights) plus a correction for each rule of it that held and each leaf weight of it reached (by the
leaf's share); confidences are the ones the engine reports: its softmax, the leader's share then
calibrated (``engine._calibrated``: ``calibration_slope`` on its log-odds, plus ``calibration_intercept``
and, without the user's settings, ``calibration_without_settings``). The corrections maximise the
likelihood of the labels under those confidences (``P(right)``, ``1 - P(rejected)``) less an L2 penalty
on the corrections: the hand weights are the prior, so a few reports move them little and many move
them more. The likelihood is of the calibrated confidences, not of the raw softmax, because those
are what the user is shown and what a write is judged by (ECE, log-loss): the raw softmax's
likelihood rewards moves that the calibration, fitted with the hand weights, then undoes.

scikit-learn's ``LogisticRegression`` takes neither an offset (the hand scores) nor features of
their own per class, so this same L2-penalised logistic likelihood is minimised with SciPy's
L-BFGS-B (the solver ``LogisticRegression`` uses), whose bounds keep every learned weight on the side
of zero it was written on; scikit-learn splits the folds. The penalty is chosen by cross-validation
on the examples fitted on, by the figures a write is judged on: among the penalties whose
cross-validated top-1, top-3, ECE and log-loss are each no worse than the hand weights' on the same
examples, the one of best top-1, then top-3, then log-loss; when none is, the strongest (which
barely moves a weight). Log-loss alone would choose the weakest penalty, trading top-1 and ECE for
likelihood. That choice and the fit are scored in an outer cross-validation against the hand
weights: a fit that makes those held-out figures worse is not written. Cases of a test split are
only ever scored.

scikit-learn, SciPy and NumPy are imported here only; nothing the web tier loads imports this module.
"""
from __future__ import annotations

import datetime
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import sklearn
import yaml
from scipy.optimize import minimize
from sklearn.model_selection import KFold

from ..evidence import SETTINGS
from ..evidence.facts import Facts
from ..reasoning import engine
from . import learned, load
from .calibration import calibration_error
from .feedback import Report
from .learn_words import (DEFAULT_CASES, Refused, _relative, expected_causes, first_reply_facts, in_test_split,
                          read_cases)
from .model import KnowledgeBase

#: The penalties cross-validation chooses among (the L2 strength on the corrections, in log-odds).
PENALTIES = (3.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0, 10000.0)
FOLDS = 5
SEED = 0
#: With fewer examples (or conversations) than this no cross-validation is run: the strongest penalty is taken.
MIN_TO_CHOOSE = 2 * FOLDS
#: A learned weight that moves less than this from the hand one is not written (nor used).
CHANGED = 0.05
#: A held-out figure worse by more than this (rounding) refuses the fit.
TOLERANCE = 1e-9


@dataclass(frozen=True)
class Example:
    """One labelled conversation, as the fit sees it."""

    #: Examples of one conversation share a fold.
    group: str
    #: "case" (a labelled case) or "report" (feedback).
    kind: str
    cause: str
    #: True: ``cause`` is the right one; False: it did not help.
    fixed: bool
    right: frozenset[str]
    facts: Facts
    #: Each cause's score with the hand weights, in the order of :attr:`Parameters.causes`.
    base: np.ndarray
    #: How much each parameter counted (a rule 0 or 1, a leaf weight its leaf's share).
    held: np.ndarray
    #: The calibration's intercept for this conversation (with or without the user's settings).
    offset: float = 0.0


class Parameters:
    """The knowledge base's rule and leaf weights as the fit's parameters, and what each held in."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb
        self.causes = list(kb.causes)
        index = {cid: k for k, cid in enumerate(self.causes)}
        where = {id(rule): (cause.id, kind, n) for cause in kb.causes.values()
                 for kind in ("supports", "contradicts") for n, rule in enumerate(getattr(cause, kind))}
        #: Per rule: (cause, kind, position), the rule, its signed weight.
        self.rules = [(where[id(rule)], rule, signed) for _, signed, rule, _ in kb.rules]
        #: Per leaf weight: (tree, branch position, cause), its weight.
        self.leaves = [((tid, i, cause), weight) for tid, tree in kb.trees.items()
                       for i, branch in enumerate(tree.branches) for cause, weight in branch.weigh.items()
                       if cause in index]
        self._leaf_at: dict[tuple[str, int], list[int]] = {}
        for j, ((tid, i, _), _) in enumerate(self.leaves, len(self.rules)):
            self._leaf_at.setdefault((tid, i), []).append(j)
        owners = [index[cid] for (cid, _, _), _, _ in self.rules] + [index[c] for (_, _, c), _ in self.leaves]
        self.owner = np.zeros((len(owners), len(self.causes)))
        self.owner[np.arange(len(owners)), owners] = 1.0
        hand = np.array([signed for _, _, signed in self.rules] + [w for _, w in self.leaves])
        #: The hand weights, signed as they count (a contradicting rule's negative).
        self.hand = hand
        # A learned weight stays on its side of zero and within the schema's ten.
        self.bounds = [(-h, 10 - h) if h > 0 else (-10 - h, -h) if h < 0 else (-10, 10) for h in hand]
        self.temperature = kb.thresholds["confidence_temperature"]
        self.slope = kb.thresholds["calibration_slope"]

    def example(self, group: str, kind: str, cause: str, fixed: bool, right: frozenset[str],
                facts: Facts) -> Example:
        """A conversation's facts as the fit sees them: the hand scores, and which rules and leaves held."""
        values = engine._all_values(self.kb, facts)
        scoring = engine._Scoring.of(self.kb, values)
        scores = scoring.scores(self.kb)
        held = np.zeros(len(self.owner))
        held[:len(self.rules)] = scoring.hits
        for tid, i, share in engine.leaves(self.kb, values):
            for j in self._leaf_at.get((tid, i), ()):
                held[j] += share
        settings = any(fact.source in SETTINGS for fact in facts)
        offset = (self.kb.thresholds["calibration_intercept"]
                  + (0.0 if settings else self.kb.thresholds["calibration_without_settings"]))
        return Example(group, kind, cause, fixed, right, facts,
                       np.array([scores[c] for c in self.causes]), held, offset)


# --- the likelihood -------------------------------------------------------------------------------

@dataclass
class Data:
    """Examples as arrays."""

    base: np.ndarray
    held: np.ndarray
    label: np.ndarray
    fixed: np.ndarray
    offset: np.ndarray

    @classmethod
    def of(cls, examples: Sequence[Example], causes: list[str]) -> "Data":
        index = {c: k for k, c in enumerate(causes)}
        return cls(np.array([e.base for e in examples]), np.array([e.held for e in examples]),
                   np.array([index[e.cause] for e in examples]), np.array([e.fixed for e in examples]),
                   np.array([e.offset for e in examples]))


def scores(params: Parameters, data: Data, correction: np.ndarray) -> np.ndarray:
    """Every cause's score in every example, the corrections added."""
    return data.base + (data.held * correction) @ params.owner


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _likelihood(params: Parameters, found: np.ndarray, data: Data) -> tuple[np.ndarray, np.ndarray]:
    """Each example's negative log-likelihood under scores ``found``, and its gradient with respect to them.

    The label's probability is its confidence as the engine reports it: the softmax ``p`` at the
    knowledge base's temperature, the leader ``b``'s share ``t`` mapped to ``s = sigmoid(slope *
    logit(t) + offset)`` and every other cause's scaled by ``(1 - s) / (1 - t)`` (``engine._calibrated``;
    the leader taken as fixed, as it is between the scores at which it changes).
    """
    temperature = params.temperature
    probs = _softmax(found / temperature)
    rows = np.arange(len(data.label))
    best = np.argmax(found, axis=1)  # ties: the first cause, as the engine
    top = np.clip(probs[rows, best], 1e-9, 1 - 1e-9)
    sure = 1 / (1 + np.exp(-(params.slope * np.log(top / (1 - top)) + data.offset)))
    leads = best == data.label
    p = np.clip(probs[rows, data.label], 1e-300, 1.0)
    q = np.clip(np.where(leads, sure, p * (1 - sure) / (1 - top)), 1e-12, 1 - 1e-12)
    onehot, leader = np.zeros_like(probs), np.zeros_like(probs)
    onehot[rows, data.label] = 1.0
    leader[rows, best] = 1.0
    # The gradient of log q: through the leader's log-odds, and for another cause through its own share too.
    odds = (leader - probs) / (temperature * (1 - top))[:, None]
    grad_log = np.where(leads[:, None], ((1 - sure) * params.slope)[:, None] * odds,
                        (onehot - probs) / temperature + (top - sure * params.slope)[:, None] * odds)
    losses = np.where(data.fixed, -np.log(q), -np.log(1 - q))
    grad = np.where(data.fixed[:, None], -grad_log, (q / (1 - q))[:, None] * grad_log)
    return losses, grad


def fit(params: Parameters, data: Data, penalty: float) -> np.ndarray:
    """The corrections of least penalised negative log-likelihood."""
    def objective(correction: np.ndarray) -> tuple[float, np.ndarray]:
        losses, grad = _likelihood(params, scores(params, data, correction), data)
        gradient = ((grad @ params.owner.T) * data.held).sum(axis=0) + penalty * correction
        return float(losses.sum() + penalty / 2 * correction @ correction), gradient

    start = np.zeros(len(params.owner))
    return minimize(objective, start, jac=True, method="L-BFGS-B", bounds=params.bounds).x


# --- folds and figures ----------------------------------------------------------------------------

def _folds(examples: Sequence[Example]) -> list[tuple[np.ndarray, np.ndarray]]:
    """K folds over the conversations, so that reports on one conversation are held out together."""
    groups = list(dict.fromkeys(e.group for e in examples))
    of = np.array([groups.index(e.group) for e in examples])
    return [(np.flatnonzero(np.isin(of, train)), np.flatnonzero(np.isin(of, held)))
            for train, held in KFold(min(FOLDS, len(groups)), shuffle=True, random_state=SEED).split(groups)]


def _subset(data: Data, rows: np.ndarray) -> Data:
    return Data(data.base[rows], data.held[rows], data.label[rows], data.fixed[rows], data.offset[rows])


def _cross_validated(params: Parameters, examples: Sequence[Example], data: Data, penalty: float) -> np.ndarray:
    """Every example's scores as fitted without its fold."""
    found = np.array(data.base)
    for train, held in _folds(examples):
        found[held] = scores(params, _subset(data, held), fit(params, _subset(data, train), penalty))
    return found


def best(hand: "Figures", by_penalty: dict[float, "Figures"]) -> float:
    """Among the penalties whose figures are no worse than the hand weights', the one of best top-1, top-3, log-loss.

    None of them: the strongest penalty. Ties: the stronger.
    """
    safe = [penalty for penalty, found in by_penalty.items() if not found.worse(hand)]
    if not safe:
        return max(by_penalty)

    def rank(penalty: float) -> tuple[float, ...]:
        found = by_penalty[penalty]
        return (-(found.top1 or 0.0), -(found.top3 or 0.0), found.log_loss, -penalty)

    return min(safe, key=rank)


def choose(params: Parameters, examples: Sequence[Example]) -> float:
    """The penalty chosen by cross-validated figures (:func:`best`; the strongest when there are too few to tell)."""
    if len({e.group for e in examples}) < MIN_TO_CHOOSE:
        return max(PENALTIES)
    data = Data.of(examples, params.causes)
    hand = figures(params, examples, data.base)
    return best(hand, {penalty: figures(params, examples, _cross_validated(params, examples, data, penalty))
                       for penalty in PENALTIES})


@dataclass
class Figures:
    """How well scores rank and how honest the confidence is, over examples with a right cause."""

    top1: float | None
    top3: float | None
    #: Expected calibration error of the top cause's confidence as the engine reports it (calibrated).
    ece: float | None
    #: Mean negative log-likelihood of every label under the reported (calibrated) confidences, rejections too.
    log_loss: float
    ranked: int

    def __str__(self) -> str:
        def shown(value: float | None) -> str:
            return "  n/a" if value is None else f"{value:.3f}"

        return (f"top-1 {shown(self.top1)}  top-3 {shown(self.top3)}  ECE {shown(self.ece)}  "
                f"log-loss {self.log_loss:.3f}  ({self.ranked} with a right cause)")

    def worse(self, before: "Figures") -> list[str]:
        """The figures in which this is worse than ``before``."""
        pairs = (("top-1", self.top1, before.top1, 1), ("top-3", self.top3, before.top3, 1),
                 ("ECE", self.ece, before.ece, -1), ("log-loss", self.log_loss, before.log_loss, -1))
        return [name for name, now, then, up in pairs
                if now is not None and then is not None and (now - then) * up < -TOLERANCE]

    def rounded(self) -> dict[str, float | int | None]:
        return {"top1": _round(self.top1), "top3": _round(self.top3), "ece": _round(self.ece),
                "log_loss": _round(self.log_loss), "ranked": self.ranked}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def figures(params: Parameters, examples: Sequence[Example], found: np.ndarray) -> Figures:
    """The figures of scores ``found`` (one row per example)."""
    losses, _ = _likelihood(params, found, Data.of(examples, params.causes))
    probs = _softmax(found / params.temperature)
    hits1, hits3, pairs = 0, 0, []
    for example, row, score in zip(examples, probs, found):
        if not example.fixed:
            continue
        order = [params.causes[k] for k in np.argsort(-score, kind="stable")]  # ties: by id, as the engine
        confidence = engine._calibrated(params.kb, dict(zip(params.causes, map(float, row))), example.facts)
        hits1 += order[0] in example.right
        hits3 += any(c in example.right for c in order[:3])
        pairs.append((confidence[order[0]], order[0] in example.right))
    n = len(pairs)
    return Figures(hits1 / n if n else None, hits3 / n if n else None, calibration_error(pairs) if n else None,
                   float(losses.mean()) if len(losses) else math.nan, n)


# --- the examples -------------------------------------------------------------------------------

def case_examples(params: Parameters, directories: Sequence[Path], *, held_out: bool = False) -> list[Example]:
    """The labelled cases of the folders at their first reply (a test split only when ``held_out``)."""
    examples = []
    for case, path in read_cases(directories, held_out=held_out):
        primary, right = expected_causes(params.kb, case, path)
        examples.append(params.example(case.get("id", path.stem), "case", primary, True, right,
                                       first_reply_facts(params.kb, case["request"])))
    return examples


def report_examples(params: Parameters, reports: Sequence[Report], say: Callable[[str], None]) -> list[Example]:
    """The feedback reports on causes this knowledge base has, with their conversation's facts."""
    examples, unknown = [], 0
    for report in reports:
        if report.cause not in params.kb.causes:
            unknown += 1
            continue
        examples.append(params.example(report.conversation, "report", report.cause,
                                       report.fixed, frozenset({report.cause}) if report.fixed else frozenset(),
                                       Facts.from_list(report.facts)))
    if unknown:
        say(f"  {unknown} report(s) name a cause this knowledge base does not have: left out")
    return examples


# --- the command --------------------------------------------------------------------------------

@dataclass
class Outcome:
    """What a fit found: the corrections fitted on every example, and the figures before and after."""

    params: Parameters
    examples: list[Example]
    penalty: float
    correction: np.ndarray
    held_out: tuple[Figures, Figures]
    test: tuple[Figures, Figures] | None

    @property
    def worse(self) -> list[str]:
        return self.held_out[1].worse(self.held_out[0])


def held_out(params: Parameters, examples: Sequence[Example], say: Callable[[str], None]) -> tuple[Figures, Figures]:
    """Hand and learned figures on held-out folds, the penalty chosen within each fold's training part."""
    data = Data.of(examples, params.causes)
    after = np.array(data.base)
    for n, (train, held) in enumerate(_folds(examples), 1):
        inner = [examples[i] for i in train]
        penalty = choose(params, inner)
        after[held] = scores(params, _subset(data, held), fit(params, _subset(data, train), penalty))
        say(f"  fold {n}: penalty {penalty:g}")
    return figures(params, examples, data.base), figures(params, examples, after)


def learn(kb: KnowledgeBase, cases: Sequence[Path], reports: Sequence[Report],
          say: Callable[[str], None] = print) -> Outcome:
    """Fit the corrections on the cases (a test split: only scored) and reports, and measure them."""
    params = Parameters(kb)
    train = [Path(d) for d in cases if not in_test_split(Path(d))]
    tests = [Path(d) for d in cases if in_test_split(Path(d))]
    examples = case_examples(params, train) + report_examples(params, reports, say)
    if len({e.group for e in examples}) < 2:
        raise Refused(f"{len(examples)} labelled example(s): too few to learn from")
    say(f"{sum(e.kind == 'case' for e in examples)} labelled case(s) and {sum(e.kind == 'report' for e in examples)} "
        f"feedback report(s) to fit on")
    say(f"held out ({min(FOLDS, len({e.group for e in examples}))} folds; the penalty chosen inside each):")
    before_after = held_out(params, examples, say)
    penalty = choose(params, examples)
    correction = as_written(params, fit(params, Data.of(examples, params.causes), penalty))
    test = None
    if tests:
        scored = case_examples(params, tests, held_out=True)
        data = Data.of(scored, params.causes)
        test = (figures(params, scored, data.base), figures(params, scored, scores(params, data, correction)))
    return Outcome(params, examples, penalty, correction, before_after, test)


def as_written(params: Parameters, correction: np.ndarray) -> np.ndarray:
    """The corrections as the file holds them: weights rounded to 3 decimals, moves under CHANGED left out."""
    moved = np.round(params.hand + correction, 3) - params.hand
    return np.where(np.abs(moved) >= CHANGED, moved, 0.0)


def export(outcome: Outcome, sources: Sequence[str]) -> dict:
    """The weights that moved, as the content of ``learned/weights.yaml``."""
    params, examples = outcome.params, outcome.examples
    kinds = np.array([e.kind for e in examples])
    held = np.array([e.held for e in examples]) > 0
    behind = {"cases": held[kinds == "case"].sum(axis=0), "reports": held[kinds == "report"].sum(axis=0)}
    rules, leaves = [], []
    for j in np.flatnonzero(outcome.correction):
        counts = {key: int(counted[j]) for key, counted in behind.items()}
        signed = round(float(params.hand[j] + outcome.correction[j]), 3)
        if j < len(params.rules):
            (cause, kind, n), rule, _ = params.rules[j]
            said = {"says": rule.says} if rule.says else {}
            rules.append({"cause": cause, "kind": kind, "index": int(n), **said, "when": rule.when,
                          "weight": rule.weight, "learned": abs(signed), **counts})
        else:
            (tree, i, cause), weight = params.leaves[j - len(params.rules)]
            leaves.append({"tree": tree, "leaf": params.kb.trees[tree].branches[i].leaf, "cause": cause,
                           "weight": weight, "learned": signed, **counts})
    evaluation = {"held_out": {"hand": outcome.held_out[0].rounded(), "learned": outcome.held_out[1].rounded()}}
    if outcome.test is not None:
        evaluation["test"] = {"hand": outcome.test[0].rounded(), "learned": outcome.test[1].rounded()}
    return {
        "about": ("Corrections to the hand-set weights of rules and tree leaves, written by `assistant kb fit --write`; "
                  "do not edit by hand. The loader uses `learned` in place of `weight`; cases and reports count "
                  "the labelled cases and feedback reports in which the rule or leaf held."),
        "fitted": {"date": datetime.date.today().isoformat(), "cases": int((kinds == "case").sum()),
                   "reports": int((kinds == "report").sum()), "from": list(sources), "penalty": outcome.penalty,
                   "scikit_learn": sklearn.__version__},
        "evaluation": evaluation,
        "rules": rules,
        "leaves": leaves,
    }


class _Flow(dict):
    """A rule's condition, written on one line as in the cause files."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Flow, lambda dumper, value: dumper.represent_mapping("tag:yaml.org,2002:map", value,
                                                                              flow_style=True))


def dumps(data: dict) -> str:
    """The file's text: block YAML, each rule's condition on one line."""
    for rule in data["rules"]:
        rule["when"] = _Flow(rule["when"])
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120)


def run(cases: Sequence[str | Path], feedback: Sequence[Report] | None, knowledge: str | Path, write: bool,
        say: Callable[[str], None] = print) -> Outcome:
    """The command: fit, print the figures, and write the file when asked and when held-out figures are no worse."""
    kb = load(knowledge, learned=False)  # the hand weights: a new fit replaces the old corrections
    directories = [Path(d) for d in cases] or ([] if feedback is not None else list(DEFAULT_CASES))
    outcome = learn(kb, directories, feedback or (), say)
    say(f"  hand     {outcome.held_out[0]}")
    say(f"  learned  {outcome.held_out[1]}")
    if outcome.test is not None:
        say(f"test ({', '.join(str(d) for d in directories if in_test_split(d))}; never fitted on):")
        say(f"  hand     {outcome.test[0]}")
        say(f"  learned  {outcome.test[1]}")
    sources = [_relative(d) for d in directories if not in_test_split(d)] + (["feedback"] if feedback else [])
    data = export(outcome, sources)
    say(f"penalty {outcome.penalty:g} (chosen on every example): {len(data['rules'])} rule and {len(data['leaves'])} "
        f"leaf weight(s) move by {CHANGED} or more")
    target = Path(knowledge) / learned.PATH
    if outcome.worse:
        message = f"the learned weights are worse on held-out folds ({', '.join(outcome.worse)})"
        if write:
            raise Refused(f"{message}: {target} not written")
        say(f"{message}: --write would refuse")
    elif write:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(dumps(data), encoding="utf-8")
        say(f"wrote {target}")
    return outcome
