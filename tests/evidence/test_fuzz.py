"""Property-based fuzzing of every parser through the one evidence path (``gather``): more than
10,000 generated metrics files, console logs, histories, dataset summaries, training configs,
data samples and messages, shaped like what people paste and then broken in the ways pastes break.

Each one must give facts or an EvidenceError that names its field and says what is wrong in a
sentence: never another exception, never an exception's own text. A smaller share goes on to
the reply, whose snippets are filled with the parsed values.
"""
from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from assistant.evidence import Evidence, EvidenceError, Facts, gather
from tests.helpers import reply_for, shipped_kb

TRAINING_KEYS = ["optimizer", "learning_rate", "momentum", "batch_size", "epochs", "loss", "from_logits",
                 "output_activation", "output_units", "hidden_activation", "n_hidden_layers", "total_params",
                 "trainable_params", "kernel_initializer", "dropout", "l2", "batch_norm", "input_scaling", "shuffle",
                 "validation_split"]
DATASET_KEYS = ["task", "n_samples", "n_features", "n_classes", "class_counts", "label_format", "feature_min",
                "feature_max", "feature_mean", "feature_std", "missing_fraction", "duplicate_fraction",
                "sorted_by_label"]
#: What a raw exception leaking into a message looks like.
LEAKED = re.compile(r"Traceback|\b[A-Z][A-Za-z]*(Error|Exception)\b|object at 0x|<class ")

# --- the pieces pasted files are made of ------------------------------------------------------

METRIC_NAMES = st.sampled_from(["loss", "val_loss", "accuracy", "val_accuracy", "acc", "val_acc", "lr",
                                "learning_rate", "mae", "val_mean_absolute_error", "auc_3", "precision_1",
                                "sparse_categorical_accuracy", "train_loss", "loss_epoch", "time", "step"])
NAMES = METRIC_NAMES | st.text(st.characters(codec="utf-8", exclude_characters=",\n\r\""), max_size=8)
FLOATS = st.floats(allow_nan=True, allow_infinity=True) | st.floats(-10, 10) | st.integers(-10**30, 10**30)
#: One cell of a text table: mostly numbers in the spellings clients write, sometimes junk.
CELLS = (FLOATS.map(repr) | st.sampled_from(["nan", "NaN", "inf", "-inf", "Infinity", "NA", "", " ", "0.5 ", "1e-3",
                                             "1e400", "-0", "0x1f", "1,5", "—", "null", "True"])
         | st.text(max_size=6))
#: One value of a JSON history: every JSON type, in the forms clients produce.
VALUES = (FLOATS | st.none() | st.booleans() | st.sampled_from(["nan", "inf", "-inf", "NA", "", "0.5", "abc"])
          | st.lists(st.floats(), max_size=2) | st.dictionaries(st.text(max_size=3), st.floats(), max_size=2))


@st.composite
def csv_files(draw) -> str:
    """A CSVLogger, Lightning or TensorBoard export, often with a cell, a row or the header broken."""
    header = draw(st.sampled_from([["epoch"], ["epoch", "step"], [], ["Wall time", "Step", "Value"]]))
    if header != ["Wall time", "Step", "Value"]:
        header = header + draw(st.lists(NAMES, min_size=1, max_size=5))
    rows = draw(st.lists(st.lists(CELLS, min_size=len(header), max_size=len(header)), max_size=25))
    if header and header[0] == "epoch" and draw(st.booleans()):  # mostly well-ordered 0-based epochs
        rows = [[str(number), *row[1:]] for number, row in enumerate(rows)]
    if rows and draw(st.booleans()):  # a row that lost or gained a cell
        row = draw(st.integers(0, len(rows) - 1))
        rows[row] = rows[row][:-1] if draw(st.booleans()) else rows[row] + ["0.1"]
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    text = newline.join(",".join(row) for row in [header, *rows]) + draw(st.sampled_from(["", newline]))
    return draw(st.sampled_from(["", "\ufeff"])) + text


#: One epoch of console output: its marker (sometimes lost or wrong), whether a progress bar was redrawn
#: before the last step, the metrics, the bar and the noise around it.
EPOCHS = st.tuples(st.sampled_from(["marker"] * 6 + ["lost", "zero", "ahead"]), st.booleans(),
                   st.lists(st.tuples(NAMES, CELLS), min_size=1, max_size=3),
                   st.sampled_from(["[==============================]", "━━━━━━━━━━━━━━━━━━━━", ""]),
                   st.sampled_from(["", " - ETA: 0s", "\x1b[1m", " - 1s 12ms/step", "\b\b\b"]))


@st.composite
def console_logs(draw) -> str:
    """Keras console output (progress bars, redraws, ANSI colours, ETA), with values and markers gone wrong."""
    epochs = draw(st.lists(EPOCHS, min_size=1, max_size=6))
    lines = []
    for number, (marker, redrawn, metrics, bar, noise) in enumerate(epochs, 1):
        if marker != "lost":
            lines.append(f"Epoch {dict(marker=number, zero=0, ahead=number + 5)[marker]}/{len(epochs)}")
        entries = "".join(f" - {name}: {value}" for name, value in metrics)
        if redrawn:
            lines.append(f"3/32 {bar}{noise}{entries}")
        lines.append(f"32/32 {bar}{noise}{entries}")
    separator = draw(st.sampled_from(["\n", "\r", "\r\n", "", " "]))
    return separator.join(lines)


HISTORIES = st.dictionaries(NAMES, st.lists(VALUES, max_size=15), max_size=5) | st.builds(
    lambda names, length, values: {name: [values[(i + j) % len(values)] for j in range(length)]
                                   for i, name in enumerate(names)},
    st.lists(METRIC_NAMES, min_size=1, max_size=4, unique=True), st.integers(0, 30),
    st.lists(FLOATS, min_size=1, max_size=5))
RECORDS = st.lists(st.dictionaries(NAMES | st.just("epoch"), VALUES, max_size=5) | VALUES, max_size=15)
PAYLOADS = st.fixed_dictionaries({"epoch": VALUES}, optional={"loss": VALUES, "val_loss": VALUES, "acc": VALUES})


def as_json(strategy):
    """Values of ``strategy``, half of them as the JSON text a client would send instead."""
    return strategy.flatmap(lambda value: st.sampled_from([value, json.dumps(value)]))


#: A mapping's values: right types, wrong types, and the strings people type.
FACT_VALUES = (VALUES | st.sampled_from(["adam", "SGD", "relu", "yes", "no", "standardize", "binary_classification",
                                         "one_hot", "1e-3", "0.5", "-1", "10000000000", "he_normal", "🙂"])
               | st.dictionaries(st.text(max_size=4) | st.integers().map(str), st.integers(-5, 10**6) | VALUES,
                                 max_size=4))


def mappings(keys: list[str]):
    return st.dictionaries(st.sampled_from(keys) | st.text(max_size=10), FACT_VALUES, max_size=8) | VALUES


@st.composite
def samples(draw) -> str | bytes:
    """A few rows of the user's data as CSV: numeric and categorical features, a label, missing cells."""
    columns = draw(st.lists(st.sampled_from(["x1", "x2", "age", "colour", "label", "target", "y", "class_0",
                                             "class_1", ""]), min_size=1, max_size=5, unique=True))
    cell = FLOATS.map(repr) | st.sampled_from(["", "NA", "red", "blue", "0", "1", "2", "?"]) | st.text(max_size=4)
    rows = draw(st.lists(st.lists(cell, min_size=len(columns), max_size=len(columns)), max_size=25))
    delimiter = draw(st.sampled_from([",", ";", "\t"]))
    text = "\n".join(delimiter.join(row) for row in [columns, *rows])
    return draw(st.sampled_from([text, text.encode(), text.encode("utf-16"), text.replace("\n", "\r\n", 1)]))


WORDS = st.sampled_from(["loss", "val_loss", "accuracy", "is", "stuck", "at", "0.69", "nan", "after", "epoch", "3",
                         "not", "decreasing", "50%", "overfits", "lr", "=", "0.5", "adam", "batch", "size", "64",
                         "I", "don't", "know", "explodes", "1e+08", ",", "."])
MESSAGES = st.lists(WORDS, max_size=25).map(" ".join) | st.text(max_size=200)

#: Each fuzzed input: its strategy, how many examples it must see, and how it enters ``gather``.
FUZZ = {
    "csv files": (csv_files(), 2000, lambda value: {"metrics": value, "metrics_filename": "run-validation-tag-epoch_loss.csv"}),
    "console logs": (console_logs(), 2000, lambda value: {"metrics": value}),
    "history dicts": (as_json(HISTORIES), 1500, lambda value: {"metrics": value}),
    "per-epoch records": (as_json(RECORDS | PAYLOADS), 1000, lambda value: {"metrics": value}),
    "dataset summaries": (mappings(DATASET_KEYS), 1000, lambda value: {"dataset": value}),
    "training configs": (mappings(TRAINING_KEYS), 1000, lambda value: {"training": value}),
    "answers": (st.tuples(mappings(TRAINING_KEYS + DATASET_KEYS), MESSAGES,
                          st.lists(st.sampled_from(TRAINING_KEYS + DATASET_KEYS), max_size=3)), 500,
                lambda value: {"facts": value[0], "text": value[1], "asked": value[2]}),
    "data samples": (samples(), 1000, lambda value: {"sample": value}),
    "messages": (MESSAGES, 500, lambda value: {"symptom": value}),
}


def fuzz(kind: str, examples: int, check) -> None:
    """Run ``check(inputs)`` on ``examples`` generated inputs of one kind, and make sure that many were run."""
    strategy, _, arguments = FUZZ[kind]
    seen = 0

    @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate, Phase.shrink],
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
    @given(strategy)
    def run(value):
        nonlocal seen
        seen += 1
        check(arguments(value))

    run()
    assert seen >= examples


def evidence_or_refusal(inputs: dict) -> Evidence | None:
    """The evidence the inputs give, or None after checking that the refusal is one a person can act on."""
    try:
        return gather(shipped_kb(), **inputs)
    except EvidenceError as refusal:
        assert refusal.field.split(".")[0] in inputs, refusal.field  # the message names the input at fault
        assert refusal.message.strip() and len(refusal.message) <= 400, refusal.message
        assert not LEAKED.search(refusal.message), refusal.message
        return None


def test_the_fuzzing_covers_ten_thousand_inputs():
    assert sum(examples for _, examples, _ in FUZZ.values()) >= 10_000


@pytest.mark.parametrize("kind", FUZZ)
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy on values such as 1e308: the facts say so
def test_every_generated_input_gives_facts_or_a_clear_refusal(kind, fuzz_share):
    def check(inputs):
        evidence = evidence_or_refusal(inputs)
        if evidence is not None:
            json.dumps(evidence.history)  # what the conversation stores

    fuzz(kind, round(FUZZ[kind][1] * fuzz_share), check)  # a tenth in the fast lane (tests/conftest.py)


@pytest.mark.parametrize("kind", ["dataset summaries", "training configs", "data samples", "history dicts"])
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_what_the_parsers_accept_gives_a_reply(kind, fuzz_share):
    def check(inputs):
        evidence = evidence_or_refusal(inputs)
        if evidence is not None:
            facts = Facts()
            facts.update(evidence.facts)
            assert reply_for(facts)["causes"]

    fuzz(kind, round(150 * fuzz_share), check)
