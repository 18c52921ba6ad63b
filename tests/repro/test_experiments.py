import dataclasses

import pytest

from assistant.reasoning.engine import diagnose
from assistant.repro import experiments
from assistant.repro.experiments import (
    Experiment, clearly_better, learns_one_batch, lr_ratio, plan, problems, variant,
)
from assistant.repro.spec import Caps, build, run_names
from tests.helpers import facts_from, shipped_kb
from tests.repro.cases import TINY, model_json

NAMES = run_names(shipped_kb().keras)

KB = shipped_kb()
CATALOG = KB.experiments
FACTS = {**TINY["training"], **TINY["dataset"]}


def test_the_catalog_names_only_what_exists():
    assert problems(KB) == []


def test_a_broken_catalog_is_reported():
    broken = dataclasses.replace(
        CATALOG, fixes={"no_such_cause": {"set": {"warp_speed": 9}}},
        checks={"mystery": {"title": "?", "asks": "?", "fact": "loss_flat", "set": {"epochs": 1}}},
        symptoms={"says_flat": ["no_such_leaf"], "says_nothing": []}, broken=frozenset({"gone"}))
    # Each problem names the line of experiments.yaml: the entry's own, else the section's the entry belongs in.
    at = {section: KB.places.where("experiments.yaml", section)
          for section in ("fixes", "checks", "symptoms", "broken")}
    missing = [f"{at['symptoms']}: symptoms: no entry for '{said}' of trees/words.yaml"
               for said in sorted(CATALOG.symptoms) if said != "says_flat"]
    assert problems(dataclasses.replace(KB, experiments=broken)) == [
        f"{at['fixes']}: fixes: unknown cause 'no_such_cause'",
        f"{at['fixes']}: fixes/no_such_cause: unknown setting 'warp_speed'",
        f"{at['checks']}: checks/mystery: 'loss_flat' is not an experiment fact in facts.yaml",
        f"{at['checks']}: checks/mystery: no measure for it in assistant/repro/experiments.py",
        *missing,
        f"{KB.places.where('experiments.yaml', 'symptoms', 'says_flat')}: symptoms/says_flat: 'no_such_leaf' is no "
        "leaf of trees/curves.yaml",
        f"{at['symptoms']}: symptoms: 'says_nothing' is no leaf of trees/words.yaml",
        f"{at['broken']}: broken: 'gone' is no leaf of trees/curves.yaml",
    ]
    assert all(at[section].startswith("experiments.yaml:") for section in at)


def test_a_catalog_mistake_fails_kb_check_at_its_line(kb_copy):
    from tests.helpers import knowledge_problems, line_named

    text = (kb_copy / "experiments.yaml").read_text()
    (kb_copy / "experiments.yaml").write_text(text.replace("fact: repro_lr_ratio", "fact: repro_lr_ration"))
    problem, unproduced = knowledge_problems(kb_copy)[:-1]
    assert problem.endswith(": checks/lr_range: 'repro_lr_ration' is not an experiment fact in facts.yaml")
    assert line_named(kb_copy, problem) == "fact: repro_lr_ration"
    # ... and the fact it measured before, nothing measures now.
    assert unproduced.startswith("facts.yaml:")
    assert "'repro_lr_ratio' (kind experiment) is produced by nothing" in unproduced


@pytest.mark.parametrize("facts, cause, changes", [
    ({"optimizer": "adam", "learning_rate": 3.0}, "learning_rate_too_high", {"learning_rate": [3.0, 0.001]}),
    ({"optimizer": "adam", "learning_rate": 0.01}, "learning_rate_too_high", {"learning_rate": [0.01, 0.001]}),
    ({"optimizer": "sgd", "learning_rate": 0.005}, "learning_rate_too_low", {"learning_rate": [0.005, 0.05]}),
    ({"optimizer": "adam", "learning_rate": 5e-7}, "learning_rate_too_low", {"learning_rate": [5e-7, 0.001]}),
    ({"epochs": 2}, "too_few_epochs", {"epochs": [2, 20]}),
    ({"batch_size": 1500, "n_samples": 1500}, "batch_size_too_large", {"batch_size": [1500, 32]}),
    ({"trainable_params": 0}, "frozen_layers", {"frozen_layers": [2, 0]}),
    ({"class_counts": {"0": 150, "5": 150}, "n_classes": 2, "task": "binary_classification"},
     "label_encoding_mismatch", {"labels": [(0.0, 5.0), ()]}),
    ({"loss": "categorical_crossentropy", "output_units": 1, "output_activation": "sigmoid", "n_classes": 2,
      "class_counts": {"0": 150, "1": 150}, "task": "binary_classification"},
     "wrong_loss_function", {"loss": ["categorical_crossentropy", "binary_crossentropy"]}),
    ({"task": "regression", "loss": "mse", "output_activation": "sigmoid", "output_units": 1},
     "output_activation_mismatch", {"output_activation": ["sigmoid", "linear"]}),
])
def test_a_fix_changes_the_users_setting(facts, cause, changes):
    spec = build(NAMES, {**FACTS, **facts})
    assert variant(spec, CATALOG.fixes[cause]["set"], Caps(), NAMES)[1] == changes


def test_a_fix_keeps_the_caps():
    spec = build(NAMES, {**FACTS, "n_samples": 40})
    fixed, changes = variant(spec, CATALOG.fixes["insufficient_data"]["set"], Caps(samples=500), NAMES)
    assert changes == {"n_samples": [40, 500]}
    assert "trained on 500 samples instead of 1,000" in fixed.notes


def test_a_fix_that_changes_nothing_is_not_planned():
    facts = facts_from(symptom=TINY["symptom"], metrics=TINY["metrics"], training=TINY["training"],
                       dataset=TINY["dataset"])
    planned = plan(build(NAMES, facts.values()), facts, KB, Caps())
    assert planned[0].name == "baseline" and planned[0].kind == "baseline"
    fixes = [e for e in planned if e.kind == "fix"]
    assert fixes[0].cause == "learning_rate_too_high"
    assert 1 <= len(fixes) <= experiments.FIXES
    assert all(e.changes for e in fixes)
    assert "fix:label_noise" not in [e.name for e in planned]  # clean labels already: nothing to try


def test_an_uploaded_models_layers_are_not_rebuilt():
    facts = facts_from(symptom="my loss does not move at all",
                       training={"optimizer": "adam", "learning_rate": 1e-7,
                                 "loss": "sparse_categorical_crossentropy"},
                       dataset={"task": "multiclass_classification", "n_classes": 3, "n_samples": 300})
    spec = build(NAMES, facts.values(), model_json=model_json("sequential"))
    for experiment in plan(spec, facts, KB, Caps()):
        assert not set(experiment.changes or ()) & {"width", "depth", "hidden_activation", "kernel_initializer"}


def test_checks_are_planned_where_causes_are_close():
    # A huge, leaping loss after 5 epochs the user calls few, and no learning rate said: too few
    # epochs, or too high a rate?
    training = {key: value for key, value in TINY["training"].items() if key != "learning_rate"}
    symptom = TINY["symptom"] + ", and I only trained it for a few epochs"
    facts = facts_from(symptom=symptom, metrics=TINY["metrics"], training=training, dataset=TINY["dataset"])
    ranked = [belief.cause.id for belief in diagnose(KB, facts).beliefs[:2]]
    assert ranked == ["too_few_epochs", "learning_rate_too_high"]
    planned = plan(build(NAMES, facts.values()), facts, KB, Caps())
    checks = [e for e in planned if e.kind == "check"]
    assert checks
    gains = {name: experiments.check_gain(KB, facts, check["fact"]) for name, check in CATALOG.checks.items()}
    assert [e.check for e in checks] == sorted(gains, key=gains.get, reverse=True)[:len(checks)]


def test_a_sure_diagnosis_needs_no_check():
    metrics = {"loss": [6376.8, 1.62, 1.61, 1.56, 1.54, 1.55, 1.52, 1.58, 1.51, 1.53, 1.55, 1.51],
               "val_loss": [31.1, 1.49, 1.52, 1.48, 1.47, 1.46, 1.5, 1.47, 1.46, 1.45, 1.47, 1.46]}
    facts = facts_from(symptom="the loss is huge at first, then stuck", metrics=metrics,
                       training={**TINY["training"], "epochs": 12}, dataset=TINY["dataset"])
    assert all(experiments.check_gain(KB, facts, c["fact"]) < experiments.MIN_GAIN for c in CATALOG.checks.values())


def test_an_experiment_survives_json():
    experiment = Experiment("fix:x", "fix", "Fix: x", build(NAMES, FACTS), cause="x", changes={"epochs": [5, 20]})
    assert Experiment.from_json(experiment.to_json()) == experiment


def result(**history) -> dict:
    return {"history": history}


def test_one_batch_is_learned_when_its_loss_halves():
    assert learns_one_batch(result(loss=[1.1, 0.7, 0.4]), {}, build(NAMES, FACTS))
    assert not learns_one_batch(result(loss=[1.1, 1.0, 0.9]), {}, build(NAMES, FACTS))
    assert not learns_one_batch(result(loss=[1.1, float("nan"), 0.1]), {}, build(NAMES, FACTS))


def test_clearly_better_reads_validation_accuracy_then_loss():
    task = "multiclass_classification"
    assert clearly_better(result(val_accuracy=[0.5, 0.8]), result(val_accuracy=[0.5, 0.7]), task)
    assert not clearly_better(result(val_accuracy=[0.5, 0.73]), result(val_accuracy=[0.5, 0.7]), task)
    assert clearly_better(result(val_loss=[3.0, 0.5]), result(val_loss=[3.0, 1.0]), task)
    assert not clearly_better(result(val_loss=[float("nan")]), result(val_loss=[1.0]), task)


def test_a_regression_is_judged_by_its_loss_even_when_it_tracks_accuracy():
    better = result(val_loss=[9.0, 1.0], val_accuracy=[0.0, 0.0])
    assert clearly_better(better, result(val_loss=[9.0, 5.0], val_accuracy=[0.0, 0.0]), "regression")


def test_the_range_test_points_a_tenth_below_the_fastest_fall():
    rates = [1e-6 * 10 ** (k / 10) for k in range(61)]
    losses = [2.0 - 1.5 * (lr > 1e-3) + 50 * (lr > 0.1) for lr in rates]  # falls at 1e-3, blows up past 0.1
    spec = build(NAMES, {**FACTS, "learning_rate": 1.0})
    ratio = lr_ratio({"steps": list(zip(rates, losses))}, {}, spec)
    assert 1e-4 <= ratio <= 1e-2
