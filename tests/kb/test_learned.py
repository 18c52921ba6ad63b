"""learned/weights.yaml: the loader applies it on top of the hand weights, and refuses it once a hand edit made it stale."""
from __future__ import annotations

import pytest
import yaml
from click.testing import CliRunner

from assistant.kb import KnowledgeError, learned, load
from assistant.knowledge import kb_command


def _write(kb_dir, rule_learned: float = 2.5, **rule_changes) -> None:
    cause = yaml.safe_load((kb_dir / "causes" / "learning_rate_too_high.yaml").read_text(encoding="utf-8"))
    rule = cause["supports"][0]
    tree = yaml.safe_load((kb_dir / "trees" / "curves.yaml").read_text(encoding="utf-8"))
    branch = tree["branches"][0]
    data = {
        "about": "test", "evaluation": {},
        "fitted": {"date": "2026-01-01", "cases": 10, "reports": 2, "from": ["feedback"], "penalty": 3.0},
        "rules": [{"cause": "learning_rate_too_high", "kind": "supports", "index": 0, "when": rule["when"],
                   "weight": rule["weight"], "learned": rule_learned, "cases": 4, "reports": 1, **rule_changes}],
        "leaves": [{"tree": "curves", "leaf": branch["leaf"], "cause": "missing_values",
                    "weight": branch["weigh"]["missing_values"], "learned": 3.25, "cases": 2, "reports": 2}],
    }
    (kb_dir / "learned").mkdir(exist_ok=True)
    (kb_dir / learned.PATH).write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def test_the_learned_weights_replace_the_hand_ones(kb_copy):
    _write(kb_copy)
    hand, tuned = load(kb_copy, learned=False), load(kb_copy)
    assert hand.causes["learning_rate_too_high"].supports[0].weight == 5
    assert tuned.causes["learning_rate_too_high"].supports[0].weight == 2.5
    assert [w for cid, w, rule, _ in tuned.rules if rule is tuned.causes["learning_rate_too_high"].supports[0]] == [2.5]
    assert tuned.trees["curves"].branches[0].weigh["missing_values"] == 3.25
    assert hand.trees["curves"].branches[0].weigh["missing_values"] == 2

    result = CliRunner().invoke(kb_command, ["check", "--directory", str(kb_copy)])
    assert result.exit_code == 0, result.output
    assert "learned weights: 1 rule and 1 leaf weight(s) from 10 case(s) and 2 feedback report(s)" in result.output


def test_a_hand_edit_since_the_fit_makes_the_file_stale(kb_copy):
    _write(kb_copy)
    path = kb_copy / "causes" / "learning_rate_too_high.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("weight: 5", "weight: 4.5", 1), encoding="utf-8")
    with pytest.raises(KnowledgeError, match=r"learned/weights.yaml: rules\[0\] \(learning_rate_too_high "
                                             r"supports\[0\]\): .*edited since the fit: fit again"):
        load(kb_copy)
    load(kb_copy, learned=False)


@pytest.mark.parametrize("changes, message", [
    ({"index": 99}, "no such rule"),
    ({"when": {"fact": "loss_is_nan", "is": True}}, "edited since the fit"),
])
def test_a_rule_that_is_not_there_is_named(kb_copy, changes, message):
    _write(kb_copy, **changes)
    with pytest.raises(KnowledgeError, match=message):
        load(kb_copy)


def test_the_schema_checks_the_file(kb_copy):
    _write(kb_copy, rule_learned=-1)
    with pytest.raises(KnowledgeError, match="learned/weights.yaml.*learned: -1 is less than the minimum of 0"):
        load(kb_copy)
