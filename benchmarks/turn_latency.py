"""Per-turn latency of a diagnosis for 10, 100 and 1,000-epoch histories, next to a bare Flask endpoint.

    .venv/bin/python benchmarks/turn_latency.py [--repeats 60]

Both run in-process through Flask's test client in the same run, so the ratio cancels the
machine's speed. Aim: p99 <= 50 ms at 500 epochs.
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

from flask import Flask

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from assistant import create_app  # noqa: E402


def history(epochs: int) -> dict[str, list[float]]:
    """A plausible slowly-learning run with a validation gap opening half-way."""
    loss = [2.3 * math.exp(-3 * e / epochs) + 0.05 * math.sin(e) ** 2 for e in range(epochs)]
    val = [l + 0.002 * max(0, e - epochs // 2) for e, l in enumerate(loss)]
    return {"loss": loss, "val_loss": val, "accuracy": [min(0.99, 0.1 + e / epochs) for e in range(epochs)]}


def diagnosis(epochs: int) -> dict:
    """The body of a diagnosis turn with an ``epochs``-long history: what both benchmarks send."""
    return {"symptom": "my loss goes down slowly and val loss goes up", "metrics": history(epochs),
            "training": {"optimizer": "adam", "learning_rate": 0.001, "batch_size": 32}}


def percentiles(samples: list[float]) -> tuple[float, float]:
    """The median and the 99th percentile of durations in seconds, in milliseconds."""
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000


def timed(call, repeats: int) -> list[float]:
    call()  # warm caches (knowledge base, templates, validators)
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=60)
    args = parser.parse_args()

    bare = Flask("bare")
    bare.add_url_rule("/ping", "ping", lambda: {"ok": True}, methods=["POST"])
    bare_client = bare.test_client()
    base = timed(lambda: bare_client.post("/ping", json={"symptom": "x"}), args.repeats)
    p50, p99 = percentiles(base)
    print(f"{'bare Flask JSON endpoint':<34} p50 {p50:7.2f} ms   p99 {p99:7.2f} ms")

    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({"DATABASE_URL": f"sqlite:///{tmp}/bench.sqlite"})
        client = app.test_client()
        for epochs in (10, 100, 500, 1000):
            body = diagnosis(epochs)
            samples = timed(lambda: client.post("/api/v1/conversations", json=body), args.repeats)
            t50, t99 = percentiles(samples)
            print(f"{f'diagnosis turn, {epochs} epochs':<34} p50 {t50:7.2f} ms   p99 {t99:7.2f} ms"
                  f"   ({t50 / p50:5.1f}x bare p50)")


if __name__ == "__main__":
    main()
