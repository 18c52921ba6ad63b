"""The knowledge base loads, passes its own check, and the check catches what a reviewer must fix."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from assistant.kb import DEFAULT_DIR, KnowledgeError, load
from assistant.knowledge import kb_command, problems as check
from tests.helpers import SHARED

CONTRACT = SHARED / "contract" / "causes.json" if SHARED is not None else None


@pytest.fixture
def kb_copy(tmp_path: Path) -> Path:
    """A scratch copy of the knowledge base to break on purpose."""
    return Path(shutil.copytree(DEFAULT_DIR, tmp_path / "knowledge"))


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


def test_unknown_fact_is_reported(kb_copy: Path):
    _edit(kb_copy / "causes" / "overfitting.yaml",
          lambda d: d["supports"].append({"when": {"fact": "val_loss_vibes", "is": True}, "weight": 1}))
    assert "causes/overfitting.yaml: unknown fact 'val_loss_vibes'" in check(load(kb_copy))


def test_cause_without_explanation_is_refused_by_the_schema(kb_copy: Path):
    _edit(kb_copy / "causes" / "dead_relu.yaml", lambda d: d.pop("explanation"))
    with pytest.raises(KnowledgeError, match="explanation"):
        load(kb_copy)


def test_missing_snippet_template_is_reported(kb_copy: Path):
    (kb_copy / "snippets" / "dead_relu.py.j2").unlink()
    assert any("snippet 'dead_relu' has no template" in p for p in check(load(kb_copy)))


def test_unreachable_leaf_is_reported(kb_copy: Path):
    def contradict(tree):
        # After the entry for "loss_is_nan is true", test it again: nothing can reach the second one.
        tree["branches"].insert(1, {"when": {"fact": "loss_is_nan", "is": True}, "leaf": "impossible",
                                    "weigh": {"overfitting": 1}})
    _edit(kb_copy / "trees" / "curves.yaml", contradict)
    problems = check(load(kb_copy))
    assert "trees/curves.yaml: leaf 'impossible' is unreachable: its conditions contradict" in problems
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
    assert any("unknown cause 'gremlins'" in p for p in check(load(kb_copy)))


def test_kb_check_command_fails_on_a_broken_base(kb_copy: Path):
    (kb_copy / "snippets" / "overfitting.py.j2").unlink()
    result = CliRunner().invoke(kb_command, ["check", "--directory", str(kb_copy)])
    assert result.exit_code != 0
    assert "overfitting" in result.output
