"""What each cause's snippet achieves on a short run that has that cause's fault.

    .venv/bin/python benchmarks/fix_effect.py [--epochs 30] [--samples 400] [--write] [cause ...]

For each cause, the session of the snippet tests (``tests/test_snippets.py``: a small compiled
Keras model and its data, with the fault set up) is trained as the user trained it; then the
cause's snippet, rendered for a conversation that knows the setup, runs in that session with the
same number of epochs (the fault's own, where that is the fault, and the snippet's up to the usual
where too few were). Where the snippet tests' fault is too mild to hurt such a run (they check what
a snippet changes, not that the fault shows), ``SCENARIOS`` makes it as users meet it. The fix is
the model the snippet leaves as ``model``: a new one, or the user's own trained further.

Printed per cause: the validation scores before and after ("accuracy 0.5, loss 0.69 -> accuracy
0.92, loss 0.21"; for a regression the mean absolute error in the user's units), seconds per epoch
where speed is the point, and a verdict: ``better`` (accuracy, or the score the cause is judged by,
up by a point, or within ``NOISE`` of it with a loss 5% lower under the same loss; a NaN run made
finite; a mean absolute error 5% lower; for speed, epochs 20% faster and as accurate), ``not
better``, or ``inspects`` for a snippet that leaves the user's model as it was (it measures, or
tries a change and keeps it only if validation improves). Last, one line:
``fixes better on their own fault  N of M (K inspect)``. With ``--write``, the fixes that were
better go to ``knowledge/effects.yaml``, from which a reply says what the fix achieved.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import yaml
from sklearn.metrics import balanced_accuracy_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assistant.kb.loader import EFFECTS_PATH  # noqa: E402
from tests import test_snippets as snippets  # noqa: E402 (the session and the faults the snippet tests use)


def _dead_units(session: snippets.Session, setup: dict[str, Any]) -> None:
    """Hidden biases so negative that every ReLU unit outputs zero for every input: no gradient reaches them."""
    for layer in session.model.layers[:-1]:
        if getattr(layer, "bias", None) is not None:
            layer.bias.assign(np.full(layer.bias.shape, -50.0, dtype="float32"))


def _blown_up_kernels(session: snippets.Session, setup: dict[str, Any]) -> None:
    """Kernels drawn with a standard deviation of 1 (twenty times random_normal's): through six ReLU layers of
    8 units the signal, and the gradient, double layer after layer; the first epoch's loss reaches 1e13."""
    for layer in session.model.layers:
        if getattr(layer, "kernel", None) is not None:
            layer.kernel.assign(layer.kernel.numpy() * 20)


def _flipped_labels(session: snippets.Session, setup: dict[str, Any]) -> None:
    """A quarter of the training labels replaced by another class; validation labels stay right."""
    rng = np.random.default_rng(1)
    flipped = rng.random(len(session.y_train)) < 0.25
    classes = setup["output_units"] if setup["output_units"] > 1 else 2
    y = np.asarray(session.y_train).copy()
    if y.ndim > 1:
        y[flipped] = np.roll(y[flipped], 1, axis=-1)
    else:
        y[flipped] = (y[flipped] + 1) % classes
    session.y_train = y


@dataclass(frozen=True)
class Scenario:
    """A fault as it hurts a short run: the task it applies to, setup and session changes, what to compare."""

    task: str = "binary"
    setup: dict[str, Any] = field(default_factory=dict)
    prepare: Callable[[snippets.Session, dict[str, Any]], None] | None = None
    speed: bool = False
    #: The score that tells: accuracy (mean absolute error for a regression) unless the cause says otherwise.
    judge: str | None = None
    hidden_units: int | None = None


#: Causes whose snippet-test fault leaves a short run of this easy task unhurt, or that apply to another task.
SCENARIOS = {
    "batch_size_too_small": Scenario(speed=True),
    # With one class nine times the other, accuracy rewards ignoring the rare class: judge the mean recall.
    "class_imbalance": Scenario(judge="balanced accuracy"),
    "dead_relu": Scenario(prepare=_dead_units),
    "exploding_gradients": Scenario(setup={"n_hidden_layers": 6, "optimizer": "sgd", "learning_rate": 0.05},
                                    prepare=_blown_up_kernels),
    # Wrong labels hurt a model large enough to learn them: 3 layers of 96 units, 100 epochs.
    "label_noise": Scenario(setup={"n_hidden_layers": 3, "epochs": 100}, prepare=_flipped_labels, hidden_units=96),
    # Memorising shows on a small training set trained long: 64 examples, 200 epochs.
    "model_too_complex": Scenario(setup={"epochs": 200}),
    "overfitting": Scenario(setup={"n_samples": 64, "n_hidden_layers": 3}, hidden_units=96),
    "outliers": Scenario(task="regression", judge="mae"),
    "unscaled_targets": Scenario(task="regression", judge="mae"),
}


def _scores(model: Any, x_val: Any, y_val: Any, judge: str | None) -> dict[str, float]:
    """Validation loss and accuracy, and the judged score; for a regression the mean absolute error in the
    user's units, from ``model`` (which may be a snippet's ``target_model``: the scaling undone)."""
    if judge == "mae":
        predictions = np.asarray(model.predict(x_val, verbose=0), dtype="float64")
        return {"mae": float(np.mean(np.abs(predictions.reshape(np.shape(y_val)) - np.asarray(y_val))))}
    scores = model.evaluate(x_val, y_val, verbose=0, return_dict=True)
    shown = {name: float(value) for name, value in scores.items() if name in ("loss", "accuracy")}
    if judge == "balanced accuracy":
        shown[judge] = _balanced_accuracy(np.asarray(model.predict(x_val, verbose=0)), np.asarray(y_val))
    return shown


def _balanced_accuracy(predictions: np.ndarray, y: np.ndarray) -> float:
    """The mean over classes of the share of each class the model gets right (scikit-learn's), from
    probabilities: one sigmoid unit or a unit per class."""
    predicted = predictions.argmax(axis=-1) if predictions.shape[-1] > 1 else (predictions[:, 0] > 0.5).astype(int)
    truth = y.argmax(axis=-1) if y.ndim > 1 and y.shape[-1] > 1 else y.reshape(-1).astype(int)
    return float(balanced_accuracy_score(truth, predicted))


@dataclass
class Effect:
    before: dict[str, float]
    after: dict[str, float] | None
    said: str
    seconds: tuple[float, float] | None
    same_loss: bool
    judge: str | None


def effect(cause: str, epochs: int) -> Effect:
    """Train the faulty run, then run the cause's snippet in its session with the same budget."""
    import keras

    fault, scenario = snippets.FAULTS[cause], SCENARIOS.get(cause, Scenario())
    setup = {**snippets.TASKS[scenario.task].setup, "epochs": epochs, **fault.setup(scenario.task), **scenario.setup}
    session = snippets.make_session(setup, scenario.hidden_units or fault.hidden_units)
    if setup["n_samples"] < len(session.y_train):  # the fault is a small training set
        session.x_train, session.y_train = session.x_train[:setup["n_samples"]], session.y_train[:setup["n_samples"]]
    for prepare in (fault.prepare, scenario.prepare):
        if prepare:
            prepare(session, setup)
    user_model, budget = session.model, max(epochs, setup["epochs"])
    started = time.perf_counter()
    user_model.fit(session.x_train, session.y_train, epochs=setup["epochs"], batch_size=setup["batch_size"], verbose=0)
    faulty_seconds = time.perf_counter() - started
    before = _scores(user_model, session.x_val, session.y_val, scenario.judge)
    code = snippets.render_snippet(snippets.KB, snippets.KB.causes[cause].snippet, snippets.conversation_values(setup))
    namespace = session.namespace()
    fits: list[tuple[Any, float]] = []  # the model trained and its seconds per epoch
    real_fit = keras.Model.fit

    def fit(self, *args, **kwargs):  # at most the faulty run's budget, or the usual one where that was the fault
        started, run = time.perf_counter(), min(kwargs.get("epochs", 1), budget)
        result = real_fit(self, *args, **{**kwargs, "epochs": run, "verbose": 0})
        fits.append((self, (time.perf_counter() - started) / run))
        return result

    keras.Model.fit = fit
    try:
        with contextlib.redirect_stdout(io.StringIO()) as printed:
            exec(compile(code, f"<{cause} snippet>", "exec"), namespace)
    finally:
        keras.Model.fit = real_fit
    # The fix is the model the snippet leaves as `model`: a new one, or the user's trained further. A snippet
    # that leaves the user's model as it was (cross-validation folds, a trial without doubted labels) inspects.
    fixed = namespace["model"]
    trained = [seconds for model, seconds in fits if model is fixed]
    if fixed is user_model and not trained:
        fixed = None
    predictor = namespace.get("target_model", fixed)  # a model trained on scaled targets, in the user's units
    after = _scores(predictor, namespace["x_val"], namespace["y_val"], scenario.judge) if fixed is not None else None
    seconds = (faulty_seconds / setup["epochs"], trained[-1]) if scenario.speed and trained else None
    same_loss = fixed is not None and str(getattr(fixed, "loss", "")) == str(getattr(user_model, "loss", ""))
    lines = printed.getvalue().strip().splitlines()
    return Effect(before, after, lines[-1] if lines else "", seconds, same_loss, scenario.judge)


def verdict(result: Effect) -> str:
    """better, not better or inspects, by the rule in this module's docstring."""
    before, after = result.before, result.after
    if after is None:
        return "inspects"
    if result.seconds is not None:
        faster = result.seconds[1] < 0.8 * result.seconds[0]
        return "better" if faster and after.get("accuracy", 0) >= before.get("accuracy", 0) - 0.02 else "not better"
    if result.judge == "mae":
        return "better" if _lower(after["mae"], before["mae"]) else "not better"
    if not math.isfinite(before["loss"]) and math.isfinite(after["loss"]):
        return "better"  # a run that ended in NaN learned nothing
    judged = result.judge or "accuracy"
    gained = after.get(judged, 0) - before.get(judged, 0)
    if gained >= 0.01 or (gained > -NOISE and result.same_loss and _lower(after["loss"], before["loss"])):
        return "better"
    return "not better"


#: Accuracy on 400 validation examples moves by about this much between two runs of the same training.
NOISE = 0.02


#: How a reply names each score it quotes.
SCORE_NAMES = {"accuracy": "validation accuracy", "balanced accuracy": "balanced validation accuracy",
               "mae": "the mean absolute validation error", "loss": "the validation loss",
               "seconds": "the seconds per epoch"}


def quoted(result: Effect) -> tuple[str, float, float]:
    """The score a reply quotes for a better fix, and its value before and after: the one that made it better."""
    before, after = result.before, result.after or {}
    if result.seconds is not None:
        return SCORE_NAMES["seconds"], *result.seconds
    judged = result.judge or "accuracy"
    if judged in after and (after[judged] - before[judged] >= 0.01 or result.judge):
        return SCORE_NAMES[judged], before[judged], after[judged]
    return SCORE_NAMES["loss"], before["loss"], after["loss"]


def write(results: dict[str, Effect], epochs: int, samples: int, path: Path) -> None:
    """``effects.yaml``: every fix that was better on its own fault, with the score that showed it; the
    causes not run this time keep what the file held."""
    held = yaml.safe_load(path.read_text(encoding="utf-8"))["effects"] if path.is_file() else {}
    effects = {cause: effect for cause, effect in held.items() if cause not in results}
    for cause, result in results.items():
        if verdict(result) == "better":
            score, before, after = quoted(result)
            effects[cause] = {"score": score, "before": round(before, 4), "after": round(after, 4)}
    effects = dict(sorted(effects.items()))
    header = (f"# What each cause's fix achieved on a short run with its fault: written by benchmarks/fix_effect.py\n"
              f"# --write ({samples} training examples, {epochs} epochs; a small Keras model), not by hand. A reply adds\n"
              "# `says`, filled in, after the fix of the cause it leads with.\n")
    body = {"says": "On a short test run with this fault, the fix took {score} from {before} to {after}.",
            "effects": effects}
    path.write_text(header + yaml.safe_dump(body, sort_keys=False, width=120), encoding="utf-8")


def _lower(after: float, before: float) -> bool:
    """By 5% at least; anything finite is lower than NaN or infinity."""
    return math.isfinite(after) and (not math.isfinite(before) or after <= 0.95 * before)


def _shown(scores: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.3g}" if math.isfinite(value) else f"{name} {value}" for name, value in scores.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("causes", nargs="*", help="causes to run (default: all)")
    parser.add_argument("--epochs", type=int, default=30, help="for the faulty run and for the fix each")
    parser.add_argument("--samples", type=int, default=400, help="training examples (as many again validate)")
    parser.add_argument("--write", action="store_true", help=f"write the better fixes to knowledge/{EFFECTS_PATH}")
    args = parser.parse_args()
    snippets.N_TRAIN, snippets.N_VAL = args.samples, args.samples
    verdicts, results = [], {}
    for cause in args.causes or sorted(snippets.FAULTS):
        result = results[cause] = effect(cause, args.epochs)
        verdicts.append(verdict(result))
        task = SCENARIOS.get(cause, Scenario()).task
        shown = f"{_shown(result.before)} -> {_shown(result.after)}" if result.after else _shown(result.before)
        if result.seconds:
            shown += f"; seconds per epoch {result.seconds[0]:.3g} -> {result.seconds[1]:.3g}"
        if result.after is None:
            shown += f"; it printed: {result.said}"
        print(f"{cause} ({task}): {shown}  [{verdicts[-1]}]", flush=True)
    inspect = verdicts.count("inspects")
    print(f"fixes better on their own fault  {verdicts.count('better')} of {len(verdicts) - inspect} ({inspect} inspect)")
    if args.write:
        write(results, args.epochs, args.samples, snippets.KB.directory / EFFECTS_PATH)


if __name__ == "__main__":
    main()
