"""A knowledge base's places: each file's lines composed only when a problem names a place in it."""
from __future__ import annotations

from assistant import knowledge
from assistant.kb import DEFAULT_DIR, load
from assistant.kb.places import lines_of


def test_a_sound_knowledge_base_composes_no_file_for_its_places():
    kb = load(DEFAULT_DIR)
    assert knowledge.problems(kb) == []
    assert kb.places.lines._composed == {}


def test_a_place_is_the_line_the_file_has_for_it():
    kb = load(DEFAULT_DIR)
    lines = lines_of((DEFAULT_DIR / "causes" / "overfitting.yaml").read_text(encoding="utf-8"))
    assert kb.places.where("causes/overfitting.yaml", "supports", 0) == \
        f"causes/overfitting.yaml:{lines[('supports', 0)]}"
    assert list(kb.places.lines._composed) == ["causes/overfitting.yaml"]
    assert kb.places.where("alarms.yaml") == "alarms.yaml:1"  # a file of the knowledge base, no place in it
    assert kb.places.where("no_such_file.yaml", "x") == "no_such_file.yaml"


def test_every_yaml_file_of_the_knowledge_base_has_places():
    kb = load(DEFAULT_DIR)
    assert set(kb.places.lines) == {p.relative_to(DEFAULT_DIR).as_posix() for p in DEFAULT_DIR.rglob("*.yaml")}
