"""The learned text model (``knowledge/learned/words.json``), applied in plain Python.

``assistant kb learn-words`` (:mod:`.learn_words`) fits a TF-IDF vectorizer and a logistic
regression with scikit-learn over the symptom text of labelled real threads, and writes both as
data. This module reproduces them exactly: the same lowercasing, token pattern and n-grams, the
sublinear term frequency, the idf, the l2 norm, and the classifier's softmax, so that the web tier
reads the model without scikit-learn or NumPy.

What the model reads in a message is one more piece of evidence, never a fact about the user's
run: the reasoning adds ``weight * ln(K * p(cause))`` to each cause's score (K the number of
causes the model learned), which is 0 for a cause the words say nothing about.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Mapping

#: Where ``gather`` leaves what the model reads in the user's message: cause → probability.
FACT = "words_causes"
#: The file, within the knowledge base.
PATH = "learned/words.json"


@dataclass(frozen=True, eq=False)
class Words:
    """A fitted TF-IDF + logistic regression over the user's words, as plain data."""

    #: The causes the model learned, in the order of each term's coefficients.
    classes: tuple[str, ...]
    #: Term (a word, or words joined by one space) → (idf, its coefficient for each class).
    terms: Mapping[str, tuple[float, tuple[float, ...]]]
    intercepts: tuple[float, ...]
    token_pattern: re.Pattern[str]
    ngram_range: tuple[int, int]
    lowercase: bool
    sublinear_tf: bool
    #: ``l2`` or None.
    norm: str | None
    #: How much the words count against the knowledge base's own evidence (λ, chosen out of fold).
    weight: float
    #: How many labelled threads it learned from.
    cases: int

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> "Words":
        """The model from the content of ``words.json``; ValueError names what does not fit together."""
        tokenizer, classes = data["tokenizer"], tuple(data["classes"])
        vocabulary, idf = data["vocabulary"], data["idf"]
        if len(idf) != len(vocabulary) or len(set(vocabulary)) != len(vocabulary):
            raise ValueError(f"{len(vocabulary)} distinct terms are needed in vocabulary, one idf each "
                             f"(found {len(set(vocabulary))} terms, {len(idf)} idf values)")
        if len(set(classes)) != len(classes) or set(data["causes"]) != set(classes):
            raise ValueError("causes must hold exactly the classes, once each")
        rows = [data["causes"][cause]["coefficients"] for cause in classes]
        if any(len(row) != len(vocabulary) for row in rows):
            raise ValueError(f"every cause needs one coefficient per term ({len(vocabulary)})")
        columns = tuple(zip(*rows)) if rows else ()
        terms = {term: (float(idf[i]), tuple(map(float, columns[i]))) for i, term in enumerate(vocabulary)}
        low, high = tokenizer["ngram_range"]
        if not 1 <= low <= high:
            raise ValueError(f"ngram_range {low}, {high} is not a range of n-gram lengths")
        return cls(classes=classes, terms=terms,
                   intercepts=tuple(float(data["causes"][cause]["intercept"]) for cause in classes),
                   token_pattern=re.compile(tokenizer["token_pattern"]), ngram_range=(int(low), int(high)),
                   lowercase=bool(tokenizer["lowercase"]), sublinear_tf=bool(tokenizer["sublinear_tf"]),
                   norm=tokenizer.get("norm"), weight=float(data["weight"]), cases=int(data["trained"]["cases"]))

    def tokens(self, text: str) -> list[str]:
        """The terms of a text as scikit-learn's word analyzer makes them: words, then n-grams of them."""
        words = self.token_pattern.findall(text.lower() if self.lowercase else text)
        low, high = self.ngram_range
        grams = list(words) if low == 1 else []
        for n in range(max(low, 2), min(high, len(words)) + 1):
            grams += [" ".join(words[i:i + n]) for i in range(len(words) - n + 1)]
        return grams

    def features(self, text: str) -> dict[str, float]:
        """The text's TF-IDF vector over the model's vocabulary (term → value), l2-normalised."""
        counts = Counter(term for term in self.tokens(text) if term in self.terms)
        vector = {term: ((1.0 + math.log(n)) if self.sublinear_tf else float(n)) * self.terms[term][0]
                  for term, n in counts.items()}
        if self.norm == "l2":
            length = math.sqrt(sum(v * v for v in vector.values()))
            if length > 0:
                vector = {term: v / length for term, v in vector.items()}
        return vector

    def probabilities(self, text: str) -> dict[str, float]:
        """Each learned cause's probability for a message, as the classifier's ``predict_proba`` gives it."""
        logits = list(self.intercepts)
        for term, value in self.features(text).items():
            for k, coefficient in enumerate(self.terms[term][1]):
                logits[k] += value * coefficient
        top = max(logits)
        exp = [math.exp(z - top) for z in logits]
        total = sum(exp)
        return {cause: e / total for cause, e in zip(self.classes, exp)}

    def shifts(self, probabilities: Mapping[str, Any]) -> dict[str, float]:
        """What the words add to each learned cause's score: ``weight * ln(K * p)``; nothing for others."""
        k = len(self.classes)
        return {cause: self.weight * math.log(k * max(float(p), 1e-12))
                for cause, p in probabilities.items()
                if cause in self.classes and isinstance(p, (int, float)) and not isinstance(p, bool)}
