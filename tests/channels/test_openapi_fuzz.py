"""Schemathesis against the OpenAPI document, in process: over 2,000 generated requests, valid and
invalid, across every operation. Not one may get a server error or a response the document does
not describe (status, media type, body schema, headers).

Path ids are half random, half those of a real conversation and run, so that requests reach the
handlers behind the 404s. Runs are planned and stored but never trained here.
"""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from assistant.repro import store
from assistant.security import token_hash
from tests.helpers import app_factory, park_runs

REQUESTS = 2_000
#: Generated requests per operation and mode (valid, invalid); an operation with fewer possible requests gets fewer.
EXAMPLES = 75
#: The document's promises; "schema-valid data is accepted" is not among them, since the evidence itself may be refused.
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]
TOKEN = "fuzz-token"
AUTHORIZED = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory):
    """The app behind a token, without a rate limit, and the ids of a conversation and an ended run of its owner."""
    with app_factory(API_TOKENS=[TOKEN], RATELIMIT_ENABLED=False,
                     DATABASE_URL=f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'fuzz.sqlite'}") as make:
        app = park_runs(make())
        started = app.test_client().post("/api/v1/conversations", headers=AUTHORIZED, json={
            "symptom": "loss is nan after epoch 3", "metrics": {"loss": [2.3, 4.7, float("nan")]},
            "training": {"optimizer": "adam", "learning_rate": 0.5}})
        conversation = started.get_json()["id"]
        with app.app_context():
            run = store.create(conversation, token_hash(TOKEN), "local", [], [])["id"]
            store.cancel(run, conversation, token_hash(TOKEN))  # an ended run: its event stream closes at once
        yield app, {"id": conversation, "run": run, "session": "fuzz-session"}


def test_two_thousand_generated_requests_get_only_documented_answers(fuzzed, fuzz_share):
    """All of them in a full run; a tenth in the fast lane (``fuzz_share``, tests/conftest.py)."""
    app, known = fuzzed
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    sent, failures = 0, []
    for operation in (result.ok() for result in schema.get_all_operations()):
        fixed = {name: value for name, value in known.items() if f"{{{name}}}" in operation.path}
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            cases = operation.as_strategy(mode)
            if fixed:
                cases = cases | operation.as_strategy(mode, path_parameters=fixed)

            @settings(max_examples=round(EXAMPLES * fuzz_share), deadline=None, database=None, phases=[Phase.generate],
                      suppress_health_check=list(HealthCheck))
            @given(case=cases, headers=st.sampled_from([AUTHORIZED] * 9 + [{}]))
            def send(case, headers):
                nonlocal sent
                sent += 1
                case.call_and_validate(headers=headers, checks=CHECKS)

            try:
                send()
            except Unsatisfiable:  # no invalid request exists, e.g. for an operation without parameters or body
                continue
            except Exception as failure:  # noqa: BLE001 - every operation is tried, then all failures are shown
                failures.append(f"{operation.label} ({mode.value}): {failure}")
    assert not failures, "\n\n".join(failures)
    assert sent >= REQUESTS * fuzz_share
