"""Block Kit messages for replies and run verdicts: pure functions, so Slack's limits are checked by unit tests.

Slack refuses a message with a section over 3,000 characters or more than 50 blocks, and
a button whose text exceeds 75 characters or whose value exceeds 2,000. Every piece of a
reply is clipped to its share, and a reply over the budget for the whole message shows fewer
questions, then fewer causes.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: Slack's documented limits.
SECTION_LIMIT = 3000
MAX_BLOCKS = 50
BUTTON_TEXT_LIMIT = 75
BUTTON_VALUE_LIMIT = 2000
#: And one it does not document: blocks holding about 13,000 characters in all are refused
#: (``msg_blocks_too_long``, slackapi/bolt-js#2509). A reply's serialized blocks stay under this.
MESSAGE_BUDGET = 10_000
#: What one reply shows at most, and each piece's share of the budget.
MAX_CAUSES = 4
MAX_EVIDENCE = 3
MAX_CHOICES = 6
TITLE_LIMIT = 100
ITEM_LIMIT = 200
PROSE_LIMIT = 600
#: A longer choice is one to type: a button cannot show it, and its value is never cut.
CHOICE_LIMIT = 40
#: The longest snippet shown inline; a longer one is uploaded as a file.
CODE_LIMIT = 2000

_FENCE = "```"

#: Action ids of the buttons, which the bot's listeners match.
ANSWER = "answer"  # one per choice, numbered: answer-0, answer-1, ...
DONT_KNOW = "dont_know"
FIXED = "feedback_fixed"
NOT_HELPFUL = "feedback_not_helpful"
VALIDATE = "validate"


@dataclass(frozen=True)
class Snippet:
    """Code too long for a block, to be uploaded into the thread as a file."""

    filename: str
    title: str
    code: str


@dataclass(frozen=True)
class Message:
    """What one post holds: the notification text, the blocks, and a file to upload after it."""

    text: str
    blocks: list[dict[str, Any]]
    snippet: Snippet | None = None


def escape(text: str) -> str:
    """Slack's mrkdwn escaping, which also keeps quoted user text from pinging @channel."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, marked with an ellipsis where it was cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def section(mrkdwn: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(mrkdwn, SECTION_LIMIT)}}


def context(mrkdwn: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(mrkdwn, SECTION_LIMIT)}]}


def button(text: str, action_id: str, value: str | None = None, style: str | None = None) -> dict[str, Any]:
    """A button; ``value`` carries data back to the bot, so it is never cut: it must fit Slack's limit."""
    element: dict[str, Any] = {"type": "button", "action_id": action_id,
                               "text": {"type": "plain_text", "text": clip(text, BUTTON_TEXT_LIMIT)}}
    if value is not None:
        if len(value) > BUTTON_VALUE_LIMIT:
            raise ValueError(f"a button value of {len(value)} characters is over Slack's {BUTTON_VALUE_LIMIT}")
        element["value"] = value
    if style:
        element["style"] = style
    return element


def actions(*elements: dict[str, Any]) -> dict[str, Any]:
    return {"type": "actions", "elements": list(elements)}


def _cause_blocks(rank: int, cause: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The cause with its confidence and evidence, and the buttons that say whether its fix worked."""
    title = escape(clip(cause["title"], TITLE_LIMIT))
    lines = [f"*{rank}. {title}*  ·  {cause['confidence']:.0%}  ·  {escape(cause['category'])}"]
    lines += [f"• {escape(clip(item, ITEM_LIMIT))}" for item in cause["evidence"][:MAX_EVIDENCE]]
    return [section("\n".join(lines)),
            actions(button("This fixed it", FIXED, cause["id"], style="primary"),
                    button("Didn't help", NOT_HELPFUL, cause["id"]))]


def _fix_blocks(cause: Mapping[str, Any]) -> tuple[list[dict[str, Any]], Snippet | None]:
    """Why the top cause happens and how to fix it, with its snippet inline or as a file when it is long."""
    blocks = [section(f"*Why:* {escape(clip(cause['explanation'], PROSE_LIMIT))}"),
              section(f"*Fix:* {escape(clip(cause['fix'], PROSE_LIMIT))}")]
    code = cause["snippet"]["code"].rstrip()
    inline = escape(code)
    if len(inline) <= CODE_LIMIT and _FENCE not in code:
        blocks.append(section(f"{_FENCE}\n{inline}\n{_FENCE}"))
        return blocks, None
    snippet = Snippet(f"{cause['id']}.py", f"Fix: {clip(cause['title'], TITLE_LIMIT)}", code + "\n")
    blocks.append(context(f"The code for this fix is long, so it follows as the file `{snippet.filename}`."))
    return blocks, snippet


def _question_blocks(questions: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each question with its choices as buttons; the answer clicked is the conversation's next turn."""
    blocks = [section("*To tell these apart, it would help to know:*")]
    for question in questions:
        text = escape(clip(question["text"], ITEM_LIMIT))
        choices = [choice for choice in question.get("choices", []) if len(choice) <= CHOICE_LIMIT][:MAX_CHOICES]
        if not choices:
            blocks.append(section(f"{text}\n_Reply in this thread with the answer._"))
            continue
        blocks.append(section(text))
        blocks.append(actions(*(
            button(choice, f"{ANSWER}-{n}", json.dumps({"fact": question["fact"], "choice": choice}))
            for n, choice in enumerate(choices)
        )))
    blocks.append(actions(button("I don't know these", DONT_KNOW)))
    return blocks


def reply_message(reply: Mapping[str, Any], *, runs: bool, note: str | None = None) -> Message:
    """The reply as a thread message: ranked causes, the top fix, questions as buttons.

    ``runs`` offers the "Validate with a short run" button; ``note`` (mrkdwn) says what the
    reply answers, e.g. which button someone clicked. Over the budget, the last questions and
    then the least likely causes are left out; the top cause and first question always fit.
    """
    causes = list(reply["causes"][:MAX_CAUSES])
    questions = list(reply["questions"])  # the engine asks three at most
    while True:
        message = _reply_message(causes, questions, runs=runs, note=note)
        if len(json.dumps(message.blocks)) <= MESSAGE_BUDGET or len(causes) + len(questions) <= 2:
            return message
        (questions if len(questions) > 1 else causes).pop()


def _reply_message(causes: Sequence[Mapping[str, Any]], questions: Sequence[Mapping[str, Any]], *, runs: bool,
                   note: str | None) -> Message:
    blocks = [context(clip(note, ITEM_LIMIT))] if note else []
    if not causes:
        blocks.append(section("I found no likely cause yet. Tell me more in this thread: what the loss and "
                              "accuracy do, or share the CSVLogger file or the console log."))
        return Message("I need more to go on.", blocks)
    blocks.append(section("*Most likely causes*"))
    for rank, cause in enumerate(causes, 1):
        blocks += _cause_blocks(rank, cause)
    top = causes[0]
    fix, snippet = _fix_blocks(top)
    blocks += [{"type": "divider"}, section(f"*How to check and fix: {escape(clip(top['title'], TITLE_LIMIT))}*"),
               *fix]
    if questions:
        blocks += [{"type": "divider"}, *_question_blocks(questions)]
    if runs:
        blocks.append(actions(button("Validate with a short run", VALIDATE, style="primary")))
    blocks.append(context("Reply in this thread with more details, or share a CSVLogger file, a console log, "
                          "a dataset summary JSON or a CSV sample of the data."))
    return Message(clip(f"Most likely: {top['title']} ({top['confidence']:.0%})", ITEM_LIMIT), blocks, snippet)


def run_message(run: Mapping[str, Any]) -> Message:
    """The end of a validation run: its verdict, or why it did not finish."""
    status = run.get("status")
    if status == "done":
        result = run.get("result") or {}
        verdict = result.get("verdict") or "The run finished without a verdict."
        headline = "The short run reproduced the problem." if result.get("reproduced") else "The short run is done."
        names = ", ".join(escape(e.get("name", "?")) for e in result.get("experiments", []))
        blocks = [section(f"*{headline}*\n{escape(clip(verdict, PROSE_LIMIT))}")]
        if names:
            blocks.append(context(f"Experiments: {clip(names, ITEM_LIMIT)}"))
        return Message(clip(f"{headline} {verdict}", ITEM_LIMIT), blocks)
    reason = run.get("error") or f"it ended as {status}"
    text = f"The short run did not finish: {clip(str(reason), PROSE_LIMIT)}"
    return Message(clip(text, ITEM_LIMIT), [section(escape(text))])
