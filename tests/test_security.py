"""Access: hashed tokens, owners who cannot reach each other's conversations through any endpoint,
rate limits per caller, size limits, and no changes sent from another site's page."""
from __future__ import annotations

import io
import json
import uuid

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from assistant import conversations, create_app, db
from assistant.repro import store
from assistant.security import new_token_command, token_hash
from tests.helpers import assert_error, park_runs

API = "/api/v1"
ALICE, BOB = {"Authorization": "Bearer alice-token"}, {"Authorization": "Bearer bob-token"}
START = {"symptom": "loss is nan after epoch 3", "metrics": {"loss": [2.3, 4.7, float("nan")]},
         "training": {"optimizer": "adam", "learning_rate": 0.5}}


# --- tokens ------------------------------------------------------------------------------------

def test_a_token_configured_by_its_hash_owns_what_it_owned_in_plain(make_app):
    plain = make_app(API_TOKENS=["alice-token"]).test_client()
    conversation = plain.post(f"{API}/conversations", json=START, headers=ALICE).get_json()["id"]
    hashed = make_app(API_TOKENS=[f"sha256:{token_hash('alice-token').upper()}"]).test_client()
    assert hashed.get(f"{API}/conversations/{conversation}", headers=ALICE).status_code == 200
    assert_error(hashed.get(f"{API}/conversations", headers={"Authorization": f"Bearer {token_hash('alice-token')}"}),
                 401, "unauthorized")  # the hash itself is no token


def test_tokens_from_the_environment_may_mix_plain_and_hashed(monkeypatch, database_url):
    monkeypatch.setenv("ASSISTANT_API_TOKENS", f"bob-token, sha256:{token_hash('alice-token')}")
    client = create_app({"DATABASE_URL": database_url}).test_client()
    assert client.get(f"{API}/conversations", headers=ALICE).status_code == 200
    assert client.get(f"{API}/conversations", headers=BOB).status_code == 200
    assert_error(client.get(f"{API}/conversations", headers={"Authorization": "Bearer carol"}), 401, "unauthorized")


def test_a_malformed_hash_stops_the_service_from_starting(database_url):
    with pytest.raises(ValueError, match="entry 2 starts with sha256:"):
        create_app({"DATABASE_URL": database_url, "API_TOKENS": ["alice-token", "sha256:abc"]})


def test_new_token_gives_a_token_and_the_entry_that_stores_only_its_hash():
    lines = CliRunner().invoke(new_token_command).output.splitlines()
    token, entry = (line.split()[-1] for line in lines)
    assert len(token) >= 40 and entry == f"sha256:{token_hash(token)}" and token not in entry


# --- owners ------------------------------------------------------------------------------------

def _victim(app, kind: str) -> dict:
    """A conversation with a queued run, and (for a token) a live session, of one owner: their ids and the owner."""
    client = app.test_client()
    if kind == "token":
        owner = token_hash("alice-token")
        conversation = client.post(f"{API}/conversations", json=START, headers=ALICE).get_json()["id"]
        live = client.post(f"{API}/live/nightly", json={"epoch": 0, "loss": 1.0}, headers=ALICE).get_json()["id"]
    else:  # a Slack thread's conversation belongs to its workspace
        owner, live = "slack:T0ACME", None
        with app.app_context():
            conversation, _ = conversations.start(owner, {"symptom": "my loss is flat"})
    with app.app_context():
        run = store.create(conversation, owner, "local", [], [])["id"]
    return {"owner": owner, "conversation": conversation, "run": run, "session": "nightly", "live": live}


def _state(app, victim: dict) -> dict:
    """Everything of the victim's that another owner might change."""
    owner, conversation = victim["owner"], victim["conversation"]
    with app.app_context(), db.get_engine().connect() as connection:
        counts = {table.name: connection.execute(select(func.count()).select_from(table).where(
            table.c.conversation_id == conversation)).scalar_one()
            for table in (db.turns, db.feedback, db.live_epochs, db.reproductions)}
        return {"transcript": conversations.transcript(conversation, owner), "counts": counts,
                "run": store.find(victim["run"], conversation, owner)["status"],
                "live": victim["live"] and conversations.live_reply(victim["live"], owner)}


#: Every API endpoint, as another owner would call it on the victim's ids, and the status it must get:
#: 404 ("no such conversation"), or an answer about the caller's own things that names none of the victim's.
CROSS_OWNER = {
    "api.get_conversation": [("get", "{c}", None, 404)],
    "api.add_turn": [("post", "{c}/turns", {"text": "it was 0.1", "facts": {"learning_rate": 0.1}}, 404)],
    "api.add_feedback": [("post", "{c}/feedback", {"cause": "overfitting", "verdict": "fixed"}, 404)],
    "api.get_cause": [("get", "{c}/causes/overfitting", None, 404)],
    "api.add_epoch": [("post", "{c}/epochs", {"epoch": 1, "loss": 0.4}, 404)],
    "api.start_reproduction": [("post", "{c}/reproductions", {}, 404)],
    "api.list_reproductions": [("get", "{c}/reproductions", None, 200)],
    "api.get_reproduction": [("get", "{r}", None, 404)],
    "api.cancel_reproduction": [("delete", "{r}", None, 404), ("post", "{r}/cancel", None, 404)],
    "api.reproduction_plot": [("get", "{r}/plot.png", None, 404)],
    "api.reproduction_events": [("get", "{r}/events", None, 404)],
    "api.list_conversations": [("get", "/conversations", None, 200)],
    "api.get_live_session": [("get", "/live/{s}", None, 404)],
    "api.add_live_epoch": [("post", "/live/{s}", {"epoch": 1, "loss": 9.0}, 200)],  # the caller's own session
    "api.start_conversation": [("post", "/conversations", {"symptom": "loss is flat"}, 201)],
}


def test_every_api_endpoint_is_in_the_cross_owner_table(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules() if rule.endpoint.startswith("api.")}
    assert endpoints - {"api.openapi"} == set(CROSS_OWNER)


@pytest.mark.parametrize("victim_kind", ["token", "slack"])
def test_another_owner_can_neither_read_nor_change_a_conversation(make_app, victim_kind):
    app = park_runs(make_app(API_TOKENS=["alice-token", "bob-token"]))
    victim = _victim(app, victim_kind)
    before = _state(app, victim)
    client = app.test_client()
    conversation_path = f"/conversations/{victim['conversation']}"
    for endpoint, calls in CROSS_OWNER.items():
        for method, template, body, expected in calls:
            path = API + template.format(c=conversation_path, r=f"{conversation_path}/reproductions/{victim['run']}",
                                         s=victim["session"])
            response = getattr(client, method)(path, json=body, headers=BOB)
            where = f"{endpoint}: {method.upper()} {path}"
            if expected == 404:
                assert_error(response, 404, "not_found")
            else:
                assert response.status_code == expected, where
                text = response.get_data(as_text=True)
                assert victim["conversation"] not in text and victim["run"] not in text, where
    assert _state(app, victim) == before


# --- rate limits -------------------------------------------------------------------------------

def test_each_token_has_its_own_allowance(make_app):
    client = make_app(API_TOKENS=["alice-token", "bob-token"], RATELIMIT_DEFAULT="3 per minute").test_client()
    for _ in range(3):
        assert client.get(f"{API}/conversations", headers=ALICE).status_code == 200
    refused = client.get(f"{API}/conversations", headers=ALICE)
    assert "3 per 1 minute" in assert_error(refused, 429, "too_many_requests")
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert client.get(f"{API}/conversations", headers=BOB).status_code == 200
    assert client.get("/healthz").status_code == 200 and client.get("/").status_code == 200  # only the API counts


def test_a_tokens_allowance_counts_its_requests_to_every_endpoint_together(make_app):
    """One count per token over the whole API, as the README says (Flask-Limiter's default counts each endpoint)."""
    client = make_app(API_TOKENS=["alice-token", "bob-token"], RATELIMIT_DEFAULT="3 per minute").test_client()
    conversation = client.post(f"{API}/conversations", json=START, headers=ALICE).get_json()["id"]
    assert client.get(f"{API}/conversations/{conversation}", headers=ALICE).status_code == 200
    assert client.get(f"{API}/openapi.json", headers=ALICE).status_code == 200
    assert_error(client.get(f"{API}/conversations", headers=ALICE), 429, "too_many_requests")  # a fourth endpoint
    assert client.get(f"{API}/conversations", headers=BOB).status_code == 200


def test_only_a_refusal_says_when_to_retry(make_app):
    """Flask-Limiter would put Retry-After on every API answer, 200s too; only refusals keep one, each its own."""
    app = park_runs(make_app(API_TOKENS=["alice-token"], RATELIMIT_DEFAULT="4 per minute", RUNS_PER_CALLER=0))
    client = app.test_client()
    answered = client.get(f"{API}/conversations", headers=ALICE)
    assert answered.status_code == 200 and "Retry-After" not in answered.headers
    assert answered.headers["X-RateLimit-Remaining"] == "3"  # the limit's own headers stay
    missing = client.get(f"{API}/conversations/conv-missing", headers=ALICE)
    assert missing.status_code == 404 and "Retry-After" not in missing.headers
    conversation = client.post(f"{API}/conversations", json=START, headers=ALICE).get_json()["id"]
    capped = client.post(f"{API}/conversations/{conversation}/reproductions", headers=ALICE)
    assert capped.status_code == 429 and capped.headers["Retry-After"] == "30"  # a cap's own figure, not the window's
    limited = client.get(f"{API}/conversations", headers=ALICE)
    assert limited.status_code == 429 and 0 < int(limited.headers["Retry-After"]) <= 60


def test_without_tokens_each_address_has_its_own_allowance(make_app):
    client = make_app(RATELIMIT_DEFAULT="2 per minute").test_client()
    here, there = {"REMOTE_ADDR": "10.1.1.1"}, {"REMOTE_ADDR": "10.2.2.2"}
    assert [client.get(f"{API}/conversations", environ_base=here).status_code for _ in range(3)] == [200, 200, 429]
    assert client.get(f"{API}/conversations", environ_base=there).status_code == 200


def test_behind_a_trusted_proxy_the_forwarded_address_counts(make_app):
    client = make_app(RATELIMIT_DEFAULT="1 per minute", TRUSTED_PROXIES=1).test_client()
    first, second = ({"X-Forwarded-For": address} for address in ("192.0.2.1", "192.0.2.2"))
    assert client.get(f"{API}/conversations", headers=first).status_code == 200
    assert client.get(f"{API}/conversations", headers=second).status_code == 200
    assert client.get(f"{API}/conversations", headers=first).status_code == 429


def test_machines_sharing_a_redis_share_the_allowance(make_app, redis_url):
    settings = {"API_TOKENS": ["alice-token"], "RATELIMIT_DEFAULT": "3 per minute", "RATELIMIT_STORAGE_URI": redis_url,
                "RATELIMIT_KEY_PREFIX": uuid.uuid4().hex}
    one, two = make_app(**settings).test_client(), make_app(**settings).test_client()
    answered = [client.get(f"{API}/conversations", headers=ALICE).status_code for client in (one, two, one, two)]
    assert answered == [200, 200, 200, 429]


def test_an_unreachable_redis_leaves_each_process_counting_on_its_own(make_app):
    client = make_app(RATELIMIT_DEFAULT="2 per minute", RATELIMIT_STORAGE_URI="redis://127.0.0.1:1/0").test_client()
    assert [client.get(f"{API}/conversations").status_code for _ in range(3)] == [200, 200, 429]


# --- sizes -------------------------------------------------------------------------------------

def test_a_body_over_the_limit_is_refused_unread(make_app, row_counts):
    client = make_app(MAX_CONTENT_LENGTH=1000, MAX_FORM_MEMORY_SIZE=1000).test_client()
    big = {"symptom": "loss is flat", "metrics": "epoch,loss\n" + "0,0.5\n" * 300}
    assert "at most 1000 bytes" in assert_error(client.post(f"{API}/conversations", json=big), 413,
                                               "request_entity_too_large")
    upload = {"symptom": "loss is flat", "metrics": (io.BytesIO(b"epoch,loss\n" * 200), "log.csv")}
    assert_error(client.post(f"{API}/conversations", data=upload), 413, "request_entity_too_large")
    assert not any(row_counts().values())


@pytest.mark.parametrize(("path", "kwargs", "says"), [
    ("/conversations", {"data": "[" * 100_000, "content_type": "application/json"}, "the body is nested more"),
    ("/conversations", {"json": {"symptom": "x", "dataset": json.loads('{"a":' * 40 + "1" + "}" * 40)}},
     "the body is nested more than 32 levels deep"),
    ("/conversations", {"data": {"symptom": "x", "training": '{"a":' * 5000 + "1" + "}" * 5000}},
     "training: nested more than 32 levels deep"),
    ("/live/deep", {"data": {"data": "[" * 5000 + "]" * 5000}}, "data: nested more than 32 levels deep"),
])
def test_absurdly_nested_json_is_refused_in_words(client, row_counts, path, kwargs, says):
    message = assert_error(client.post(API + path, **kwargs), 400, "bad_json" if "body" in says else "bad_input")
    assert message.startswith(says)
    assert not any(row_counts().values())


# --- requests from other sites -------------------------------------------------------------------

UNSAFE = [(rule.rule, method) for rule in create_app({"DATABASE_URL": "sqlite://", "REPRO_SWEEP": False}).url_map.iter_rules()
          for method in sorted(rule.methods & {"POST", "PUT", "PATCH", "DELETE"})]


@pytest.mark.parametrize(("rule", "method"), UNSAFE)
@pytest.mark.parametrize("headers", [
    {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
    {"Sec-Fetch-Site": "same-site", "Origin": "https://other.localhost"},
    {"Origin": "https://evil.example"},  # an older browser, without fetch metadata
    {"Origin": "null"},  # a sandboxed frame or a file
], ids=["cross-site", "same-site", "origin-only", "null-origin"])
def test_a_change_sent_from_another_sites_page_is_refused(make_app, row_counts, rule, method, headers):
    client = make_app(API_TOKENS=["alice-token"]).test_client()
    path = rule.replace("<conversation_id>", f"conv-{'0' * 32}").replace("<run_id>", f"run-{'0' * 32}") \
        .replace("<session>", "nightly")
    response = client.open(path, method=method, json={"symptom": "x"}, headers={**ALICE, **headers})
    assert_error(response, 403, "cross_site_request")
    assert not any(row_counts().values())


@pytest.mark.parametrize("headers", [
    {},  # an API client, the notebook client, Keras's RemoteMonitor, Slack
    {"Sec-Fetch-Site": "same-origin", "Origin": "http://localhost"},  # the chat page
    {"Origin": "http://localhost"},  # the chat page in an older browser
    {"Sec-Fetch-Site": "none"},  # typed by the person
], ids=["api-client", "own-page", "own-page-origin-only", "user-initiated"])
def test_the_own_page_and_api_clients_are_not_affected(client, headers):
    assert client.post(f"{API}/conversations", json=START, headers=headers).status_code == 201


def test_every_response_is_hardened(client):
    for response in (client.get("/"), client.get(f"{API}/conversations"), client.get("/nowhere")):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"
