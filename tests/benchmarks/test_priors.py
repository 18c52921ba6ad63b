"""Priors from base rates: commoner causes start higher, and writing them keeps the cause file as it was."""
from __future__ import annotations

import importlib.util
import math
import sys
from collections import Counter
from pathlib import Path

from tests.helpers import ROOT

_spec = importlib.util.spec_from_file_location("priors", ROOT / "benchmarks" / "priors.py")
priors = sys.modules.setdefault("priors", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(priors)


def test_a_cause_seen_more_often_starts_higher_and_an_unseen_one_is_still_finite():
    values = priors.priors(Counter({"a": 9, "b": 3}), ["a", "b", "c"], shrink=0.3)
    assert values["a"] > values["b"] > values["c"]
    assert values["a"] == round(0.3 * math.log(10 / 5), 2) and values["c"] == round(0.3 * math.log(1 / 5), 2)


def test_writing_replaces_the_prior_or_adds_it_before_the_snippet(tmp_path: Path):
    with_prior = tmp_path / "a.yaml"
    with_prior.write_text("id: a\n# why\nprior: 0.15\nsnippet: a\nsupports: []\n", encoding="utf-8")
    priors.write(with_prior, -0.25)
    assert with_prior.read_text(encoding="utf-8") == "id: a\n# why\nprior: -0.25\nsnippet: a\nsupports: []\n"
    without = tmp_path / "b.yaml"
    without.write_text("id: b\nsnippet: b\n", encoding="utf-8")
    priors.write(without, 0.1)
    assert without.read_text(encoding="utf-8") == f"id: b\n{priors.COMMENT}prior: 0.1\nsnippet: b\n"


def test_the_counts_come_from_labelled_threads_and_never_from_the_test_split():
    assert all("test" not in directory.parts[-1] for directory in priors.DEFAULT_CASES)
    assert sum(priors.counts().values()) > 100
