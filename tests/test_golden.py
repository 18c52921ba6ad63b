"""Replies to the public cases equal the recorded ones (tests/golden.py): a restructuring changes no answer.

A change to the reasoning that is meant to change replies records them anew
(``python -m tests.golden --write``), so the diff of the recording shows what changed.
"""
from __future__ import annotations

import json

import pytest

from tests.golden import RECORDING, replay

RECORDED = json.loads(RECORDING.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from assistant import create_app

    path = tmp_path_factory.mktemp("golden") / "golden.sqlite"
    return create_app({"DATABASE_URL": f"sqlite:///{path}"}).test_client()


@pytest.mark.parametrize("key", sorted(RECORDED))
def test_replies_are_the_recorded_ones(client, key):
    case = RECORDED[key]
    replies = replay(client, case)
    assert [[c["id"] for c in r["causes"]] for r in replies] == \
        [[c["id"] for c in r["causes"]] for r in case["replies"]], "the ranking changed"
    assert replies == case["replies"]
