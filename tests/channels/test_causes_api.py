"""GET /conversations/<id>/causes/<cause>: any cause on request, weighed by this conversation, with its filled snippet."""
import ast

from tests.channels.test_api import API, MISSING, start
from tests.helpers import assert_error, assert_fits, shipped_kb

NAN_RUN = {"symptom": "loss is nan after epoch 3", "metrics": {"loss": [2.31, 4.7, "nan", "nan"]},
           "training": {"optimizer": "adam", "learning_rate": 0.5}}


def test_a_listed_cause_is_the_one_the_reply_shows_with_its_rank(client):
    started = start(client, NAN_RUN)
    top = started["reply"]["causes"][0]
    response = client.get(f"{API}/{started['id']}/causes/{top['id']}")
    assert response.status_code == 200, response.get_data(as_text=True)
    cause = response.get_json()
    assert_fits("Cause", cause)
    assert cause == {**top, "rank": 1}


def test_a_cause_outside_the_top_three_comes_with_its_evidence_and_snippet(client):
    started = start(client, NAN_RUN)
    shown = {cause["id"] for cause in started["reply"]["causes"]}
    unlisted = next(cause for cause in sorted(shipped_kb().causes) if cause not in shown)
    cause = client.get(f"{API}/{started['id']}/causes/{unlisted}").get_json()
    assert_fits("Cause", cause)
    assert cause["id"] == unlisted and cause["rank"] > len(shown)
    assert cause["title"] == shipped_kb().causes[unlisted].title and cause["fix"] and cause["explanation"]
    assert isinstance(cause["against"], list) and isinstance(cause["evidence"], list)
    ast.parse(cause["snippet"]["code"])


def test_the_snippet_is_filled_from_this_conversation(client):
    started = start(client, NAN_RUN)
    code = client.get(f"{API}/{started['id']}/causes/learning_rate_too_high").get_json()["snippet"]["code"]
    assert "Your learning rate 0.5 overshoots" in code and "Adam(learning_rate=0.001, clipnorm=1)" in code


def test_an_answer_moves_the_cause(client):
    started = start(client, NAN_RUN)
    path = f"{API}/{started['id']}/causes/missing_values"
    before = client.get(path).get_json()
    client.post(f"{API}/{started['id']}/turns", json={"facts": {"missing_fraction": 0.2}})
    after = client.get(path).get_json()
    assert after["confidence"] > before["confidence"] and after["evidence"] != before["evidence"]


def test_an_unknown_cause_is_404_json(client):
    started = start(client, NAN_RUN)
    message = assert_error(client.get(f"{API}/{started['id']}/causes/bad_luck"), 404, "not_found")
    assert "bad_luck" in message


def test_an_unknown_conversation_is_404_json(client):
    message = assert_error(client.get(f"{API}/{MISSING}/causes/overfitting"), 404, "not_found")
    assert MISSING in message


def test_the_route_is_in_the_api_document(client):
    document = client.get("/api/v1/openapi.json").get_json()
    assert "get" in document["paths"]["/conversations/{id}/causes/{cause}"]
