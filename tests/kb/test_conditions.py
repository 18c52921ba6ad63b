"""A comparison read uncompiled (``reads_as``) gives what the compiled condition gives, for every written one."""
from __future__ import annotations

from assistant.kb.conditions import NOT_OBSERVED, compile_condition, reads_as, references
from tests.helpers import shipped_kb

KB = shipped_kb()


def test_reads_as_is_the_compiled_comparison_for_every_rule_and_answer():
    checked = 0
    for _, _, rule, _ in KB.rules:
        for name, op, ref in references(rule.when):
            test = compile_condition({"fact": name, op: ref})
            for value in (*KB.answers.get(name, ()), 0, 1.5, "text", NOT_OBSERVED, [1], {"a": 1}):
                assert reads_as(value, op, ref) is test({name: value}), (name, op, ref, value)
                checked += 1
    assert checked > 1000
