import math
from types import SimpleNamespace

import pytest

from assistant import conversations
from assistant.conversations import Conflict, Conversation, Turn
from assistant.evidence.facts import Fact, Facts

REPLY = {"text": "Check the learning rate.", "causes": [],
         "questions": [{"id": "q-1", "fact": "learning_rate", "text": "Which learning rate?", "choices": ["0.1"]}]}


def turn(**facts) -> Turn:
    """A turn as the pipeline would produce it, without running the pipeline."""
    known = Facts()
    known.update(Fact(key, value, "a test") for key, value in facts.items())
    return Turn({"symptom": "loss is flat"}, REPLY, known, frozenset({"momentum"}))


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield


def test_new_conversation_round_trip(ctx):
    new = Conversation.new("alice", "loss is flat")
    conversations.save(new, turn(batch_size=32))
    stored = conversations.load(new.id, "alice")
    assert stored.id == new.id and stored.title == "loss is flat"
    assert stored.facts.values() == {"batch_size": 32}
    assert stored.declined == {"momentum"}
    assert stored.asked == ("learning_rate",)
    assert stored.last_seq == 2


def test_turns_append_in_order(ctx):
    new = Conversation.new(None, "t")
    conversations.save(new, turn())
    conversations.save(conversations.load(new.id, None), turn(learning_rate=0.5))
    shown = conversations.transcript(new.id, None)
    assert [(t["seq"], t["role"]) for t in shown["turns"]] == [(1, "user"), (2, "assistant"), (3, "user"), (4, "assistant")]
    assert shown["facts"] == {"learning_rate": 0.5}
    assert shown["turns"][1]["body"] == REPLY
    assert shown["created_at"] <= shown["updated_at"]


def test_stale_state_conflicts_and_changes_nothing(ctx):
    new = Conversation.new(None, "t")
    conversations.save(new, turn())
    stale = conversations.load(new.id, None)
    conversations.save(stale, turn(batch_size=8))
    before = conversations.transcript(new.id, None)
    with pytest.raises(Conflict):
        conversations.save(stale, turn(batch_size=1024))
    assert conversations.transcript(new.id, None) == before


def test_other_owners_see_nothing(ctx):
    new = Conversation.new("alice", "mine")
    conversations.save(new, turn())
    assert conversations.load(new.id, "bob") is None
    assert conversations.load(new.id, None) is None
    assert conversations.transcript(new.id, "bob") is None
    assert conversations.add_feedback(new.id, "bob", "overfitting", "fixed") is None
    assert conversations.recent("bob") == []
    assert [c["id"] for c in conversations.recent("alice")] == [new.id]


def test_recent_lists_the_latest_activity_first(ctx):
    first, second = Conversation.new(None, "first"), Conversation.new(None, "second")
    conversations.save(first, turn())
    conversations.save(second, turn())
    conversations.save(conversations.load(first.id, None), turn())
    assert [c["title"] for c in conversations.recent(None)] == ["first", "second"]


def test_non_finite_numbers_are_stored_as_the_contract_strings(ctx):
    new = Conversation.new(None, "t")
    conversations.save(new, turn(feature_min=-math.inf, feature_max=math.inf, feature_mean=math.nan))
    assert conversations.transcript(new.id, None)["facts"] == {
        "feature_min": "-inf", "feature_max": "inf", "feature_mean": "nan"}


def test_feedback(ctx):
    new = Conversation.new(None, "t")
    conversations.save(new, turn())
    stored = conversations.add_feedback(new.id, None, "overfitting", "not_helpful", "val loss still rises")
    assert stored["conversation_id"] == new.id
    assert (stored["cause"], stored["verdict"], stored["comment"]) == ("overfitting", "not_helpful", "val loss still rises")
    assert conversations.add_feedback("conv-" + "0" * 32, None, "overfitting", "fixed") is None


def test_nul_characters_are_dropped_from_text_columns(ctx):
    new = Conversation.new(None, "loss\x00 is flat")
    conversations.save(new, turn())
    assert conversations.transcript(new.id, None)["title"] == "loss is flat"
    assert conversations.add_feedback(new.id, None, "overfitting", "fixed", "thanks\x00")["id"]


def test_words_that_answer_no_question_decline_them(ctx, monkeypatch):
    offered = []

    def respond(facts, declined):
        offered.append(set(declined))
        return SimpleNamespace(values={}), REPLY  # always asks for the learning rate

    monkeypatch.setattr(conversations, "respond", respond)
    conversation_id, _ = conversations.start(None, {"symptom": "my loss is flat"})
    conversations.reply_to(conversation_id, None, {"facts": {"batch_size": 32}})
    conversations.reply_to(conversation_id, None, {"text": "no idea"})
    assert offered == [set(), set(), {"learning_rate"}]
    assert conversations.load(conversation_id, None).declined == {"learning_rate"}
