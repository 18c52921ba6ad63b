"""Which experiments a reproduction run trains, and what the cheap checks measure.

The cause → fix mapping and the checks are data (``knowledge/experiments.yaml``, read with the
rest of the knowledge base); this module turns them into run specs and plans a run: the baseline, the fix of
each leading cause, and the checks whose answer best separates the leading causes (expected
entropy, as for the assistant's questions, but with a check's outcomes weighed evenly).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..evidence.facts import Fact, Facts
from ..kb import Catalog, KnowledgeBase
from ..reasoning.engine import Belief, diagnose
from .spec import ARCHITECTURE, PART_OF, Caps, RunSpec, fitting, run_names, scaled

#: Fixes tried per run: those of the leading causes whose fix changes the run ...
FIXES = 3
#: ... found among this many leading causes.
LEADERS = 5
#: Faults assumed per run: the leading cause's, when the facts cannot show it (a baseline with it, and its fix) ...
ASSUMED = 1
#: ... and only when the diagnosis gives that cause at least this confidence.
ASSUME_CONFIDENCE = 0.5
#: Checks run at most, and only those expected to remove at least this much entropy (nats).
CHECKS = 2
MIN_GAIN = 0.05
#: A variant did clearly better than another: validation accuracy this much higher ...
BETTER_ACCURACY = 0.05
#: ... or validation loss at most this share of the other's.
BETTER_LOSS = 0.9
#: The one-batch check passes when the loss falls below this share of its first value.
ONE_BATCH_LOSS = 0.5
#: Representative answers of a numeric check, for planning: far below, at, far above.
RATIOS = (0.01, 1.0, 100.0)


@dataclass(frozen=True)
class Experiment:
    """One training run of a job: the baseline, the baseline with a cause's fault assumed, the fix of a cause,
    or a check."""

    name: str
    kind: str  # baseline | assumed | fix | check
    title: str
    spec: RunSpec
    cause: str | None = None
    check: str | None = None
    #: Settings changed from the baseline (for a fix of an assumed fault: from that run): name → [before, after].
    changes: dict[str, list[Any]] | None = None
    #: The experiment a fix is judged against: the baseline, or the run that assumed its cause's fault.
    against: str = "baseline"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "title": self.title, "spec": self.spec.to_json(),
                "cause": self.cause, "check": self.check, "changes": self.changes or {}, "against": self.against}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Experiment:
        return cls(data["name"], data["kind"], data["title"], RunSpec.from_json(data["spec"]), data.get("cause"),
                   data.get("check"), data.get("changes") or {}, data.get("against") or "baseline")


def problems(kb: KnowledgeBase) -> list[str]:
    """Every name in ``experiments.yaml`` that the rest of the knowledge base or the run spec does not know.

    Each problem names the line of experiments.yaml to fix.
    """
    catalog = kb.experiments

    def at(*path: Any) -> str:
        return kb.places.where("experiments.yaml", *path)

    found = []
    for cause, fix in catalog.fixes.items():
        if cause not in kb.causes:
            found.append(f"{at('fixes', cause)}: fixes: unknown cause '{cause}'")
        found += [f"{at('fixes', cause, 'set', name)}: fixes/{cause}: unknown setting '{name}'"
                  for name in fix["set"] if name not in PART_OF]
        found += [f"{at('fixes', cause, 'fault', 'set', name)}: fixes/{cause}/fault: unknown setting '{name}'"
                  for name in fix.get("fault", {}).get("set", ()) if name not in PART_OF]
    for name, check in catalog.checks.items():
        found += [f"{at('checks', name, 'set', s)}: checks/{name}: unknown setting '{s}'"
                  for s in check["set"] if s not in PART_OF]
        if kb.facts.get(check["fact"], {}).get("kind") != "experiment":
            found.append(f"{at('checks', name, 'fact')}: checks/{name}: '{check['fact']}' is not an experiment fact "
                         "in facts.yaml")
        if name not in MEASURES:
            found.append(f"{at('checks', name)}: checks/{name}: no measure for it in assistant/repro/experiments.py")
    curve_leaves, word_leaves = set(kb.trees["curves"].leaves()), set(kb.trees["words"].leaves())
    found += [f"{at('symptoms')}: symptoms: no entry for '{said}' of trees/words.yaml"
              for said in sorted(word_leaves - catalog.symptoms.keys())]
    for said, leaves in catalog.symptoms.items():
        if said not in word_leaves:
            found.append(f"{at('symptoms', said)}: symptoms: '{said}' is no leaf of trees/words.yaml")
        found += [f"{at('symptoms', said)}: symptoms/{said}: '{leaf}' is no leaf of trees/curves.yaml"
                  for leaf in leaves if leaf not in curve_leaves]
    found += [f"{at('broken')}: broken: '{leaf}' is no leaf of trees/curves.yaml"
              for leaf in sorted(catalog.broken - curve_leaves)]
    return found


def _value(spec: RunSpec, name: str, rule: Any, names: Mapping[str, Any]) -> Any:
    """One setting's new value under a rule of experiments.yaml (``names``: :func:`~.spec.run_names`)."""
    if rule == "fitting":
        return fitting(spec, names)[name]
    if rule == "contiguous":
        return ()
    current = spec.get(name)
    if not isinstance(rule, Mapping):  # a literal, as a float where the setting is one (0 and 0.0 train alike)
        return float(rule) if isinstance(current, float) and type(rule) is int else rule

    def bound(value: Any) -> float:
        return names["default_learning_rates"][spec.training.optimizer] if value == "default" else value

    value = current * rule.get("times", 1)
    if "at_least" in rule:
        value = max(value, bound(rule["at_least"]))
    if "at_most" in rule:
        value = min(value, bound(rule["at_most"]))
    return round(value) if isinstance(current, int) else value


def variant(spec: RunSpec, settings: Mapping[str, Any], caps: Caps,
            names: Mapping[str, Any]) -> tuple[RunSpec, dict[str, list[Any]]]:
    """The spec with a fix's or check's settings applied and the caps kept; and what changed.

    ``names`` is :func:`~.spec.run_names` of the knowledge base: default learning rates, fitting heads.
    """
    changed = spec
    for name, rule in settings.items():  # in order: a later rule may read an earlier one (optimizer, then its default)
        changed = changed.replace(**{name: _value(changed, name, rule, names)})
    changed = scaled(changed, caps)
    changes = {name: [spec.get(name), changed.get(name)] for name in PART_OF
               if spec.get(name) != changed.get(name) and name != "sample"}
    return changed, changes


def _entropy(probabilities: list[float]) -> float:
    return -sum(p * math.log(p) for p in probabilities if p > 0)


def _confidences(kb: KnowledgeBase, facts: Facts) -> list[float]:
    return [belief.confidence for belief in diagnose(kb, facts).beliefs]


def check_gain(kb: KnowledgeBase, facts: Facts, fact: str) -> float:
    """Expected drop in the entropy over causes once a check has measured ``fact``."""
    answers = [True, False] if kb.facts[fact]["type"] == "boolean" else list(RATIOS)
    after = 0.0
    for answer in answers:
        trial = facts.copy()
        trial.add(Fact(fact, answer, "a planned check"))
        after += _entropy(_confidences(kb, trial)) / len(answers)
    return _entropy(_confidences(kb, facts)) - after


def _changeable(spec: RunSpec, changes: Mapping[str, Any]) -> bool:
    """Whether a variant changes anything a run can change: an uploaded model's layers stay as they are."""
    return bool(changes) and not (spec.model.keras_json and ARCHITECTURE & changes.keys())


def assumed(spec: RunSpec, belief: Belief, catalog: Catalog, caps: Caps, names: Mapping[str, Any]) -> list[Experiment]:
    """The baseline with a cause's fault put in, and the cause's fix of that run; none when the facts already hold it.

    What users tell us rarely shows every fault (a bias that starts far below zero, labels that
    are wrong, a signal too weak for the rare class), so a baseline built from their facts may
    not show their problem. A run with the fault assumed that does, and whose fix removes it,
    says which fact is missing; the verdict asks for it.
    """
    cause, fix = belief.cause.id, catalog.fixes.get(belief.cause.id, {})
    if "fault" not in fix or belief.confidence < ASSUME_CONFIDENCE:
        return []
    faulty, added = variant(spec, fix["fault"]["set"], caps, names)
    if not _changeable(spec, added):
        return []
    fixed, changes = variant(faulty, fix["set"], caps, names)
    if not _changeable(faulty, changes):
        return []
    name = f"assume:{cause}"
    return [Experiment(name, "assumed", f"Your setup with {fix['fault']['says']}", faulty, cause=cause, changes=added),
            Experiment(f"fix:{cause}", "fix", f"Fix: {belief.cause.title}", fixed, cause=cause, changes=changes,
                       against=name)]


def plan(spec: RunSpec, facts: Facts, kb: KnowledgeBase, caps: Caps) -> list[Experiment]:
    """The baseline, a fault assumed for the leading cause, the fixes of the leading causes, and the checks that
    best separate them."""
    catalog, names = kb.experiments, run_names(kb.keras)
    experiments = [Experiment("baseline", "baseline", "Your setup", spec)]
    leaders = diagnose(kb, facts).beliefs[:LEADERS]
    for belief in leaders[:ASSUMED]:
        experiments += assumed(spec, belief, catalog, caps, names)
    for belief in leaders:
        cause = belief.cause.id
        fixes = sum(e.kind == "fix" for e in experiments)
        if cause not in catalog.fixes or fixes >= FIXES or any(e.cause == cause for e in experiments):
            continue
        fixed, changes = variant(spec, catalog.fixes[cause]["set"], caps, names)
        if not _changeable(spec, changes):
            continue  # nothing to change, or a change to an uploaded model's layers
        experiments.append(Experiment(f"fix:{cause}", "fix", f"Fix: {belief.cause.title}", fixed, cause=cause,
                                      changes=changes))
    gains = sorted(((check_gain(kb, facts, check["fact"]), name) for name, check in catalog.checks.items()),
                   reverse=True)
    for gain, name in gains[:CHECKS]:
        if gain >= MIN_GAIN:
            check = catalog.checks[name]
            probe, changes = variant(spec, check["set"], caps, names)
            experiments.append(Experiment(f"check:{name}", "check", check["title"], probe, check=name,
                                          changes=changes))
    return experiments


# --- what each check measures ------------------------------------------------------------------
# A result is what the worker reports for one experiment: its history, internals and, for the
# range test, the loss at each step.

def _finite(values: list[Any]) -> list[float]:
    return [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v)]


def clearly_better(result: Mapping[str, Any], other: Mapping[str, Any], task: str) -> bool:
    """Whether a run did clearly better on validation data than another: by accuracy where it means something."""
    mine, theirs = result.get("history") or {}, other.get("history") or {}
    if task != "regression" and "val_accuracy" in mine and "val_accuracy" in theirs:
        best, rival = max(_finite(mine["val_accuracy"]), default=0.0), max(_finite(theirs["val_accuracy"]), default=0.0)
        return best >= rival + BETTER_ACCURACY
    key = "val_loss" if "val_loss" in mine and "val_loss" in theirs else "loss"
    best, rival = min(_finite(mine.get(key, [])), default=math.inf), min(_finite(theirs.get(key, [])), default=math.inf)
    return best <= BETTER_LOSS * rival if math.isfinite(best) else False


def learns_one_batch(check: Mapping[str, Any], baseline: Mapping[str, Any], spec: RunSpec) -> bool:
    loss = (check.get("history") or {}).get("loss", [])
    finite = _finite(loss)
    return len(finite) == len(loss) > 1 and finite[-1] <= ONE_BATCH_LOSS * finite[0]


def baseline_clearly_better(check: Mapping[str, Any], baseline: Mapping[str, Any], spec: RunSpec) -> bool:
    """The real labels and inputs were learned clearly better than the check's shuffled or zeroed ones."""
    return clearly_better(baseline, check, spec.data.task)


def lr_ratio(check: Mapping[str, Any], baseline: Mapping[str, Any], spec: RunSpec) -> float | None:
    """Where the smoothed loss of the range test was lowest, a tenth of that learning rate, over the one used."""
    steps = [(lr, loss) for lr, loss in check.get("steps") or () if math.isfinite(loss)]
    if len(steps) < 5:
        return None
    average, lowest, best_lr = 0.0, math.inf, steps[0][0]
    for i, (lr, loss) in enumerate(steps, 1):
        average = 0.9 * average + 0.1 * loss
        value = average / (1 - 0.9 ** i)  # an exponential moving average without its start-up bias
        if value > 4 * lowest:
            break  # diverged: later steps say nothing
        if value < lowest:
            lowest, best_lr = value, lr
    return round(best_lr / 10 / spec.training.learning_rate, 6)


MEASURES: dict[str, Callable[[Mapping[str, Any], Mapping[str, Any], RunSpec], Any]] = {
    "one_batch": learns_one_batch,
    "shuffled_labels": baseline_clearly_better,
    "zeroed_inputs": baseline_clearly_better,
    "lr_range": lr_ratio,
}
