"""Whether slow file downloads hold up another user's reply in Slack, for a few sizes of the bot's thread pool.

    .venv/bin/python benchmarks/slack_workers.py [--slow 8] [--delay 6] [--workers 2 8]

Turns with files run in a pool of their own (``SLACK_DOWNLOAD_WORKERS``, left at its default here).
For each size of the turns' pool (``SLACK_WORKERS``), ``--slow`` people share a file in a thread of their own whose download takes
``--delay`` seconds (Slack's file server, played by the loopback Web API of the tests), and right
after them someone else mentions the bot with a plain question. Printed: when each one's
"Looking at…" message appeared and when its reply replaced it, counted from the moment the events
were sent. Signed events go through the Flask app as Slack sends them; the Web API calls are real
HTTP on 127.0.0.1.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from assistant import create_app  # noqa: E402
from assistant.channels import slack  # noqa: E402
from tests.channels.slack_web_api import BOT_USER, TEAM, TOKEN, SlackWebApi, signed  # noqa: E402

SECRET = "benchmark-signing-secret"
CHANNEL = "C0BENCH"
CSV = "epoch,loss,val_loss\n" + "".join(f"{e},0.6931,0.6932\n" for e in range(6))


def event(n: int, text: str, **extra: object) -> str:
    """A signed app_mention in a thread of its own, numbered ``n``."""
    ts = f"1700000000.{n:06d}"
    return json.dumps({"token": "unused", "team_id": TEAM, "api_app_id": "A0", "type": "event_callback",
                       "event_id": f"Ev{n}", "event_time": int(time.time()),
                       "event": {"type": "app_mention", "user": f"U{n:04d}", "text": f"<@{BOT_USER}> {text}",
                                 "ts": ts, "channel": CHANNEL, "event_ts": ts, **extra}})


def timings(api: SlackWebApi, sent: float, ts: str) -> tuple[float | None, float | None]:
    """Seconds from ``sent`` to the turn's "Looking at…" message in thread ``ts``, and to its reply."""
    posted = next((c for c in api.received("chat.postMessage") if c.args.get("thread_ts") == ts), None)
    if posted is None:
        return None, None
    updated = next((c for c in api.received("chat.update") if c.args["ts"] == posted.response["ts"]), None)
    return posted.at - sent, None if updated is None else updated.at - sent


def measure(workers: int, slow: int, delay: float) -> None:
    api = SlackWebApi().start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            app = create_app({"DATABASE_URL": f"sqlite:///{tmp}/bench.sqlite", "SLACK_BOT_TOKEN": TOKEN,
                              "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": api.url, "SLACK_WORKERS": workers,
                              "REPRO_BACKEND": "off", "REPRO_SWEEP": False})
            client = app.test_client()
            bodies = [event(n, "here is my training log", subtype="file_share",
                            files=[api.share(f"slow-{n}.csv", CSV.encode(), delay=delay)]) for n in range(1, slow + 1)]
            bodies.append(event(slow + 1, "my loss stays at 0.693 and accuracy at 50%"))
            warm_up = event(0, "my loss is nan after epoch 3")  # auth.test, the knowledge base's caches
            client.post("/slack/events", data=warm_up, content_type="application/json", headers=signed(warm_up, SECRET))
            api.wait_for("chat.update", 1, timeout=60)
            sent = time.monotonic()
            for body in bodies:
                client.post("/slack/events", data=body, content_type="application/json", headers=signed(body, SECRET))
            api.wait_for("chat.update", len(bodies) + 1, timeout=slow * delay + 60)
            app.extensions[slack.EXTENSION].close()
            slow_turns = [timings(api, sent, f"1700000000.{n:06d}") for n in range(1, slow + 1)]
            plain = timings(api, sent, f"1700000000.{slow + 1:06d}")
    finally:
        api.close()
    shown = statistics.median(t[0] for t in slow_turns)
    done = statistics.median(t[1] for t in slow_turns)
    print(f"{workers:>7}   {slow:>4} x {delay:.0f} s   {shown * 1000:8.0f} ms {done * 1000:9.0f} ms"
          f"   {plain[0] * 1000:8.0f} ms {plain[1] * 1000:9.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slow", type=int, default=8, help="file shares with a slow download")
    parser.add_argument("--delay", type=float, default=6.0, help="seconds each slow download takes")
    parser.add_argument("--workers", type=int, nargs="+", default=[2, slack.DEFAULTS["SLACK_WORKERS"]])
    args = parser.parse_args()
    print(f"SLACK_DOWNLOAD_WORKERS={slack.DEFAULTS['SLACK_DOWNLOAD_WORKERS']}; times from sending the events")
    print("workers   slow files   file turns (median):   shown     replied   plain mention:   shown     replied")
    for workers in args.workers:
        measure(workers, args.slow, args.delay)


if __name__ == "__main__":
    main()
