"""`assistant kb fit`: feedback given through the API moves the weights, a little for a few reports, and
the learned file is what the next conversation reasons with; a fit worse on held-out folds is not written."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from assistant.cli import main
from assistant.kb import fit, learned, load
from assistant.reasoning import engine

API = "/api/v1/conversations"
#: A loss that turns NaN, nothing else known: the learning rate leads, missing values come fourth.
NAN = {"symptom": "the loss becomes nan after a few epochs", "metrics": {"loss": [2.3, 1.9, "nan", "nan"]}}
#: The same with a learning rate of 0.5 for Adam: a well-supported rule puts the learning rate first.
SURE = {**NAN, "training": {"optimizer": "adam", "learning_rate": 0.5}}


def _rank(client, request: dict, cause: str) -> int:
    conversation = client.post(API, json=request).get_json()["id"]
    return client.get(f"{API}/{conversation}/causes/{cause}").get_json()["rank"]


def _report(client, request: dict, cause: str, verdict: str) -> None:
    conversation = client.post(API, json=request).get_json()["id"]
    response = client.post(f"{API}/{conversation}/feedback", json={"cause": cause, "verdict": verdict})
    assert response.status_code == 201, response.get_json()


def _kb(*args: str, database_url: str):
    return CliRunner().invoke(main, ["kb", *args], env={"ASSISTANT_DATABASE_URL": database_url,
                                                        "ASSISTANT_REPRO_SWEEP": "false"})


def test_many_reports_raise_a_cause_and_a_few_contrary_ones_do_not_overturn_a_rule(make_app, database_url, kb_copy):
    client = make_app().test_client()
    assert _rank(client, NAN, "missing_values") == 4
    assert _rank(client, SURE, "learning_rate_too_high") == 1
    for _ in range(20):
        _report(client, NAN, "missing_values", "fixed")
    for _ in range(3):
        _report(client, SURE, "learning_rate_too_high", "not_helpful")

    result = _kb("fit", "--feedback", "--write", "--directory", str(kb_copy), database_url=database_url)
    assert result.exit_code == 0, result.output
    assert "0 labelled case(s) and 23 feedback report(s)" in result.output
    assert f"wrote {kb_copy / learned.PATH}" in result.output

    written = yaml.safe_load((kb_copy / learned.PATH).read_text(encoding="utf-8"))
    assert written["fitted"]["reports"] == 23 and written["fitted"]["from"] == ["feedback"]
    leaf = next(e for e in written["leaves"] if e["leaf"] == "loss_not_finite" and e["cause"] == "missing_values")
    assert leaf["learned"] > leaf["weight"] + 1 and leaf["reports"] == 23 and leaf["cases"] == 0
    rule = next(e for e in written["rules"] if e["cause"] == "learning_rate_too_high" and e["index"] == 0)
    assert rule["weight"] - 1 < rule["learned"] < rule["weight"] and rule["reports"] == 3  # three reports: a little

    learned_client = make_app(KNOWLEDGE_DIR=str(kb_copy)).test_client()
    assert _rank(learned_client, NAN, "missing_values") == 1
    assert _rank(learned_client, SURE, "learning_rate_too_high") == 1


def test_a_few_reports_move_the_weights_less_than_many(kb_copy):
    kb = load(kb_copy)
    params = fit.Parameters(kb)
    facts = fit.first_reply_facts(kb, NAN)

    def moved(reports: int) -> float:
        examples = [params.example(str(n), "report", "missing_values", True, frozenset({"missing_values"}),
                                   facts) for n in range(reports)]
        return float(np.abs(fit.fit(params, fit.Data.of(examples, params.causes), max(fit.PENALTIES))).sum())

    assert 0 < moved(3) < moved(30) / 3


@pytest.mark.parametrize("request_", [NAN, SURE])
def test_the_likelihood_is_of_the_confidences_the_engine_reports(kb_copy, request_):
    kb = load(kb_copy)
    params = fit.Parameters(kb)
    facts = fit.first_reply_facts(kb, request_)
    reported = {b.cause.id: b.confidence for b in engine.diagnose(kb, facts).beliefs}
    leader = max(reported, key=reported.get)
    for cause in (leader, "missing_values", "learning_rate_too_high"):
        for fixed in (True, False):
            example = params.example("a", "report", cause, fixed, frozenset(), facts)
            data = fit.Data.of([example], params.causes)
            loss = fit._likelihood(params, data.base, data)[0][0]
            expected = -np.log(reported[cause]) if fixed else -np.log(1 - reported[cause])
            assert loss == pytest.approx(expected, rel=1e-6)


def test_the_gradient_is_the_likelihoods(kb_copy):
    kb = load(kb_copy)
    params = fit.Parameters(kb)
    examples = [params.example(str(n), "report", cause, fixed, frozenset(), fit.first_reply_facts(kb, request))
                for n, (request, cause, fixed) in enumerate([(NAN, "missing_values", True),
                                                             (SURE, "learning_rate_too_high", False),
                                                             (SURE, "learning_rate_too_high", True),
                                                             (NAN, "learning_rate_too_high", True)])]
    data = fit.Data.of(examples, params.causes)
    held = data.held.sum(axis=0) > 0
    at = np.where(held, np.random.default_rng(0).normal(0, 0.3, len(held)), 0.0)

    def loss(correction):
        return fit._likelihood(params, fit.scores(params, data, correction), data)[0].sum()

    _, grad = fit._likelihood(params, fit.scores(params, data, at), data)
    analytic = ((grad @ params.owner.T) * data.held).sum(axis=0)
    step = 1e-6
    for j in np.flatnonzero(held):
        moved = np.array(at)
        moved[j] += step
        assert analytic[j] == pytest.approx((loss(moved) - loss(at)) / step, abs=1e-4)


def _figures(top1: float, ece: float, log_loss: float) -> fit.Figures:
    return fit.Figures(top1, 0.7, ece, log_loss, 100)


def test_the_penalty_is_chosen_among_those_no_worse_than_the_hand_weights():
    hand = _figures(0.55, 0.05, 2.5)
    # The weakest penalty has the best log-loss but a worse ECE; the next a worse top-1: the third is chosen.
    by_penalty = {3.0: _figures(0.56, 0.08, 2.3), 10.0: _figures(0.54, 0.04, 2.4), 30.0: _figures(0.55, 0.05, 2.45),
                  100.0: _figures(0.55, 0.05, 2.48), 300.0: _figures(0.55, 0.05, 2.5)}
    assert fit.best(hand, by_penalty) == 30.0
    assert fit.best(hand, {**by_penalty, 100.0: _figures(0.56, 0.05, 2.49)}) == 100.0  # top-1 before log-loss
    # None no worse: the strongest, which barely moves a weight.
    assert fit.best(hand, {3.0: _figures(0.56, 0.08, 2.3), 10.0: _figures(0.54, 0.04, 2.4)}) == 10.0
    assert max(fit.PENALTIES) >= 1000


def _scenario_cases(folder: Path, kb_dir: Path, chosen: slice) -> Path:
    """Labelled cases made of the causes' scenarios, which the hand weights rank first."""
    folder.mkdir(parents=True)
    scenarios = [(cause, s) for path in sorted((kb_dir / "causes").glob("*.yaml"))
                 for cause in [yaml.safe_load(path.read_text(encoding="utf-8"))]
                 for s in cause.get("scenarios", ())][chosen]
    for n, (cause, scenario) in enumerate(scenarios):
        request = {k: scenario[k] for k in ("symptom", "metrics", "dataset", "training") if k in scenario}
        (folder / f"case-{n}.json").write_text(json.dumps({"id": f"{folder.name}-{n}", "request": request,
                                                           "expected": {"primary": cause["id"]}}), encoding="utf-8")
    return folder


def test_a_fit_worse_on_held_out_folds_is_not_written(kb_copy, tmp_path, monkeypatch):
    cases = _scenario_cases(tmp_path / "cases", kb_copy, slice(0, 12))
    # A fit that forgets every weight: the scenarios, which the hand weights rank first, are lost.
    monkeypatch.setattr(fit, "fit", lambda params, data, penalty: -params.hand)

    result = _kb("fit", "--cases", str(cases), "--write", "--directory", str(kb_copy),
                 database_url=f"sqlite:///{tmp_path / 'a.sqlite'}")
    assert result.exit_code == 1
    assert "worse on held-out folds (top-1" in result.output and "not written" in result.output
    assert "hand     top-1 1.000" in result.output
    assert not (kb_copy / learned.PATH).exists()


def test_a_test_folder_is_scored_before_and_after_and_never_fitted_on(kb_copy, tmp_path):
    dev = _scenario_cases(tmp_path / "dev", kb_copy, slice(0, 12))
    test = _scenario_cases(tmp_path / "test", kb_copy, slice(12, 16))
    result = _kb("fit", "--cases", str(dev), "--cases", str(test), "--directory", str(kb_copy),
                 database_url=f"sqlite:///{tmp_path / 'a.sqlite'}")
    assert result.exit_code == 0, result.output
    assert "12 labelled case(s) and 0 feedback report(s) to fit on" in result.output
    tested = result.output.split(f"test ({test}; never fitted on):\n")[1].splitlines()
    assert tested[0].startswith("  hand     top-1 1.000") and tested[0].endswith("with a right cause)")
    assert tested[1].startswith("  learned  top-1 ")
    assert not (kb_copy / learned.PATH).exists()


def test_a_test_split_is_only_scored(kb_copy, tmp_path):
    root = Path(__file__).resolve().parents[2] / "benchmarks" / "cases" / "realworld"
    params = fit.Parameters(load(kb_copy))
    with pytest.raises(fit.Refused, match="test split"):
        fit.case_examples(params, [root / "test"])
    assert fit.case_examples(params, [root / "test"], held_out=True)
