"""A fault the facts cannot show: the run assumes it for the leading cause, and judges its fix against that run."""
import dataclasses
from types import SimpleNamespace

import pytest

from assistant.repro import verdict
from assistant.repro.experiments import ASSUME_CONFIDENCE, Experiment, assumed, plan, variant
from assistant.repro.spec import Caps, build, run_names
from tests.helpers import facts_from, shipped_kb
from tests.repro.cases import TINY, model_json

KB = shipped_kb()
CATALOG = KB.experiments
NAMES = run_names(KB.keras)
FACTS = {**TINY["training"], **TINY["dataset"], "learning_rate": 0.001}
#: The user's words and history: a loss that plateaus high on balanced, standardised data.
PLATEAU = {**TINY, "symptom": "loss plateaus around 1.35 and accuracy won't go above 34%",
           "training": {**TINY["training"], "learning_rate": 0.001},
           "metrics": {"loss": [1.399, 1.373, 1.367, 1.365, 1.363], "val_loss": [1.378, 1.364, 1.357, 1.354, 1.352],
                       "accuracy": [0.23, 0.33, 0.34, 0.34, 0.34], "val_accuracy": [0.33, 0.38, 0.40, 0.40, 0.39]}}
LEARNS = {"loss": [1.09, 0.8, 0.52, 0.31, 0.22], "val_loss": [1.0, 0.7, 0.5, 0.36, 0.3],
          "accuracy": [0.4, 0.7, 0.85, 0.9, 0.93], "val_accuracy": [0.45, 0.7, 0.84, 0.88, 0.9]}
SHOWN = PLATEAU["metrics"]


def leading(cause: str, confidence: float = 0.9) -> SimpleNamespace:
    return SimpleNamespace(cause=KB.causes[cause], confidence=confidence)


def trains(experiment: Experiment) -> dict:
    return {part: getattr(experiment.spec, part) for part in ("model", "data", "training")}


@pytest.mark.parametrize("cause, fault", [("label_noise", {"label_noise": [0.0, 0.5]}),
                                          ("dead_relu", {"bias_init": [0.0, -10.0]}),
                                          ("class_imbalance", {"class_sep": [1.0, 0.3]}),
                                          ("exploding_gradients", {"init_gain": [0.0, 3.0]})])
def test_the_leading_causes_fault_is_assumed_and_its_fix_judged_against_that_run(cause, fault):
    spec = build(NAMES, FACTS)
    faulty, fixed = assumed(spec, leading(cause), CATALOG, Caps(), NAMES)
    assert (faulty.kind, faulty.name, faulty.changes) == ("assumed", f"assume:{cause}", fault)
    assert (fixed.kind, fixed.cause, fixed.against) == ("fix", cause, f"assume:{cause}")
    assert fixed.changes and fixed.spec == variant(faulty.spec, CATALOG.fixes[cause]["set"], Caps(), NAMES)[0]


def test_a_fix_that_only_removes_the_assumed_fault_trains_the_users_setup_again():
    spec = build(NAMES, FACTS)
    _, fixed = assumed(spec, leading("label_noise"), CATALOG, Caps(), NAMES)
    assert trains(fixed) == trains(Experiment("baseline", "baseline", "Your setup", spec))  # the worker reuses it


def test_no_fault_is_assumed_when_the_facts_hold_it_or_the_cause_is_unsure_or_has_none():
    spec = build(NAMES, FACTS)
    assert assumed(spec.replace(label_noise=0.5), leading("label_noise"), CATALOG, Caps(), NAMES) == []
    assert assumed(spec, leading("label_noise", ASSUME_CONFIDENCE / 2), CATALOG, Caps(), NAMES) == []
    assert assumed(spec, leading("learning_rate_too_high"), CATALOG, Caps(), NAMES) == []


def test_an_uploaded_models_layers_are_never_assumed_faulty():
    spec = build(NAMES, FACTS, model_json=model_json("sequential"))
    assert assumed(spec, leading("dead_relu"), CATALOG, Caps(), NAMES) == []


def test_the_plan_assumes_the_leading_fault_once_and_keeps_the_number_of_fixes():
    facts = facts_from(**PLATEAU)
    experiments = plan(build(NAMES, facts.values()), facts, KB, Caps())
    kinds = [e.kind for e in experiments]
    assert experiments[1].name == "assume:label_noise" and kinds.count("assumed") == 1
    assert kinds.count("fix") <= 3 and [e.name for e in experiments].count("fix:label_noise") == 1


def analysed(baseline: dict, faulty: dict, fixed: dict) -> verdict.Analysis:
    facts = facts_from(**PLATEAU)
    spec = build(NAMES, facts.values())
    experiments = [Experiment("baseline", "baseline", "Your setup", spec),
                   *assumed(spec, leading("label_noise"), CATALOG, Caps(), NAMES)]
    results = {"baseline": {"history": baseline}, "assume:label_noise": {"history": faulty},
               "fix:label_noise": {"history": fixed}}
    return verdict.analyse(facts, experiments, results, "run", KB, CATALOG)


def test_a_symptom_shown_only_with_the_assumed_fault_is_reproduced_with_that_assumption():
    analysis = analysed(baseline=LEARNS, faulty=SHOWN, fixed=LEARNS)
    assert analysis.reproduced and analysis.assumption.experiment.cause == "label_noise"
    assert analysis.findings[0].value is False  # the user's setup as described did not show it
    assert analysis.fixes[0].removed and analysis.fixes[0].confirmed  # judged against the run with the fault
    text = verdict.verdict_text(analysis, "label_noise", CATALOG, [])
    assert text.startswith("**Reproduced with an assumption.**")
    assert "With half the labels wrong, it does (plateau)" in text and CATALOG.fixes["label_noise"]["fault"]["asks"] in text
    assert "(on your setup with half the labels wrong)" in text and "; with the fault: the loss fell from 1.4 to" in text


def test_an_assumed_fault_that_does_not_show_the_symptom_either_judges_nothing():
    analysis = analysed(baseline=LEARNS, faulty=LEARNS, fixed=LEARNS)
    assert not analysis.reproduced and analysis.assumption is None and not analysis.fixes[0].confirmed
    text = verdict.verdict_text(analysis, None, CATALOG, [])
    assert text.startswith("**Not reproduced.**") and "Assuming half the labels wrong did not show it either" in text
    assert "Not judged: the run with the fault did not show the problem either." in text


def test_when_the_users_setup_shows_the_symptom_no_assumption_is_reported():
    analysis = analysed(baseline=SHOWN, faulty=SHOWN, fixed=LEARNS)
    assert analysis.reproduced and analysis.assumption is None
    assert verdict.verdict_text(analysis, "label_noise", CATALOG, []).startswith("**Reproduced.**")


def test_an_experiment_keeps_what_it_is_judged_against_through_json():
    spec = build(NAMES, FACTS)
    _, fixed = assumed(spec, leading("dead_relu"), CATALOG, Caps(), NAMES)
    assert Experiment.from_json(fixed.to_json()) == fixed
    assert Experiment.from_json({**fixed.to_json(), "against": None}).against == "baseline"  # runs stored before


def test_a_fault_that_names_an_unknown_setting_is_reported_at_its_line():
    from assistant.repro.experiments import problems

    fix = {**CATALOG.fixes["label_noise"], "fault": {"set": {"warp_speed": 9}, "says": "warp", "asks": "?"}}
    broken = dataclasses.replace(CATALOG, fixes={**CATALOG.fixes, "label_noise": fix})
    found = problems(dataclasses.replace(KB, experiments=broken))
    assert found == [f"{KB.places.where('experiments.yaml', 'fixes', 'label_noise', 'fault', 'set', 'warp_speed')}: "
                     "fixes/label_noise/fault: unknown setting 'warp_speed'"]
