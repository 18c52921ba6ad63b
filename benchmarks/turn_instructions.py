"""Machine instructions per request: a diagnosis turn (500-epoch history) next to the same body decoded
and stored only, counted by valgrind's callgrind rather than timed.

    .venv/bin/python benchmarks/turn_instructions.py [--requests 20]

serve_throughput.py gives the ratio the issue's aim is set on (diagnosis / stored-only throughput),
but on a shared 2-core machine its seconds drift with whatever else runs (the same code measured
0.27 to 0.50 within an hour). An instruction count does not: it is the same for the same code and
inputs whatever the machine is doing, so this says whether a change made a turn dearer, and by how
much. Each figure is (a run of N requests - the same run with none) / N, so start-up and imports
cancel. Both run in-process through Flask's test client, on the app serve_throughput.py measures;
the ratio is that of the work, not of gunicorn's throughput. Needs valgrind (apt-get install valgrind).
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Requests made before the counted ones in every run, so that caches are warm in both.
WARM = 3
ENDPOINTS = {"turn": "/api/v1/conversations", "stored": "/bench/store"}


def serve(endpoint: str, requests: int) -> None:
    """The child: ``WARM + requests`` POSTs of the diagnosis body to ``endpoint``."""
    sys.path.insert(0, str(ROOT))
    from benchmarks.serve_throughput import DIAGNOSIS_BODY, measured_app

    with tempfile.TemporaryDirectory() as tmp:
        client = measured_app({"DATABASE_URL": f"sqlite:///{tmp}/bench.sqlite", "RATELIMIT_ENABLED": False,
                               "REPRO_BACKEND": "off"}).test_client()
        for _ in range(WARM + requests):
            response = client.post(endpoint, data=DIAGNOSIS_BODY, content_type="application/json")
            assert response.status_code == 201, response.get_data(as_text=True)[:200]


def counted(endpoint: str, requests: int) -> int:
    """The instructions callgrind counts for one child run."""
    done = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
                           __file__, "--child", endpoint, str(requests)], capture_output=True, text=True, cwd=ROOT)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"valgrind run failed ({done.returncode}): {done.stderr.strip()[-400:]}")
    return int(found[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--child", nargs=2, metavar=("ENDPOINT", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        serve(args.child[0], int(args.child[1]))
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed: apt-get install valgrind")
    per = {}
    for name, endpoint in ENDPOINTS.items():
        per[name] = (counted(endpoint, args.requests) - counted(endpoint, 0)) / args.requests
    print(f"{'diagnosis turn, 500 epochs':<40} {per['turn'] / 1e6:8.2f} M instructions/request")
    print(f"{'same body, decoded and stored only':<40} {per['stored'] / 1e6:8.2f} M instructions/request")
    print(f"{'diagnosis / stored-only, by instructions':<40} {per['stored'] / per['turn']:8.2f}       "
          f"(the work behind the throughput aim >= 0.7)")


if __name__ == "__main__":
    main()
