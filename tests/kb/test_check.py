"""The knowledge base loads, passes its own check, and the check catches an expert's mistakes, naming file and line.

Each test makes one mistake in a scratch copy of knowledge/ (the ``kb_copy`` fixture) and runs
``assistant kb check --directory`` on it, as a reviewer would. The checks that belong to a layer
(snippet templates: tests/test_reply.py; sentences: tests/reasoning/test_sentences.py) are tested there.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from assistant import create_app
from assistant.kb import DEFAULT_DIR, KnowledgeError, load
from assistant.knowledge import kb_command, problems as check
from tests.helpers import SHARED, knowledge_problems, line_named

CONTRACT = SHARED / "contract" / "causes.json" if SHARED is not None else None


def test_the_shipped_knowledge_base_is_clean():
    kb = load()
    assert check(kb) == []
    assert len(kb.causes) >= 26


@pytest.mark.skipif(CONTRACT is None or not CONTRACT.exists(), reason="shared/contract is not checked out")
def test_every_contract_cause_is_covered_with_a_category_that_matches():
    import json

    contract = json.loads(CONTRACT.read_text())["causes"]
    kb = load()
    for cid, spec in contract.items():
        assert kb.causes[cid].category == spec["category"], cid


def test_kb_check_command_passes():
    result = CliRunner().invoke(kb_command, ["check"])
    assert result.exit_code == 0, result.output
    assert "knowledge base OK" in result.output


def _edit(path: Path, change) -> None:
    doc = yaml.safe_load(path.read_text())
    change(doc)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def _one(found: list[str], pattern: str) -> str:
    """The one problem that matches ``pattern`` (a regular expression, ``LINE`` standing for a line number)."""
    regex = re.compile(pattern.replace("LINE", r"\d+"))
    matching = [p for p in found if regex.fullmatch(p)]
    assert len(matching) == 1, (pattern, found)
    return matching[0]


# --- the mistake: a fact that nothing produces -------------------------------------------

@pytest.mark.parametrize("kind", ["curve", "symptom", "experiment", "code"])
def test_a_new_fact_that_nothing_produces_is_reported_at_its_line(kb_copy: Path, kind: str):
    _append(kb_copy / "facts.yaml", f"  val_loss_vibes: {{kind: {kind}, type: boolean, description: how it feels}}\n")
    _edit(kb_copy / "causes" / "overfitting.yaml",
          lambda d: d["supports"].append({"when": {"fact": "val_loss_vibes", "is": True}, "weight": 1}))
    problem = _one(knowledge_problems(kb_copy),
                   f"facts.yaml:LINE: fact 'val_loss_vibes' \\(kind {kind}\\) is produced by nothing, "
                   "so a rule on it never fires")
    assert line_named(kb_copy, problem).startswith("val_loss_vibes:")


def test_a_fact_of_a_kind_that_does_not_exist_is_refused_naming_facts_yaml(kb_copy: Path):
    _append(kb_copy / "facts.yaml", "  val_loss_vibes: {kind: dataset, type: boolean, description: how it feels}\n")
    (problem,) = knowledge_problems(kb_copy)
    assert re.fullmatch(r"facts\.yaml:\d+: facts/val_loss_vibes/kind: 'dataset' is not one of \[.*'curve'.*\]",
                        problem), problem
    assert line_named(kb_copy, problem).startswith("val_loss_vibes:")


def test_a_derived_fact_is_produced_by_its_formula(kb_copy: Path):
    _append(kb_copy / "derived.yaml", "  big_batch:\n    type: boolean\n    description: a batch over 512\n"
                                      "    needs: [batch_size]\n    formula: batch_size > 512\n")
    assert check(load(kb_copy)) == []


def test_a_formula_naming_an_unknown_fact_is_refused_at_its_line(kb_copy: Path):
    _append(kb_copy / "derived.yaml", "  big_batch:\n    type: boolean\n    description: a batch over 512\n"
                                      "    formula: batch_sise > 512\n")
    (problem,) = knowledge_problems(kb_copy)
    assert re.fullmatch(r"derived\.yaml:\d+: big_batch: unknown name batch_sise", problem), problem
    assert line_named(kb_copy, problem) == "big_batch:"


# --- names, texts and leaves -------------------------------------------------------------------

def test_a_symptom_heard_but_weighed_by_nothing_is_reported_at_its_line(kb_copy: Path):
    _edit(kb_copy / "causes" / "exploding_gradients.yaml",
          lambda d: d.__setitem__("supports", [r for r in d["supports"] if r["when"] != {"fact": "symptom_clipping_helps",
                                                                                     "is": True}]))
    problem = _one(check(load(kb_copy)), "facts.yaml:LINE: symptom 'symptom_clipping_helps' is heard in phrases.yaml "
                                         "but no rule, tree, formula or alarm reads it, so hearing it changes nothing")
    assert line_named(kb_copy, problem).startswith("symptom_clipping_helps:")


def test_unknown_fact_is_reported_at_its_line(kb_copy: Path):
    _edit(kb_copy / "causes" / "overfitting.yaml",
          lambda d: d["supports"].append({"when": {"all": [{"fact": "loss_flat", "is": False},
                                                           {"fact": "val_loss_vibes", "is": True}]}, "weight": 1}))
    problem = _one(check(load(kb_copy)), "causes/overfitting.yaml:LINE: unknown fact 'val_loss_vibes'")
    assert line_named(kb_copy, problem) == "- fact: val_loss_vibes"


def test_not_around_a_fact_nobody_is_asked_for_is_reported_at_its_line(kb_copy: Path):
    # "unless the curve spikes" written as `not`: without a history the spike is unknown, and so is the rule
    unless_spikes = [{"fact": "symptom_jumpy", "is": True}, {"not": {"fact": "loss_spikes", "is": True}}]
    _edit(kb_copy / "causes" / "overfitting.yaml",
          lambda d: d["supports"].append({"when": {"all": unless_spikes}, "weight": 1}))
    problem = _one(check(load(kb_copy)), r"causes/overfitting\.yaml:LINE: `not` around a test of 'loss_spikes', .*"
                                         r"write \{any: \[\{fact: loss_spikes, known: false\}, \{fact: loss_spikes, is: false\}\]\}")
    assert line_named(kb_copy, problem) == "- not:"
    # the idiom it suggests, and `not` around a fact the user can be asked for, are fine
    _edit(kb_copy / "causes" / "overfitting.yaml", lambda d: d["supports"][-1]["when"]["all"].__setitem__(
        1, {"any": [{"fact": "loss_spikes", "known": False}, {"fact": "loss_spikes", "is": False}]}))
    _edit(kb_copy / "causes" / "overfitting.yaml", lambda d: d["supports"].append(
        {"when": {"not": {"fact": "task", "is": "regression"}}, "weight": 1}))
    assert check(load(kb_copy)) == []


def test_cause_without_explanation_is_refused_by_the_schema(kb_copy: Path):
    _edit(kb_copy / "causes" / "dead_relu.yaml", lambda d: d.pop("explanation"))
    with pytest.raises(KnowledgeError, match=r"causes/dead_relu\.yaml:1: \(top\): 'explanation' is a required"):
        load(kb_copy)


def test_cause_with_a_blank_fix_is_refused_at_its_line(kb_copy: Path):
    _edit(kb_copy / "causes" / "dead_relu.yaml", lambda d: d.update(fix="   "))
    with pytest.raises(KnowledgeError, match=r"causes/dead_relu\.yaml:\d+: fix: '   ' is too short") as caught:
        load(kb_copy)
    assert line_named(kb_copy, str(caught.value)).startswith("fix:")


def test_missing_snippet_template_is_reported(kb_copy: Path):
    (kb_copy / "snippets" / "dead_relu.py.j2").unlink()
    problem = _one(check(load(kb_copy)), r"causes/dead_relu.yaml:LINE: snippet 'dead_relu' has no template "
                                         r"snippets/dead_relu.py.j2")
    assert line_named(kb_copy, problem) == "snippet: dead_relu"


def test_a_cause_named_unlike_its_file_is_refused(kb_copy: Path):
    (kb_copy / "causes" / "dead_relu.yaml").rename(kb_copy / "causes" / "dead_units.yaml")
    with pytest.raises(KnowledgeError, match=r"causes/dead_units\.yaml:1: id 'dead_relu' is not the file's name"):
        load(kb_copy)


def test_unreachable_leaf_is_reported(kb_copy: Path):
    def contradict(tree):
        # After the entry for "loss_is_nan is true", test it again: nothing can reach the second one.
        tree["branches"].insert(1, {"when": {"fact": "loss_is_nan", "is": True}, "leaf": "impossible",
                                    "weigh": {"overfitting": 1}})
    _edit(kb_copy / "trees" / "curves.yaml", contradict)
    problems = check(load(kb_copy))
    problem = _one(problems, "trees/curves.yaml:LINE: leaf 'impossible' is unreachable: its conditions contradict")
    assert line_named(kb_copy, problem) == "- when:"
    assert not any("loss_not_finite" in p for p in problems)


def test_numeric_contradiction_is_unreachable_but_a_narrowing_is_not(kb_copy: Path):
    def narrow(tree):
        tree["branches"][:0] = [
            {"when": {"all": [{"fact": "learning_rate", "above": 0.1}, {"fact": "learning_rate", "below": 0.05}]},
             "leaf": "never", "weigh": {}},
            {"when": {"fact": "learning_rate", "above": 0.1}, "leaf": "high_lr", "weigh": {}}]
    _edit(kb_copy / "trees" / "curves.yaml", narrow)
    problems = check(load(kb_copy))
    assert any("'never' is unreachable" in p for p in problems)
    assert not any("'high_lr'" in p for p in problems)


def test_an_entry_without_a_condition_must_be_the_last(kb_copy: Path):
    _edit(kb_copy / "trees" / "words.yaml", lambda t: t["branches"].insert(0, {"leaf": "everything", "weigh": {}}))
    problems = check(load(kb_copy))
    assert any("'everything' has no 'when' but is not the last entry" in p for p in problems)
    assert any("'says_nan' is unreachable" in p for p in problems)


def test_tree_naming_an_unknown_cause_is_reported(kb_copy: Path):
    _edit(kb_copy / "trees" / "words.yaml", lambda t: t["branches"][0]["weigh"].update({"gremlins": 2}))
    problem = _one(check(load(kb_copy)), "trees/words.yaml:LINE: leaf 'says_nan' names unknown cause 'gremlins'")
    assert line_named(kb_copy, problem) == "gremlins: 2"


def test_an_alarm_on_an_unknown_fact_is_reported(kb_copy: Path):
    _edit(kb_copy / "alarms.yaml",
          lambda d: d["alarms"].append({"fact": "loss_explodes", "says": "the loss explodes", "after": 1}))
    problem = _one(check(load(kb_copy)), "alarms.yaml:LINE: unknown fact 'loss_explodes'")
    assert "loss_explodes" in line_named(kb_copy, problem)


# --- the command and the app ------------------------------------------------------------------

def test_kb_check_command_lists_every_problem_and_fails(kb_copy: Path):
    (kb_copy / "snippets" / "overfitting.py.j2").unlink()
    _append(kb_copy / "facts.yaml", "  val_loss_vibes: {kind: curve, type: boolean, description: how it feels}\n")
    _edit(kb_copy / "trees" / "words.yaml", lambda t: t["branches"][0]["weigh"].update({"gremlins": 2}))
    result = CliRunner().invoke(kb_command, ["check", "--directory", str(kb_copy)])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert [line.split(":")[0] for line in lines[:-1]] == ["causes/overfitting.yaml", "facts.yaml", "trees/words.yaml"]
    assert lines[-1] == "Error: 3 problem(s) in the knowledge base"


def test_the_app_refuses_to_start_on_a_broken_knowledge_base(kb_copy: Path, tmp_path: Path):
    _append(kb_copy / "facts.yaml", "  val_loss_vibes: {kind: curve, type: boolean, description: how it feels}\n")
    with pytest.raises(KnowledgeError, match=r"facts\.yaml:\d+: fact 'val_loss_vibes' \(kind curve\)"):
        create_app({"TESTING": True, "KNOWLEDGE_DIR": str(kb_copy),
                    "DATABASE_URL": f"sqlite:///{tmp_path / 'a.sqlite'}"})


def test_the_shipped_directory_is_the_default():
    assert load().directory == DEFAULT_DIR


def test_a_file_that_is_not_yaml_is_refused_at_its_line(kb_copy: Path):
    path = kb_copy / "causes" / "dead_relu.yaml"
    path.write_text(path.read_text().replace("snippet: dead_relu", "snippet: [dead_relu"))
    problem = knowledge_problems(kb_copy)[0]
    assert re.match(r"causes/dead_relu\.yaml:\d+: not valid YAML: ", problem), problem
