"""Block Kit messages for replies, single causes, run progress and verdicts: pure functions, so Slack's
limits and a phone's screen are checked by unit tests.

Slack refuses a message with a section over 3,000 characters or more than 50 blocks, and
a button whose text exceeds 75 characters or whose value exceeds 2,000. A reply is made for a
phone: what was read, the top cause with its evidence and fix, the other causes one line each,
at most two questions, three rows of buttons or so; a long snippet follows as a file. Every
Markdown text sent to Slack goes through :func:`mrkdwn`, fact keys are shown by their labels, and questions
whose wording names code are asked in their plain words (facts.yaml's ``plain``).
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from ...kb import KnowledgeBase

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
MAX_QUESTIONS = 2
MAX_CHOICES = 5
TITLE_LIMIT = 100
ITEM_LIMIT = 200
PROSE_LIMIT = 600
#: The notification text: what a phone shows before the message is opened.
NOTIFICATION_LIMIT = 150
#: A longer choice is one to type: a button cannot show it, and its value is never cut.
CHOICE_LIMIT = 40
#: The largest snippet shown inline: more lines, or wider ones, than a phone shows; a larger one is uploaded.
CODE_LINES = 12
CODE_COLUMNS = 60

_FENCE = "```"

#: No feedback given yet: cause → verdict on its fix.
NOTHING_RECORDED: Mapping[str, str] = MappingProxyType({})
#: Action ids of the buttons, which the bot's listeners match.
ANSWER = "answer"  # one per choice, numbered: answer-0, answer-1, ...
DONT_KNOW = "dont_know"
FIXED = "feedback_fixed"
NOT_HELPFUL = "feedback_not_helpful"
VALIDATE = "validate"
SHOW_FIX = "show_fix"
#: Block ids of the parts a click replaces in place: a question's buttons, the feedback buttons.
QUESTION_BLOCK = "question:"  # + the fact key
FEEDBACK_BLOCK = "feedback"
#: The validation run's form (a modal) and its inputs' action id.
RUN_FORM = "run_form"
RUN_INPUT = "value"


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


_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")
_ITALIC_STAR = re.compile(r"(?<![*\w])\*(?=[^*\s])([^*\n]+?)(?<=[^*\s])\*(?![*\w])")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*$")
_BULLET = re.compile(r"^(\s*)[-*+]\s+")
_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^)\s]+)\)")
_RULE = re.compile(r"^\s*(?:-{3,}|\*{3,}|_{3,})\s*$")


def mrkdwn(markdown: str) -> str:
    """Standard Markdown (the replies', the verdicts') as Slack's mrkdwn, escaped: the one converter for
    every Markdown text the bot sends. Code stays as it is; a fence loses its language name, which Slack shows."""
    out, in_code = [], False
    for line in markdown.splitlines():
        if line.lstrip().startswith(_FENCE):
            in_code = not in_code
            out.append(_FENCE)
            continue
        if in_code:
            out.append(escape(line))
            continue
        if _RULE.match(line):
            out.append("")
            continue
        parts = re.split(r"(`[^`\n]+`)", line)  # inline code is left alone
        for i in range(0, len(parts), 2):
            text = escape(parts[i])
            text = _LINK.sub(lambda m: f"<{m[2]}|{m[1]}>", text)
            text = _ITALIC_STAR.sub(r"_\1_", text)
            text = _BOLD.sub(r"*\1*", text)
            parts[i] = text
        for i in range(1, len(parts), 2):
            parts[i] = escape(parts[i])
        line = "".join(parts)
        line = _HEADING.sub(r"*\1*", line)
        line = _BULLET.sub(r"\1• ", line)
        out.append(line)
    return "\n".join(out).strip("\n")


def label(kb: KnowledgeBase, key: str) -> str:
    """How a person names a fact: its label in facts.yaml, or its key in words."""
    spec = kb.vocabulary.get(key)
    return (spec.label if spec is not None and spec.label else None) or key.replace("_", " ")


def humane(kb: KnowledgeBase, text: str) -> str:
    """``text`` with every fact key written out as its label ("learning_rate" → "learning rate")."""
    return re.sub(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b",
                  lambda m: label(kb, m[0]) if m[0] in kb.vocabulary else m[0], text)


def question(kb: KnowledgeBase, fact: str, asked: str) -> str:
    """How the bot asks for ``fact``: its plain words in facts.yaml where the question ``asked`` names code
    (``np.isnan(x_train).mean()`` means nothing on a phone), with fact keys written as labels."""
    return humane(kb, kb.facts.get(fact, {}).get("plain", asked))


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, marked with an ellipsis where it was cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def section(text: str, accessory: dict[str, Any] | None = None, block_id: str | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, SECTION_LIMIT)}}
    if accessory is not None:
        block["accessory"] = accessory
    if block_id is not None:
        block["block_id"] = block_id
    return block


def context(text: str, block_id: str | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(text, SECTION_LIMIT)}]}
    if block_id is not None:
        block["block_id"] = block_id
    return block


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


def actions(*elements: dict[str, Any], block_id: str | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "actions", "elements": list(elements)}
    if block_id is not None:
        block["block_id"] = block_id
    return block


def sections(text: str) -> list[dict[str, Any]]:
    """Long mrkdwn as sections, split between lines (at a paragraph where one is near) so that none is cut."""
    blocks, chunk = [], ""
    for line in text.split("\n"):
        if chunk and len(chunk) + 1 + len(line) > SECTION_LIMIT:
            blocks.append(section(chunk.strip("\n")))
            chunk = ""
        chunk = f"{chunk}\n{line}" if chunk else line
        if not line and len(chunk) > SECTION_LIMIT / 2:  # a paragraph ends past half a section: a good place
            blocks.append(section(chunk.strip("\n")))
            chunk = ""
    if chunk.strip():
        blocks.append(section(chunk.strip("\n")))
    return blocks


def placeholder(text: str) -> Message:
    """The message a turn posts at once, which its reply replaces."""
    return Message(text, [context(f"_{escape(text)}_")])


# --- A reply -------------------------------------------------------------------------------------


def _code(cause: Mapping[str, Any]) -> tuple[list[dict[str, Any]], Snippet | None]:
    """The cause's snippet in a code block when a phone shows it whole, else a line saying it follows as a file."""
    code = cause["snippet"]["code"].rstrip()
    lines = code.splitlines()
    if len(lines) <= CODE_LINES and max(map(len, lines), default=0) <= CODE_COLUMNS and _FENCE not in code:
        return [section(f"{_FENCE}\n{escape(code)}\n{_FENCE}")], None
    snippet = Snippet(f"{cause['id']}.py", f"Fix: {clip(cause['title'], TITLE_LIMIT)}", code + "\n")
    return [context(f"The code for this fix ({len(lines)} lines) follows as a file.")], snippet


def _top(kb: KnowledgeBase, cause: Mapping[str, Any], uncertain: bool) -> list[dict[str, Any]]:
    """The leading cause: its confidence, its evidence and its fix in one section."""
    head = "Likeliest so far" if uncertain else "Most likely"
    lines = [f"*{head}: {escape(clip(cause['title'], TITLE_LIMIT))}*  ·  {cause['confidence']:.0%}"]
    lines += [f"• {escape(clip(humane(kb, item), ITEM_LIMIT))}" for item in cause["evidence"][:MAX_EVIDENCE]]
    lines.append(f"*Fix:* {escape(clip(humane(kb, cause['fix']), PROSE_LIMIT))}")
    if cause.get("effect"):
        lines.append(f"_{escape(cause['effect'])}_")
    return [section("\n".join(lines))]


def feedback_buttons(cause: Mapping[str, Any]) -> dict[str, Any]:
    """"This fixed it" and "Didn't help" for one cause's fix; replaced by what was recorded once clicked."""
    return actions(button("This fixed it", FIXED, cause["id"], style="primary"),
                   button("Didn't help", NOT_HELPFUL, cause["id"]), block_id=FEEDBACK_BLOCK)


def feedback_note(title: str, verdict: str, user: str | None = None) -> str:
    """What was recorded on a cause's fix (``fixed`` or ``not_helpful``), and by whom when known."""
    by = f" (<@{user}>)" if user else ""
    outcome = "worked" if verdict == "fixed" else "did not help"
    return f"✓ Recorded: the fix for *{escape(clip(title, TITLE_LIMIT))}* {outcome}{by}."


def feedback_row(cause: Mapping[str, Any], recorded: Mapping[str, str]) -> dict[str, Any]:
    """The feedback buttons of the cause's fix, or what was recorded on it already (``recorded``: cause → verdict),
    so that no reply offers them again for a cause that was given feedback."""
    verdict = recorded.get(cause["id"])
    return feedback_buttons(cause) if verdict is None else context(feedback_note(cause["title"], verdict))


def cause_lines(causes: Iterable[Mapping[str, Any]], first_rank: int) -> list[dict[str, Any]]:
    """One line per cause with a "Show the fix" button, which posts that cause's evidence and fix."""
    return [section(f"{rank}. {escape(clip(cause['title'], TITLE_LIMIT))}  ·  {cause['confidence']:.0%}",
                    accessory=button("Show the fix", SHOW_FIX, cause["id"]))
            for rank, cause in enumerate(causes, first_rank)]


def _questions(kb: KnowledgeBase, questions: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each question with its choices as buttons, or a line asking to type the answer."""
    blocks = []
    for n, asked in enumerate(questions):
        text = escape(clip(question(kb, asked["fact"], asked["text"]), ITEM_LIMIT))
        if n == 0:
            text = f"*It would help to know:* {text}"
        choices = [choice for choice in asked.get("choices", []) if len(choice) <= CHOICE_LIMIT][:MAX_CHOICES]
        if not choices:
            blocks.append(section(f"{text}\n_Type the answer here._"))
            continue
        blocks.append(section(text))
        blocks.append(actions(*(
            button(choice, f"{ANSWER}-{i}", json.dumps({"fact": asked["fact"], "choice": choice}))
            for i, choice in enumerate(choices)
        ), block_id=QUESTION_BLOCK + asked["fact"]))
    return blocks


def notification(reply: Mapping[str, Any]) -> str:
    """What a phone's notification says: the cause and its first piece of evidence, or what would tell."""
    causes, questions = reply["causes"], reply["questions"]
    if not causes:
        return "I need more to go on: what the loss and accuracy do, or the training log."
    top = causes[0]
    if reply.get("uncertain"):
        names = ", ".join(c["title"] for c in causes[:3])
        asks = f"; {len(questions[:MAX_QUESTIONS])} quick question(s) would tell them apart" if questions else ""
        return clip(f"Can't tell yet between {names}{asks}.", NOTIFICATION_LIMIT)
    seen = [*top["evidence"], *reply.get("readings", ())]
    why = f": {seen[0]}" if seen else ""
    return clip(f"Most likely {top['title']}{why}", NOTIFICATION_LIMIT)


def reply_message(kb: KnowledgeBase, reply: Mapping[str, Any], *, runs: bool, note: str | None = None,
                  recorded: Mapping[str, str] = NOTHING_RECORDED) -> Message:
    """The reply as a thread message, for a phone.

    ``runs`` offers the "Validate with a short run" button; ``note`` (mrkdwn) says what the
    reply answers, e.g. the answer someone clicked; ``recorded`` is the feedback given already.
    Over the budget, the other causes and then the second question are left out; the top cause
    and first question always fit.
    """
    others = list(reply["causes"][1:MAX_CAUSES])
    questions = list(reply["questions"][:MAX_QUESTIONS])
    while True:
        message = _reply_message(kb, reply, others, questions, runs=runs, note=note, recorded=recorded)
        if len(json.dumps(message.blocks)) <= MESSAGE_BUDGET or not (others or len(questions) > 1):
            return message
        (others if others else questions).pop()


def _reply_message(kb: KnowledgeBase, reply: Mapping[str, Any], others: Sequence[Mapping[str, Any]],
                   questions: Sequence[Mapping[str, Any]], *, runs: bool, note: str | None,
                   recorded: Mapping[str, str]) -> Message:
    blocks = [context(clip(note, ITEM_LIMIT))] if note else []
    if reply.get("readings"):
        seen = "; ".join(reply["readings"])
        blocks.append(section(f"*What I see:* {escape(clip(humane(kb, seen), PROSE_LIMIT))}"))
    if not reply["causes"]:
        blocks.append(section("I found no likely cause yet. Tell me more here: what the loss and accuracy do, "
                              "or share the CSVLogger file or the console log."))
        return Message(notification(reply), blocks)
    top = reply["causes"][0]
    blocks += _top(kb, top, bool(reply.get("uncertain")))
    code, snippet = _code(top)
    blocks += [*code, feedback_row(top, recorded)]
    if others:
        blocks += [context("*Also possible:*"), *cause_lines(others, 2)]
    blocks += _questions(kb, questions)
    row = [button("I don't know these", DONT_KNOW)] if questions else []
    if runs:
        row.append(button("Validate with a short run", VALIDATE, style="primary"))
    if row:
        blocks.append(actions(*row))
    return Message(notification(reply), blocks, snippet)


def cause_message(kb: KnowledgeBase, cause: Mapping[str, Any],
                  recorded: Mapping[str, str] = NOTHING_RECORDED) -> Message:
    """One cause asked for by "Show the fix": its evidence, its fix and its snippet, and the feedback buttons
    (or what was recorded already)."""
    lines = [f"*{escape(clip(cause['title'], TITLE_LIMIT))}*  ·  {cause['confidence']:.0%}"]
    lines += [f"• {escape(clip(humane(kb, item), ITEM_LIMIT))}" for item in cause["evidence"][:MAX_EVIDENCE]]
    lines.append(f"*Why:* {escape(clip(humane(kb, cause['explanation']), PROSE_LIMIT))}")
    lines.append(f"*Fix:* {escape(clip(humane(kb, cause['fix']), PROSE_LIMIT))}")
    code, snippet = _code(cause)
    return Message(clip(f"The fix for {cause['title']}", NOTIFICATION_LIMIT),
                   [section("\n".join(lines)), *code, feedback_row(cause, recorded)], snippet)


# --- Clicks settled in place ---------------------------------------------------------------------


def replaced(message_blocks: Sequence[Mapping[str, Any]], block_id: str,
             by: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The blocks of a posted message with the one of ``block_id`` replaced by ``by`` (or dropped)."""
    return [dict(block) if block.get("block_id") != block_id else by for block in message_blocks
            if block.get("block_id") != block_id or by is not None]


def feedback_given(message_blocks: Sequence[Mapping[str, Any]], cause: str,
                   by: dict[str, Any]) -> list[dict[str, Any]]:
    """The blocks with the feedback buttons of ``cause``'s fix replaced by ``by`` (what was recorded); those of
    another cause, in a message that shows several, stay."""
    return [by if block.get("block_id") == FEEDBACK_BLOCK and any(
        element.get("value") == cause for element in block.get("elements", ())) else dict(block)
        for block in message_blocks]


def without_questions(message_blocks: Sequence[Mapping[str, Any]], note: str) -> list[dict[str, Any]]:
    """The blocks with every question's buttons and "I don't know these" taken off, and ``note`` after them."""
    out = []
    for block in message_blocks:
        if str(block.get("block_id", "")).startswith(QUESTION_BLOCK):
            continue
        if block.get("type") == "actions":
            kept = [e for e in block["elements"] if e.get("action_id") != DONT_KNOW]
            if len(kept) < len(block["elements"]):
                out.append(context(note))
                if not kept:
                    continue
            block = {**block, "elements": kept}
        out.append(dict(block))
    return out


def without_button(message_blocks: Sequence[Mapping[str, Any]], value: str) -> list[dict[str, Any]]:
    """The blocks with the "Show the fix" button of one cause taken off, once its fix is shown."""
    out = []
    for block in message_blocks:
        accessory = block.get("accessory", {})
        if accessory.get("action_id") == SHOW_FIX and accessory.get("value") == value:
            block = {key: item for key, item in block.items() if key != "accessory"}
        out.append(dict(block))
    return out


# --- A validation run ----------------------------------------------------------------------------


def run_form(kb: KnowledgeBase, fields: Sequence[tuple[str, Any, bool]], metadata: str,
             assumed: Sequence[str]) -> dict[str, Any]:
    """The modal that asks every fact a run needs at once: ``(key, known value, required)`` per field.

    A known value is filled in; a named fact with choices is a menu, a number is typed. ``assumed`` says what the run takes
    for facts left empty, so that defaults show as such.
    """
    inputs = []
    for key, value, required in fields:
        spec = kb.facts.get(key, {})
        choices = [str(c) for c in spec.get("choices", ())] if spec.get("type") not in ("number", "integer") else []
        if value is not None and str(value) not in choices and choices:
            choices.append(str(value))
        if choices:
            element: dict[str, Any] = {"type": "static_select", "action_id": RUN_INPUT, "options": [
                {"text": {"type": "plain_text", "text": clip(choice, BUTTON_TEXT_LIMIT)}, "value": choice}
                for choice in choices[:100]]}
            if value is not None:
                element["initial_option"] = next(o for o in element["options"] if o["value"] == str(value))
        else:
            element = {"type": "plain_text_input", "action_id": RUN_INPUT}
            if value is not None:
                element["initial_value"] = str(value)
        block = {"type": "input", "block_id": key, "optional": not required, "element": element,
                 "label": {"type": "plain_text", "text": clip(label(kb, key).capitalize(), 2000)}}
        if "question" in spec:
            block["hint"] = {"type": "plain_text", "text": clip(question(kb, key, spec["question"]), 2000)}
        inputs.append(block)
    note = ("Run notes, with what is filled in now: " + "; ".join(assumed) + "." if assumed else
            "Fields left empty are assumed, and the verdict says what was.")
    return {"type": "modal", "callback_id": RUN_FORM, "private_metadata": metadata,
            "title": {"type": "plain_text", "text": "Validate with a run"},
            "submit": {"type": "plain_text", "text": "Start the run"},
            "close": {"type": "plain_text", "text": "Cancel"},
            "blocks": [section("A short run trains your setup and the fixes of the leading causes for a few "
                               "epochs. Check what I know about your setup:"), *inputs,
                       context(escape(humane(kb, note)))]}


def progress_message(run: Mapping[str, Any], user: str | None = None) -> Message:
    """The run's one message while it trains: who started it and how far it is."""
    progress = run.get("progress") or {}
    who = f"<@{user}> started a short run. " if user else ""
    if run.get("status") == "queued":
        state = "Waiting for a worker…"
    elif progress.get("epochs"):  # epochs of all the run's experiments together
        state = f"Training: {progress.get('epoch', 0) / progress['epochs']:.0%} done…"
    else:
        state = "Training…"
    text = f"{who}{state} I will put the verdict here."
    return Message(clip(text, NOTIFICATION_LIMIT), [context(text)])


def run_message(kb: KnowledgeBase, run: Mapping[str, Any]) -> Message:
    """The end of a validation run: its verdict whole (what was reproduced and why, each fix's effect,
    the checks, the assumptions), or why it did not finish."""
    status = run.get("status")
    if status == "done":
        result = run.get("result") or {}
        verdict = result.get("verdict") or "The run finished without a verdict."
        headline = "The short run reproduced the problem." if result.get("reproduced") else "The short run is done."
        blocks = [section(f"*{headline}*"), *sections(humane(kb, mrkdwn(verdict)))]
        first = re.sub(r"[*_`]", "", verdict.split("\n", 1)[0])
        return Message(clip(f"{headline} {first}", NOTIFICATION_LIMIT), blocks)
    reason = run.get("error") or f"it ended as {status}"
    text = f"The short run did not finish: {clip(str(reason), PROSE_LIMIT)}"
    return Message(clip(text, NOTIFICATION_LIMIT), [section(escape(text))])


def ranking_message(causes: Sequence[Mapping[str, Any]]) -> Message:
    """The causes re-ranked on what the run measured, after its verdict and plot."""
    shown = list(causes[:MAX_CAUSES])
    if not shown:
        return Message("No cause stands out after the run.", [section("No cause stands out after the run.")])
    return Message(clip(f"After the run, most likely: {shown[0]['title']}", NOTIFICATION_LIMIT),
                   [section("*Re-ranked with what the run measured:*"), *cause_lines(shown, 1)])
