"""Every sentence the reasoning and the alarms show renders: ``kb check`` fails on one that names no fact."""
from __future__ import annotations

import re
from pathlib import Path

from assistant.alarms import check as alarm_problems
from assistant.reasoning.sentences import problems
from tests.helpers import knowledge_problems, line_named, shipped_kb


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new))


def test_every_shipped_sentence_renders():
    assert problems(shipped_kb()) == []
    assert alarm_problems(shipped_kb()) == []


def test_a_rule_citing_a_misspelt_fact_fails_naming_file_and_line(kb_copy: Path):
    # The reply would read "learning rate ? is far above what any optimizer tolerates".
    _replace(kb_copy / "causes" / "learning_rate_too_high.yaml",
             "learning rate {learning_rate} is far above what", "learning rate {lerning_rate} is far above what")
    (problem,) = knowledge_problems(kb_copy)[:-1]
    assert re.fullmatch(r"causes/learning_rate_too_high\.yaml:\d+: \{lerning_rate\} names no fact "
                        r"\(did you mean 'learning_rate'\?\)", problem), problem
    assert "{lerning_rate}" in line_named(kb_copy, problem)


def test_a_format_spec_that_does_not_fit_the_shown_value_fails(kb_copy: Path):
    # A rule's sentence shows numbers already formatted (4 significant digits): a spec of its own breaks it.
    _replace(kb_copy / "causes" / "learning_rate_too_high.yaml",
             "learning rate {learning_rate} is far above what", "learning rate {learning_rate:.2f} is far above what")
    (problem,) = knowledge_problems(kb_copy)[:-1]
    assert re.fullmatch(r"causes/learning_rate_too_high\.yaml:\d+: 'learning rate \{learning_rate:\.2f\} .*' "
                        r"does not render with sample values: ValueError: .*", problem), problem


def test_a_percentage_of_a_fact_that_is_no_number_fails(kb_copy: Path):
    _replace(kb_copy / "causes" / "learning_rate_too_high.yaml", "is far above the usual 0.001 for {optimizer}",
             "is far above the usual 0.001 for {optimizer_pct}")
    (problem,) = knowledge_problems(kb_copy)[:-1]
    assert "KeyError: 'optimizer_pct'" in problem and problem.startswith("causes/learning_rate_too_high.yaml:")


def test_a_tree_reading_citing_an_unknown_fact_fails_at_its_line(kb_copy: Path):
    _replace(kb_copy / "trees" / "curves.yaml", "at epoch {nan_epoch}", "at epoch {nan_epoc}")
    (problem,) = knowledge_problems(kb_copy)[:-1]
    assert re.fullmatch(r"trees/curves\.yaml:\d+: \{nan_epoc\} names no fact \(did you mean 'nan_epoch'\?\)",
                        problem), problem
    assert "{nan_epoc}" in line_named(kb_copy, problem)


def test_an_unbalanced_brace_fails(kb_copy: Path):
    _replace(kb_copy / "trees" / "curves.yaml", "at epoch {nan_epoch}", "at epoch {nan_epoch")
    (problem,) = knowledge_problems(kb_copy)[:-1]
    assert problem.startswith("trees/curves.yaml:") and "is not a sentence with {fact} names" in problem


def test_an_alarm_citing_a_misspelt_fact_fails_at_its_line(kb_copy: Path):
    _replace(kb_copy / "alarms.yaml", "{chance_accuracy:.0%}", "{chance_acuracy:.0%}")
    (problem,) = knowledge_problems(kb_copy)[:-1]
    assert re.fullmatch(r"alarms\.yaml:\d+: \{chance_acuracy\} names no fact \(did you mean 'chance_accuracy'\?\)",
                        problem), problem
    assert "chance_acuracy" in line_named(kb_copy, problem)
