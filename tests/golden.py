"""Recorded replies to the public cases: a change meant to move structure only must not change them.

    .venv/bin/python -m tests.golden --write     # record the replies of the code as it stands

Each case is replayed as the scorer (``shared/eval/score.py``) plays it: the first request, then
up to three answers to the first question whose fact the case knows, or one "I don't know".
The recording holds the requests too, so the test needs no ``shared/`` folder; what it compares
is everything a user reads: ranking, confidences, evidence, snippets, questions and text.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from tests.helpers import SHARED

RECORDING = Path(__file__).resolve().parent / "data" / "golden_replies.json"
SETS = ("cases", "cases-realworld")
MAX_TURNS = 3


def replay(client, case: dict[str, Any]) -> list[dict[str, Any]]:
    """The replies to one case's request and to the scorer's follow-up answers."""
    response = client.post("/api/v1/conversations", json=case["request"])
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    replies = [body["reply"]]
    facts = case.get("facts") or {}
    for _ in range(MAX_TURNS):
        questions = replies[-1]["questions"]
        if not questions:
            break
        known = [q["fact"] for q in questions if q["fact"] in facts]
        turn = {"facts": {known[0]: facts[known[0]]}} if known else {"text": "I don't know"}
        response = client.post(f"/api/v1/conversations/{body['id']}/turns", json=turn)
        assert response.status_code == 200, response.get_data(as_text=True)
        replies.append(response.get_json()["reply"])
        if not known:
            break
    return replies


def shared_cases() -> dict[str, dict[str, Any]]:
    """Every public case by ``set/id``: what the recording is made from."""
    assert SHARED is not None, "the shared/ folder is needed to record"
    return {f"{name}/{path.stem}": json.loads(path.read_text(encoding="utf-8"))
            for name in SETS for path in sorted((SHARED / name).glob("*.json"))}


def record() -> None:
    from assistant import create_app

    with tempfile.TemporaryDirectory() as tmp:
        client = create_app({"DATABASE_URL": f"sqlite:///{tmp}/golden.sqlite"}).test_client()
        cases = {key: {"request": case["request"], "facts": case.get("facts", {}), "replies": replay(client, case)}
                 for key, case in shared_cases().items()}
    RECORDING.parent.mkdir(exist_ok=True)
    RECORDING.write_text(json.dumps(cases, indent=0, sort_keys=True) + "\n", encoding="utf-8")
    print(f"recorded {len(cases)} cases in {RECORDING}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", required=True, help="record the replies anew")
    parser.parse_args()
    record()
