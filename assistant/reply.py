"""Replies: a diagnosis rendered as the contract's reply object, with markdown for people.

Snippets are Jinja templates from `knowledge/snippets/`, filled with the user's own numbers.
Every value reaches the code through the `py` filter (a Python literal), so nothing a user
typed can become code in a snippet.
"""
from __future__ import annotations

import json
import math
import traceback
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import jinja2

from .evidence.derive import derive
from .kb import KnowledgeBase, syntax
from .kb.check import sample_values
from .reasoning.engine import Belief, Diagnosis


def _py(value: Any) -> str:
    """A Python literal for a value: the only way user data enters a snippet."""
    if isinstance(value, float):
        if not math.isfinite(value):
            return f'float("{value}")'
        return f"{value:.6g}" if "e" not in f"{value:.6g}" else repr(value)
    if isinstance(value, (bool, int, type(None))):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_py(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_py(k)}: {_py(v)}" for k, v in value.items()) + "}"
    return json.dumps(str(value))  # a double-quoted literal; JSON's escapes are Python's


@lru_cache(maxsize=4)
def _environment(directory: str) -> jinja2.Environment:
    # auto_reload off: like the rest of the knowledge base, snippets are read once per process,
    # and a turn need not stat every template it renders.
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(f"{directory}/snippets"),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             trim_blocks=True, lstrip_blocks=True, autoescape=False, auto_reload=False)
    env.filters["py"] = _py
    return env


def _class_weight(counts: Any) -> dict[int, float] | None:
    """scikit-learn's "balanced" weights, n / (k * count), from the user's class counts.

    The same numbers as ``compute_class_weight("balanced", ...)`` without expanding the counts
    into one label per sample.
    """
    if not isinstance(counts, dict) or not counts:
        return None
    try:
        labels = {int(float(k)): int(c) for k, c in counts.items()}
    except (TypeError, ValueError, OverflowError):  # a label such as "inf" is no class index
        return None
    total = sum(labels.values())
    return {k: round(total / (len(labels) * c), 4) for k, c in sorted(labels.items()) if c > 0}


@cache
def _keras_names(kb: KnowledgeBase) -> dict[str, dict[str, Any]]:
    """What snippets read of keras.yaml alone, worked out once per knowledge base rather than for every snippet."""
    losses = kb.keras.tables["losses"]
    return {
        "usual_rates": {entry["class"]: entry["default_learning_rate"]
                        for entry in kb.keras.tables["optimizers"].values()
                        if "class" in entry and "default_learning_rate" in entry},
        "loss_names": {name.replace("_", ""): canon for canon, entry in losses.items()
                       for name in (canon, *entry.get("aliases", ()))},
        "loss_families": {canon: entry["family"] for canon, entry in losses.items()},
        "loss_classes": {name: entry["class"] for name, entry in losses.items() if "class" in entry},
        "heads": {kind: {key: entry[key] for key in ("units", "activation", "loss")}
                  for kind, entry in kb.keras.tables["heads"].items()},
    }


def snippet_context(kb: KnowledgeBase, values: dict[str, Any]) -> dict[str, Any]:
    """The names every snippet template may use, derived from what the conversation knows.

    What the conversation does not know, a snippet reads from the user's session (the task and
    the labels from ``y_train`` and the output layer, the optimizer and its learning rate from
    ``model.optimizer``); the Keras tables it needs for that come from ``keras.yaml``.
    """
    lr = values.get("learning_rate") or 0.001
    epochs = int(values.get("epochs") or values.get("epochs_run") or 20)
    optimizer = values.get("optimizer")
    usual = kb.keras.get("optimizers", optimizer, "default_learning_rate")
    known_rate = "learning_rate" in values and usual is not None
    hidden = values.get("hidden_activation")
    return {
        "values": values,
        # The user's optimizer, rebuilt with a new learning rate (see _macros.j2's `optimizer`).
        "optimizer_class": kb.keras.get("optimizers", optimizer, "class"),
        "momentum": values.get("momentum") if kb.keras.get("optimizers", optimizer, "momentum") else None,
        "learning_rate_known": "learning_rate" in values,
        "learning_rate": lr,
        # A rate that fixes: a tenth (ten times) of the user's, but at most (at least) the usual
        # rate of their optimizer; None when the snippet works it out in the session.
        "lower_learning_rate": min(lr / 10, usual) if known_rate else None,
        "higher_learning_rate": max(lr * 10, usual) if known_rate else None,
        # Each optimizer class's usual rate; Keras's losses by any name a compiled model reports (without "_"),
        # their families and classes, and what fits each kind of labels: a snippet reads the task with them.
        **_keras_names(kb),
        "batch_size": values.get("batch_size") or 32,
        "epochs": epochs,
        "more_epochs": max(epochs * 5, 50),
        # EarlyStopping waits about a tenth of the run for an improvement, within 3..20 epochs.
        "patience": max(3, min(20, epochs // 10)),
        "monitor": "val_loss",
        "output_activation": values.get("output_activation"),
        "class_weight": _class_weight(values.get("class_counts")),
        "l2": values.get("l2") or 0.0,
        "dropout": values.get("dropout") or 0.0,
        "n_hidden_layers": values.get("n_hidden_layers"),
        "hidden_activation": hidden if kb.keras.get("activations", hidden, "hidden") else "relu",
        "kernel_initializer": values.get("kernel_initializer"),
        "missing_fraction": values.get("missing_fraction"),
        "feature_max": values.get("feature_max"),
        "validation_split": values.get("validation_split") or 0.2,
    }


def render_snippet(kb: KnowledgeBase, name: str, values: dict[str, Any],
                   context: dict[str, Any] | None = None) -> str:
    """One snippet template filled with the conversation's values (``context``: their snippet context, when a
    reply that fills several has worked it out already)."""
    template = _environment(str(kb.directory)).get_template(f"{name}.py.j2")
    return template.render(context if context is not None else snippet_context(kb, values)).strip() + "\n"


def _cause_json(kb: KnowledgeBase, belief: Belief, values: dict[str, Any],
                context: dict[str, Any] | None = None) -> dict[str, Any]:
    cause = belief.cause
    return {
        "id": cause.id, "title": cause.title, "category": cause.category,
        "confidence": round(belief.confidence, 3),
        "evidence": belief.evidence, "against": belief.against,
        "explanation": cause.explanation, "fix": cause.fix, "effect": kb.effects.get(cause.id),
        "snippet": {"language": "python", "code": render_snippet(kb, cause.snippet, values, context)},
    }


def render_cause(kb: KnowledgeBase, diagnosis: Diagnosis, cause_id: str) -> dict[str, Any] | None:
    """One cause as it stands in a diagnosis, shown or not: its evidence, its rank and its filled snippet."""
    for rank, belief in enumerate(diagnosis.beliefs, 1):
        if belief.cause.id == cause_id:
            return {**_cause_json(kb, belief, diagnosis.values), "rank": rank}
    return None


def _markdown(diagnosis: Diagnosis, causes: list[dict[str, Any]], questions: list[dict[str, Any]]) -> str:
    lines = []
    if diagnosis.readings:
        lines.append("What I see: " + "; ".join(diagnosis.readings) + ".")
        lines.append("")
    if diagnosis.unsure:
        lines.append("I cannot tell yet which cause it is: what you sent fits several about equally well."
                     + (" The answers below would tell them apart." if questions else "")
                     + " A few epochs of the training log, or your model code (the layers, the compile"
                       " and fit lines, or model.summary()), pasted as they are, would tell me most.")
        lines.append("")
        lines.append("For now, the likeliest:")
    else:
        lines.append("Most likely causes:")
    for rank, cause in enumerate(causes, 1):
        lines.append(f"{rank}. **{cause['title']}** ({cause['confidence']:.0%})")
        for item in cause["evidence"][:3]:
            lines.append(f"   - {item}")
    top = causes[0]
    if not diagnosis.unsure:  # a fix is offered for a diagnosis, not for a guess
        fix = f"**Fix:** {top['fix']}" + (f" {top['effect']}" if top["effect"] else "")
        lines += ["", f"**Why:** {top['explanation']}", "", fix, "", "```python", top["snippet"]["code"].rstrip(), "```"]
    if questions:
        lines += ["", "To tell these apart, it would help to know:"]
        lines += [f"- {q['text']}" for q in questions]
    return "\n".join(lines)


def render(kb: KnowledgeBase, diagnosis: Diagnosis) -> dict[str, Any]:
    """The contract's reply object for a diagnosis: everything in it was decided by the reasoning."""
    context = snippet_context(kb, diagnosis.values)  # the same for every cause shown
    causes = [_cause_json(kb, b, diagnosis.values, context) for b in diagnosis.shown]
    questions = [{"id": f"q-{q.fact}", "fact": q.fact, "text": q.text, "choices": list(q.choices)}
                 for q in diagnosis.questions]
    return {"text": _markdown(diagnosis, causes, questions), "readings": diagnosis.readings,
            "uncertain": diagnosis.unsure, "causes": causes, "questions": questions}


# --- what the replies ask of the knowledge base -------------------------------------------------

#: Conversations every snippet template must render for: whether each starts from a sample value of
#: every fact, and the values it has (None: not known). Derived facts follow from them.
SAMPLE_CONVERSATIONS: dict[str, tuple[bool, dict[str, Any]]] = {
    "nothing known": (False, {}),
    "every fact known": (True, {}),
    "a binary task": (True, {
        "task": "binary_classification", "n_classes": 2, "class_counts": {"0": 900, "1": 100},
        "label_format": "integer", "loss": "binary_crossentropy", "output_activation": "sigmoid", "output_units": 1,
        "from_logits": False}),
    "a regression": (True, {
        "task": "regression", "n_classes": None, "class_counts": None, "label_format": None, "loss": "mse",
        "output_activation": "linear", "output_units": 1, "from_logits": False, "optimizer": "sgd",
        "learning_rate": 0.01, "momentum": 0.9, "feature_min": -3.5, "feature_max": 12000.0}),
    "a multiclass task with one-hot labels": (True, {
        "task": "multiclass_classification", "n_classes": 3, "class_counts": {"0": 340, "1": 330, "2": 330},
        "label_format": "one_hot", "loss": "categorical_crossentropy", "output_activation": "softmax",
        "output_units": 3, "optimizer": "rmsprop", "learning_rate": 0.5}),
    "a multiclass task with logits, little else known": (False, {
        "task": "multiclass_classification", "output_activation": "linear", "from_logits": True,
        "loss": "sparse_categorical_crossentropy", "epochs_run": 40}),
}


def sample_conversations(kb: KnowledgeBase) -> dict[str, dict[str, Any]]:
    """The values of each of :data:`SAMPLE_CONVERSATIONS`, derived facts included, as a reply would see them."""
    every = {name: value for name, value in sample_values(kb).items() if kb.facts[name]["kind"] != "derived"}
    out = {}
    for told, (from_every, values) in SAMPLE_CONVERSATIONS.items():
        known = {key: value for key, value in {**(every if from_every else {}), **values}.items() if value is not None}
        out[told] = {**known, **derive(kb, known)}
    return out


def _template_line(exc: BaseException) -> tuple[str, int | None]:
    """The template file and line where rendering failed (jinja2 puts template lines in the traceback)."""
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return Path(exc.filename or exc.name or "?").name, exc.lineno
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.endswith(".j2")]
    return (Path(frames[-1].filename).name, frames[-1].lineno) if frames else ("", None)


def _snippet_problem(name: str, values: dict[str, Any], kb: KnowledgeBase) -> tuple[str, str] | None:
    """What is wrong with one template for one conversation, led by its file and line, and the code it
    concerns where that depends on the conversation's values; None if nothing."""
    try:
        code = render_snippet(kb, name, values)
    except Exception as exc:  # noqa: BLE001 (any failure of a template is the expert's to fix)
        file, line = _template_line(exc)
        where = f"snippets/{file or f'{name}.py.j2'}" + (f":{line}" if line else "")
        message = exc.message if isinstance(exc, jinja2.TemplateError) and exc.message else str(exc)
        via = f", rendering {name}.py.j2" if file and file != f"{name}.py.j2" else ""
        return f"{where}: {message} ({type(exc).__name__}{via})", ""
    try:
        syntax.parse(code)
    except SyntaxError as exc:
        shown = (exc.text or "").strip()
        return (f"snippets/{name}.py.j2: renders code that is not Python: {exc.msg} in line {exc.lineno} of the "
                "snippet", f" ({shown})" if shown else "")
    return None


def problems(kb: KnowledgeBase) -> list[str]:
    """Every snippet template that fails to render, or renders code that is not Python, for a sample conversation.

    Each problem names the template file and line and the conversations it fails for
    ("snippets/overfitting.py.j2:7: 'patiense' is undefined (UndefinedError), with every fact known"),
    so a slip fails ``assistant kb check``, not a user's request.
    """
    conversations = sample_conversations(kb)
    found = []
    for name in sorted(kb.snippets):
        failing: dict[str, tuple[str, list[str]]] = {}
        for told, values in conversations.items():
            problem = _snippet_problem(name, values, kb)
            if problem is not None:
                failing.setdefault(problem[0], (problem[1], []))[1].append(told)
        found += [f"{problem}{detail}, with " + ("every sample conversation" if len(told) == len(conversations)
                                                 else "; ".join(told)) for problem, (detail, told) in failing.items()]
    return found
