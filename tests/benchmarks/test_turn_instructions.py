"""The instruction-count benchmark's child runs: what valgrind counts must be the requests it names, all answered."""
from __future__ import annotations

import pytest

from benchmarks import turn_instructions


@pytest.mark.parametrize("endpoint", turn_instructions.ENDPOINTS.values())
def test_each_child_run_answers_every_request(endpoint):
    turn_instructions.serve(endpoint, 1)  # asserts a 201 for each


def test_an_endpoint_that_fails_stops_the_child():
    with pytest.raises(AssertionError):
        turn_instructions.serve("/api/v1/no-such-endpoint", 0)
