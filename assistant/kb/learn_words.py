"""``assistant kb learn-words``: fit the learned text model on labelled real threads, offline, with scikit-learn.

What people write about a model that does not learn says something about the cause beyond the
phrases of ``phrases.yaml``. This fits a TF-IDF vectorizer and a logistic regression over the
symptom text of labelled cases (the corpus format: ``request.symptom``, ``expected.primary``) and
decides how much it may count next to the knowledge base's own evidence:

1. the vectorizer's n-grams and ``min_df`` and the classifier's ``C`` are chosen by the
   cross-validated log-loss of the text model alone, on the training cases only;
2. λ is chosen by how often the right cause comes first (then in the top three) when each
   cause's first-reply score from the knowledge base (:mod:`assistant.reasoning.engine`) gets
   ``λ·ln(K·p(cause))``, with ``p`` predicted out of fold;
3. the whole procedure (1 and 2) is itself run inside an outer cross-validation, so that the
   figures printed, with and without the words, are measured on cases the choices never saw.

With ``--write`` the model goes to ``learned/words.json`` as plain data, which
:mod:`assistant.kb.words` applies without scikit-learn; a fit that does not beat the knowledge
base alone out of fold is not written. Cases from a test split are refused: tune on dev only.

scikit-learn and NumPy are imported here only; nothing the web tier loads imports this module.
"""
from __future__ import annotations

import datetime
import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import sklearn
from joblib import Parallel, delayed
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold

from ..evidence import EvidenceError, gather
from ..evidence.facts import Facts
from ..reasoning import engine
from . import load
from .model import KnowledgeBase
from .words import PATH, Words

#: The repository (the knowledge base's parent folder).
ROOT = Path(__file__).resolve().parents[2]
#: The labelled cases read when none are named: the corpus dev split, and the public real-world cases.
DEFAULT_CASES = (ROOT / "benchmarks" / "cases" / "realworld" / "dev",
                 next((p / "cases-realworld" for p in (ROOT / "shared", ROOT.parent / "shared")
                       if (p / "cases-realworld").is_dir()), ROOT.parent / "shared" / "cases-realworld"))
#: A folder of this name holds held-out cases: never learned from.
TEST_SPLIT = "test"

#: What cross-validation chooses among.
GRID_C = (1.0, 3.0, 10.0, 30.0)
GRID_NGRAMS = ((1, 1), (1, 2))
GRID_MIN_DF = (1, 2)
LAMBDAS = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0)
FOLDS = 5
SEED = 0
#: Processes that fit the folds side by side (joblib's convention: -1 is one per core).
JOBS = -1
#: The vectorizer's settings that no search changes (the web tier's scorer reproduces them).
TOKEN_PATTERN = r"(?u)\b\w\w+\b"
#: The scorer must give scikit-learn's probabilities to within this.
AGREEMENT = 1e-9
#: Terms listed per cause in the file's ``top_terms``, for a reviewer.
TOP_TERMS = 12


class Refused(Exception):
    """The cases cannot be learned from, or the fit is not good enough to write."""


@dataclass(frozen=True)
class Case:
    id: str
    text: str
    label: str
    right: frozenset[str]
    #: Each cause's first-reply score from the knowledge base alone.
    scores: dict[str, float]


@dataclass(frozen=True)
class Setting:
    C: float
    ngram_range: tuple[int, int]
    min_df: int

    def vectorizer(self) -> TfidfVectorizer:
        return TfidfVectorizer(lowercase=True, token_pattern=TOKEN_PATTERN, ngram_range=self.ngram_range,
                               min_df=self.min_df, sublinear_tf=True, norm="l2", smooth_idf=True)

    def classifier(self) -> LogisticRegression:
        return LogisticRegression(C=self.C, max_iter=5000)

    def __str__(self) -> str:
        return f"C={self.C:g}, n-grams {self.ngram_range[0]}-{self.ngram_range[1]}, min_df {self.min_df}"


@dataclass
class Figures:
    top1: float
    top3: float

    def __str__(self) -> str:
        return f"top-1 {self.top1:.3f}  top-3 {self.top3:.3f}"

    def better_than(self, other: "Figures") -> bool:
        """More often right first, and no less often in the top three.

        A better top three alone is not enough: played through the questions, such a fit was
        measured to put the right cause first less often at the final reply.
        """
        return self.top1 > other.top1 and self.top3 >= other.top3


@dataclass
class Outcome:
    """What a run found: the figures out of fold, and the model fitted on every case."""

    cases: list[Case]
    setting: Setting
    weight: float
    without: Figures
    with_words: Figures
    #: Out-of-fold figures of each λ at the chosen setting (chosen on the same folds: optimistic).
    by_weight: dict[float, Figures]
    log_loss: float
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def better(self) -> bool:
        """The words improve the ranking out of fold, and the fit on every case gives them some weight."""
        return self.weight > 0 and self.with_words.better_than(self.without)


# --- the cases ----------------------------------------------------------------------------------

def in_test_split(path: Path) -> bool:
    """Whether a folder is, or lies inside, a test split (a folder named ``test``)."""
    return TEST_SPLIT in (part.lower() for part in path.resolve().parts)


def read_cases(directories: Iterable[Path], *, held_out: bool = False) -> list[tuple[dict[str, Any], Path]]:
    """Every labelled case (``request.symptom``, ``expected.primary``) of the folders, each once.

    A test split is refused unless the cases are ``held_out``: read to be scored, never learned from.
    """
    found, ids, texts = [], set(), set()
    for directory in directories:
        directory = Path(directory)
        if in_test_split(directory) and not held_out:
            raise Refused(f"{directory} is a test split: held-out cases are never learned from")
        if not directory.is_dir():
            raise Refused(f"{directory} is not a folder of cases")
        for path in sorted(directory.glob("*.json")):
            try:
                case = json.loads(path.read_text(encoding="utf-8"))
            except ValueError as exc:
                raise Refused(f"{path}: not valid JSON: {exc}") from None
            if not isinstance(case, dict) or "request" not in case or "expected" not in case:
                continue
            symptom, ident = (case["request"] or {}).get("symptom"), case.get("id", path.stem)
            if not symptom or ident in ids or symptom in texts:  # one thread filed twice is learned once
                continue
            ids.add(ident)
            texts.add(symptom)
            found.append((case, path))
    return found


def first_reply_facts(kb: KnowledgeBase, request: dict[str, Any]) -> Facts:
    """What the service knows at the first reply to a case's request."""
    inputs = {key: request[key] for key in ("symptom", "metrics", "dataset", "training") if request.get(key)}
    try:
        found = gather(kb, **inputs).facts
    except EvidenceError:  # the service would refuse the request: score what the words alone say
        found = gather(kb, symptom=inputs["symptom"]).facts
    facts = Facts()
    facts.update(found)
    return facts


def first_reply_scores(kb: KnowledgeBase, request: dict[str, Any]) -> dict[str, float]:
    """Each cause's score at the first reply, from the knowledge base's own evidence only."""
    return engine._Scoring.of(kb, engine._all_values(kb, first_reply_facts(kb, request))).scores(kb)


def expected_causes(kb: KnowledgeBase, case: dict[str, Any], path: Path) -> tuple[str, frozenset[str]]:
    """A case's right cause, and it with every acceptable one; refused when the knowledge base lacks the cause."""
    expected = case["expected"]
    if expected.get("primary") not in kb.causes:
        raise Refused(f"{path}: expected.primary {expected.get('primary')!r} is no cause of the knowledge base")
    return expected["primary"], frozenset({expected["primary"], *expected.get("acceptable", ())})


def labelled(kb: KnowledgeBase, raw: Sequence[tuple[dict[str, Any], Path]]) -> list[Case]:
    alone = replace(kb, words=None)  # the knowledge base's own evidence, without any words model it has
    return [Case(case.get("id", path.stem), case["request"]["symptom"], *expected_causes(kb, case, path),
                 first_reply_scores(alone, case["request"])) for case, path in raw]


# --- fitting and measuring ----------------------------------------------------------------------

def _fit(setting: Setting, texts: Sequence[str], labels: Sequence[str]) -> tuple[TfidfVectorizer, LogisticRegression]:
    vectorizer = setting.vectorizer()
    matrix = vectorizer.fit_transform(texts)
    return vectorizer, setting.classifier().fit(matrix, labels)


def _predict(model: tuple[TfidfVectorizer, LogisticRegression], texts: Sequence[str]) -> list[dict[str, float]]:
    vectorizer, classifier = model
    return [dict(zip(classifier.classes_, map(float, row)))
            for row in classifier.predict_proba(vectorizer.transform(texts))]


def _folds(n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    return list(KFold(min(FOLDS, n), shuffle=True, random_state=SEED).split(np.arange(n)))


def _fold(setting: Setting, texts: Sequence[str], labels: Sequence[str], train: np.ndarray,
          held: np.ndarray) -> list[dict[str, float]]:
    model = _fit(setting, [texts[i] for i in train], [labels[i] for i in train])
    return _predict(model, [texts[i] for i in held])


def out_of_fold(settings: Sequence[Setting], cases: Sequence[Case]) -> list[list[dict[str, float]]]:
    """For each setting, each case's probabilities from a model fitted on the other folds."""
    texts, labels, folds = [c.text for c in cases], [c.label for c in cases], _folds(len(cases))
    done = Parallel(n_jobs=JOBS)(delayed(_fold)(setting, texts, labels, train, held)
                                 for setting in settings for train, held in folds)
    out = []
    for s in range(len(settings)):
        predicted: list[dict[str, float]] = [{} for _ in cases]
        for (_, held), probs in zip(folds, done[s * len(folds):(s + 1) * len(folds)]):
            for i, p in zip(held, probs):
                predicted[i] = p
        out.append(predicted)
    return out


def log_loss(cases: Sequence[Case], predicted: Sequence[dict[str, float]]) -> float:
    """Mean negative log-probability of the right cause, over cases whose cause the fold's model knew."""
    known = [-math.log(max(p[c.label], 1e-15)) for c, p in zip(cases, predicted) if c.label in p]
    return sum(known) / len(known) if known else math.inf


def combined(case: Case, probs: dict[str, float], weight: float) -> list[str]:
    """The causes ranked as the engine ranks them with the words: score + λ·ln(K·p) for the causes the model knows."""
    k = len(probs)
    scores = {cause: s + (weight * math.log(k * max(probs[cause], 1e-12)) if cause in probs and weight else 0.0)
              for cause, s in case.scores.items()}
    return sorted(scores, key=lambda cause: (-scores[cause], cause))


def figures(cases: Sequence[Case], predicted: Sequence[dict[str, float]], weight: float) -> Figures:
    ranked = [combined(c, p, weight) for c, p in zip(cases, predicted)]
    return Figures(sum(r[0] in c.right for c, r in zip(cases, ranked)) / len(cases),
                   sum(any(x in c.right for x in r[:3]) for c, r in zip(cases, ranked)) / len(cases))


def grid() -> list[Setting]:
    return [Setting(c, n, m) for n in GRID_NGRAMS for m in GRID_MIN_DF for c in GRID_C]


def choose(cases: Sequence[Case]) -> tuple[Setting, float, float, dict[float, Figures]]:
    """The setting of least cross-validated log-loss, then the λ that ranks best with it (0: the words do not help)."""
    settings = grid()
    tried = dict(zip(settings, out_of_fold(settings, cases)))
    losses = {setting: log_loss(cases, predicted) for setting, predicted in tried.items()}
    setting = min(tried, key=lambda s: (losses[s], -s.C))
    by_weight = {weight: figures(cases, tried[setting], weight) for weight in (0.0, *LAMBDAS)}
    weight = max(by_weight, key=lambda w: (by_weight[w].top1, by_weight[w].top3, -w))
    return setting, weight, losses[setting], by_weight


def nested(cases: Sequence[Case], say: Callable[[str], None]) -> list[dict[str, float] | tuple[float, dict]]:
    """Each case's probabilities and λ, from the whole procedure run on the other folds only."""
    out: list[Any] = [None] * len(cases)
    for n, (train, held) in enumerate(_folds(len(cases)), 1):
        inner = [cases[i] for i in train]
        setting, weight, _, _ = choose(inner)
        model = _fit(setting, [c.text for c in inner], [c.label for c in inner])
        for i, probs in zip(held, _predict(model, [cases[i].text for i in held])):
            out[i] = (weight, probs)
        say(f"  outer fold {n}: {setting}, λ {weight:g}")
    return out


def learn(kb: KnowledgeBase, directories: Sequence[Path], say: Callable[[str], None] = print) -> Outcome:
    """Measure the words model out of fold on the cases of ``directories``, then fit it on them all."""
    raw = read_cases(directories)
    cases = labelled(kb, raw)
    if len(cases) < 2 * FOLDS or len({c.label for c in cases}) < 2:
        raise Refused(f"{len(cases)} labelled case(s) of {len({c.label for c in cases})} cause(s): "
                      "too few to learn from")
    say(f"{len(cases)} labelled cases of {len({c.label for c in cases})} causes from "
        + ", ".join(map(str, directories)))
    say("nested cross-validation (each outer fold chooses its setting and λ on the other folds):")
    outer = nested(cases, say)
    without = figures(cases, [{} for _ in cases], 0.0)
    ranked = [combined(c, probs, weight) for c, (weight, probs) in zip(cases, outer)]
    with_words = Figures(sum(r[0] in c.right for c, r in zip(cases, ranked)) / len(cases),
                         sum(any(x in c.right for x in r[:3]) for c, r in zip(cases, ranked)) / len(cases))
    setting, weight, loss, by_weight = choose(cases)
    outcome = Outcome(cases, setting, weight, without, with_words, by_weight, loss)
    if outcome.better:
        outcome.data = export(kb, cases, setting, weight, outcome, directories)
    return outcome


# --- the file -----------------------------------------------------------------------------------

def _relative(path: Path) -> str:
    path = Path(path).resolve()
    for base, prefix in ((ROOT, ""), (ROOT.parent, "../")):
        if path.is_relative_to(base):
            return prefix + path.relative_to(base).as_posix()
    return path.as_posix()


def model_data(vectorizer: TfidfVectorizer, classifier: LogisticRegression) -> dict[str, Any]:
    """A fitted vectorizer and classifier as the data :class:`~.words.Words` reads (the fields the file starts from)."""
    vocabulary = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.get)
    classes = [str(c) for c in classifier.classes_]
    coef, intercept = classifier.coef_, classifier.intercept_
    if len(classes) == 2:  # one logit z for the second class: the softmax of (-z/2, z/2) is the same sigmoid
        coef, intercept = np.vstack([-coef[0] / 2, coef[0] / 2]), np.array([-intercept[0] / 2, intercept[0] / 2])
    return {
        "tokenizer": {"lowercase": bool(vectorizer.lowercase), "token_pattern": vectorizer.token_pattern,
                      "ngram_range": list(vectorizer.ngram_range), "sublinear_tf": bool(vectorizer.sublinear_tf),
                      "norm": vectorizer.norm},
        "classes": classes,
        "vocabulary": vocabulary,
        "idf": [float(v) for v in vectorizer.idf_],
        "causes": {cause: {"intercept": float(intercept[k]), "coefficients": [float(v) for v in coef[k]]}
                   for k, cause in enumerate(classes)},
        "top_terms": {cause: [vocabulary[j] for j in np.argsort(-coef[k])[:TOP_TERMS]]
                      for k, cause in enumerate(classes)},
    }


def _rounded(found: Figures) -> dict[str, float]:
    return {"top1": round(found.top1, 4), "top3": round(found.top3, 4)}


def export(kb: KnowledgeBase, cases: Sequence[Case], setting: Setting, weight: float, outcome: Outcome,
           directories: Sequence[Path]) -> dict[str, Any]:
    """The model fitted on every case, as the content of ``learned/words.json``; checked against scikit-learn."""
    texts, labels = [c.text for c in cases], [c.label for c in cases]
    vectorizer, classifier = _fit(setting, texts, labels)
    per_cause: dict[str, int] = {}
    for label in labels:
        per_cause[label] = per_cause.get(label, 0) + 1
    data = {
        "about": ("A TF-IDF + logistic regression over the symptom text of labelled real threads, written by "
                  "`assistant kb learn-words --write`; do not edit by hand. The reasoning adds "
                  "weight * ln(K * p(cause)) to each cause's score (K: the number of classes)."),
        "trained": {"cases": len(cases), "date": datetime.date.today().isoformat(),
                    "from": [_relative(d) for d in directories], "per_cause": dict(sorted(per_cause.items())),
                    "scikit_learn": sklearn.__version__},
        "classifier": {"C": setting.C, "min_df": setting.min_df},
        "weight": weight,
        "evaluation": {
            "folds": FOLDS,
            "nested_out_of_fold": {"without_words": _rounded(outcome.without),
                                   "with_words": _rounded(outcome.with_words)},
            "chosen_setting_log_loss": round(outcome.log_loss, 4),
            "by_weight_out_of_fold": {f"{w:g}": _rounded(f) for w, f in outcome.by_weight.items()},
        },
        **model_data(vectorizer, classifier),
    }
    words = Words.from_data(data)
    expected = classifier.predict_proba(vectorizer.transform(texts))
    worst = max(abs(words.probabilities(text)[cause] - float(p))
                for text, row in zip(texts, expected) for cause, p in zip(classifier.classes_, row))
    if worst > AGREEMENT:
        raise Refused(f"the plain-Python scorer differs from scikit-learn by {worst:.2e}: not written")
    return data


def dumps(data: dict[str, Any]) -> str:
    """The file's text: one key per line at the top, one line per cause, every number as Python writes it."""
    lines = []
    for key, value in data.items():
        if key == "causes":
            inner = ",\n".join(f"  {json.dumps(c)}: {json.dumps(v)}" for c, v in value.items())
            lines.append(f' "causes": {{\n{inner}\n }}')
        elif key in ("trained", "evaluation", "top_terms"):
            lines.append(f" {json.dumps(key)}: " + json.dumps(value, indent=1).replace("\n", "\n "))
        else:
            lines.append(f" {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def run(directories: Sequence[str | Path], knowledge: str | Path, write: bool,
        say: Callable[[str], None] = print) -> Outcome:
    """The command: learn, print the figures, and write the file when asked and when it helps."""
    kb = load(knowledge)
    outcome = learn(kb, [Path(d) for d in directories] or list(DEFAULT_CASES), say)
    say(f"chosen on all {len(outcome.cases)} cases: {outcome.setting} (log-loss {outcome.log_loss:.3f}), "
        f"λ {outcome.weight:g}")
    for weight, found in outcome.by_weight.items():
        say(f"  λ {weight:<4g} {found}   (out of fold, λ chosen on these same folds)")
    say("first reply, out of fold (nested):")
    say(f"  knowledge base alone      {outcome.without}")
    say(f"  with the words (λ·ln K·p) {outcome.with_words}")
    target = Path(knowledge) / PATH
    if not outcome.better:
        message = "the words do not put the right cause first more often out of fold (at no cost in the top three)"
        if write:
            raise Refused(f"{message}: {target} not written")
        say(f"{message}: --write would refuse")
        return outcome
    if write:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(dumps(outcome.data), encoding="utf-8")
        say(f"wrote {target}: {len(outcome.data['vocabulary'])} terms, {len(outcome.data['classes'])} causes")
    else:
        say("better than the knowledge base alone: --write stores it")
    return outcome
