"""What one turn may cost: the largest counts the service works with, whichever input states them.

Some work grows with a count the user gives: the reply and a reproduction run's plan with the
number of hidden layers, class balance and label codes with the number of classes. A count above
these is refused before that work (``OverLimit``, answered 422), whether it came from the JSON, a
form, pasted code or the user's words ("2000000 hidden layers"). They sit far above any real
model; the API document states the same maxima (a test keeps them equal).
"""
from __future__ import annotations

from .facts import Fact, OverLimit

MAXIMA: dict[str, int] = {
    "n_hidden_layers": 1_000,  # the deepest published networks have about a thousand layers
    "output_units": 100_000,
    "n_classes": 30_000,  # ImageNet-21k has 21,841 classes
    "n_features": 100_000_000,
    "epochs": 1_000_000,
    "batch_size": 10_000_000,
    "n_samples": 1_000_000_000_000,
    "total_params": 10_000_000_000_000,
    "trainable_params": 10_000_000_000_000,
}
#: The inputs that are mappings of facts: a refusal names the key inside them.
MAPPINGS = frozenset({"dataset", "training", "facts", "sample"})
#: The class counts of a dataset summary hold at most as many classes as ``n_classes`` may be.
CLASS_COUNTS_KEY = "class_counts"


def checked(facts: list[Fact], field: str) -> list[Fact]:
    """The facts of one input, once none has a count above its maximum; else OverLimit naming it and the input.

    ``field`` is that input (``symptom``, ``training``, ...): the error names it, as every refusal of
    a turn names the input at fault (``training.n_classes``; the words themselves for what prose said).
    """
    for fact in facts:
        value = len(fact.value) if fact.key == CLASS_COUNTS_KEY and isinstance(fact.value, dict) else fact.value
        limit = MAXIMA["n_classes"] if fact.key == CLASS_COUNTS_KEY else MAXIMA.get(fact.key)
        if limit is not None and isinstance(value, (int, float)) and not isinstance(value, bool) and value > limit:
            what = f"{value:,} classes" if fact.key == CLASS_COUNTS_KEY else f"{value:,}"
            named = field in MAPPINGS  # the field names the key; in words, the message does
            raise OverLimit(f"{'' if named else fact.key + ': '}{what} (from {fact.source}) is more than {limit:,}, "
                            "the most this service works with", field=f"{field}.{fact.key}" if named else field)
    return facts
