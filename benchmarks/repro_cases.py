"""Reproduction runs over the public cases that carry a training configuration.

    .venv/bin/python benchmarks/repro_cases.py [--cases ../shared/cases] [--only pub-003] [--json out.json]

Each case goes through the API as a client would: the conversation starts with the case's
request, the facts the assistant would ask for next are answered from the case's oracle
(as shared/eval/score.py answers questions), then a run is started on the embedded local
backend and followed to its end. Reported: the share of runs whose baseline reproduced the
reported symptom (aim >= 95%; counted too where only the baseline with the leading cause's fault
assumed did, and how many those were: the verdict then asks for the missing fact), the share
whose verdict confirms the expected cause (the leading confirmed cause is the case's primary or
an acceptable one), and the median time from the POST to the verdict (aim <= 60 s on 2 cores).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from assistant import create_app  # noqa: E402
from assistant.repro import FINISHED  # noqa: E402


def run_case(client, case: dict) -> dict:
    request = case["request"]
    started = client.post("/api/v1/conversations", json=request).get_json()
    sent = {**(request.get("training") or {}), **(request.get("dataset") or {})}
    rest = {key: value for key, value in case["facts"].items() if key not in sent}
    if rest:
        client.post(f"/api/v1/conversations/{started['id']}/turns", json={"facts": rest})
    clock = time.perf_counter()
    response = client.post(f"/api/v1/conversations/{started['id']}/reproductions", json={})
    run = response.get_json()
    if response.status_code != 202:
        return {"status": "refused", "error": run["error"]["message"], "seconds": 0.0}
    while run["status"] not in FINISHED:
        time.sleep(0.05)  # finely, since the poll's wait counts in the time to a verdict
        run = client.get(run["links"]["self"]).get_json()
    result = run["result"] or {}
    expected = {case["expected"]["primary"], *case["expected"].get("acceptable", [])}
    return {"status": run["status"], "error": run["error"], "seconds": time.perf_counter() - clock,
            "training_seconds": training_wall(result.get("experiments", [])),
            "reproduced": bool(result.get("reproduced")), "assumed": result.get("assumed"),
            "leading": result.get("leading"),
            "confirmed": result.get("leading") in expected, "symptom": result.get("symptom"),
            "tried": [e["name"] for e in run["plan"]],
            "trained": {e["name"]: {"epochs": len(e["history"].get("loss", [])),
                                    "seconds": round(e.get("seconds", 0), 2)} for e in result.get("experiments", [])}}


def training_wall(experiments: list[dict]) -> float:
    """Seconds during which at least one experiment was training: experiments train at once in lanes."""
    spans = sorted((e["started"], e["started"] + e["seconds"]) for e in experiments if e.get("seconds"))
    total, reached = 0.0, float("-inf")
    for start, end in spans:
        total += max(0.0, end - max(start, reached))
        reached = max(reached, end)
    return total


CASES = Path(__file__).resolve().parents[2] / "shared" / "cases"


def public_cases(folder: str | Path = CASES, only: str = "") -> list[tuple[str, dict]]:
    """The public cases with a training configuration (the only ones a run can be built from), by name."""
    paths = sorted(p for p in Path(folder).glob("pub-*.json") if only in p.name)
    cases = [(p.stem, json.loads(p.read_text())) for p in paths]
    return [(name, case) for name, case in cases if case["request"].get("training")]


def run_cases(cases: list[tuple[str, dict]]) -> dict[str, dict]:
    """Each case's run on a fresh app with the local backend, printed as it ends; the outcomes by name."""
    outcomes = {}
    with tempfile.TemporaryDirectory() as folder:
        app = create_app({"DATABASE_URL": f"sqlite:///{folder}/bench.sqlite", "REPRO_BACKEND": "local"})
        client = app.test_client()
        for name, case in cases:
            outcome = outcomes[name] = run_case(client, case)
            print(f"{name:40} {case['expected']['primary']:27} {outcome['status']:8} {outcome['seconds']:5.1f}s "
                  f"reproduced={outcome.get('reproduced')!s:5} leading={outcome.get('leading')} "
                  + (f"assumed={outcome['assumed']} " if outcome.get("assumed") else "") +
                  f"{outcome.get('symptom') or outcome.get('error') or ''}", flush=True)
    return outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=str(CASES))
    parser.add_argument("--only", default="", help="run the cases whose file name contains this")
    parser.add_argument("--json", help="write every case's outcome here")
    args = parser.parse_args()
    outcomes = run_cases(public_cases(args.cases, args.only))
    done = [o for o in outcomes.values() if o["status"] == "done"]
    reproduced = sum(o["reproduced"] for o in done) / len(outcomes)
    confirmed = sum(o["confirmed"] for o in done) / len(outcomes)
    median = statistics.median(o["seconds"] for o in done) if done else float("nan")
    if args.json:
        Path(args.json).write_text(json.dumps(outcomes, indent=2))
    assumed = sum(bool(o.get("assumed")) for o in done)
    print(f"cases={len(outcomes)} done={len(done)} reproduced={reproduced:.2f} confirmed={confirmed:.2f} "
          f"median_seconds={median:.1f} reproduced_only_with_an_assumed_fault={assumed}")


if __name__ == "__main__":
    main()
