"""What the live callback costs a training run: epoch time with it, over epoch time without it.

    .venv/bin/python benchmarks/callback_overhead.py [--rounds 7] [--epochs 8] [--server-nice 19]

A short real fit (a small dense regression, about a fifth of a second an epoch here) runs
without the callback, with it against the service on loopback (served by werkzeug in a
subprocess), and with it against a port where nothing listens. The server runs at the lowest
CPU priority (``--server-nice``, 19): it stands for a service on another machine, and what is
measured is what the callback costs the training process, not the server's reasoning (about
25 ms of CPU per epoch here) taking one of the same two cores; ``--server-nice 0`` measures that
too. The settings take turns, ``--rounds`` times and in a rotating order, so that other load on
the machine falls on all of them alike: each round gives each setting's median time between
epoch ends (the first epoch, which traces, left out) over the same round's without, and the
figure is the median of the rounds' ratios. The process's CPU seconds per epoch, which other
load disturbs less, are given the same way. The last line: ``callback epoch-time ratio  U
(service up)  D (service down)``. Aim: both <= 1.02.
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def serve(port: int, database: str) -> None:
    """The service on 127.0.0.1:``port``, threaded, until killed (the subprocess's whole work)."""
    from werkzeug.serving import make_server

    from assistant import create_app

    app = create_app({"DATABASE_URL": f"sqlite:///{database}", "API_TOKENS": []})
    make_server("127.0.0.1", port, app, threaded=True).serve_forever()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(f"{url}/healthz", timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def epoch_seconds(callbacks: list, epochs: int) -> tuple[float, float]:
    """A fresh fit's median wall and process-CPU seconds between epoch ends (the first epoch, tracing, left out)."""
    import keras
    import numpy as np

    ends: list[tuple[float, float]] = []

    class Clock(keras.callbacks.Callback):  # last in the list, so the others' epoch-end work is inside
        def on_epoch_end(self, epoch, logs=None):
            ends.append((time.perf_counter(), time.process_time()))

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4096, 32)).astype("float32")
    y = (x @ rng.normal(size=32)).astype("float32")
    model = keras.Sequential([keras.Input((32,)), keras.layers.Dense(64, activation="relu"),
                              keras.layers.Dense(64, activation="relu"), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the service-down setting warns once, by design
        model.fit(x, y, validation_split=0.2, epochs=epochs, batch_size=64, verbose=0, callbacks=[*callbacks, Clock()])
    return tuple(statistics.median(b[i] - a[i] for a, b in zip(ends, ends[1:])) for i in (0, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--server-nice", type=int, default=19)
    parser.add_argument("--serve", nargs=2, metavar=("PORT", "DATABASE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(int(args.serve[0]), args.serve[1])
        return
    from assistant.client import Client

    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        server = subprocess.Popen([sys.executable, __file__, "--serve", str(port), f"{folder}/live.sqlite"],
                                  cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  preexec_fn=lambda: os.nice(args.server_nice),
                                  env={**os.environ, "ASSISTANT_REPRO_BACKEND": "off"})
        try:
            up = f"http://127.0.0.1:{port}"
            wait_until_up(up)
            with socket.socket() as parked:  # bound and not listening: connecting is refused
                parked.bind(("127.0.0.1", 0))
                down = f"http://127.0.0.1:{parked.getsockname()[1]}"
                settings = {"none": lambda: [], "up": lambda: [Client(up).callback()],
                            "down": lambda: [Client(down).callback()]}
                order = list(settings)
                rounds: list[dict[str, tuple[float, float]]] = []
                epoch_seconds([], 2)  # warm Keras up before anything is timed
                for number in range(args.rounds):
                    turn = order[number % 3:] + order[:number % 3]
                    rounds.append({name: epoch_seconds(settings[name](), args.epochs) for name in turn})
        finally:
            server.kill()
            server.wait()
    for i, what in enumerate(("wall", "CPU")):
        seconds = {name: statistics.median(r[name][i] for r in rounds) for name in ("none", "up", "down")}
        print(f"epoch {what} seconds (median)  without {seconds['none']:.4f}  service up {seconds['up']:.4f}  "
              f"service down {seconds['down']:.4f}")
    ratio = {name: [statistics.median(r[name][i] / r["none"][i] for r in rounds) for i in (0, 1)]
             for name in ("up", "down")}
    print(f"callback epoch-CPU ratio  {ratio['up'][1]:.3f} (service up)  {ratio['down'][1]:.3f} (service down)")
    print(f"callback epoch-time ratio  {ratio['up'][0]:.3f} (service up)  {ratio['down'][0]:.3f} (service down)")


if __name__ == "__main__":
    main()
