import io
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from assistant.channels.api import openapi_document
from tests.helpers import assert_error, assert_fits, shipped_kb

API = "/api/v1/conversations"
MISSING = "conv-" + "0" * 32
HISTORY = {"loss": [0.6931, 0.6931, 0.6931, 0.6931], "accuracy": [0.5, 0.5, 0.5, 0.5],
           "val_loss": [0.6932, 0.6932, 0.6932, 0.6932], "val_accuracy": [0.5, 0.5, 0.5, 0.5]}
TRAINING = {"optimizer": "adam", "learning_rate": 0.001, "batch_size": 32, "epochs": 4, "loss": "binary_crossentropy",
            "output_activation": "sigmoid", "output_units": 1, "hidden_activation": "relu", "n_hidden_layers": 2}
DATASET = {"task": "binary_classification", "n_samples": 1000, "n_features": 20, "n_classes": 2,
           "class_counts": {"0": 500, "1": 500}}
START = {"symptom": "My loss stays at 0.693 and accuracy at 50%", "metrics": HISTORY, "training": TRAINING,
         "dataset": DATASET}
CSV = "epoch,accuracy,loss,val_accuracy,val_loss\n" + "".join(
    f"{e},0.5,0.6931,0.5,0.6932\n" for e in range(4))


def start(client, body=START, **kwargs):
    response = client.post(API, json=body, **kwargs)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def test_start_and_continue(client):
    started = start(client)
    assert_fits("ConversationReply", started)
    turn = client.post(f"{API}/{started['id']}/turns", json={"facts": {"batch_norm": False}, "text": "no batch norm"})
    assert turn.status_code == 200, turn.get_data(as_text=True)
    assert_fits("ConversationReply", turn.get_json())
    assert turn.get_json()["id"] == started["id"]

    shown = client.get(f"{API}/{started['id']}").get_json()
    assert_fits("Conversation", shown)
    assert [(t["seq"], t["role"]) for t in shown["turns"]] == [(1, "user"), (2, "assistant"), (3, "user"), (4, "assistant")]
    user = shown["turns"][0]["body"]
    assert user["symptom"] == START["symptom"] and user["training"] == TRAINING
    assert user["history"]["loss"] == HISTORY["loss"]
    assert shown["turns"][1]["body"] == started["reply"]
    assert shown["turns"][3]["body"] == turn.get_json()["reply"]
    assert shown["facts"]["learning_rate"] == 0.001 and shown["facts"]["batch_norm"] is False


def test_list_conversations(client):
    first, second = start(client)["id"], start(client)["id"]
    listed = client.get(API).get_json()
    assert_fits("ConversationList", listed)
    assert [c["id"] for c in listed["conversations"]] == [second, first]
    assert listed["conversations"][0]["title"] == START["symptom"]


def test_feedback_is_stored(client, row_counts):
    conversation = start(client)["id"]
    response = client.post(f"{API}/{conversation}/feedback", json={"cause": "learning_rate_too_high", "verdict": "fixed",
                                                                   "comment": "lowering it helped"})
    assert response.status_code == 201, response.get_data(as_text=True)
    assert_fits("Feedback", response.get_json())
    assert response.get_json()["verdict"] == "fixed"
    assert row_counts()["feedback"] == 1


def test_multipart_upload(client):
    response = client.post(API, content_type="multipart/form-data", data={
        "symptom": "accuracy is stuck at 0.5",
        "metrics": (io.BytesIO(CSV.encode()), "training.log.csv"),
        "training": json.dumps(TRAINING),
        "dataset": (io.BytesIO(json.dumps(DATASET).encode()), "dataset.json"),
        "sample": (io.BytesIO(b"x1,x2,label\n0.1,0.2,0\n0.3,0.1,1\n0.2,0.2,0\n"), "sample.csv"),
    })
    assert response.status_code == 201, response.get_data(as_text=True)
    assert_fits("ConversationReply", response.get_json())
    user = client.get(f"{API}/{response.get_json()['id']}").get_json()["turns"][0]["body"]
    assert user["metrics_filename"] == "training.log.csv"
    assert user["history"]["val_loss"] == [0.6932] * 4
    assert user["dataset"] == DATASET and user["sample_bytes"] > 0


@pytest.mark.parametrize("request_kwargs", [
    pytest.param(lambda: {"data": "symptom=la%20pr%E9cision%20reste%20%E0%2050%25", "content_type":
                          "application/x-www-form-urlencoded"}, id="url-encoded-latin-1"),
    pytest.param(lambda: {"data": {"symptom": (io.BytesIO("la précision reste à 50%".encode("latin-1")), "s.txt")},
                          "content_type": "multipart/form-data"}, id="latin-1-file"),
    pytest.param(lambda: {"data": {"symptom": (io.BytesIO("la précision reste à 50%".encode("utf-16")), "s.txt")},
                          "content_type": "multipart/form-data"}, id="utf-16-file"),
    pytest.param(lambda: {"data": '{"symptom": "la précision reste à 50%"}'.encode("latin-1"),
                          "content_type": "application/json"}, id="latin-1-json"),
])
def test_words_in_latin_1_or_utf_16_are_read_as_written(client, request_kwargs):
    conversation = client.post(API, **request_kwargs()).get_json()["id"]
    assert client.get(f"{API}/{conversation}").get_json()["title"] == "la précision reste à 50%"


def test_json_nan_literals_are_accepted(client):
    body = json.dumps({"symptom": "loss is nan", "metrics": {"loss": [0.7, 2.5, float("nan")]}})
    assert "NaN" in body
    response = client.post(API, data=body, content_type="application/json")
    assert response.status_code == 201, response.get_data(as_text=True)


def test_conversation_survives_a_restart(make_app):
    conversation = start(make_app().test_client())["id"]
    shown = make_app().test_client().get(f"{API}/{conversation}")
    assert shown.status_code == 200
    assert len(shown.get_json()["turns"]) == 2


def test_i_dont_know_declines_the_questions(client):
    started = start(client, {"symptom": "my model is not learning"})
    asked = {q["fact"] for q in started["reply"]["questions"]}
    assert asked, "a bare symptom should make the assistant ask"
    turn = client.post(f"{API}/{started['id']}/turns", json={"text": "I don't know"}).get_json()
    assert not asked & {q["fact"] for q in turn["reply"]["questions"]}
    assert asked <= set(client.get(f"{API}/{started['id']}").get_json()["declined"])


def test_a_later_message_that_says_what_fixed_it_moves_that_cause_first(client):
    started = start(client, {"symptom": "my loss turns into nan after a few epochs"})
    assert started["reply"]["causes"][0]["id"] != "exploding_gradients"
    turn = client.post(f"{API}/{started['id']}/turns", json={"text": "update: adding clipnorm=1.0 fixed it"}).get_json()
    leader = turn["reply"]["causes"][0]
    assert leader["id"] == "exploding_gradients"
    assert any("clipping the gradients" in line for line in leader["evidence"]), leader
    # the reply describes no run: the symptom of the first message still stands
    assert client.get(f"{API}/{started['id']}").get_json()["facts"]["symptom_loss_nan"] is True


def test_too_many_epochs(make_app, row_counts):
    client = make_app(MAX_EPOCHS=3).test_client()
    message = assert_error(client.post(API, json=START), 413, "too_large")
    assert message.startswith("metrics:") and "4 epochs" in message and "at most 3" in message
    assert row_counts()["conversations"] == 0


def test_a_chunked_body_over_the_limit_is_too_large_not_malformed(client, row_counts):
    body = json.dumps({"symptom": "x" * (11 * 1024 * 1024)}).encode()
    response = client.post(API, input_stream=io.BytesIO(body), content_type="application/json",
                           environ_overrides={"wsgi.input_terminated": True, "HTTP_TRANSFER_ENCODING": "chunked"})
    assert str(10 * 1024 * 1024) in assert_error(response, 413, "request_entity_too_large")
    assert not any(row_counts().values())


def test_concurrent_turns_get_distinct_numbers(app):
    conversation = start(app.test_client())["id"]
    answers = [{"facts": {"batch_size": size}} for size in (8, 64, 512)]  # as many as the retries cover
    with ThreadPoolExecutor(len(answers)) as pool:
        codes = list(pool.map(lambda body: app.test_client().post(f"{API}/{conversation}/turns", json=body).status_code,
                              answers))
    assert codes == [200] * len(answers)
    turns = app.test_client().get(f"{API}/{conversation}").get_json()["turns"]
    assert [t["seq"] for t in turns] == list(range(1, 2 * len(answers) + 3))


# --- refused requests: a JSON error naming what was wrong, and nothing stored --------------------
# Each case builds its request when it runs, since an upload's stream can be read only once.

BAD_STARTS = [
    pytest.param(lambda: {"data": b'{"symptom": "loss is flat",', "content_type": "application/json"}, 400, "bad_json",
                 "not valid JSON", id="malformed-json"),
    pytest.param(lambda: {"json": {"symptom": 5}}, 400, "bad_input", "symptom: 5 is not of type 'string'", id="symptom-number"),
    pytest.param(lambda: {"json": {"symptom": "x", "training": []}}, 400, "bad_input", "training: [] is not of type 'object'",
                 id="training-list"),
    pytest.param(lambda: {"json": {"metrics": HISTORY}}, 400, "bad_input", "'symptom' is a required property",
                 id="no-symptom"),
    pytest.param(lambda: {"json": {"symptom": "x", "symtom": "typo"}}, 400, "bad_input", "'symtom' was unexpected",
                 id="unknown-field"),
    pytest.param(lambda: {"json": {"symptom": "x", "training": {"learning_rate": "fast"}}}, 400, "bad_input",
                 "training.learning_rate", id="learning-rate-word"),
    pytest.param(lambda: {"data": "symptom=x", "content_type": "text/plain"}, 415, "unsupported_media_type", "JSON",
                 id="plain-text"),
    pytest.param(lambda: {"data": {"symptom": "x", "metrics": (io.BytesIO(b"x" * (50 * 1024 * 1024)), "huge.csv")},
                  "content_type": "multipart/form-data"}, 413, "request_entity_too_large", "bytes", id="50MB-upload"),
    pytest.param(lambda: {"data": {"symptom": "x", "dataset": (io.BytesIO(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"),
                                                               "d.json")},
                  "content_type": "multipart/form-data"}, 400, "bad_input", "dataset: the uploaded file is not text",
                 id="binary-upload"),
    pytest.param(lambda: {"data": {"symptom": "x", "training": "{lr: 1}"}, "content_type": "multipart/form-data"}, 400,
                 "bad_input", "training: not valid JSON", id="form-training-not-json"),
]


# --- what a request may cost: limits named in the refusal, checked before the work --------------

def _wide_sample() -> str:
    return ",".join(f"f{i}" for i in range(40_000)) + ",label\n" + ",".join("1" for _ in range(40_001)) + "\n"


BAD_STARTS += [
    pytest.param(lambda: {"data": b'{"symptom": "pr\\ud800cision"}', "content_type": "application/json"}, 400,
                 "bad_json", "symptom: '\\ud800' is half of a UTF-16 surrogate pair", id="lone-surrogate"),
    pytest.param(lambda: {"data": b'{"symptom": "x", "training": {"optimizer": "\\udfff"}}',
                  "content_type": "application/json"}, 400, "bad_json", "training.optimizer: '\\udfff'",
                 id="lone-surrogate-nested"),
    pytest.param(lambda: {"json": {"symptom": "x" * 9_000_000}}, 413, "too_large",
                 "symptom: 9,000,000 characters, more than the 50,000 this service reads", id="9MB-symptom"),
    pytest.param(lambda: {"json": {"symptom": "x", "training": {"n_hidden_layers": 2_000_000}}}, 422, "over_limit",
                 "training.n_hidden_layers: 2000000 is more than 1,000", id="two-million-layers"),
    pytest.param(lambda: {"json": {"symptom": "x", "training": {"n_hidden_layers": "2000000"}}}, 422, "over_limit",
                 "training.n_hidden_layers: '2000000' is more than 1,000", id="two-million-layers-as-text"),
    pytest.param(lambda: {"json": {"symptom": "x", "dataset": {"class_counts": {str(i): 1 for i in range(40_000)}}}},
                 413, "too_large", "dataset.class_counts: 40,000 entries, more than the 30,000", id="40k-classes"),
    pytest.param(lambda: {"json": {"symptom": "my model has 2000000 hidden layers and the loss is flat"}}, 422,
                 "over_limit", "n_hidden_layers: 2,000,000 (from your message) is more than 1,000", id="said-in-words"),
    pytest.param(lambda: {"data": {"symptom": "x", "sample": (io.BytesIO(_wide_sample().encode()), "wide.csv")},
                  "content_type": "multipart/form-data"}, 413, "too_large",
                 "sample: the data sample has 40,001 columns; send at most 2,000", id="40k-columns"),
]


@pytest.mark.parametrize(("request_kwargs", "status", "code", "named"), BAD_STARTS)
def test_bad_start_is_refused_and_stores_nothing(client, row_counts, request_kwargs, status, code, named):
    message = assert_error(client.post(API, **request_kwargs()), status, code)
    assert named in message
    assert not any(row_counts().values())


BAD_TURNS = [
    pytest.param(lambda: {"data": b"{not json", "content_type": "application/json"}, 400, "bad_json", "not valid JSON",
                 id="malformed-json"),
    pytest.param(lambda: {"json": {}}, 400, "bad_input", "should be non-empty", id="empty"),
    pytest.param(lambda: {"json": {"facts": {"learning_rate": "fast"}}}, 400, "bad_input", "facts.learning_rate",
                 id="learning-rate-word"),
    pytest.param(lambda: {"json": {"facts": {"learning_rate": [0.1]}}}, 400, "bad_input", "facts.learning_rate",
                 id="learning-rate-list"),
    pytest.param(lambda: {"json": {"text": 5}}, 400, "bad_input", "text: 5 is not of type 'string'", id="text-number"),
    pytest.param(lambda: {"json": {"training": []}}, 400, "bad_input", "training: [] is not of type 'object'",
                 id="training-list"),
    pytest.param(lambda: {"json": {"metrics": 5}}, 400, "bad_input", "metrics: 5 is not of type", id="metrics-number"),
    pytest.param(lambda: {"json": {"text": "y" * 9_000_000}}, 413, "too_large",
                 "text: 9,000,000 characters, more than the 50,000", id="9MB-text"),
    pytest.param(lambda: {"json": {"facts": {"n_classes": 10_000_000}}}, 422, "over_limit", "facts.n_classes",
                 id="ten-million-classes"),
]


@pytest.mark.parametrize(("request_kwargs", "status", "code", "named"), BAD_TURNS)
def test_bad_turn_leaves_the_conversation_unchanged(client, row_counts, request_kwargs, status, code, named):
    conversation = start(client)["id"]
    before, counts = client.get(f"{API}/{conversation}").get_data(), row_counts()
    message = assert_error(client.post(f"{API}/{conversation}/turns", **request_kwargs()), status, code)
    assert named in message
    assert client.get(f"{API}/{conversation}").get_data() == before
    assert row_counts() == counts


@pytest.mark.parametrize(("method", "path", "body"), [
    ("get", f"{API}/{MISSING}", None),
    ("post", f"{API}/{MISSING}/turns", {"text": "hello"}),
    ("post", f"{API}/{MISSING}/feedback", {"cause": "overfitting", "verdict": "fixed"}),
])
def test_unknown_conversation(client, row_counts, method, path, body):
    message = assert_error(getattr(client, method)(path, json=body), 404, "not_found")
    assert MISSING in message
    assert not any(row_counts().values())


def test_bad_feedback(client, row_counts):
    conversation = start(client)["id"]
    message = assert_error(client.post(f"{API}/{conversation}/feedback", json={"cause": "overfitting", "verdict": "meh"}),
                           400, "bad_input")
    assert message.startswith("verdict:")
    assert row_counts()["feedback"] == 0


def test_unknown_route_and_wrong_method(client):
    assert_error(client.get("/api/v1/nothing-here"), 404, "not_found")
    assert_error(client.put(API), 405, "method_not_allowed")


# --- access ----------------------------------------------------------------------------------------

@pytest.fixture
def guarded(make_app):
    return make_app(API_TOKENS=["alice-token", "bob-token"]).test_client()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_tokens_are_required(guarded, row_counts):
    assert_error(guarded.post(API, json=START), 401, "unauthorized")
    assert_error(guarded.get(API, headers=bearer("mallory-token")), 401, "unauthorized")
    assert_error(guarded.get(API, headers={"Authorization": "Basic alice-token"}), 401, "unauthorized")
    assert guarded.get(API).headers["WWW-Authenticate"] == "Bearer"
    assert row_counts()["conversations"] == 0
    assert guarded.get("/api/v1/openapi.json").status_code == 200


def test_conversations_belong_to_their_token(guarded):
    conversation = start(guarded, headers=bearer("alice-token"))["id"]
    assert guarded.get(f"{API}/{conversation}", headers=bearer("alice-token")).status_code == 200
    turn = guarded.post(f"{API}/{conversation}/turns", json={"text": "hi"}, headers=bearer("alice-token"))
    assert turn.status_code == 200

    assert_error(guarded.get(f"{API}/{conversation}", headers=bearer("bob-token")), 404, "not_found")
    assert_error(guarded.post(f"{API}/{conversation}/turns", json={"text": "hi"}, headers=bearer("bob-token")),
                 404, "not_found")
    assert_error(guarded.post(f"{API}/{conversation}/feedback", json={"cause": "overfitting", "verdict": "fixed"},
                              headers=bearer("bob-token")), 404, "not_found")
    assert guarded.get(API, headers=bearer("bob-token")).get_json() == {"conversations": []}
    assert [c["id"] for c in guarded.get(API, headers=bearer("alice-token")).get_json()["conversations"]] == [conversation]


# --- the OpenAPI document --------------------------------------------------------------------------

def test_openapi_document(client):
    served = client.get("/api/v1/openapi.json")
    assert served.status_code == 200
    document = served.get_json()
    assert document == openapi_document()
    assert document["openapi"].startswith("3.1")
    for name, schema in document["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema)
    assert {"/conversations", "/conversations/{id}", "/conversations/{id}/turns", "/conversations/{id}/feedback",
            "/openapi.json"} <= set(document["paths"])


def test_openapi_references_resolve():
    document = openapi_document()

    def refs(node):
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                yield node["$ref"]
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    for ref in refs(document):
        target = document
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]


def test_openapi_documents_every_contract_fact():
    schemas = openapi_document()["components"]["schemas"]
    documented = set(schemas["Training"]["properties"]) | set(schemas["Dataset"]["properties"])
    assert documented == set(shipped_kb().vocabulary)


# --- whatever JSON arrives, the answer is a reply or a 4xx, never a crash ------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)
FACT_MAPPINGS = st.dictionaries(st.sampled_from(sorted(shipped_kb().vocabulary)), JSON_VALUES, max_size=6)


ANY_JSON = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture
def fuzzed(make_app):
    """A client for hundreds of requests a minute from one caller: the rate limit has tests of its own."""
    return make_app(RATELIMIT_ENABLED=False).test_client()


@ANY_JSON
@given(body=st.fixed_dictionaries({"symptom": st.text(max_size=60)}, optional={
    "training": FACT_MAPPINGS | JSON_VALUES, "dataset": FACT_MAPPINGS | JSON_VALUES, "metrics": JSON_VALUES}))
def test_any_json_start_gets_a_reply_or_a_4xx(fuzzed, body):
    response = fuzzed.post(API, json=body)
    assert response.status_code in (201, 400, 413, 422), response.get_data(as_text=True)  # 413/422: over a limit


@ANY_JSON
@given(body=st.fixed_dictionaries({}, optional={
    "text": st.text(max_size=40), "facts": FACT_MAPPINGS | JSON_VALUES, "metrics": JSON_VALUES}))
def test_any_json_turn_gets_a_reply_or_a_4xx_that_changes_nothing(fuzzed, body):
    conversation = start(fuzzed)["id"]
    before = fuzzed.get(f"{API}/{conversation}").get_data()
    response = fuzzed.post(f"{API}/{conversation}/turns", json=body)
    assert response.status_code in (200, 400, 413, 422), response.get_data(as_text=True)  # 413/422: over a limit
    if response.status_code != 200:
        assert fuzzed.get(f"{API}/{conversation}").get_data() == before
