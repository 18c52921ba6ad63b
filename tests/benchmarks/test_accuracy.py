"""The accuracy benchmark's floors: CI fails when a case set drops below them."""
from __future__ import annotations

import importlib.util
import sys

from tests.helpers import ROOT

_spec = importlib.util.spec_from_file_location("accuracy", ROOT / "benchmarks" / "accuracy.py")
accuracy = sys.modules.setdefault("accuracy", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(accuracy)


def test_a_set_below_its_floor_or_above_its_ceiling_is_reported():
    floors = {"corpus-test": {"top1": 0.4, "ece": 0.2}, "synthetic": {"top1": 0.95}}
    results = {"corpus-test": {"top1": 0.38, "ece": 0.25}, "synthetic": {"top1": 0.97}}
    assert accuracy.check_floors(results, floors) == [
        "corpus-test: top1 0.380 is below its floor 0.4",
        "corpus-test: ece 0.250 is above its ceiling 0.2",
    ]


def test_a_set_that_was_not_measured_is_not_held_to_its_floor():
    assert accuracy.check_floors({}, {"realworld-public": {"top1": 0.7}}) == []


def test_the_calibration_error_of_a_perfectly_calibrated_set_is_zero():
    right = frozenset({"a"})
    records = [accuracy.Record(str(i), right, "a", True, [["a" if i % 2 else "b"]], [0.5]) for i in range(10)]
    assert accuracy.calibration_error(records, 0) == 0.0
