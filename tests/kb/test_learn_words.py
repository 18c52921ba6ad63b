"""`assistant kb learn-words` learns from dev cases only, measures out of fold, and writes only a fit that helps."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant.cli import main
from assistant.evidence.facts import Facts
from assistant.kb import DEFAULT_DIR, load
from assistant.kb import learn_words
from assistant.kb.words import PATH
from assistant.evidence import gather
from assistant.reasoning.engine import diagnose

#: Made-up words the knowledge base's phrases know nothing of, each the mark of one cause.
MARKS = {"zorp": "unshuffled_data", "blick": "label_noise", "snarf": "missing_values", "quux": "batch_size_too_small"}


@pytest.fixture(autouse=True)
def small_search(monkeypatch):
    """One setting and two weights, in this process: the search itself is what the real run widens."""
    monkeypatch.setattr(learn_words, "GRID_C", (3.0,))
    monkeypatch.setattr(learn_words, "GRID_NGRAMS", ((1, 1),))
    monkeypatch.setattr(learn_words, "GRID_MIN_DF", (1,))
    monkeypatch.setattr(learn_words, "LAMBDAS", (1.0, 2.0))
    monkeypatch.setattr(learn_words, "JOBS", 1)


@pytest.fixture
def kb_copy(tmp_path: Path) -> Path:
    copy = Path(shutil.copytree(DEFAULT_DIR, tmp_path / "knowledge"))
    (copy / PATH).unlink(missing_ok=True)
    return copy


def _cases(folder: Path, labelled: list[tuple[str, str]]) -> Path:
    folder.mkdir(parents=True)
    for i, (text, cause) in enumerate(labelled):
        (folder / f"case-{i:02d}.json").write_text(json.dumps({
            "id": f"case-{i:02d}", "source": "test", "request": {"symptom": text},
            "expected": {"primary": cause, "acceptable": []}}), encoding="utf-8")
    return folder


def _marked() -> list[tuple[str, str]]:
    """Threads that the knowledge base cannot tell apart, whose words give the cause away."""
    fillers = ["my model does not learn", "help please", "training is weird", "any idea why"]
    return [(f"{filler} {mark} {mark}", cause) for mark, cause in MARKS.items() for filler in fillers]


def _learn(*args: str):
    return CliRunner().invoke(main, ["kb", "learn-words", *args])


def test_a_test_split_is_refused(tmp_path, kb_copy):
    folder = _cases(tmp_path / "corpus" / "test", _marked())
    result = _learn("--cases", str(folder), "--directory", str(kb_copy), "--write")
    assert result.exit_code == 1
    assert "test split" in result.output and "never learned from" in result.output
    assert not (kb_copy / PATH).exists()
    with pytest.raises(learn_words.Refused, match="test split"):
        learn_words.read_cases([folder / "."])


def test_the_corpus_test_split_is_refused_and_never_a_default():
    corpus_test = learn_words.ROOT / "benchmarks" / "cases" / "realworld" / "test"
    assert all(not learn_words.in_test_split(d) for d in learn_words.DEFAULT_CASES)
    if corpus_test.is_dir():
        with pytest.raises(learn_words.Refused, match="test split"):
            learn_words.read_cases([corpus_test])


def test_a_fit_that_does_not_beat_the_knowledge_base_is_not_written(tmp_path, kb_copy):
    """Threads whose cause the knowledge base already ranks first: the words can only add noise."""
    knowledge = load(kb_copy)
    texts = ["loss is nan after epoch 3, lr 0.5", "val_loss rises while the training loss falls",
             "accuracy stuck at 50% from the first epoch", "loss explodes to inf", "training loss goes down slowly",
             "my inputs are pixels from 0 to 255", "model predicts the majority class only",
             "validation accuracy much lower than training accuracy", "loss does not move at all",
             "dataset has lots of missing values (NaN in the csv)", "only 100 images for 10 classes",
             "the loss jumps up and down a lot"]
    labelled = []
    for text in texts:
        scores = learn_words.first_reply_scores(knowledge, {"symptom": text})
        labelled.append((text, min(scores, key=lambda cause: (-scores[cause], cause))))
    folder = _cases(tmp_path / "dev", labelled)
    result = _learn("--cases", str(folder), "--directory", str(kb_copy), "--write")
    assert result.exit_code == 1, result.output
    assert "knowledge base alone      top-1 1.000" in result.output
    assert "do not put the right cause first more often" in result.output and "not written" in result.output
    assert not (kb_copy / PATH).exists()


def test_a_fit_that_helps_is_written_and_the_loader_applies_it(tmp_path, kb_copy):
    folder = _cases(tmp_path / "dev", _marked())
    shown = _learn("--cases", str(folder), "--directory", str(kb_copy))
    assert shown.exit_code == 0, shown.output
    assert not (kb_copy / PATH).exists()  # without --write, only the figures
    result = _learn("--cases", str(folder), "--directory", str(kb_copy), "--write")
    assert result.exit_code == 0, result.output
    assert "knowledge base alone" in result.output and "with the words" in result.output and "wrote" in result.output
    data = json.loads((kb_copy / PATH).read_text(encoding="utf-8"))
    assert data["trained"]["cases"] == len(_marked()) and data["weight"] in (1.0, 2.0)
    assert data["tokenizer"] == {"lowercase": True, "token_pattern": learn_words.TOKEN_PATTERN, "ngram_range": [1, 1],
                                 "sublinear_tf": True, "norm": "l2"}
    assert set(data["classes"]) == set(MARKS.values())
    measured = data["evaluation"]["nested_out_of_fold"]
    assert measured["with_words"]["top1"] > 0.5 > measured["without_words"]["top1"]
    assert "zorp" in data["top_terms"]["unshuffled_data"]
    assert CliRunner().invoke(main, ["kb", "check", "--directory", str(kb_copy)]).exit_code == 0

    knowledge = load(kb_copy)
    facts = Facts()
    facts.update(gather(knowledge, symptom="help, zorp zorp").facts)
    top = diagnose(knowledge, facts).beliefs[0]
    assert top.cause.id == "unshuffled_data"
    assert any("words like yours" in line for line in top.evidence)
    # learning again with the model in place scores the knowledge base without it: the same figures
    again = _learn("--cases", str(folder), "--directory", str(kb_copy))
    alone = [line for line in result.output.splitlines() if "knowledge base alone  " in line]
    assert alone and alone == [line for line in again.output.splitlines() if "knowledge base alone  " in line]


def test_unknown_causes_and_too_few_cases_are_refused(tmp_path, kb_copy):
    folder = _cases(tmp_path / "dev", [(text, "gremlins") for text, _ in _marked()])
    with pytest.raises(learn_words.Refused, match="'gremlins' is no cause"):
        learn_words.learn(load(kb_copy), [folder], say=lambda _: None)
    few = _cases(tmp_path / "few", _marked()[:3])
    with pytest.raises(learn_words.Refused, match="too few"):
        learn_words.learn(load(kb_copy), [few], say=lambda _: None)
