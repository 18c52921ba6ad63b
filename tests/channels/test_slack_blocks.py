"""Block Kit rendering: a real reply, and replies far larger than the knowledge base gives, within Slack's limits."""
import json

import pytest

from assistant.channels.slack import blocks
from tests.helpers import facts_from, reply_for


def real_reply():
    return reply_for(facts_from(symptom="my loss stays at 0.693 and accuracy at 50%"))


def huge_reply(code="x = 1\n" * 2000):
    cause = {"id": "c" * 100, "title": "T" * 500, "category": "data", "confidence": 0.5,
             "evidence": ["<!channel> " + "e" * 5000] * 40, "explanation": "w" * 9000, "fix": "f" * 9000,
             "snippet": {"language": "python", "code": code}}
    question = {"id": "q-learning_rate", "fact": "learning_rate", "text": "q" * 5000,
                "choices": ["z" * 41] + [f"{n:02d}" * 20 for n in range(30)]}
    return {"text": "", "causes": [cause] * 40, "questions": [question] * 30}


def elements(message):
    return [e for b in message.blocks if b["type"] == "actions" for e in b["elements"]]


def texts(message):
    for block in message.blocks:
        if block["type"] == "section":
            yield block["text"]["text"]
        elif block["type"] == "context":
            yield from (e["text"] for e in block["elements"])


def assert_within_limits(message):
    assert len(message.blocks) <= blocks.MAX_BLOCKS
    assert all(len(text) <= blocks.SECTION_LIMIT for text in texts(message))
    assert all(len(e["text"]["text"]) <= blocks.BUTTON_TEXT_LIMIT for e in elements(message))
    assert all(len(e.get("value", "")) <= blocks.BUTTON_VALUE_LIMIT for e in elements(message))
    for block in message.blocks:  # action ids must be unique within their block
        if block["type"] == "actions":
            ids = [e["action_id"] for e in block["elements"]]
            assert len(ids) == len(set(ids))
    assert len(json.dumps(message.blocks)) <= blocks.MESSAGE_BUDGET
    assert len(message.text) <= blocks.ITEM_LIMIT


@pytest.mark.parametrize("runs", [True, False])
def test_a_real_reply(runs):
    reply = real_reply()
    message = blocks.reply_message(reply, runs=runs)
    assert_within_limits(message)
    top = reply["causes"][0]
    assert message.text == f"Most likely: {top['title']} ({top['confidence']:.0%})"
    code = top["snippet"]["code"].rstrip()
    if len(blocks.escape(code)) <= blocks.CODE_LIMIT:
        assert message.snippet is None and f"```\n{blocks.escape(code)}\n```" in texts(message)
    else:  # a snippet that reads the user's session is often long: it follows as a file
        assert message.snippet.code == code + "\n"
    ids = [e["action_id"] for e in elements(message)]
    assert ids.count(blocks.FIXED) == ids.count(blocks.NOT_HELPFUL) == len(reply["causes"])
    assert (blocks.VALIDATE in ids) is runs
    first = reply["questions"][0]
    values = [json.loads(e["value"]) for e in elements(message) if e["action_id"].startswith(blocks.ANSWER)]
    assert values[: len(first["choices"])] == [{"fact": first["fact"], "choice": c} for c in first["choices"]]


def shown(message):
    """How many causes and how many questions with buttons the message shows."""
    ids = [e["action_id"] for e in elements(message)]
    return ids.count(blocks.FIXED), ids.count(f"{blocks.ANSWER}-0")


def test_huge_replies_stay_within_slacks_limits():
    message = blocks.reply_message(huge_reply(), runs=True, note="n" * 5000)
    assert_within_limits(message)
    assert "z" * 41 not in json.dumps(message.blocks)  # too long for a button: typed instead
    assert len([e for e in elements(message) if e["action_id"].startswith(blocks.ANSWER)]) == blocks.MAX_CHOICES


def test_over_the_budget_questions_go_first_then_causes():
    big = huge_reply(code="x = 1\n" * 300)
    causes, questions = shown(blocks.reply_message(big, runs=True))
    assert questions == 1 and 1 <= causes < blocks.MAX_CAUSES
    assert shown(blocks.reply_message({**big, "questions": []}, runs=True)) == (blocks.MAX_CAUSES, 0)


def test_a_long_snippet_is_sent_as_a_file():
    code = "x = 1\n" * 2000
    message = blocks.reply_message(huge_reply(code), runs=False)
    assert message.snippet == blocks.Snippet(f"{'c' * 100}.py", f"Fix: {'T' * (blocks.TITLE_LIMIT - 1)}…", code)
    assert "```" not in json.dumps(message.blocks)


def test_a_snippet_with_a_fence_is_sent_as_a_file():
    message = blocks.reply_message(huge_reply('print("```")\n'), runs=False)
    assert message.snippet.code == 'print("```")\n'


def test_user_text_cannot_ping_the_channel():
    message = blocks.reply_message(huge_reply(), runs=False)
    dumped = json.dumps(message.blocks)
    assert "<!channel>" not in dumped and "&lt;!channel&gt;" in dumped


def test_no_cause_asks_for_more():
    message = blocks.reply_message({"text": "", "causes": [], "questions": []}, runs=True)
    assert message.text == "I need more to go on."
    assert not elements(message)


def test_run_messages():
    result = {"reproduced": True, "verdict": "Lowering the rate fixes it.",
              "experiments": [{"name": "baseline"}, {"name": "fixed"}]}
    done = blocks.run_message({"status": "done", "result": result})
    assert done.blocks[0]["text"]["text"] == "*The short run reproduced the problem.*\nLowering the rate fixes it."
    assert done.blocks[1]["elements"][0]["text"] == "Experiments: baseline, fixed"
    failed = blocks.run_message({"status": "failed", "error": "out of memory"})
    assert failed.text == "The short run did not finish: out of memory"


def test_a_button_value_is_never_cut():
    with pytest.raises(ValueError):
        blocks.button("b", "a", "v" * (blocks.BUTTON_VALUE_LIMIT + 1))
