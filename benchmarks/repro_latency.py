"""Time to a reproduction run's verdict, and where that time goes, on the public cases.

    .venv/bin/python benchmarks/repro_latency.py [--cases N] [--folder ../shared/cases]

Runs ``N`` of the public cases with a training configuration (spread evenly over them; all by
default) the way ``benchmarks/repro_cases.py`` does, through the API on the local backend, and
prints the median and 90th percentile of the time from the POST to the verdict, the reproduced
and confirmed rates, and ``overhead share  S``: the share of the time to a verdict during which
no experiment was training (process start, imports, data, planning, storing, polling). The
first run of the benchmark also pays for starting the warm worker, as the first run after a
service starts does. Aims (2 cores): median <= 6 s, overhead share <= 0.25, reproduced >= 0.95,
confirmed >= 0.90.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.repro_cases import CASES, public_cases, run_cases  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=0, help="how many cases (0: all)")
    parser.add_argument("--folder", default=str(CASES))
    args = parser.parse_args()
    cases = public_cases(args.folder)
    if args.cases:
        step = max(1, len(cases) // args.cases)
        cases = cases[::step][:args.cases]
    outcomes = list(run_cases(cases).values())
    done = [o for o in outcomes if o["status"] == "done"]
    seconds = sorted(o["seconds"] for o in done)
    p90 = statistics.quantiles(seconds, n=10, method="inclusive")[-1] if len(seconds) > 1 else seconds[0]
    training = sum(o["training_seconds"] for o in done)
    print(f"cases {len(outcomes)}  done {len(done)}")
    print(f"time to verdict  median {statistics.median(seconds):.1f} s  p90 {p90:.1f} s")
    print(f"reproduced {sum(o['reproduced'] for o in done) / len(outcomes):.2f}  "
          f"confirmed {sum(o['confirmed'] for o in done) / len(outcomes):.2f}  "
          f"(reproduced only with an assumed fault: {sum(bool(o.get('assumed')) for o in done)})")
    print(f"overhead share  {1 - training / sum(seconds):.2f}")


if __name__ == "__main__":
    main()
