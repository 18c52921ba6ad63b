"""The loader compiles phrases.yaml once, and refuses what an expert mistyped there, naming file, line and entry."""
from __future__ import annotations

import dataclasses
import re
import shutil
from pathlib import Path

import pytest
import yaml

from assistant.kb import DEFAULT_DIR, KnowledgeError, load
from assistant.kb.model import Phrases


@pytest.fixture
def kb_copy(tmp_path: Path) -> Path:
    """A scratch copy of the knowledge base to break on purpose."""
    return Path(shutil.copytree(DEFAULT_DIR, tmp_path / "knowledge"))


def _replace_line(path: Path, old: str, new: str) -> int:
    """Replace the one line of ``path`` that is ``old``; returns its (1-based) number."""
    lines = path.read_text(encoding="utf-8").split("\n")
    (index,) = [i for i, line in enumerate(lines) if line == old]
    lines[index] = new
    path.write_text("\n".join(lines), encoding="utf-8")
    return index + 1


def _refused(directory: Path) -> str:
    with pytest.raises(KnowledgeError) as caught:
        load(directory)
    return str(caught.value)


def test_the_phrases_are_compiled_once_into_an_immutable_object():
    phrases = load().phrases
    assert isinstance(phrases, Phrases)
    assert all(isinstance(p, re.Pattern) for patterns in phrases.symptoms.values() for p in patterns)
    assert not re.search(r"\{[a-z]\w*\}", "".join(p.pattern for p in phrases.symptoms["symptom_metric_stuck"]))
    with pytest.raises(dataclasses.FrozenInstanceError):
        phrases.negation = re.compile("x")  # type: ignore[misc]
    with pytest.raises(TypeError):
        phrases.symptoms["symptom_loss_nan"] = ()  # type: ignore[index]
    assert {rule.symptom: rule.limit for rule in phrases.implied}["symptom_huge_loss"] == load().thresholds["huge_loss"]


def _stuck(kb_copy: Path) -> int:
    """Where the phrase ``\\bstucks?\\b`` stands among symptom_loss_flat's phrases."""
    phrases = yaml.safe_load((kb_copy / "phrases.yaml").read_text(encoding="utf-8"))
    return phrases["symptoms"]["symptom_loss_flat"].index(r"\bstucks?\b")


def test_unknown_macro_is_refused(kb_copy: Path):
    index = _stuck(kb_copy)
    line = _replace_line(kb_copy / "phrases.yaml", r"    - \bstucks?\b", r"    - \bstucks?{gapp}\b")
    message = _refused(kb_copy)
    assert f"phrases.yaml:{line}: symptoms/symptom_loss_flat/{index}: unknown macro {{gapp}}" in message


def test_unknown_macro_inside_a_macro_is_reported_at_the_macro(kb_copy: Path):
    path = kb_copy / "phrases.yaml"
    text = path.read_text(encoding="utf-8").replace("(?!{negation}|{but})", "(?!{negation}|{contrast})")
    path.write_text(text, encoding="utf-8")
    message = _refused(kb_copy)
    assert re.search(r"phrases\.yaml:\d+: macros/gap: unknown macro \{contrast\}", message)
    assert "symptoms/" not in message  # reported once, where it is to be fixed


def test_a_phrase_that_is_not_a_regular_expression_is_refused(kb_copy: Path):
    index = _stuck(kb_copy)
    line = _replace_line(kb_copy / "phrases.yaml", r"    - \bstucks?\b", r"    - \bstucks?(\b")
    message = _refused(kb_copy)
    assert f"phrases.yaml:{line}: symptoms/symptom_loss_flat/{index}: not a valid regular expression" in message
    assert r"\bstucks?(\b" in message


def test_a_word_list_entry_that_is_not_a_regular_expression_is_refused(kb_copy: Path):
    _replace_line(kb_copy / "phrases.yaml", "  percent: [percent]", "  percent: [percent, '(per cent']")
    assert re.search(r"phrases\.yaml:\d+: numbers/percent/1: not a valid regular expression", _refused(kb_copy))


def test_symptom_that_is_not_a_symptom_fact_is_refused(kb_copy: Path):
    path = kb_copy / "phrases.yaml"
    line = _replace_line(path, "  symptom_regression:", "  symptom_regresion:")
    message = _refused(kb_copy)
    assert f"phrases.yaml:{line}: symptoms/symptom_regresion: unknown fact 'symptom_regresion'" in message


def test_symptom_of_another_kind_is_refused(kb_copy: Path):
    _replace_line(kb_copy / "phrases.yaml", "  symptom_regression:", "  loss_flat:")
    assert "symptoms/loss_flat: 'loss_flat' is a curve fact of type boolean in facts.yaml, not a yes/no symptom" \
        in _refused(kb_copy)


def test_outranking_an_unknown_symptom_is_refused(kb_copy: Path):
    line = _replace_line(kb_copy / "phrases.yaml",
                         "  symptom_plateau: [symptom_loss_flat]         # it learned, then stopped",
                         "  symptom_plateau: [symptom_los_flat]")
    message = _refused(kb_copy)
    assert f"phrases.yaml:{line}: outranks/symptom_plateau/0: unknown fact 'symptom_los_flat'" in message


def test_a_remedy_form_without_its_change_is_refused(kb_copy: Path):
    line = _replace_line(kb_copy / "phrases.yaml", "    - '\\buntil\\b{gap}{change}{not_asked}'", "    - '\\buntil\\b{gap}'")
    assert f"phrases.yaml:{line}: remedies/forms/3: the form must hold {{change}} exactly once" in _refused(kb_copy)


def test_a_remedy_for_an_unknown_symptom_is_refused(kb_copy: Path):
    line = _replace_line(kb_copy / "phrases.yaml", "    symptom_shuffling_helps:", "    symptom_shuffle_helps:")
    message = _refused(kb_copy)
    assert f"phrases.yaml:{line}: remedies/changes/symptom_shuffle_helps: unknown fact 'symptom_shuffle_helps'" in message


def test_a_futile_change_that_is_not_a_change_is_refused(kb_copy: Path):
    line = _replace_line(kb_copy / "phrases.yaml", "    symptom_clipping_helps: symptom_clipping_futile",
                         "    symptom_clippin_helps: symptom_clipping_futile")
    assert f"phrases.yaml:{line}: remedies/futile/symptom_clippin_helps: 'symptom_clippin_helps' has no change" \
        in _refused(kb_copy)


def test_an_unknown_threshold_is_refused(kb_copy: Path):
    _replace_line(kb_copy / "phrases.yaml", "    symptom_huge_loss: {subject: loss, at_least: huge_loss}",
                  "    symptom_huge_loss: {subject: loss, at_least: huge_los}")
    assert re.search(r"phrases\.yaml:\d+: numbers/implied/symptom_huge_loss/at_least: unknown threshold 'huge_los'",
                     _refused(kb_copy))


def test_an_answer_key_that_is_not_an_input_fact_is_refused(kb_copy: Path):
    _replace_line(kb_copy / "phrases.yaml", "    momentum: [momentum]", "    momentun: [momentum]")
    assert "answers/keys/momentun: 'momentun' is not an input fact of facts.yaml" in _refused(kb_copy)


def test_a_file_that_breaks_its_schema_is_refused(kb_copy: Path):
    _replace_line(kb_copy / "phrases.yaml", "  percent: [percent]", "  percent: []")
    assert re.search(r"phrases\.yaml:\d+: numbers/percent: \[\] should be non-empty", _refused(kb_copy))


def test_a_measured_effect_for_an_unknown_cause_or_without_its_score_is_refused(kb_copy: Path):
    (kb_copy / "effects.yaml").write_text("says: 'took {score} from {before} to {after}'\neffects:\n"
                                          "  dead_relus: {score: validation accuracy, before: 0.5, after: 0.9}\n",
                                          encoding="utf-8")
    assert "effects.yaml: effects: no cause is named 'dead_relus'" in _refused(kb_copy)
    (kb_copy / "effects.yaml").write_text("says: 'took {score} from {before} to {after}'\neffects:\n"
                                          "  dead_relu: {before: .nan, after: 0.9}\n", encoding="utf-8")
    assert re.search(r"effects\.yaml:\d+: effects/dead_relu: 'score' is a required property", _refused(kb_copy))


def test_without_measured_effects_no_fix_quotes_one(kb_copy: Path):
    (kb_copy / "effects.yaml").unlink(missing_ok=True)
    assert load(kb_copy).effects == {}


def test_a_text_seen_before_is_not_validated_again_and_no_text_is_kept(kb_copy: Path, monkeypatch):
    from assistant.kb import loader

    load(kb_copy)
    validated = []
    validator = loader._validator
    monkeypatch.setattr(loader, "_validator", lambda *args: validated.append(args) or validator(*args))
    load(kb_copy)
    assert validated == []
    assert all(isinstance(digest, bytes) and len(digest) == 32 for _, _, digest in loader._FOUND)
    _replace_line(kb_copy / "thresholds.yaml", *_a_value_line(kb_copy / "thresholds.yaml"))
    load(kb_copy)
    assert [name for _, name in validated] == ["thresholds.schema.json"]


def _a_value_line(path: Path) -> tuple[str, str]:
    """A line of ``path`` holding a threshold's value, and the same line with a comment added."""
    line = next(line for line in path.read_text(encoding="utf-8").split("\n") if line.strip().startswith("value:"))
    return line, line + "  # the same value, another text"


def test_a_number_only_formulas_read_is_asked_with_its_declared_examples(kb_copy: Path):
    # output_units is read only by formulas (no rule compares it with a written value): without the
    # examples facts.yaml declares there would be no answer to weigh, and it could never be asked
    assert load(DEFAULT_DIR).answers["output_units"] == (1, 2, 10)
    line = next(line for line in (kb_copy / "facts.yaml").read_text(encoding="utf-8").split("\n")
                if line.startswith("  output_units:"))
    _replace_line(kb_copy / "facts.yaml", line, line.replace("examples: [1, 2, 10]", "examples: [one, two]"))
    assert re.search(r"facts\.yaml:\d+: facts/output_units/examples/0: 'one' is not of type 'number'",
                     _refused(kb_copy))


def test_examples_are_refused_where_the_answers_come_from_elsewhere(kb_copy: Path):
    line = next(line for line in (kb_copy / "facts.yaml").read_text(encoding="utf-8").split("\n")
                if line.startswith("  batch_norm:"))
    _replace_line(kb_copy / "facts.yaml", line, line.replace("type: boolean,", "type: boolean, examples: [1, 2],"))
    assert re.search(r"facts\.yaml:\d+: facts/batch_norm: False schema does not allow \[1, 2\]", _refused(kb_copy))
