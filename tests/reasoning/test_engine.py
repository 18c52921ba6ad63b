"""The engine ranks causes from facts, cites the user's data, and asks what separates the leaders."""
from __future__ import annotations

import math

from assistant.evidence import gather
from assistant.reasoning.engine import _answer_odds, diagnose
from tests.helpers import facts_from, shipped_kb

KB = shipped_kb()


def run(declined=(), **inputs):
    facts = facts_from(**inputs)
    return diagnose(KB, facts, declined=declined), facts


def belief(diagnosis, cause: str):
    """The diagnosis's belief in one cause, wherever it ranks."""
    return next(b for b in diagnosis.beliefs if b.cause.id == cause)


def test_nan_with_a_huge_learning_rate_ranks_learning_rate_first():
    diagnosis, _ = run(symptom="loss is nan after epoch 3",
                       metrics={"loss": [2.3, 5.1, float("nan"), float("nan")]},
                       training={"optimizer": "adam", "learning_rate": 0.5})
    top = diagnosis.beliefs[0]
    assert top.cause.id == "learning_rate_too_high"
    assert any("0.5" in e for e in top.evidence)
    assert top.confidence > 0.5
    assert sum(b.confidence for b in diagnosis.beliefs) == pytest_approx(1.0)


def pytest_approx(x):
    import pytest
    return pytest.approx(x, abs=1e-9)


def test_evidence_cites_the_users_own_numbers():
    diagnosis, _ = run(symptom="loss stuck", metrics={"loss": [1.0987, 1.0986, 1.0986, 1.0986]},
                       training={"hidden_activation": "relu", "kernel_initializer": "zeros"})
    init = belief(diagnosis, "poor_initialization")
    assert any("zeros" in e for e in init.evidence)
    assert any("ln 3" in r or "barely moves" in r for r in diagnosis.readings)


def test_ambiguous_flat_loss_asks_a_question_and_the_answer_reranks():
    inputs = dict(symptom="my loss doesn't go down, it stays around 1.1",
                  metrics={"loss": [1.1026, 1.0987, 1.0986, 1.0986, 1.0986, 1.0986]})
    diagnosis, facts = run(**inputs)
    assert diagnosis.questions, "a flat loss with nothing else known must ask"
    asked = [q.fact for q in diagnosis.questions]
    assert "missing_fraction" in asked or "learning_rate" in asked or "kernel_initializer" in asked
    assert all(q.gain > 0 for q in diagnosis.questions)
    facts.update(gather(shipped_kb(), facts={"missing_fraction": 0.05}).facts)
    after = diagnose(KB, facts)
    assert after.beliefs[0].cause.id == "missing_values"
    assert after.beliefs[0].confidence > diagnosis.beliefs[0].confidence


def test_an_answer_that_only_an_unlikely_cause_predicts_is_itself_unlikely():
    """Asked what share of the inputs is missing, most people say none: only the missing-values cause expects more."""
    probs = {"leader": 0.9, "outsider": 0.1}
    scores = {"leader": 2.0, "outsider": 0.0}
    none, some = dict(scores), {**scores, "outsider": 3.0}
    odds = _answer_odds(scores, [none, some], ["outsider"], probs, 1.4)
    assert sum(odds) == pytest_approx(1.0)
    assert odds[1] < 0.1 < 0.9 < odds[0]
    # A question about the leader's own fact: its answers are as likely as the leader makes them.
    weak, strong = dict(scores), {**scores, "leader": 5.0}
    odds = _answer_odds(scores, [weak, strong], ["leader"], probs, 1.4)
    assert odds[1] > 0.75


def test_declined_questions_are_not_asked_again():
    inputs = dict(symptom="loss is flat", metrics={"loss": [0.6932, 0.6931, 0.6931, 0.6931]})
    first, _ = run(**inputs)
    declined = {q.fact for q in first.questions}
    second, _ = run(declined=declined, **inputs)
    assert not declined & {q.fact for q in second.questions}


def test_a_confident_diagnosis_asks_nothing():
    diagnosis, _ = run(symptom="the metrics are identical every epoch", metrics={"loss": [0.984] * 8},
                       training={"trainable_params": 0, "total_params": 323})
    assert diagnosis.beliefs[0].cause.id == "frozen_layers"
    assert diagnosis.questions == []


def test_contradicting_evidence_is_reported():
    diagnosis, _ = run(symptom="loss is nan", metrics={"loss": [1.0, float("nan")]},
                       training={"learning_rate": 0.0001, "optimizer": "adam"})
    high = belief(diagnosis, "learning_rate_too_high")
    assert any("already small" in a for a in high.against)


# --- the learned text model: one more source, visible, and constant across hypothetical answers ---

def _with_words(weight: float):
    """The shipped knowledge base with a tiny text model: 'overfit' means overfitting, 'nan' a high learning rate."""
    import dataclasses

    from assistant.kb.words import Words

    classes = ["dead_relu", "learning_rate_too_high", "overfitting", "unscaled_inputs"]
    marks = {"learning_rate_too_high": "nan", "overfitting": "overfit", "unscaled_inputs": "pixels"}
    vocabulary = ["nan", "overfit", "pixels"]
    data = {"tokenizer": {"lowercase": True, "token_pattern": r"(?u)\b\w\w+\b", "ngram_range": [1, 1],
                          "sublinear_tf": True, "norm": "l2"},
            "classes": classes, "vocabulary": vocabulary, "idf": [1.0, 1.0, 1.0], "weight": weight,
            "trained": {"cases": 150},
            "causes": {c: {"intercept": 0.0, "coefficients": [4.0 if marks.get(c) == t else 0.0 for t in vocabulary]}
                       for c in classes}}
    return dataclasses.replace(KB, words=Words.from_data(data))


def _facts(kb, **inputs):
    from assistant.evidence.facts import Facts

    facts = Facts()
    facts.update(gather(kb, **inputs).facts)
    return facts


def test_the_words_add_lambda_log_k_p_and_say_so_in_the_evidence():
    import math

    from assistant.kb.words import FACT

    kb = _with_words(0.5)
    inputs = dict(symptom="validation loss goes up, I think the model is overfit", metrics={"loss": [1.0, 0.8, 0.7]})
    with_words, without = diagnose(kb, _facts(kb, **inputs)), diagnose(KB, facts_from(**inputs))
    p = with_words.values[FACT]["overfitting"]
    score = {b.cause.id: b.score for b in with_words.beliefs}
    before = {b.cause.id: b.score for b in without.beliefs}
    assert score["overfitting"] - before["overfitting"] == pytest_approx(0.5 * math.log(4 * p))
    assert score["model_too_simple"] == pytest_approx(before["model_too_simple"])  # a cause it never learned
    overfitting = belief(with_words, "overfitting")
    line = ("in the 150 real threads the text model learned from, words like yours went with this cause "
            f"about {p:.0%} of the time")
    assert overfitting.evidence[-1] == line
    high = belief(with_words, "learning_rate_too_high")
    assert any("words like yours went with this cause only 2%" in a for a in high.against)
    assert not any("words like yours" in e for b in without.beliefs for e in (*b.evidence, *b.against))


def test_a_small_push_from_the_words_is_not_shown():
    kb = _with_words(0.1)
    diagnosis = diagnose(kb, _facts(kb, symptom="the model is overfit"))
    assert not any("words like yours" in e for b in diagnosis.beliefs for e in (*b.evidence, *b.against))


def test_hypothetical_answers_keep_the_words_part_of_every_score():
    """A question's worth is weighed on scores that still hold the words: the answer changes the rest only."""
    from assistant.evidence.derive import derive
    from assistant.reasoning.engine import _all_values, _Scoring

    kb = _with_words(0.5)
    facts = _facts(kb, symptom="loss is nan after a few epochs", metrics={"loss": [2.3, 5.1, float("nan")]})
    values = _all_values(kb, facts)
    scoring = _Scoring.of(kb, values)
    assert scoring.words["learning_rate_too_high"] > 0.5
    for answer in (0.5, 0.0001):
        trial = facts.values() | {"learning_rate": answer}
        trial.update(derive(kb, trial))
        changed = {k for k in trial.keys() | values.keys() if trial.get(k) != values.get(k)}
        rescored = scoring.rescored(kb, scoring.scores(kb), trial, changed)
        assert rescored == pytest_approx(_Scoring.of(kb, trial).scores(kb))
        assert rescored != pytest_approx(scoring.scores(kb))  # the answer did move some cause


def test_a_model_systematically_wrong_with_integer_labels_asks_which_labels_there_are():
    """Labels numbered from 1 overflow a softmax of K units: the class counts would show it, so they are asked."""
    diagnosis, facts = run(symptom="Accuracy is always 0",
                           training={"loss": "sparse_categorical_crossentropy", "output_activation": "softmax",
                                     "output_units": 5, "optimizer": "adam"},
                           dataset={"task": "multiclass_classification", "n_classes": 5, "label_format": "integer"})
    assert "class_counts" in [q.fact for q in diagnosis.questions]
    facts.update(gather(shipped_kb(), facts={"class_counts": {"1": 511, "2": 510, "3": 417, "4": 401, "5": 386}}).facts)
    assert diagnose(KB, facts).beliefs[0].cause.id == "label_encoding_mismatch"


def test_a_question_that_would_lift_a_rarer_cause_is_asked_when_little_is_known():
    """Learning rate 0.001 is Adam's; for Adadelta it is a thousandth of the usual, so the optimizer is worth asking."""
    diagnosis, facts = run(symptom="Model accuracy is too low", training={"learning_rate": 0.001},
                           dataset={"task": "multiclass_classification", "n_classes": 10})
    assert "optimizer" in [q.fact for q in diagnosis.questions]
    facts.update(gather(shipped_kb(), facts={"optimizer": "adadelta"}).facts)
    after = diagnose(KB, facts).beliefs[0]
    assert after.cause.id == "learning_rate_too_low"
    assert any("meant to run at" in line for line in after.evidence)


def test_the_entropy_once_a_few_scores_change_is_the_softmaxs_entropy_worked_out_afresh():
    from assistant.reasoning.engine import _softmax, _Spread

    def afresh(scores: dict[str, float]) -> float:
        return -sum(p * math.log(p) for p in _softmax(scores, 1.4).values() if p > 0)

    scores = {"a": 2.0, "b": 0.5, "c": -1.0, "d": 0.0}
    spread = _Spread(scores, 1.4)
    assert spread.entropy == pytest_approx(afresh(scores))
    for changed in ({"a": -3.0}, {"b": 9.0, "c": 1.0}, {"d": 0.0}, {"a": 2.0, "b": 2.0, "c": 2.0, "d": 2.0}):
        assert spread.entropy_with({**scores, **changed}, list(changed)) == pytest_approx(afresh({**scores, **changed}))
    assert spread.entropy_with({**scores, "b": 9.0}, ["b"]) < spread.entropy  # one cause far ahead: less spread


def test_labels_made_as_images_bring_the_label_encoding_forward_for_a_nan_loss():
    """Masks and annotations the user made are where class values outside 0..K-1 come from."""
    def rank(symptom: str) -> int:
        diagnosis, _ = run(symptom=symptom)
        return [b.cause.id for b in diagnosis.beliefs].index("label_encoding_mismatch")

    plain = rank("I trained a U-Net on my own dataset; the loss is nan from the first epoch")
    masks = rank("I trained a U-Net on my own dataset with masks made in labelme; the loss is nan from the first epoch")
    assert masks < plain and masks <= 2


def test_one_pasted_epoch_is_a_short_run_only_when_the_run_was_set_to_one():
    line = "22/22 [==============================] - 13s 575ms/step - loss: 2.2847 - acc: 0.2088\n"
    said = "the accuracy is only 0.2, what is wrong?\n"

    def too_few(log: str) -> list[str]:
        diagnosis, _ = run(symptom=said + log)
        return belief(diagnosis, "too_few_epochs").evidence

    assert "the training log shows a single epoch" in too_few("Epoch 1/1\n" + line)
    assert "the training log shows a single epoch" not in too_few("Epoch 1/50\n" + line)  # a piece of a longer run
    assert "the training log shows a single epoch" not in too_few(line)  # a line without its epoch: a piece too


def test_a_fine_tuning_rate_is_not_called_too_low():
    def too_low(symptom: str) -> list[str]:
        diagnosis, _ = run(symptom=symptom, training={"optimizer": "adam", "learning_rate": 1e-5})
        return belief(diagnosis, "learning_rate_too_low").evidence

    assert any("100× below" in e for e in too_low("my classifier does not learn, accuracy stays at 50%"))
    assert not any("100× below" in e for e in too_low("fine-tuning BERT, accuracy stays at 50%"))



def test_one_epoch_shows_no_curve_so_no_plateau():
    def readings(metrics: dict) -> list[str]:
        return run(symptom="accuracy is poor", metrics=metrics)[0].readings

    assert "the loss settled at a high level" not in readings({"loss": [1.7], "accuracy": [0.4]})
    assert "the loss settled at a high level" in readings({"loss": [1.9, 1.72, 1.7, 1.7, 1.7, 1.7],
                                                            "accuracy": [0.3, 0.38, 0.4, 0.4, 0.4, 0.4]})


def test_a_perfect_accuracy_on_a_model_that_fails_points_at_the_labels():
    def noise(**inputs) -> list[str]:
        diagnosis, _ = run(**inputs)
        return belief(diagnosis, "label_noise").evidence

    said = "the acc is always 1.00 during training on my own dataset, but every prediction is background"
    assert any("all hold the same value" in e for e in noise(symptom=said))
    # a validation accuracy below it is a model that fits its training data, not labels of one value
    assert not any("all hold the same value" in e for e in noise(
        symptom="training accuracy is 100% but validation accuracy is 71%"))


def test_the_first_epochs_of_a_longer_run_are_not_a_short_run():
    def epochs_log(total: int) -> str:
        return "".join(f"Epoch {i}/{total}\n10/10 - 1s - loss: {1.0 - 0.1 * i:.2f} - accuracy: {0.5 + 0.05 * i:.2f}\n"
                       for i in range(1, 5))

    def too_few(total: int) -> list[str]:
        diagnosis, _ = run(symptom="accuracy is low\n" + epochs_log(total))
        return belief(diagnosis, "too_few_epochs").evidence

    assert "only 4 epochs, and the loss was still falling at the last one" in too_few(4)
    assert "only 4 epochs, and the loss was still falling at the last one" not in too_few(200)


def test_a_nan_that_outlasts_other_learning_rates_weighs_against_overshooting():
    diagnosis, _ = run(symptom="the loss keeps nan during training. Have tried changed the learning rate from 1 to 1e-8.")
    high = belief(diagnosis, "learning_rate_too_high")
    assert any(line.startswith("you changed the learning rate (or clipped the gradients) and the loss still turns NaN")
               for line in high.against)


def test_a_training_accuracy_of_exactly_zero_points_at_the_metric():
    diagnosis, _ = run(symptom="After one epoch (170k steps), the printed training accuracy is still 0.000000.")
    assert diagnosis.beliefs[0].cause.id == "metric_misconfiguration"
    assert any("exactly 0" in line for line in diagnosis.beliefs[0].evidence)
    # near zero on a task with many classes is a model that guesses badly, not a metric that cannot match
    low, _ = run(symptom="the training accuracy is 0.003 after one epoch")
    metric = belief(low, "metric_misconfiguration")
    assert not any("exactly 0" in line for line in metric.evidence)


def test_a_few_epochs_of_fine_tuning_are_not_too_few():
    def too_few(symptom: str) -> list[str]:
        diagnosis, _ = run(symptom=symptom, training={"epochs": 2})
        return belief(diagnosis, "too_few_epochs").evidence

    assert "epochs=2 is very short" in too_few("my text classifier stays at 50% accuracy")
    assert "epochs=2 is very short" not in too_few("fine-tuning BERT, my text classifier stays at 50% accuracy")


def test_runs_that_succeed_only_sometimes_point_at_a_rate_on_the_edge():
    diagnosis, _ = run(symptom="Albert fine tuning does not always converge: some runs stay at 50% accuracy")
    high = belief(diagnosis, "learning_rate_too_high")
    assert any("some runs and fails in others" in line for line in high.evidence)


def test_a_nan_loss_is_not_a_learning_rate_too_low():
    diagnosis, _ = run(symptom="the loss becomes nan", metrics={"loss": [2.1, 1.9, float("nan")]},
                       training={"optimizer": "sgd", "learning_rate": 1e-6, "momentum": 0.9})
    low = belief(diagnosis, "learning_rate_too_low")
    assert diagnosis.beliefs[0].cause.id != "learning_rate_too_low"
    assert low.confidence < 0.05


def test_a_sparse_cross_entropy_nan_from_the_start_points_at_label_ids():
    diagnosis, _ = run(symptom="accuracy stays at 4%", metrics={"loss": [float("nan")] * 3, "accuracy": [0.04] * 3},
                       training={"loss": "sparse_categorical_crossentropy"})
    labels = belief(diagnosis, "label_encoding_mismatch")
    assert any("label id at or above the number of output units" in line for line in labels.evidence)


def test_only_the_lines_of_evidence_read_are_worked_out():
    diagnosis, _ = run(symptom="loss is nan after epoch 3", metrics={"loss": [2.3, 5.1, float("nan"), float("nan")]},
                       training={"optimizer": "adam", "learning_rate": 0.5})
    assert all("_lines" not in vars(belief) for belief in diagnosis.beliefs)
    top, last = diagnosis.beliefs[0], diagnosis.beliefs[-1]
    assert top.evidence and "_lines" in vars(top)
    assert "_lines" not in vars(last)
    assert last.evidence is last.evidence  # worked out once


def test_the_signs_and_the_askable_facts_are_those_facts_yaml_declares():
    for kind in ("curve", "symptom", "code"):
        assert KB.signs(kind) == tuple(name for name, spec in KB.facts.items()
                                       if spec["kind"] == kind and spec["type"] == "boolean")
    assert {name for name in KB.facts if KB.askable(name)} == \
        {name for name, spec in KB.facts.items() if spec["kind"] == "input"}
    assert not KB.askable("no_such_fact")


def test_answers_weighed_as_one_lead_to_the_same_scores():
    from assistant.reasoning.engine import _Scoring, _alike, _all_values

    alike = _alike(KB)
    assert any(len(set(classes)) < len(classes) for classes in alike.values())  # some are weighed once
    facts = facts_from(symptom="loss goes down slowly", training={"optimizer": "adam", "learning_rate": 0.001})
    values = _all_values(KB, facts)
    scoring = _Scoring.of(KB, values)
    scores = scoring.scores(KB)
    for name, classes in alike.items():
        answers = KB.answers[name]
        outcomes = [scoring.rescored(KB, scores, {**values, name: answer}, frozenset({name})) for answer in answers]
        for i, first in enumerate(classes):
            assert outcomes[i] == outcomes[first], (name, answers[i], answers[first])


def test_an_accuracy_quoted_beside_a_validation_accuracy_is_the_training_one():
    # Keras logs the training accuracy as plain "accuracy": quoted next to a validation accuracy well above
    # it, the gap is training held back (dropout, a penalty), not a figure with no subject.
    diagnosis, _ = run(symptom="The accuracy is around 50% all the time, although validation accuracy reaches 83%.")
    assert math.isclose(diagnosis.values["accuracy_gap"], -0.33)
    assert any("validation accuracy is well above training accuracy" in line
               for line in belief(diagnosis, "regularization_too_strong").evidence)
    alone, _ = run(symptom="The accuracy is around 50% all the time.")
    assert alone.values.get("accuracy_gap") is None


def test_a_softmax_on_two_classes_asks_its_units_before_calling_it_fit():
    # one softmax unit always outputs 1 and two are right: until the units are known the output neither
    # fits nor fails, and the number of units is worth asking
    inputs = dict(symptom="My binary classifier with softmax and categorical_crossentropy stays below 40% accuracy.",
                  dataset={"task": "binary_classification"},
                  training={"output_activation": "softmax", "loss": "categorical_crossentropy"})
    diagnosis, facts = run(**inputs)
    assert diagnosis.values.get("output_fits_task") is None
    assert "output_units" in [q.fact for q in diagnosis.questions]
    for units, first in ((1, True), (2, False)):
        answered = facts.copy()
        answered.update(gather(KB, facts={"output_units": units}).facts)
        assert (diagnose(KB, answered).beliefs[0].cause.id == "output_activation_mismatch") is first
    many, _ = run(symptom="accuracy stays low", dataset={"task": "multiclass_classification", "n_classes": 5},
                  training={"output_activation": "softmax", "loss": "categorical_crossentropy"})
    assert many.values["output_fits_task"] is True


def test_words_count_when_no_history_is_there_to_show_the_same():
    # the words' leaves stand aside only for a history that shows the same thing, not for a missing one
    exploding, _ = run(symptom="my training loss explodes after a few epochs")
    assert any("loss explodes" in line for line in belief(exploding, "learning_rate_too_high").evidence)
    # a loss that a repository or the user wrote, turning NaN: its own math, not the optimizer
    custom, _ = run(symptom="Using the BPR loss from your code as-is led to a slew of NaNs after a couple of epochs.")
    assert custom.beliefs[0].cause.id == "numerical_instability"
