"""Load on loopback under gunicorn (8 workers), on SQLite and on PostgreSQL: 1,000 conversations at
once, three turns each, and one worker killed with SIGKILL while the load runs.

The client acts as a careful one would: a request whose connection breaks may or may not have
been served, so it looks at the conversation before sending the turn again (and starts a lost
conversation anew under a new marker). Afterwards the database must hold every acknowledged turn
exactly once, no turn twice, and every transcript must alternate user and assistant turns
without a gap.
"""
from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from assistant import db
from benchmarks.loopback import Client, ConnectionLost, gunicorn

pytestmark = [pytest.mark.load, pytest.mark.services]

CONVERSATIONS = 1_000
TURNS = 3
WORKERS = 8
#: The share of all turns acknowledged when a worker is killed.
KILL_AT = 0.3
#: How long a client waits after a broken connection before it looks whether its turn landed.
SETTLE = 1.0
ATTEMPTS = 6
API = "/api/v1/conversations"
MARKER = re.compile(r"^\[(load-\d+-\d+(?:-again\d+)?)\]")
HISTORY = {"loss": [2.31, 1.9, 4.7, 9.8, float("nan"), float("nan")], "accuracy": [0.4, 0.5, 0.3, 0.2, 0.1, 0.1]}


@dataclass
class Tally:
    acknowledged: set[str] = field(default_factory=set)
    broken: int = 0
    unexpected: list[str] = field(default_factory=list)
    killed: int | None = None


async def converse(port: int, number: int, tally: Tally) -> None:
    """One person's conversation: a start and two further turns, each acknowledged before the next."""
    client, conversation = Client(port), None
    for turn in range(TURNS):
        marker = f"load-{number}-{turn}"
        for attempt in range(1, ATTEMPTS + 1):
            if conversation is None:
                path, body = API, {"symptom": f"[{marker}] loss is nan after epoch 5", "metrics": HISTORY,
                                   "training": {"optimizer": "adam", "learning_rate": 0.5}}
            else:
                path, body = f"{API}/{conversation}/turns", {"text": f"[{marker}] batch size 32",
                                                             "facts": {"batch_size": 32 + turn}}
            try:
                response = await client.send("POST", path, body)
            except ConnectionLost:
                tally.broken += 1
                await asyncio.sleep(SETTLE)
                if conversation is None:  # its id never came back: start again, under a marker of its own
                    marker = f"load-{number}-{turn}-again{attempt}"
                    continue
                if marker in await user_markers(client, conversation):
                    break
                continue
            if response.status in (200, 201):
                conversation = conversation or response.json()["id"]
                break
            tally.unexpected.append(f"{marker}: {response.status} {response.body[:200]!r}")
            return
        else:
            tally.unexpected.append(f"{marker}: no answer in {ATTEMPTS} attempts")
            return
        tally.acknowledged.add(marker)
    await client.close()


async def user_markers(client: Client, conversation: str) -> set[str]:
    for _ in range(ATTEMPTS):
        try:
            response = await client.send("GET", f"{API}/{conversation}")
        except ConnectionLost:
            await asyncio.sleep(SETTLE)
            continue
        return {found[1] for turn in response.json()["turns"] if turn["role"] == "user"
                and (found := MARKER.match(turn["body"].get("symptom") or turn["body"].get("text") or ""))}
    raise AssertionError(f"conversation {conversation} could not be read")


async def kill_a_worker(server, tally: Tally) -> None:
    """SIGKILL the worker holding the most connections once a share of the turns is acknowledged.

    The kernel spreads connections unevenly: with a burst of them, two or three workers may accept
    nearly all while the rest hold none, and killing one of those would prove nothing.
    """
    while len(tally.acknowledged) < KILL_AT * CONVERSATIONS * TURNS:
        await asyncio.sleep(0.05)
    tally.killed = max(server.workers(), key=sockets_held)
    os.kill(tally.killed, signal.SIGKILL)


def sockets_held(pid: int) -> int:
    """How many sockets a process holds open, its listening one included."""
    held = 0
    for descriptor in Path(f"/proc/{pid}/fd").iterdir():
        try:
            held += os.readlink(descriptor).startswith("socket:")
        except OSError:
            continue  # closed while it was read
    return held


async def load(server) -> Tally:
    tally = Tally()
    killer = asyncio.create_task(kill_a_worker(server, tally))
    await asyncio.gather(*(converse(server.port, number, tally) for number in range(CONVERSATIONS)))
    killer.cancel()
    return tally


def stored(database_url: str) -> dict[str, list[tuple[int, str, str | None]]]:
    """Every conversation's turns as (seq, role, marker of a user turn), read from the database itself."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(select(db.turns.c.conversation_id, db.turns.c.seq, db.turns.c.role,
                                             db.turns.c.body).order_by(db.turns.c.conversation_id, db.turns.c.seq))
            turns: dict[str, list[tuple[int, str, str | None]]] = {}
            for row in rows:
                said = (row.body.get("symptom") or row.body.get("text") or "") if row.role == "user" else ""
                found = MARKER.match(said)
                turns.setdefault(row.conversation_id, []).append((row.seq, row.role, found and found[1]))
    finally:
        engine.dispose()
    return turns


def test_a_thousand_conversations_at_once_lose_nothing_when_a_worker_dies(database_url, tmp_path):
    environ = {"ASSISTANT_DATABASE_URL": database_url, "ASSISTANT_RATELIMIT_ENABLED": "false",
               "ASSISTANT_REPRO_BACKEND": "off", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}
    started = time.monotonic()
    with gunicorn(environ, tmp_path / "gunicorn.log", workers=WORKERS) as server:
        tally = asyncio.run(load(server))
        replaced = server.wait_for_workers(WORKERS)
    seconds = time.monotonic() - started

    assert not tally.unexpected, tally.unexpected[:10]
    assert tally.killed is not None and tally.killed not in replaced  # gunicorn replaced the dead worker
    assert tally.broken > 0, "the killed worker held no request: the kill proved nothing"
    turns = stored(database_url)
    for conversation, rows in turns.items():
        assert [seq for seq, _, _ in rows] == list(range(1, len(rows) + 1)), conversation
        assert [role for _, role, _ in rows] == ["user", "assistant"] * (len(rows) // 2), conversation
    markers = Counter(marker for rows in turns.values() for _, _, marker in rows if marker)
    assert not [marker for marker, count in markers.items() if count > 1], "turns stored twice"
    assert tally.acknowledged <= set(markers), f"lost: {sorted(tally.acknowledged - set(markers))[:10]}"
    finished = [marker for marker in tally.acknowledged if re.fullmatch(rf"load-\d+-{TURNS - 1}", marker)]
    assert len(finished) == CONVERSATIONS
    print(f"\n{CONVERSATIONS} conversations x {TURNS} turns on {database_url.split(':')[0]}, {WORKERS} workers: "
          f"{len(tally.acknowledged)} turns acknowledged, {tally.broken} requests broken by the SIGKILL of worker "
          f"{tally.killed}, {sum(markers.values())} user turns stored in {len(turns)} conversations, {seconds:.0f} s")
