"""Replies: a diagnosis rendered as the contract's reply object, with markdown for people.

Snippets are Jinja templates from `knowledge/snippets/`, filled with the user's own numbers.
Every value reaches the code through the `py` filter (a Python literal), so nothing a user
typed can become code in a snippet.
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Any, Collection

import jinja2

from .evidence.facts import Facts
from .reasoning.engine import Belief, Diagnosis, diagnose
from .reasoning.knowledge import KnowledgeBase, load_cached

#: Causes listed in a reply: the leaders, and any other above this confidence.
SHOWN = 3
ALSO_SHOWN_ABOVE = 0.15

OPTIMIZER_CLASSES = {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD", "rmsprop": "RMSprop", "nadam": "Nadam",
                     "adagrad": "Adagrad", "adamax": "Adamax", "adadelta": "Adadelta", "ftrl": "Ftrl",
                     "lion": "Lion"}


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
    return repr(str(value))


@lru_cache(maxsize=4)
def _environment(directory: str) -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(f"{directory}/snippets"),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             trim_blocks=True, lstrip_blocks=True, autoescape=False)
    env.filters["py"] = _py
    return env


def _fitting_loss(v: dict[str, Any]) -> str:
    units, activation = _fitting_output(v)
    if activation == "linear":
        return "mse"
    if activation == "sigmoid":
        return "binary_crossentropy"
    return "categorical_crossentropy" if v.get("label_format") == "one_hot" else "sparse_categorical_crossentropy"


def _fitting_output(v: dict[str, Any]) -> tuple[int, str]:
    """Output units and activation that fit the task: linear for regression, sigmoid or softmax otherwise."""
    if v.get("task") == "regression":
        return 1, "linear"
    k = v.get("n_classes") or (len(v["class_counts"]) if isinstance(v.get("class_counts"), dict) else None)
    if v.get("task") == "binary_classification" or k == 2 or (k is None and v.get("output_units") == 1):
        return 1, "sigmoid"
    return int(k or v.get("output_units") or 2), "softmax"


def _class_weight(counts: Any) -> dict[int, float] | None:
    """scikit-learn's "balanced" weights, n / (k * count), from the user's class counts."""
    if not isinstance(counts, dict) or not counts:
        return None
    try:
        labels = {int(float(k)): int(c) for k, c in counts.items()}
    except (TypeError, ValueError):
        return None
    total = sum(labels.values())
    return {k: round(total / (len(labels) * c), 4) for k, c in sorted(labels.items()) if c > 0}


def snippet_context(values: dict[str, Any]) -> dict[str, Any]:
    """The names every snippet template may use, derived from what the conversation knows."""
    lr = values.get("learning_rate") or 0.001
    epochs = values.get("epochs") or values.get("epochs_run") or 20
    task = values.get("task")
    regression = task == "regression"
    output_units, output_activation_fit = _fitting_output(values)
    return {
        "output_units": output_units,
        "output_activation_fit": output_activation_fit,
        "values": values,
        "learning_rate": lr,
        "optimizer_class": OPTIMIZER_CLASSES.get(values.get("optimizer") or "adam", "Adam"),
        "lower_learning_rate": lr / 10,
        "higher_learning_rate": min(lr * 10, 0.01) if lr < 0.01 else lr,
        "batch_size": values.get("batch_size") or 32,
        "epochs": epochs,
        "more_epochs": max(int(epochs) * 5, 50),
        "patience": max(3, min(20, int(epochs) // 10 or 3)),
        "loss": values.get("loss") or _fitting_loss(values),
        "fitting_loss": _fitting_loss(values),
        "metrics": ["mae"] if regression else ["accuracy"],
        "monitor": "val_loss",
        "regression": regression,
        "n_classes": values.get("n_classes") or values.get("output_units") or 2,
        "class_weight": _class_weight(values.get("class_counts")),
        "l2": values.get("l2") or 0.0,
        "dropout": values.get("dropout") or 0.0,
        "n_hidden_layers": values.get("n_hidden_layers"),
        "hidden_activation": values.get("hidden_activation") or "relu",
        "output_activation": values.get("output_activation"),
        "kernel_initializer": values.get("kernel_initializer"),
        "missing_fraction": values.get("missing_fraction"),
        "feature_max": values.get("feature_max"),
        "validation_split": values.get("validation_split") or 0.2,
    }


def render_snippet(kb: KnowledgeBase, name: str, values: dict[str, Any]) -> str:
    """One snippet template filled with the conversation's values."""
    template = _environment(str(kb.directory)).get_template(f"{name}.py.j2")
    return template.render(snippet_context(values)).strip() + "\n"


def _cause_json(kb: KnowledgeBase, belief: Belief, values: dict[str, Any]) -> dict[str, Any]:
    cause = belief.cause
    return {
        "id": cause.id, "title": cause.title, "category": cause.category,
        "confidence": round(belief.confidence, 3),
        "evidence": belief.evidence, "against": belief.against,
        "explanation": cause.explanation, "fix": cause.fix,
        "snippet": {"language": "python", "code": render_snippet(kb, cause.snippet, values)},
    }


def _markdown(diagnosis: Diagnosis, causes: list[dict[str, Any]], questions: list[dict[str, Any]]) -> str:
    lines = []
    if diagnosis.readings:
        lines.append("What I see: " + "; ".join(diagnosis.readings) + ".")
        lines.append("")
    lines.append("Most likely causes:")
    for rank, cause in enumerate(causes, 1):
        lines.append(f"{rank}. **{cause['title']}** ({cause['confidence']:.0%})")
        for item in cause["evidence"][:3]:
            lines.append(f"   - {item}")
    top = causes[0]
    lines += ["", f"**Why:** {top['explanation']}", "", f"**Fix:** {top['fix']}",
              "", "```python", top["snippet"]["code"].rstrip(), "```"]
    if questions:
        lines += ["", "To tell these apart, it would help to know:"]
        lines += [f"- {q['text']}" for q in questions]
    return "\n".join(lines)


def compose(facts: Facts, *, declined: Collection[str] = (), kb: KnowledgeBase | None = None) -> dict[str, Any]:
    """The contract's reply object for everything the conversation knows so far."""
    kb = kb or load_cached()
    diagnosis = diagnose(kb, facts, declined=declined)
    shown = [b for i, b in enumerate(diagnosis.beliefs) if i < SHOWN or b.confidence >= ALSO_SHOWN_ABOVE]
    causes = [_cause_json(kb, b, diagnosis.values) for b in shown]
    questions = [{"id": f"q-{q.fact}", "fact": q.fact, "text": q.text, "choices": list(q.choices)}
                 for q in diagnosis.questions]
    return {"text": _markdown(diagnosis, causes, questions), "causes": causes, "questions": questions}
