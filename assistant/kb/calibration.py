"""How honest a confidence is: the expected calibration error, shared by ``kb fit`` and benchmarks/accuracy.py."""
from __future__ import annotations

from typing import Sequence

#: Equal-width confidence bins.
BINS = 10


def calibration_error(pairs: Sequence[tuple[float, bool]]) -> float:
    """Expected calibration error of (confidence, right) pairs: each bin's gap between the two, by its share."""
    bins: dict[int, list[tuple[float, bool]]] = {}
    for confidence, hit in pairs:
        bins.setdefault(min(int(confidence * BINS), BINS - 1), []).append((confidence, hit))
    return sum(len(b) / len(pairs) * abs(sum(c for c, _ in b) / len(b) - sum(h for _, h in b) / len(b))
               for b in bins.values())
