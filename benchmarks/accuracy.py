"""How often the right cause comes first, on every case set we have, and how honest the confidence is.

    .venv/bin/python benchmarks/accuracy.py [--set NAME ...] [--json OUT] [--check-floors] [-v]

Plays every case as ``shared/eval/score.py`` does (the request; then, up to three times, the
first question whose fact the case knows is answered, or "I don't know" once) against the app
in process, and prints per set: top-1 and top-3 at the first and the final reply, thin (no
training configuration sent) against full cases, top-3 of thin cases after at most two
questions, per-cause recall, and the expected calibration error of the top cause's confidence.

Sets: the public synthetic cases (``../shared/cases``), the public real-world ones
(``../shared/cases-realworld``), and the project's own corpus (``benchmarks/cases/realworld``,
``dev`` and ``test``). A set that is not there is skipped. ``--check-floors`` compares each
set with ``benchmarks/accuracy_floors.json`` and exits 1 when one has dropped below its floor.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assistant import create_app  # noqa: E402
from assistant.kb.calibration import calibration_error as expected_calibration_error  # noqa: E402

SHARED = ROOT.parent / "shared"
SETS = {
    "synthetic": SHARED / "cases",
    "realworld-public": SHARED / "cases-realworld",
    "corpus-dev": ROOT / "benchmarks" / "cases" / "realworld" / "dev",
    "corpus-test": ROOT / "benchmarks" / "cases" / "realworld" / "test",
}
FLOORS = ROOT / "benchmarks" / "accuracy_floors.json"
MAX_TURNS = 3


@dataclass
class Record:
    """One case played through: the ranking after each reply, and the top confidence of each."""

    id: str
    right: frozenset[str]
    primary: str
    thin: bool
    rankings: list[list[str]] = field(default_factory=list)
    confidences: list[float] = field(default_factory=list)
    asked: list[str] = field(default_factory=list)
    #: What the service answered instead of a reply (a 4xx), which counts as a miss from then on.
    error: str | None = None

    def hit(self, turn: int, k: int) -> bool:
        ranking = self.rankings[min(turn, len(self.rankings) - 1)]
        return any(cause in self.right for cause in ranking[:k])


def load_cases(directory: Path) -> list[dict[str, Any]]:
    cases = []
    for path in sorted(directory.glob("*.json")):
        case = json.loads(path.read_text(encoding="utf-8"))
        if "request" in case and "expected" in case:
            case.setdefault("id", path.stem)
            cases.append(case)
    return cases


def play(client, case: dict[str, Any]) -> Record:
    expected = case["expected"]
    record = Record(case["id"], frozenset({expected["primary"], *expected.get("acceptable", [])}),
                    expected["primary"], "training" not in case["request"])
    response = client.post("/api/v1/conversations", json=case["request"])
    if response.status_code != 201:
        record.error = f"{response.status_code} {response.get_data(as_text=True)[:200]}"
        record.rankings, record.confidences = [[]], [0.0]
        return record
    conversation = response.get_json()["id"]
    reply = response.get_json()["reply"]
    facts = case.get("facts") or {}
    while True:
        record.rankings.append([cause["id"] for cause in reply["causes"]])
        record.confidences.append(reply["causes"][0]["confidence"] if reply["causes"] else 0.0)
        questions = reply["questions"]
        if len(record.rankings) > MAX_TURNS or not questions:
            break
        record.asked += [q["fact"] for q in questions]
        known = [q["fact"] for q in questions if q["fact"] in facts]
        body = {"facts": {known[0]: facts[known[0]]}} if known else {"text": "I don't know"}
        response = client.post(f"/api/v1/conversations/{conversation}/turns", json=body)
        if response.status_code != 200:
            record.error = f"turn: {response.status_code} {response.get_data(as_text=True)[:200]}"
            record.rankings.append([])
            record.confidences.append(0.0)
            break
        reply = response.get_json()["reply"]
        if not known:
            record.rankings.append([cause["id"] for cause in reply["causes"]])
            record.confidences.append(reply["causes"][0]["confidence"] if reply["causes"] else 0.0)
            break
    return record


def calibration_error(records: list[Record], turn: int) -> float:
    """Expected calibration error of the top cause's confidence at a reply (-1 = the final one)."""
    return expected_calibration_error([
        (record.confidences[turn if turn >= 0 else len(record.confidences) - 1],
         record.hit(turn if turn >= 0 else len(record.rankings) - 1, 1)) for record in records])


def _share(records: list[Record], turn: int, k: int) -> float:
    return sum(r.hit(turn, k) for r in records) / len(records) if records else 0.0


def summary(records: list[Record]) -> dict[str, Any]:
    final = 10**6  # any turn past the last one means "the final reply"
    thin = [r for r in records if r.thin]
    full = [r for r in records if not r.thin]
    per_cause: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        per_cause[record.primary].append(record)
    return {
        "cases": len(records), "thin": len(thin), "errors": sum(r.error is not None for r in records),
        "first_top1": _share(records, 0, 1), "first_top3": _share(records, 0, 3),
        "top1": _share(records, final, 1), "top3": _share(records, final, 3),
        "full_top1": _share(full, final, 1), "thin_top1": _share(thin, final, 1),
        "thin_top3_two_questions": _share(thin, 2, 3),
        "ece_first": calibration_error(records, 0), "ece": calibration_error(records, -1),
        "mean_confidence": sum(r.confidences[-1] for r in records) / len(records),
        "per_cause": {cause: {"n": len(rs), "top1": _share(rs, final, 1), "top3": _share(rs, final, 3)}
                      for cause, rs in sorted(per_cause.items())},
    }


def report(name: str, s: dict[str, Any], records: list[Record], verbose: bool) -> None:
    print(f"\n== {name}: {s['cases']} cases ({s['thin']} thin), {s['errors']} answered with an error")
    print(f"   first reply  top1 {s['first_top1']:.2f}  top3 {s['first_top3']:.2f}")
    print(f"   final reply  top1 {s['top1']:.2f}  top3 {s['top3']:.2f}   "
          f"(full top1 {s['full_top1']:.2f}, thin top1 {s['thin_top1']:.2f}, "
          f"thin top3 after ≤2 questions {s['thin_top3_two_questions']:.2f})")
    print(f"   calibration  ECE {s['ece']:.3f} final, {s['ece_first']:.3f} first; "
          f"mean top confidence {s['mean_confidence']:.2f}")
    if verbose:
        for cause, v in s["per_cause"].items():
            print(f"     {cause:<28} n={v['n']:<3} top1 {v['top1']:.2f}  top3 {v['top3']:.2f}")
        for r in records:
            mark = "ok" if r.hit(10**6, 1) else "~3" if r.hit(10**6, 3) else "--"
            print(f"     {mark} {r.id:<48} want {r.primary:<26} got {','.join(r.rankings[-1][:3])}"
                  f"  asked {','.join(dict.fromkeys(r.asked))}" + (f"  ERROR {r.error}" if r.error else ""))


def check_floors(results: dict[str, dict[str, Any]], floors: dict[str, dict[str, float]]) -> list[str]:
    """Each figure of a measured set that dropped below its floor (a calibration error: rose above it)."""
    return [f"{name}: {metric} {results[name][metric]:.3f} is {'above its ceiling' if up else 'below its floor'} {floor}"
            for name, metrics in floors.items() if name in results
            for metric, floor in metrics.items()
            if (up := metric.startswith("ece")) and results[name][metric] > floor
            or not up and results[name][metric] < floor]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", dest="sets", action="append", choices=sorted(SETS), help="only these sets")
    parser.add_argument("--json", dest="json_out", help="write every figure and case here")
    parser.add_argument("--check-floors", action="store_true", help=f"exit 1 below the floors of {FLOORS.name}")
    parser.add_argument("-v", "--verbose", action="store_true", help="per cause and per case lines")
    args = parser.parse_args(argv)
    results, cases_out = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        client = create_app({"DATABASE_URL": f"sqlite:///{tmp}/accuracy.sqlite", "RATELIMIT_ENABLED": False}).test_client()
        for name in args.sets or SETS:
            if not SETS[name].is_dir():
                print(f"\n== {name}: skipped ({SETS[name]} is not there)")
                continue
            records = [play(client, case) for case in load_cases(SETS[name])]
            results[name] = summary(records)
            cases_out[name] = [vars(r) | {"right": sorted(r.right)} for r in records]
            report(name, results[name], records, args.verbose)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"summary": results, "cases": cases_out}, indent=1))
    if args.check_floors:
        failures = check_floors(results, json.loads(FLOORS.read_text(encoding="utf-8")))
        for failure in failures:
            print(f"FLOOR {failure}", file=sys.stderr)
        print("\nfloors: " + ("all held" if not failures else f"{len(failures)} dropped"))
        return 1 if failures else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
