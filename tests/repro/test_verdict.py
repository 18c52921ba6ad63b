import dataclasses
import math

import pytest

from assistant import conversations
from assistant.evidence.facts import Facts
from assistant.kb.loader import tree_of
from assistant.repro import store, verdict
from assistant.repro.experiments import Experiment, variant
from assistant.repro.spec import Caps, build, run_names
from tests.helpers import facts_from, shipped_kb
from tests.repro.cases import TINY

NAMES = run_names(shipped_kb().keras)

KB = shipped_kb()
CATALOG = KB.experiments
#: A loss stuck at ln 3 with a learning rate of 1e-7: the user's report.
FLAT = {**TINY, "symptom": "my loss does not move at all",
        "metrics": {"loss": [1.0987, 1.0986, 1.0986, 1.0986, 1.0986],
                    "val_loss": [1.0988, 1.0987, 1.0987, 1.0987, 1.0987]},
        "training": {**TINY["training"], "learning_rate": 1e-7}}
STUCK = {"loss": [1.0987, 1.0986, 1.0986, 1.0986, 1.0985], "val_loss": [1.0988, 1.0987, 1.0987, 1.0987, 1.0987],
         "accuracy": [0.33] * 5, "val_accuracy": [0.32] * 5}
LEARNS = {"loss": [1.09, 0.8, 0.52, 0.31, 0.22], "val_loss": [1.0, 0.7, 0.5, 0.36, 0.3],
          "accuracy": [0.4, 0.7, 0.85, 0.9, 0.93], "val_accuracy": [0.45, 0.7, 0.84, 0.88, 0.9]}
NAN = {"loss": [float("nan")] * 5, "val_loss": [float("nan")] * 5, "accuracy": [0.33] * 5, "val_accuracy": [0.32] * 5}
INTERNALS = {"summary": {"dead_fraction": 0.0, "saturated_fraction": None, "gradient_ratio": 0.9,
                         "gradient_max": 0.4, "update_ratio": 2e-7}}


def planned(facts: Facts) -> list[Experiment]:
    spec = build(NAMES, facts.values())
    experiments = [Experiment("baseline", "baseline", "Your setup", spec)]
    for cause in ("learning_rate_too_low", "learning_rate_too_high"):
        fixed, changes = variant(spec, CATALOG.fixes[cause]["set"], Caps(), NAMES)
        experiments.append(Experiment(f"fix:{cause}", "fix", f"Fix: {KB.causes[cause].title}", fixed, cause=cause,
                                      changes=changes))
    probe, changes = variant(spec, CATALOG.checks["one_batch"]["set"], Caps(), NAMES)
    return experiments + [Experiment("check:one_batch", "check", "Overfit one batch", probe, check="one_batch",
                                     changes=changes)]


RESULTS = {"baseline": {"history": STUCK, "internals": INTERNALS}, "fix:learning_rate_too_low": {"history": LEARNS},
           "fix:learning_rate_too_high": {"history": NAN}, "check:one_batch": {"history": {"loss": [1.1, 1.05, 1.0]}}}


@pytest.mark.parametrize("history, words", [
    ({"loss": [2.3026, 1.1, 0.4123]}, "the loss fell from 2.3 to 0.412 in 3 epochs"),
    ({"loss": [2.3026, 2.3021], "val_accuracy": [0.1, 0.11]},
     "the loss stayed at 2.3 in 2 epochs, validation accuracy 0.11 at best"),
    ({"loss": [0.5, 0.9], "val_loss": [0.6, 1.2]}, "the loss rose from 0.5 to 0.9 in 2 epochs, validation loss 1.2"),
    ({"loss": [0.5, math.nan, math.nan]}, "the loss became nan at epoch 2 in 3 epochs"),
])
def test_a_runs_course_in_words(history, words):
    assert verdict.course(history) == words


def test_a_sign_that_cannot_be_measured_counts_as_absent():
    tree = tree_of({"id": "t", "about": "a test", "branches": [
        {"when": {"fact": "val_accuracy_max", "below": 0.05}, "leaf": "zero"}, {"leaf": "other"}]})
    assert verdict.leaf(tree, {}) == "other"
    assert verdict.leaf(tree, {"val_accuracy_max": 0.0}) == "zero"


def test_what_the_user_reported_comes_from_their_history_and_their_words():
    assert verdict.reported(KB, CATALOG, facts_from(**FLAT).values()) >= {"loss_flat"}
    said = facts_from(symptom="my loss is huge").values()
    assert verdict.reported(KB, CATALOG, said) == {"loss_huge", "loss_jumps", "loss_not_finite"}


def test_the_analysis_compares_every_run_with_the_symptom_and_the_baseline():
    facts = facts_from(**FLAT)
    analysis = verdict.analyse(facts, planned(facts), RESULTS, "reproduction run run-1", KB, CATALOG)
    assert analysis.reproduced and analysis.baseline.leaf == "loss_flat"
    low, high = analysis.fixes
    assert (low.removed, low.improved, low.confirmed) == (True, True, True)
    assert (high.leaf, high.broken, high.confirmed) == ("loss_not_finite", True, False)
    found = {fact.key: fact.value for fact in analysis.findings}
    assert found == {"repro_reproduced": True, "repro_dead_fraction": 0.0, "repro_gradient_ratio": 0.9,
                     "repro_gradient_max": 0.4, "repro_update_ratio": 2e-7, "repro_learns_one_batch": False}
    assert {fact.source for fact in analysis.findings} == {"reproduction run run-1"}


def test_a_run_establishes_only_the_facts_it_declares():
    facts = facts_from(**FLAT)
    analysis = verdict.analyse(facts, planned(facts), RESULTS, "run", KB, CATALOG)
    assert {fact.key for fact in analysis.findings} <= verdict.produces(KB)
    assert verdict.produces(KB) == {name for name, spec in KB.facts.items() if spec["kind"] == "experiment"}


def test_a_baseline_that_does_not_show_the_symptom_is_not_reproduced():
    facts = facts_from(**FLAT)
    results = {**RESULTS, "baseline": {"history": LEARNS}}
    analysis = verdict.analyse(facts, planned(facts), results, "run", KB, CATALOG)
    assert not analysis.reproduced and analysis.findings[0].value is False
    assert not analysis.judged and not analysis.fixes[0].confirmed  # it never had the problem
    text = verdict.verdict_text(analysis, None, CATALOG, [])
    assert text.startswith("**Not reproduced.**")
    assert "Not judged: your setup's run did not show the problem." in text and "**Verdict:**" not in text


def test_fixes_are_judged_when_the_users_setup_failed_outright():
    facts = facts_from(**FLAT)
    results = {**RESULTS, "baseline": {"history": NAN}}
    analysis = verdict.analyse(facts, planned(facts), results, "run", KB, CATALOG)
    assert not analysis.reproduced and analysis.judged
    assert analysis.fixes[0].improved and analysis.fixes[0].confirmed


def test_the_verdict_says_what_was_reproduced_and_what_each_fix_changed():
    facts = facts_from(**FLAT)
    analysis = verdict.analyse(facts, planned(facts), RESULTS, "run", KB, CATALOG)
    text = verdict.verdict_text(analysis, "learning_rate_too_low", CATALOG, ["held out the last 20%"])
    assert text.startswith("**Reproduced.** A 5-epoch run of your setup on 300 generated samples shaped like your"
                           " data shows the same problem (loss flat): the loss stayed at 1.1 in 5 epochs,"
                           " validation accuracy 0.32 at best.")
    assert ("- **Learning rate too low**, with learning rate 0.001 instead of 1e-07: the loss fell from 1.09 to 0.22"
            " in 5 epochs, validation accuracy 0.90 at best; your setup: the loss stayed at 1.1."
            " Confirmed: the symptom is gone.") in text
    assert "Not confirmed: it broke the run." in text
    assert "- Overfit one batch (can the model learn at all?): the loss fell from 1.1 to 1 in 3 epochs." in text
    assert "**Verdict:** Learning rate too low. Its fix removed the symptom." in text
    assert text.endswith("_Run notes: held out the last 20%._")


def test_conclude_stores_the_verdict_as_the_next_turn(app):
    with app.app_context():
        conversation_id, _ = conversations.start(None, FLAT)
        facts = conversations.load(conversation_id, None).facts
        run = store.create(conversation_id, None, "local", [e.to_json() for e in planned(facts)], [])
        claimed = store.claim(run["id"])
        result = verdict.conclude(claimed, RESULTS)
        transcript = conversations.transcript(conversation_id, None)
    assert result["reproduced"] and result["leading"] == "learning_rate_too_low"
    assert result["confirmed"] == ["learning_rate_too_low"] and result["refuted"] == ["learning_rate_too_high"]
    assert [e["name"] for e in result["experiments"]] == ["baseline", "fix:learning_rate_too_low",
                                                         "fix:learning_rate_too_high", "check:one_batch"]
    assert result["experiments"][1]["history"] == LEARNS and result["experiments"][1]["confirmed"] is True
    user, assistant = transcript["turns"][-2:]
    assert user["body"] == {"reproduction": run["id"]}
    assert assistant["body"]["reproduction"]["verdict"] == result["verdict"]
    assert assistant["body"]["text"].startswith("**Reproduced.**")
    assert "the model could not even memorise a single batch" in assistant["body"]["text"]  # a repro tree's reading
    assert transcript["facts"]["repro_reproduced"] is True
    assert transcript["facts"]["repro_learns_one_batch"] is False


def test_missing_facts_are_asked_for_in_the_conversation(app):
    with app.app_context():
        conversation_id, _ = conversations.start(None, {"symptom": "my loss does not move"})
        conversations.add_findings(conversation_id, None, {"reproduction": "requested"}, [],
                                   verdict.ask_for_missing(["optimizer", "n_features"]))
        last = conversations.transcript(conversation_id, None)["turns"][-1]["body"]
        assert conversations.load(conversation_id, None).asked == ("optimizer", "n_features")
    assert last["text"].startswith("To reproduce your run in a short experiment I still need to know: Which optimizer")
    assert [q["fact"] for q in last["questions"]] == ["optimizer", "n_features"]


def test_the_leading_cause_is_the_believed_one_unless_a_fix_did_both():
    facts = facts_from(**FLAT)
    experiments = planned(facts)
    believed = verdict.diagnose(KB, facts).beliefs
    rank = {b.cause.id: i for i, b in enumerate(believed)}
    low, high = (verdict.Outcome(e, {}, "plateau", {}) for e in experiments[1:3])
    more, less = sorted((low, high), key=lambda o: rank[o.experiment.cause])

    def leading(*fixes):
        analysis = verdict.Analysis(frozenset(), experiments[0], list(fixes), [], [], judged=True)
        return verdict.leading_cause(analysis, facts, KB)

    only_removed = dataclasses.replace(more, removed=True)
    only_improved = dataclasses.replace(less, improved=True)
    assert leading(only_removed, only_improved) == more.experiment.cause
    both = dataclasses.replace(less, removed=True, improved=True)
    assert leading(only_removed, both) == less.experiment.cause
    assert leading(dataclasses.replace(more, broken=True, improved=True)) is None
