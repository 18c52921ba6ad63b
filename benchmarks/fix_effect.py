"""What each cause's snippet achieves on a short run that has that cause's fault.

    .venv/bin/python benchmarks/fix_effect.py [--epochs 30] [--samples 400] [--task binary] [cause ...]

For each cause, the session of the snippet tests (``tests/test_snippets.py``: a small compiled
Keras model and its data, with the fault set up) is trained as the user trained it, for a few
epochs; then the cause's snippet, rendered for a conversation that knows the setup, runs in that
session with the same number of epochs. Printed: the validation accuracy and loss before and
after ("val accuracy 0.50 -> 0.86"). A snippet that only inspects (label noise) or finds its
cause does not apply says so instead.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import math
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests import test_snippets as snippets  # noqa: E402 (the session and the faults the snippet tests use)


def _scores(model: Any, x_val: Any, y_val: Any) -> dict[str, float]:
    """Validation loss, and accuracy where the model reports one."""
    scores = model.evaluate(x_val, y_val, verbose=0, return_dict=True)
    return {name: float(value) for name, value in scores.items() if name in ("loss", "accuracy")}


def effect(cause: str, task: str, epochs: int) -> tuple[dict[str, float], dict[str, float] | None, str]:
    """The scores of the faulty run, of the run the snippet made (None if it made none), and what it printed."""
    import keras

    fault = snippets.FAULTS[cause]
    setup = {**snippets.TASKS[task].setup, **fault.setup(task), "epochs": epochs}
    session = snippets.make_session(setup, fault.hidden_units)
    if fault.prepare:
        fault.prepare(session, setup)
    session.model.fit(session.x_train, session.y_train, epochs=epochs, batch_size=setup["batch_size"], verbose=0)
    before = _scores(session.model, session.x_val, session.y_val)
    code = snippets.render_snippet(snippets.KB, snippets.KB.causes[cause].snippet, snippets.conversation_values(setup))
    namespace = session.namespace()
    fits: list[Any] = []
    real_fit = keras.Model.fit

    def fit(self, *args, **kwargs):  # the same short budget as the faulty run
        fits.append(self)
        return real_fit(self, *args, **{**kwargs, "epochs": min(kwargs.get("epochs", 1), epochs), "verbose": 0})

    keras.Model.fit = fit
    try:
        with contextlib.redirect_stdout(io.StringIO()) as printed:
            exec(compile(code, f"<{cause} snippet>", "exec"), namespace)
    finally:
        keras.Model.fit = real_fit
    after = _scores(fits[-1], namespace["x_val"], namespace["y_val"]) if fits else None
    return before, after, printed.getvalue().strip().splitlines()[-1] if printed.getvalue().strip() else ""


def _shown(scores: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.3g}" if math.isfinite(value) else f"{name} {value}" for name, value in scores.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("causes", nargs="*", help="causes to run (default: all)")
    parser.add_argument("--epochs", type=int, default=30, help="for the faulty run and for the fix each")
    parser.add_argument("--samples", type=int, default=400, help="training examples (a quarter more validate)")
    parser.add_argument("--task", default="binary", choices=sorted(snippets.TASKS))
    args = parser.parse_args()
    snippets.N_TRAIN, snippets.N_VAL = args.samples, args.samples // 4
    for cause in args.causes or sorted(snippets.FAULTS):
        before, after, said = effect(cause, args.task, args.epochs)
        result = f"{_shown(before)} -> {_shown(after)}" if after else f"{_shown(before)}; no run: {said}"
        print(f"{cause}: {result}", flush=True)


if __name__ == "__main__":
    main()
