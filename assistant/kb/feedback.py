"""Stored feedback as the knowledge-base tools read it, and moved between deployments as JSON lines.

A line is one conversation: its facts (key, value, source) and the feedback given on it (cause,
verdict, when). What the user wrote (the conversation's title, the notes quoting their words,
comments) leaves only when asked for (``with_text``), so that an export can be shared without it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any, Iterable, Iterator

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from .. import db

#: The owner of imported conversations: no API token holds it, so no user's list shows them.
IMPORTED_OWNER = "imported-feedback"
#: The title of an imported conversation that came without text.
IMPORTED_TITLE = "imported feedback"


@dataclass(frozen=True)
class Report:
    """One piece of feedback and what the conversation knew."""

    conversation: str
    cause: str
    fixed: bool
    #: The conversation's facts as stored (``Fact.as_dict``).
    facts: tuple[dict[str, Any], ...]


def stored(connection: Connection) -> list[Report]:
    """Every feedback report of the database, oldest first."""
    return [Report(row.conversation_id, row.cause_id, row.verdict == "fixed", tuple(row.facts))
            for row in db.stored_feedback(connection)]


def export(connection: Connection, out: IO[str], *, with_text: bool = False) -> int:
    """Write the database's feedback as JSON lines, one conversation a line; how many lines."""
    lines: dict[str, dict[str, Any]] = {}
    for row in db.stored_feedback(connection):
        line = lines.get(row.conversation_id)
        if line is None:
            facts = [dict(f) if with_text else {k: f[k] for k in ("key", "value", "source") if k in f}
                     for f in row.facts]
            line = lines[row.conversation_id] = {"conversation": row.conversation_id, "facts": facts, "feedback": []}
            if with_text:
                line["title"] = row.title
        given = {"cause": row.cause_id, "verdict": row.verdict, "created_at": row.created_at.isoformat()}
        if with_text and row.comment:
            given["comment"] = row.comment
        line["feedback"].append(given)
    for line in lines.values():
        out.write(json.dumps(line, ensure_ascii=False, allow_nan=False, default=str) + "\n")
    return len(lines)


class BadLine(ValueError):
    """A line of an import is not a conversation with feedback."""


def _lines(text: Iterable[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, raw in enumerate(text, 1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except ValueError as exc:
            raise BadLine(f"line {number}: not JSON: {exc}") from None
        feedback = line.get("feedback") if isinstance(line, dict) else None
        if (not isinstance(feedback, list) or not isinstance(line.get("conversation"), str)
                or not isinstance(line.get("facts"), list)
                or not all(isinstance(f, dict) and f.get("verdict") in ("fixed", "not_helpful")
                           and isinstance(f.get("cause"), str) for f in feedback)):
            raise BadLine(f"line {number}: not a conversation with facts and feedback (cause, verdict)")
        yield number, line


def import_lines(connection: Connection, text: Iterable[str]) -> tuple[int, int]:
    """Store exported conversations and their feedback; one already here (same id) is skipped.

    Returns (conversations imported, conversations skipped). Every line is checked before any is stored.
    """
    lines = [line for _, line in _lines(text)]
    c = db.conversations.c
    present = set(connection.execute(select(c.id).where(c.id.in_([line["conversation"] for line in lines]))).scalars())
    stamp, added = db.now(), 0
    for line in lines:
        if line["conversation"] in present:
            continue
        present.add(line["conversation"])
        connection.execute(insert(db.conversations).values(
            id=line["conversation"], owner=IMPORTED_OWNER, title=line.get("title") or IMPORTED_TITLE,
            created_at=stamp, updated_at=stamp, facts=line["facts"], declined=[]))
        for given in line["feedback"]:
            created = datetime.fromisoformat(given["created_at"]) if given.get("created_at") else stamp
            connection.execute(insert(db.feedback).values(
                conversation_id=line["conversation"], cause_id=given["cause"], verdict=given["verdict"],
                comment=given.get("comment"), created_at=created))
        added += 1
    return added, len(lines) - added
