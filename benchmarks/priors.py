"""Each cause's prior from how often real threads turn out to have it.

    .venv/bin/python benchmarks/priors.py [--shrink 0.3] [--write]

A cause's prior is ``shrink × ln((n + 1) / (mean + 1))``: n is the number of labelled real
threads whose settled cause it is, among the cases ``assistant kb learn-words`` learns from (the
corpus's dev split and ``../shared/cases-realworld``; a test split is refused), and mean is n
averaged over the causes. The logarithm makes it log-odds
against the average cause; ``shrink`` keeps a base rate from outweighing one piece of evidence
(at 0.3 the commonest cause leads the rarest by about 1, a weak rule's weight). Prints the table;
``--write`` puts the values into ``knowledge/causes/*.yaml``, where review reads them.
"""
from __future__ import annotations

import argparse
import math
import re
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assistant.kb.learn_words import DEFAULT_CASES, read_cases  # noqa: E402

CAUSES = ROOT / "knowledge" / "causes"
PRIOR = re.compile(r"^prior: .*$", re.M)
COMMENT = ("# How often real threads turn out to have this cause, as log-odds against the average cause\n"
           "# (benchmarks/priors.py, from the labelled dev and shared real-world threads); evidence moves it.\n")


def counts() -> Counter[str]:
    """How many labelled threads settled on each cause."""
    return Counter(case["expected"]["primary"] for case, _ in read_cases(DEFAULT_CASES))


def priors(seen: Counter[str], causes: list[str], shrink: float) -> dict[str, float]:
    mean = sum(seen[c] for c in causes) / len(causes)
    return {c: round(shrink * math.log((seen[c] + 1) / (mean + 1)), 2) for c in causes}


def write(path: Path, prior: float) -> None:
    text = path.read_text(encoding="utf-8")
    if PRIOR.search(text):
        text = PRIOR.sub(f"prior: {prior}", text, count=1)
    else:
        text = re.sub(r"^(snippet: .*)$", lambda m: f"{COMMENT}prior: {prior}\n{m[1]}", text, count=1, flags=re.M)
    path.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shrink", type=float, default=0.3, help="scale of the log base rate (default 0.3)")
    parser.add_argument("--write", action="store_true", help="write the priors into knowledge/causes")
    args = parser.parse_args(argv)
    files = {re.search(r"^id: (\S+)", p.read_text(encoding="utf-8"), re.M)[1]: p for p in sorted(CAUSES.glob("*.yaml"))}
    seen = counts()
    values = priors(seen, sorted(files), args.shrink)
    for cause, prior in sorted(values.items(), key=lambda item: -item[1]):
        print(f"{cause:28s} threads {seen[cause]:3d}  prior {prior:+.2f}")
        if args.write:
            write(files[cause], prior)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
