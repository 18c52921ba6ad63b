"""The engine ranks causes from facts, cites the user's data, and asks what separates the leaders."""
from __future__ import annotations

from assistant.evidence import gather
from assistant.reasoning.engine import _answer_odds, diagnose
from tests.helpers import facts_from, shipped_kb

KB = shipped_kb()


def run(declined=(), **inputs):
    facts = facts_from(**inputs)
    return diagnose(KB, facts, declined=declined), facts


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
    init = next(b for b in diagnosis.beliefs if b.cause.id == "poor_initialization")
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
    odds = _answer_odds(scores, [none, some], probs, 1.4)
    assert sum(odds) == pytest_approx(1.0)
    assert odds[1] < 0.1 < 0.9 < odds[0]
    # A question about the leader's own fact: its answers are as likely as the leader makes them.
    weak, strong = dict(scores), {**scores, "leader": 5.0}
    odds = _answer_odds(scores, [weak, strong], probs, 1.4)
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
    high = next(b for b in diagnosis.beliefs if b.cause.id == "learning_rate_too_high")
    assert any("already small" in a for a in high.against)
