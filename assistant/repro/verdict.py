"""The verdict of a reproduction run: what was reproduced and what each fix changed, in plain words.

Each run's history goes through the same evidence path as an uploaded one (``gather``). What it
shows is named by the knowledge base's own curves tree, so "the same symptom" means the same
leaf the user's history (or their words) reached. What the run measured joins the
conversation as facts (kind ``experiment``), the ``repro_*`` trees re-rank the causes, and the
verdict is stored as the conversation's next assistant turn.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .. import conversations
from ..evidence import gather
from ..evidence.derive import derive
from ..evidence.facts import Fact, Facts
from ..reasoning.engine import diagnose
from ..kb import Catalog, KnowledgeBase, Tree, current
from .experiments import MEASURES, Experiment, clearly_better

#: Internals of the baseline run that become facts: summary key → fact.
INTERNAL_FACTS = {"dead_fraction": "repro_dead_fraction", "saturated_fraction": "repro_saturated_fraction",
                  "gradient_ratio": "repro_gradient_ratio", "gradient_max": "repro_gradient_max",
                  "update_ratio": "repro_update_ratio"}
#: Whether the baseline run showed the symptom the user reported.
REPRODUCED = "repro_reproduced"
#: In a verdict's words, a loss that changed by less than this share of its first value "stayed".
STAYED = 0.02
#: Where the user's setup did not learn, a fix whose loss fell by this share of its first value got it learning.
STARTED = 0.05


def produces(kb: KnowledgeBase) -> frozenset[str]:
    """Every fact a reproduction run establishes (kind ``experiment``): the verdict's own, each measured check's."""
    checks = {check["fact"] for name, check in kb.experiments.checks.items() if name in MEASURES}
    return frozenset({REPRODUCED, *INTERNAL_FACTS.values(), *checks})


def leaf(tree: Tree, values: Mapping[str, Any]) -> str:
    """The leaf of a triage tree that the values reach.

    A sign that cannot be measured counts as absent: a branch whose test is unknown is not taken.
    """
    return next(b.leaf for b in tree.branches if b.test is None or b.test(values))


def _number(value: float) -> str:
    return f"{value:.3g}" if math.isfinite(value) else str(value)


def course(history: Mapping[str, Sequence[Any]], *, brief: bool = False) -> str:
    """How a run went, in a phrase: "the loss fell from 2.3 to 0.41 in 10 epochs, validation accuracy 0.87"."""
    loss = [float(v) if isinstance(v, (int, float)) else math.nan for v in history.get("loss", [])]
    if not loss:
        return "no loss was recorded"
    bad = next((i for i, v in enumerate(loss) if not math.isfinite(v)), None)
    first, last = loss[0], loss[-1]
    if bad is not None:
        words = f"the loss became {loss[bad]} at epoch {bad + 1}"
    elif abs(last - first) <= STAYED * abs(first):
        words = f"the loss stayed at {_number(last)}"
    else:
        words = f"the loss {'fell' if last < first else 'rose'} from {_number(first)} to {_number(last)}"
    if brief:
        return words
    words += f" in {len(loss)} epochs"
    accuracy = [v for v in history.get("val_accuracy", []) if isinstance(v, (int, float)) and math.isfinite(v)]
    if accuracy:
        words += f", validation accuracy {max(accuracy):.2f} at best"
    elif history.get("val_loss") and isinstance(history["val_loss"][-1], (int, float)):
        words += f", validation loss {_number(float(history['val_loss'][-1]))}"
    return words


def _humane(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(_humane, value)) or "none"
    return str(value)


def changes_in_words(experiment: Experiment, catalog: Catalog) -> str:
    """What a fix changed: its own words from experiments.yaml, or each setting, new against old."""
    says = catalog.fixes.get(experiment.cause or "", {}).get("says")
    if says:
        return says
    return "; ".join(f"{name.replace('_', ' ')} {_humane(new)} instead of {_humane(old)}"
                     for name, (old, new) in (experiment.changes or {}).items())


@dataclass(frozen=True)
class Outcome:
    """One experiment as the verdict reads it."""

    experiment: Experiment
    result: Mapping[str, Any]
    #: The curves-tree leaf its history reaches; None when it did not train.
    leaf: str | None
    #: Its curve facts, with what the conversation knows about the setup.
    values: Mapping[str, Any]
    removed: bool = False
    improved: bool = False
    broken: bool = False

    @property
    def confirmed(self) -> bool:
        return (self.removed or self.improved) and not self.broken

    @property
    def history(self) -> dict[str, list]:
        return self.result.get("history") or {}


@dataclass(frozen=True)
class Analysis:
    reported: frozenset[str]
    baseline: Outcome
    fixes: list[Outcome]
    checks: list[Outcome]
    findings: list[Fact]
    #: Whether the fixes say anything: the user's setup showed their problem, or failed outright.
    #: A fix that improves a run which never had the problem is no evidence about its cause.
    judged: bool
    #: The baseline with a cause's fault assumed, where the facts did not hold it.
    assumed: tuple[Outcome, ...] = ()

    @property
    def reproduced(self) -> bool:
        """The user's setup, or that setup with an assumed fault, showed the reported symptom."""
        return self.baseline.leaf in self.reported or self.assumption is not None

    @property
    def assumption(self) -> Outcome | None:
        """The run with an assumed fault that showed the symptom, where the user's setup as described did not."""
        if self.baseline.leaf in self.reported:
            return None
        return next((o for o in self.assumed if o.leaf in self.reported), None)

    def before(self, fix: Outcome) -> Outcome:
        """The run a fix changed: the user's setup, or that setup with its cause's fault assumed."""
        return next((o for o in self.assumed if o.experiment.name == fix.experiment.against), self.baseline)

    def judges(self, fix: Outcome, broken: frozenset[str]) -> bool:
        """Whether the run a fix changed showed the problem or failed outright, so that the fix says anything."""
        before = self.before(fix)
        return before.leaf in self.reported or before.leaf in broken


def _run_values(kb: KnowledgeBase, known: Mapping[str, Any], history: Mapping[str, Any]) -> dict[str, Any]:
    """What the conversation knows about the setup, with the curve facts of this run instead of the user's."""
    values = {key: value for key, value in known.items() if kb.facts.get(key, {}).get("kind") != "curve"}
    values.update({fact.key: fact.value for fact in gather(kb, metrics=dict(history)).facts})
    values.update(derive(kb, values))
    return values


def reported(kb: KnowledgeBase, catalog: Catalog, known: Mapping[str, Any]) -> frozenset[str]:
    """The curves-tree leaves that stand for what the user reported: their history's, and their words'."""
    values = {**known, **derive(kb, known)}
    leaves = set(catalog.symptoms.get(leaf(kb.trees["words"], values), ()))
    if values.get("epochs_run") is not None:
        leaves.add(leaf(kb.trees["curves"], values))
    return frozenset(leaves)


def _improved(fixed: Outcome, baseline: Outcome, flat: float) -> bool:
    """Clearly better on validation data, or learning (by ``flat``, the knowledge base's share) where the user's setup did not."""
    if clearly_better(fixed.result, baseline.result, fixed.experiment.spec.data.task):
        return True
    before, after = baseline.values.get("loss_change_fraction"), fixed.values.get("loss_change_fraction")
    return before is not None and after is not None and abs(before) < flat and after >= STARTED


def analyse(facts: Facts, experiments: Sequence[Experiment], results: Mapping[str, Mapping[str, Any]],
            source: str, kb: KnowledgeBase, catalog: Catalog) -> Analysis:
    """Compare every run with the symptom and the baseline, and gather the facts the run established."""
    known = facts.values()
    symptom = reported(kb, catalog, known)

    def outcome(experiment: Experiment) -> Outcome:
        result = results.get(experiment.name, {})
        if not result.get("history", {}).get("loss"):
            return Outcome(experiment, result, None, {})
        values = _run_values(kb, known, result["history"])
        return Outcome(experiment, result, leaf(kb.trees["curves"], values), values)

    by_kind: dict[str, list[Outcome]] = {"baseline": [], "assumed": [], "fix": [], "check": []}
    for experiment in experiments:
        by_kind[experiment.kind].append(outcome(experiment))
    baseline = by_kind["baseline"][0]
    reproduced = baseline.leaf in symptom
    judged = reproduced or baseline.leaf in catalog.broken
    against = {o.experiment.name: o for o in by_kind["baseline"] + by_kind["assumed"]}
    fixes = [_judged(o, against.get(o.experiment.against, baseline), symptom, kb, catalog) for o in by_kind["fix"]]
    findings = [Fact(REPRODUCED, reproduced, source,
                     f"a short run of your setup {'showed' if reproduced else 'did not show'} the reported symptom")]
    summary = (baseline.result.get("internals") or {}).get("summary", {})
    findings += [Fact(fact, summary[key], source) for key, fact in INTERNAL_FACTS.items()
                 if summary.get(key) is not None]
    for check in by_kind["check"]:
        if check.leaf is not None and baseline.leaf is not None:
            value = MEASURES[check.experiment.check](check.result, baseline.result, baseline.experiment.spec)
            if value is not None:
                findings.append(Fact(catalog.checks[check.experiment.check]["fact"], value, source,
                                     f"{check.experiment.title}: {course(check.history)}"))
    return Analysis(symptom, baseline, fixes, by_kind["check"], findings, judged, tuple(by_kind["assumed"]))


def _judged(fixed: Outcome, before: Outcome, symptom: frozenset[str], kb: KnowledgeBase, catalog: Catalog) -> Outcome:
    """A fix against the run it changed (the user's setup, or that setup with its cause's fault assumed): only a
    run that showed the problem, or failed outright, can show what the fix did."""
    reproduced = before.leaf in symptom
    judged = reproduced or before.leaf in catalog.broken
    trained = fixed.leaf is not None
    return Outcome(fixed.experiment, fixed.result, fixed.leaf, fixed.values,
                   removed=reproduced and trained and fixed.leaf not in symptom,
                   improved=judged and trained and _improved(fixed, before, kb.thresholds["flat_change"]),
                   broken=not trained or fixed.leaf in catalog.broken)


def _fix_line(outcome: Outcome, analysis: Analysis, catalog: Catalog) -> str:
    experiment, baseline = outcome.experiment, analysis.before(outcome)
    head = f"- **{experiment.title.removeprefix('Fix: ')}**, with {changes_in_words(experiment, catalog)}"
    head += f" (on your setup with {catalog.fixes[experiment.cause]['fault']['says']}): " \
        if baseline.experiment.kind == "assumed" else ": "
    if outcome.leaf is None:
        return head + f"the run failed ({outcome.result.get('error') or outcome.result.get('skipped')})."
    if not analysis.judges(outcome, catalog.broken):
        judged = ("Not judged: your setup's run did not show the problem." if baseline is analysis.baseline
                  else "Not judged: the run with the fault did not show the problem either.")
    elif outcome.confirmed:
        judged = "Confirmed: " + ("the symptom is gone." if outcome.removed else "clearly better on validation data.")
    else:
        judged = "Not confirmed: " + ("it broke the run." if outcome.broken else "no clear change.")
    compared = "your setup" if baseline is analysis.baseline else "with the fault"
    return head + f"{course(outcome.history)}; {compared}: {course(baseline.history, brief=True)}. {judged}"


def verdict_text(analysis: Analysis, leading: str | None, catalog: Catalog, notes: Sequence[str]) -> str:
    """The verdict in markdown, for a person."""
    base = analysis.baseline
    spec = base.experiment.spec
    where = f"{spec.training.epochs}-epoch run of your setup on {spec.data.n_samples:,} " + (
        "rows of your data sample" if spec.data.generator == "sample" else "generated samples shaped like your data")
    if base.leaf is None:
        lines = [f"**Could not run your setup.** A {where} failed: "
                 f"{base.result.get('error') or base.result.get('skipped') or 'it did not finish'}."]
    elif base.leaf in analysis.reported:
        lines = [f"**Reproduced.** A {where} shows the same problem ({base.leaf.replace('_', ' ')}): "
                 f"{course(base.history)}."]
    elif analysis.assumption is not None:
        lines = [f"**Reproduced with an assumption.** A {where} did not show what you reported"
                 f" ({base.leaf.replace('_', ' ')} instead): {course(base.history)}."
                 + _assumed_line(analysis.assumption, catalog)]
    else:
        lines = [f"**Not reproduced.** A {where} did not show what you reported"
                 f" ({base.leaf.replace('_', ' ')} instead): {course(base.history)}. The problem may lie in"
                 " something the facts so far do not describe, such as the data itself."]
        lines += [f"Assuming {catalog.fixes[o.experiment.cause]['fault']['says']} did not show it either"
                  f" ({(o.leaf or 'no run').replace('_', ' ')})." for o in analysis.assumed]
    if analysis.fixes:
        lines += ["", "What each fix changed:"] + [_fix_line(o, analysis, catalog) for o in analysis.fixes]
    if analysis.checks:
        lines += ["", "Checks:"]
        lines += [f"- {o.experiment.title} ({catalog.checks[o.experiment.check]['asks']}): "
                  f"{course(o.history) if o.leaf else 'it did not run'}." for o in analysis.checks]
    if leading:
        best = next(o for o in analysis.fixes if o.experiment.cause == leading)
        lines += ["", f"**Verdict:** {best.experiment.title.removeprefix('Fix: ')}. Its fix "
                  + ("removed the symptom." if best.removed else "clearly improved the run.")]
    elif analysis.judged or analysis.assumption is not None:
        lines += ["", "**Verdict:** none of the fixes tried changed the outcome; the causes below are"
                  " re-ranked with what the run measured."]
    if notes:
        lines += ["", "_Run notes: " + "; ".join(notes) + "._"]
    return "\n".join(lines)


def _assumed_line(outcome: Outcome, catalog: Catalog) -> str:
    """What the run with an assumed fault showed, and the question that would settle the fault."""
    fault = catalog.fixes[outcome.experiment.cause]["fault"]
    return (f" With {fault['says']}, it does ({outcome.leaf.replace('_', ' ')}): {course(outcome.history)}."
            f" What you told me does not say so; that fact is missing. {fault['asks']}")


def leading_cause(analysis: Analysis, facts: Facts, kb: KnowledgeBase) -> str | None:
    """Of the causes whose fix worked, the one with the strongest evidence.

    A fix that both removed the symptom and measurably improved the run comes first; otherwise the
    re-ranked diagnosis decides, since training longer may improve a run whose symptom stays
    (accuracy stuck at 0 on a regression) and a slower learning rate may move a plateau.
    """
    belief = {b.cause.id: b.confidence for b in diagnose(kb, facts).beliefs}
    confirmed = [o for o in analysis.fixes if o.confirmed]
    best = max(confirmed, key=lambda o: (o.removed and o.improved, belief.get(o.experiment.cause, 0.0)),
               default=None)
    return best.experiment.cause if best else None


def conclude(run: Mapping[str, Any], results: Mapping[str, Mapping[str, Any]]) -> dict[str, Any] | None:
    """Store the verdict as the conversation's next turn; the run's result, or None if the conversation is gone."""
    kb = current()
    catalog = kb.experiments
    experiments = [Experiment.from_json(e) for e in run["plan"]["experiments"]]
    notes = run["plan"]["notes"]
    found: dict[str, Any] = {}

    def explain(reply: dict[str, Any], facts: Facts) -> dict[str, Any]:
        # ``facts`` already holds the findings: analyse them against the conversation as it was.
        before = Facts()
        before.update(f for f in facts if f.source != source)
        analysis = analyse(before, experiments, results, source, kb, catalog)
        leading = leading_cause(analysis, facts, kb)
        text = verdict_text(analysis, leading, catalog, notes)
        found.update(analysis=analysis, leading=leading, text=text)
        assumption = analysis.assumption
        summary = {"id": run["id"], "reproduced": analysis.reproduced, "verdict": text, "leading": leading,
                   "assumed": assumption.experiment.cause if assumption else None,
                   "confirmed": [o.experiment.cause for o in analysis.fixes if o.confirmed],
                   "refuted": [o.experiment.cause for o in analysis.fixes if o.leaf and not o.confirmed]}
        return {**reply, "text": text + "\n\n---\n\n" + reply["text"], "reproduction": summary}

    source = f"reproduction run {run['id']}"
    conversation = conversations.load(run["conversation_id"], run["owner"])
    if conversation is None:
        return None
    analysis = analyse(conversation.facts, experiments, results, source, kb, catalog)
    reply = conversations.add_findings(run["conversation_id"], run["owner"], {"reproduction": run["id"]},
                                       analysis.findings, explain)
    if reply is None:
        return None
    analysis = found["analysis"]
    outcomes = {o.experiment.name: o for o in [analysis.baseline, *analysis.assumed, *analysis.fixes, *analysis.checks]}
    return {
        **reply["reproduction"],
        "symptom": {"reported": sorted(analysis.reported), "baseline": analysis.baseline.leaf},
        "facts": {fact.key: fact.value for fact in analysis.findings},
        "causes": [{"id": c["id"], "title": c["title"], "confidence": c["confidence"]} for c in reply["causes"]],
        "experiments": [
            {"name": e.name, "kind": e.kind, "title": e.title, "cause": e.cause, "check": e.check,
             "changes": e.changes, "leaf": outcomes[e.name].leaf,
             "confirmed": outcomes[e.name].confirmed if e.kind == "fix" else None,
             "history": outcomes[e.name].history,
             **{k: v for k, v in results.get(e.name, {}).items() if k not in ("name", "event", "history")}}
            for e in experiments],
    }


def ask_for_missing(missing: Sequence[str]):
    """An ``explain`` for :func:`conversations.add_findings` that asks for the facts a run still needs."""
    kb = current()

    def explain(reply: dict[str, Any], facts: Facts) -> dict[str, Any]:
        questions = [{"id": f"q-{key}", "fact": key, "text": kb.facts[key]["question"],
                      "choices": list(map(str, kb.facts[key].get("choices", ())))}
                     for key in missing if "question" in kb.facts.get(key, {})]
        text = ("To reproduce your run in a short experiment I still need to know: "
                + "; ".join(q["text"] for q in questions))
        return {**reply, "text": text, "questions": questions}

    return explain
