"""Block Kit rendering: a real reply, and replies far larger than the knowledge base gives, within Slack's limits."""
import json
import re

import pytest

from assistant import kb
from assistant.channels.slack import blocks, runs
from tests.helpers import facts_from, reply_for


KB = kb.load(kb.DEFAULT_DIR)
#: Code in words meant for a person: a call, an attribute, a keyword argument, a snake_case or CamelCase name,
#: backticks. The facts schema's own test of a question's plain words, so that both mean the same.
CODE_LIKE = re.compile(json.loads((kb.DEFAULT_DIR / "schemas" / "facts.schema.json").read_text(encoding="utf-8"))
                       ["properties"]["facts"]["additionalProperties"]["properties"]["plain"]["not"]["pattern"])


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
def test_a_real_reply_fits_a_phone(runs):
    reply = real_reply()
    message = blocks.reply_message(KB, reply, runs=runs)
    assert_within_limits(message)
    assert len(message.blocks) <= 14
    assert sum(b["type"] == "actions" for b in message.blocks) <= 4  # rows of buttons
    top = reply["causes"][0]
    assert message.text.startswith(f"Most likely {top['title']}: ") and "%" not in message.text  # and why
    code = top["snippet"]["code"].rstrip()
    lines = code.splitlines()
    if len(lines) <= blocks.CODE_LINES and max(map(len, lines)) <= blocks.CODE_COLUMNS:
        assert message.snippet is None and f"```\n{blocks.escape(code)}\n```" in texts(message)
    else:  # too tall or too wide for a phone: it follows as a file
        assert message.snippet.code == code + "\n"
    ids = [e["action_id"] for e in elements(message)]
    assert ids.count(blocks.FIXED) == ids.count(blocks.NOT_HELPFUL) == 1  # under the top cause's fix only
    assert (blocks.VALIDATE in ids) is runs
    accessories = [b["accessory"] for b in message.blocks if "accessory" in b]
    assert [a["value"] for a in accessories] == [c["id"] for c in reply["causes"][1:blocks.MAX_CAUSES]]
    first = reply["questions"][0]
    values = [json.loads(e["value"]) for e in elements(message) if e["action_id"].startswith(blocks.ANSWER)]
    assert values[: len(first["choices"][:blocks.MAX_CHOICES])] == [
        {"fact": first["fact"], "choice": c} for c in first["choices"][:blocks.MAX_CHOICES]]
    if reply["readings"]:
        assert next(texts(message)).startswith("*What I see:*")
    if top["effect"]:  # what the fix achieved on a short run with this fault, under it
        assert any("*Fix:* " in text and f"_{blocks.escape(top['effect'])}_" in text for text in texts(message))


def shown(message):
    """How many causes and how many questions with buttons the message shows."""
    ids = [e["action_id"] for e in elements(message)]
    return 1 + sum("accessory" in b for b in message.blocks), ids.count(f"{blocks.ANSWER}-0")


def test_huge_replies_stay_within_slacks_limits():
    message = blocks.reply_message(KB, huge_reply(), runs=True, note="n" * 5000)
    assert_within_limits(message)
    assert "z" * 41 not in json.dumps(message.blocks)  # too long for a button: typed instead
    answers = [e for e in elements(message) if e["action_id"].startswith(blocks.ANSWER)]
    assert len(answers) == blocks.MAX_QUESTIONS * blocks.MAX_CHOICES


def test_over_the_budget_other_causes_go_first_then_questions(monkeypatch):
    big = huge_reply(code="x = 1\n" * 300)
    assert shown(blocks.reply_message(KB, big, runs=True)) == (blocks.MAX_CAUSES, blocks.MAX_QUESTIONS)
    monkeypatch.setattr(blocks, "MESSAGE_BUDGET", 5500)
    assert shown(blocks.reply_message(KB, big, runs=True)) == (1, 2)
    monkeypatch.setattr(blocks, "MESSAGE_BUDGET", 100)
    assert shown(blocks.reply_message(KB, big, runs=True)) == (1, 1)  # the top cause and a question always fit
    monkeypatch.undo()
    assert shown(blocks.reply_message(KB, {**big, "questions": []}, runs=True)) == (blocks.MAX_CAUSES, 0)


def test_a_long_snippet_is_sent_as_a_file():
    code = "x = 1\n" * 2000
    message = blocks.reply_message(KB, huge_reply(code), runs=False)
    assert message.snippet == blocks.Snippet(f"{'c' * 100}.py", f"Fix: {'T' * (blocks.TITLE_LIMIT - 1)}…", code)
    assert "```" not in json.dumps(message.blocks)


def test_a_snippet_with_a_fence_is_sent_as_a_file():
    message = blocks.reply_message(KB, huge_reply('print("```")\n'), runs=False)
    assert message.snippet.code == 'print("```")\n'


def test_user_text_cannot_ping_the_channel():
    message = blocks.reply_message(KB, huge_reply(), runs=False)
    dumped = json.dumps(message.blocks)
    assert "<!channel>" not in dumped and "&lt;!channel&gt;" in dumped


def test_no_cause_asks_for_more():
    message = blocks.reply_message(KB, {"text": "", "causes": [], "questions": []}, runs=True)
    assert message.text.startswith("I need more to go on")
    assert not elements(message)


@pytest.mark.parametrize("markdown, slack", [
    ("**Reproduced.** The loss fell", "*Reproduced.* The loss fell"),
    ("- **Lower rate**, with learning rate 0.001: ok", "• *Lower rate*, with learning rate 0.001: ok"),
    ("_Run notes: assumed 32._", "_Run notes: assumed 32._"),
    ("an *emphasised* word", "an _emphasised_ word"),
    ("## Checks", "*Checks*"),
    ("see [the docs](https://keras.io/api/)", "see <https://keras.io/api/|the docs>"),
    ("a < b & `x**2 < y`", "a &lt; b &amp; `x**2 &lt; y`"),
    ("```python\nx = a**2  # <ok>\n```", "```\nx = a**2  # &lt;ok&gt;\n```"),
    ("first\n\n---\n\nsecond", "first\n\n\n\nsecond"),
])
def test_markdown_becomes_mrkdwn(markdown, slack):
    assert blocks.mrkdwn(markdown) == slack


def test_a_verdict_is_shown_whole_in_mrkdwn():
    verdict = ("**Reproduced.** A 10-epoch run of your setup shows the same problem (plateau): the loss stayed at "
               "0.693 in 10 epochs.\n\nWhat each fix changed:\n"
               + "".join(f"- **Fix {n}**, with learning_rate {n}: the loss fell from 0.693 to 0.{n}1. Confirmed.\n"
                         for n in range(60))
               + "\nChecks:\n- Zeroed inputs (does the model use its inputs?): the loss stayed at 0.693.\n\n"
               "_Run notes: assumed batch_size = 32 (Keras' default)._")
    message = blocks.run_message(KB, {"status": "done", "result": {"reproduced": True, "verdict": verdict}})
    assert_within_limits(message)
    shown = "\n".join(texts(message))
    assert "**" not in shown and "…" not in shown
    assert "*Reproduced.*" in shown and "• *Fix 59*, with learning rate 59" in shown
    assert "Zeroed inputs" in shown and "assumed batch size = 32" in shown
    assert message.text.startswith("The short run reproduced the problem. Reproduced. A 10-epoch run")
    failed = blocks.run_message(KB, {"status": "failed", "error": "out of memory"})
    assert failed.text == "The short run did not finish: out of memory"


def test_fact_keys_are_shown_by_their_labels():
    assert blocks.label(KB, "n_hidden_layers") == "hidden layers"
    assert blocks.label(KB, "kernel_initializer") == "kernel initializer"
    assert blocks.humane(KB, "n_features = 20, x_train and learning_rate") == "features = 20, x_train and learning rate"


def test_the_run_form_shows_what_a_complete_setup_would_assume():
    known = {"task": "binary_classification", "n_classes": 2, "optimizer": "adam", "loss": "binary_crossentropy",
             "n_features": 20, "n_hidden_layers": 2, "hidden_activation": "relu", "output_activation": "sigmoid"}
    fields, assumed = runs.form_fields(KB, known)
    assert [key for key, _, required in fields if required] == []
    assert {key: value for key, value, _ in fields if value is not None} == known
    view = blocks.run_form(KB, fields, "{}", assumed)
    note = view["blocks"][-1]["elements"][0]["text"]
    assert note.startswith("Run notes, with what is filled in now: assumed ") and "learning rate = 0.001 (adam's default)" in note
    assert "_" not in note.replace("binary_", "")
    menus = {b["block_id"]: b["element"]["type"] for b in view["blocks"] if b["type"] == "input"}
    assert menus["optimizer"] == "static_select" and menus["learning_rate"] == "plain_text_input"
    assert len(view["title"]["text"]) <= 24 and len(view["blocks"]) <= 100


def test_a_button_value_is_never_cut():
    with pytest.raises(ValueError):
        blocks.button("b", "a", "v" * (blocks.BUTTON_VALUE_LIMIT + 1))


def test_feedback_settles_only_the_buttons_of_its_cause():
    shown = [blocks.section("two causes"), blocks.feedback_buttons({"id": "dead_relu"}),
             blocks.feedback_buttons({"id": "learning_rate_too_low"})]
    recorded = blocks.context("✓ Recorded")
    settled = blocks.feedback_given(shown, "learning_rate_too_low", recorded)
    assert settled == [shown[0], shown[1], recorded]
    assert blocks.feedback_given(shown, "overfitting", recorded) == shown


def test_every_question_is_asked_in_plain_words():
    asked = {key: blocks.question(KB, key, spec["question"]) for key, spec in KB.facts.items() if "question" in spec}
    assert {key: CODE_LIKE.findall(text) for key, text in asked.items() if CODE_LIKE.search(text)} == {}
    assert asked["missing_fraction"] == "What fraction of input values are missing or NaN?"
    assert "np.isnan(x_train).mean()" in KB.facts["missing_fraction"]["question"]  # the web page's and API's words


def test_the_run_form_hints_are_plain_words():
    fields, assumed = runs.form_fields(KB, {})
    view = blocks.run_form(KB, fields, "{}", assumed)
    hints = {b["block_id"]: b["hint"]["text"] for b in view["blocks"] if "hint" in b}
    assert hints["batch_size"] == "What batch size do you train with?"
    assert [text for text in hints.values() if CODE_LIKE.search(text)] == []


def test_a_cause_given_feedback_shows_it_instead_of_its_buttons():
    cause = real_reply()["causes"][0]
    for message in (blocks.reply_message(KB, real_reply(), runs=False, recorded={cause["id"]: "not_helpful"}),
                    blocks.cause_message(KB, cause, {cause["id"]: "not_helpful"})):
        assert not [e for e in elements(message) if e["action_id"] in (blocks.FIXED, blocks.NOT_HELPFUL)]
        assert f"✓ Recorded: the fix for *{cause['title']}* did not help." in list(texts(message))
    assert [e["action_id"] for e in elements(blocks.cause_message(KB, cause))] == [blocks.FIXED, blocks.NOT_HELPFUL]
