"""The learned text model read from knowledge/learned/words.json gives scikit-learn's probabilities in plain Python."""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from assistant.cli import main
from assistant.evidence import gather
from assistant.kb import DEFAULT_DIR, KnowledgeError, load
from assistant.kb.learn_words import dumps, model_data
from assistant.kb.words import FACT, PATH, Words

TEXTS = [
    "Loss is NaN after epoch 3, the learning rate is 0.5 with Adam",
    "loss explodes to nan; lr=1.0 SGD",
    "val_loss goes up while training loss keeps going down, overfitting?",
    "Training accuracy 99% but validation accuracy 60%. Overfitting on a small dataset",
    "accuracy stuck at 50% for a binary problem, sigmoid output, the loss does not move",
    "The loss stays flat at 0.693 from the first epoch: stuck",
    "my inputs are raw pixels 0-255, not normalized, loss does not go down",
    "features in the thousands, no StandardScaler, training is stuck",
    "Ich habe ein Problem: der Verlust ist NaN — café naïve über",
    "nan nan nan nan loss NaN lr 10",
]
LABELS = ["learning_rate_too_high", "learning_rate_too_high", "overfitting", "overfitting",
          "output_activation_mismatch", "output_activation_mismatch", "unscaled_inputs", "unscaled_inputs",
          "learning_rate_too_high", "learning_rate_too_high"]
SAMPLES = [*TEXTS, "", "no words this model knows: zorp quux", "LOSS IS NAN", "loss is nan loss is nan loss is nan",
           "overfitting overfitting — stuck at 50%?!", "épochs naïve 0.5 lr", "a\tb\nc d-e f_g h.i"]


def _words(texts, labels, *, weight=0.5, **vectorizer) -> tuple[Words, TfidfVectorizer, LogisticRegression]:
    v = TfidfVectorizer(sublinear_tf=True, **vectorizer)
    classifier = LogisticRegression(C=3.0, max_iter=5000).fit(v.fit_transform(texts), labels)
    data = {**model_data(v, classifier), "weight": weight, "trained": {"cases": len(texts)}}
    return Words.from_data(data), v, classifier


@pytest.mark.parametrize("vectorizer", [
    {"ngram_range": (1, 2), "min_df": 1},
    {"ngram_range": (1, 1), "min_df": 2},
    {"ngram_range": (1, 3), "min_df": 1},
    {"ngram_range": (2, 3), "min_df": 1},
])
def test_the_plain_python_scorer_gives_scikit_learns_probabilities(vectorizer):
    words, v, classifier = _words(TEXTS, LABELS, **vectorizer)
    expected = classifier.predict_proba(v.transform(SAMPLES))
    for text, row in zip(SAMPLES, expected):
        got = words.probabilities(text)
        assert list(got) == list(classifier.classes_)
        assert max(abs(got[c] - p) for c, p in zip(classifier.classes_, row)) < 1e-9, text
    for text in SAMPLES:  # the vectorizer too, term by term
        row = v.transform([text]).toarray()[0]
        features = words.features(text)
        assert all(abs(features.get(term, 0.0) - row[j]) < 1e-12 for term, j in v.vocabulary_.items())


def test_two_causes_are_a_sigmoid_and_still_agree():
    labels = ["overfitting" if "overfit" in t.lower() or "val" in t else "learning_rate_too_high" for t in TEXTS]
    words, v, classifier = _words(TEXTS, labels, ngram_range=(1, 2))
    for text, row in zip(SAMPLES, classifier.predict_proba(v.transform(SAMPLES))):
        got = words.probabilities(text)
        assert max(abs(got[c] - p) for c, p in zip(classifier.classes_, row)) < 1e-9


def test_shifts_are_lambda_log_k_p_and_nothing_for_unlearned_causes():
    words, _, _ = _words(TEXTS, LABELS, weight=0.5)
    probs = words.probabilities("loss is nan")
    shifts = words.shifts({**probs, "dead_relu": 0.9})
    assert set(shifts) == set(words.classes)
    k = len(words.classes)
    assert shifts["learning_rate_too_high"] == pytest.approx(0.5 * math.log(k * probs["learning_rate_too_high"]))
    assert words.shifts({c: 1 / k for c in words.classes}) == pytest.approx({c: 0.0 for c in words.classes})


# --- the loader ---------------------------------------------------------------------------------

@pytest.fixture
def kb_copy(tmp_path: Path) -> Path:
    """A copy of the knowledge base without any learned text model."""
    copy = Path(shutil.copytree(DEFAULT_DIR, tmp_path / "knowledge"))
    (copy / PATH).unlink(missing_ok=True)
    return copy


def _write(kb_copy: Path, **changes) -> Path:
    v = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2))
    classifier = LogisticRegression(C=3.0, max_iter=5000).fit(v.fit_transform(TEXTS), LABELS)
    data = {"about": "test", "trained": {"cases": len(TEXTS), "date": "2025-01-01", "from": ["x"],
                                         "per_cause": {label: LABELS.count(label) for label in set(LABELS)}},
            "classifier": {"C": 3.0, "min_df": 1}, "weight": 0.5, "evaluation": {},
            **model_data(v, classifier), **changes}
    path = kb_copy / PATH
    path.parent.mkdir(exist_ok=True)
    path.write_text(dumps(data), encoding="utf-8")
    return path


def test_without_the_file_there_is_no_words_model_and_no_words_fact(kb_copy):
    knowledge = load(kb_copy)
    assert knowledge.words is None
    assert FACT not in {f.key for f in gather(knowledge, symptom="loss is nan after epoch 3").facts}
    result = CliRunner().invoke(main, ["kb", "check", "--directory", str(kb_copy)])
    assert result.exit_code == 0, result.output


def test_with_the_file_the_loader_reads_it_and_the_words_become_a_fact(kb_copy):
    _write(kb_copy)
    knowledge = load(kb_copy)
    assert isinstance(knowledge.words, Words) and knowledge.words.weight == 0.5 and knowledge.words.cases == len(TEXTS)
    facts = {f.key: f for f in gather(knowledge, symptom="Loss is NaN, lr 0.5").facts}
    read = facts[FACT].value
    assert set(read) == set(LABELS) and sum(read.values()) == pytest.approx(1.0)
    assert max(read, key=read.get) == "learning_rate_too_high"
    assert FACT not in {f.key for f in gather(knowledge, text="the lr is 0.5").facts}  # answers do not re-read it
    result = CliRunner().invoke(main, ["kb", "check", "--directory", str(kb_copy)])
    assert result.exit_code == 0, result.output


def test_a_file_that_does_not_fit_its_schema_is_refused_naming_it(kb_copy):
    _write(kb_copy, weight="heavy")
    with pytest.raises(KnowledgeError, match=r"learned/words\.json: weight: 'heavy' is not of type 'number'"):
        load(kb_copy)


def test_a_file_naming_a_cause_the_knowledge_base_lacks_is_refused(kb_copy):
    path = _write(kb_copy)
    data = json.loads(path.read_text(encoding="utf-8"))
    old, data["classes"][0] = data["classes"][0], "gremlins"
    data["causes"]["gremlins"] = data["causes"].pop(old)
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(KnowledgeError, match="learned/words.json: classes: no cause is named 'gremlins'"):
        load(kb_copy)


def test_coefficients_that_do_not_match_the_vocabulary_are_refused(kb_copy):
    path = _write(kb_copy)
    data = json.loads(path.read_text(encoding="utf-8"))
    data["idf"] = data["idf"][:-1]
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(KnowledgeError, match="learned/words.json: .*one idf each"):
        load(kb_copy)


def test_a_file_that_is_not_json_is_refused(kb_copy):
    (kb_copy / "learned").mkdir(exist_ok=True)
    (kb_copy / PATH).write_text("{nope", encoding="utf-8")
    with pytest.raises(KnowledgeError, match="learned/words.json: not valid JSON"):
        load(kb_copy)


def test_a_conversation_with_the_words_model_loads_no_numpy_nor_scikit_learn(kb_copy, tmp_path):
    """The service applies the model in plain Python: the scientific stack stays in the offline command."""
    import subprocess
    import sys
    import textwrap

    _write(kb_copy, weight=2.0)  # enough to be shown
    script = textwrap.dedent(f"""
        import sys
        from assistant import create_app
        app = create_app({{"DATABASE_URL": "sqlite:///{tmp_path / 'words.sqlite'}", "KNOWLEDGE_DIR": {str(kb_copy)!r}}})
        client = app.test_client()
        started = client.post("/api/v1/conversations", json={{"symptom": "Loss is NaN after epoch 3, lr 0.5"}})
        assert started.status_code == 201, started.get_data(as_text=True)
        causes = started.json["reply"]["causes"]
        assert any("words like yours" in line for cause in causes for line in cause["evidence"] + cause["against"])
        turn = client.post(f"/api/v1/conversations/{{started.json['id']}}/turns", json={{"text": "I don't know"}})
        assert turn.status_code == 200, turn.get_data(as_text=True)
        loaded = sorted({{name.split(".")[0] for name in sys.modules}} & {{"pandas", "numpy", "sklearn", "tensorflow"}})
        assert not loaded, f"the web tier imported {{loaded}}"
    """)
    subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).resolve().parents[2], check=True, timeout=120)
