"""Replies carry the contract's shape, the user's numbers, and snippets that cannot be injected into."""
from __future__ import annotations

import ast

from assistant.reply import render_snippet
from tests import helpers
from tests.helpers import facts_from, shipped_kb


def reply_for(**inputs):
    return helpers.reply_for(facts_from(**inputs))


def test_reply_has_the_contract_shape_and_markdown():
    reply = reply_for(symptom="loss becomes nan", metrics={"loss": [1.2, float("nan")]},
                      training={"optimizer": "adam", "learning_rate": 3.0})
    assert set(reply) >= {"text", "causes", "questions"}
    cause = reply["causes"][0]
    assert set(cause) >= {"id", "title", "category", "confidence", "evidence", "snippet"}
    assert cause["snippet"]["language"] == "python"
    assert "**" in reply["text"] and "```python" in reply["text"]
    confidences = [c["confidence"] for c in reply["causes"]]
    assert confidences == sorted(confidences, reverse=True)


def test_snippet_uses_the_users_learning_rate():
    reply = reply_for(symptom="loss is nan", metrics={"loss": [1.2, float("nan")]},
                      training={"optimizer": "rmsprop", "learning_rate": 0.5})
    code = next(c for c in reply["causes"] if c["id"] == "learning_rate_too_high")["snippet"]["code"]
    assert "RMSprop(learning_rate=0.001, clipnorm=1)" in code  # the usual rate for RMSprop, not a tenth of 0.5
    ast.parse(code)


def test_class_weights_come_from_the_users_class_counts():
    reply = reply_for(symptom="accuracy is 90% but recall is 0", metrics={"loss": [0.5, 0.3], "accuracy": [0.9, 0.9]},
                      dataset={"class_counts": {"0": 900, "1": 100}, "task": "binary_classification"})
    code = next(c for c in reply["causes"] if c["id"] == "class_imbalance")["snippet"]["code"]
    assert "class_weight = {0: 0.5556, 1: 5}" in code


def test_class_labels_that_are_no_class_index_leave_the_weights_to_the_session():
    reply = reply_for(symptom="accuracy is 90% but recall is 0",
                      dataset={"class_counts": {"0": 900, "inf": 100}, "task": "binary_classification"})
    assert all(ast.parse(cause["snippet"]["code"]) for cause in reply["causes"])
    code = next(c for c in reply["causes"] if c["id"] == "class_imbalance")["snippet"]["code"]
    assert "compute_class_weight(" in code and "class_weight = {" not in code


def test_every_snippet_renders_to_valid_python_even_with_nothing_known():
    kb = shipped_kb()
    for cause in kb.causes.values():
        ast.parse(render_snippet(kb, cause.snippet, {}))


def test_user_text_cannot_become_code_in_a_snippet():
    kb = shipped_kb()
    hostile = {"optimizer": "adam')\nimport os; os.system('echo pwned')#", "class_counts": {"0\"]; import os #": 3},
               "loss": "mse\nimport os", "learning_rate": 0.01}
    for cause in kb.causes.values():
        tree = ast.parse(render_snippet(kb, cause.snippet, hostile))
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr == "system"]
        assert not calls, cause.id


# --- kb check: every template renders to Python for every sample conversation -------------------

def _replace(path, old, new):
    text = path.read_text()
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new))


def test_every_shipped_template_renders_to_python_for_every_sample_conversation():
    from assistant.reply import SAMPLE_CONVERSATIONS, problems, sample_conversations

    kb = shipped_kb()
    assert problems(kb) == []
    conversations = sample_conversations(kb)
    assert set(conversations) == set(SAMPLE_CONVERSATIONS)
    assert conversations["nothing known"] == {}
    assert conversations["a regression"]["task"] == "regression" and "class_counts" not in conversations["a regression"]
    assert conversations["every fact known"].keys() >= {n for n, s in kb.facts.items() if s["kind"] == "input"}


def test_a_template_using_an_undefined_name_fails_kb_check_naming_file_and_line(kb_copy):
    from tests.helpers import knowledge_problems, line_named

    _replace(kb_copy / "snippets" / "overfitting.py.j2", "patience={{ patience | py }}", "patience={{ patiense | py }}")
    (problem,) = knowledge_problems(kb_copy)[:-1]
    assert problem == ("snippets/overfitting.py.j2:12: 'patiense' is undefined (UndefinedError), "
                       "with every sample conversation")
    assert "patiense" in line_named(kb_copy, problem)


def test_a_name_undefined_in_one_conversation_only_is_caught_for_it(kb_copy):
    from assistant.kb import load
    from assistant.reply import problems

    # Only a conversation that knows the class counts reaches this line.
    _replace(kb_copy / "snippets" / "class_imbalance.py.j2", "class_weight = {{ class_weight | py }}",
             "class_weight = {{ clas_weight | py }}")
    (problem,) = problems(load(kb_copy))
    assert problem.startswith("snippets/class_imbalance.py.j2:26: 'clas_weight' is undefined (UndefinedError), with ")
    assert "every fact known" in problem and "nothing known" not in problem


def test_a_template_syntax_error_fails_at_its_line(kb_copy):
    from tests.helpers import knowledge_problems

    _replace(kb_copy / "snippets" / "overfitting.py.j2", "epochs={{ epochs | py }}", "epochs={{ epochs | py }")
    (problem,) = knowledge_problems(kb_copy)[:-1]
    assert problem.startswith("snippets/overfitting.py.j2:13: ") and "(TemplateSyntaxError)" in problem


def test_a_mistake_in_the_shared_macros_names_the_macro_file(kb_copy):
    from assistant.kb import load
    from assistant.reply import problems

    _replace(kb_copy / "snippets" / "_macros.j2", "momentum={{ momentum | py }}", "momentum={{ momentun | py }}")
    found = problems(load(kb_copy))
    assert found and all(p.startswith("snippets/_macros.j2:12: 'momentun' is undefined (UndefinedError, rendering ")
                         for p in found), found


def test_a_template_that_renders_code_that_is_not_python_fails(kb_copy):
    from tests.helpers import knowledge_problems

    _replace(kb_copy / "snippets" / "overfitting.py.j2", "restore_best_weights=True)", "restore_best_weights=True")
    (problem,) = knowledge_problems(kb_copy)[:-1]
    assert problem.startswith("snippets/overfitting.py.j2: renders code that is not Python: ")
    assert problem.endswith(", with every sample conversation")


def test_the_leading_fix_says_what_it_achieved_where_it_was_measured(kb_copy):
    from assistant.kb import load
    from assistant.reasoning.engine import diagnose
    from assistant.reply import render

    (kb_copy / "effects.yaml").write_text(
        "says: 'On a short test run with this fault, the fix took {score} from {before} to {after}.'\neffects:\n"
        "  learning_rate_too_high: {score: validation accuracy, before: 0.507, after: 0.853}\n", encoding="utf-8")
    kb = load(kb_copy)
    facts = facts_from(symptom="loss becomes nan", metrics={"loss": [1.2, float("nan")]},
                       training={"optimizer": "adam", "learning_rate": 3.0})
    reply = render(kb, diagnose(kb, facts))
    said = "On a short test run with this fault, the fix took validation accuracy from 0.507 to 0.853."
    top, *others = reply["causes"]
    assert top["id"] == "learning_rate_too_high" and top["effect"] == said
    assert f"**Fix:** {top['fix']} {said}" in reply["text"]
    assert all(cause["effect"] is None for cause in others)


def test_a_reply_fills_each_snippet_as_it_would_be_filled_alone():
    from assistant.reasoning.engine import diagnose
    from assistant.reply import render, snippet_context

    kb = shipped_kb()
    diagnosis = diagnose(kb, facts_from(symptom="loss is nan", metrics={"loss": [1.2, float("nan")]},
                                        training={"optimizer": "rmsprop", "learning_rate": 0.5}))
    reply = render(kb, diagnosis)
    assert [c["snippet"]["code"] for c in reply["causes"]] == \
        [render_snippet(kb, b.cause.snippet, diagnosis.values) for b in diagnosis.shown]
    # What the snippets read of keras.yaml alone is worked out once, whatever the conversation knows.
    assert snippet_context(kb, {})["loss_names"] is snippet_context(kb, diagnosis.values)["loss_names"]
