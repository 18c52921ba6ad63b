"""How well the top cause's confidence is calibrated on a directory of evaluation cases.

    .venv/bin/python benchmarks/calibration.py ../shared/cases

Drives the API like the scorer (first reply only, no follow-up answers) and prints, per
confidence band, how often the top cause was right, plus the expected calibration error.
"""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from assistant import create_app  # noqa: E402

BANDS = [(0.0, 0.4), (0.4, 0.6), (0.6, 0.8), (0.8, 0.9), (0.9, 1.01)]


def main(cases_dir: str) -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        client = create_app({"DATABASE_URL": f"sqlite:///{tmp}/cal.sqlite"}).test_client()
        for path in sorted(Path(cases_dir).glob("*.json")):
            case = json.loads(path.read_text())
            reply = client.post("/api/v1/conversations", json=case["request"]).get_json()["reply"]
            right = {case["expected"]["primary"], *case["expected"].get("acceptable", [])}
            top = reply["causes"][0]
            rows.append((top["confidence"], top["id"] in right))
    ece = 0.0
    print(f"{'confidence':<12}{'cases':>6}{'mean conf':>11}{'accuracy':>10}")
    for low, high in BANDS:
        band = [(c, ok) for c, ok in rows if low <= c < high]
        if not band:
            continue
        conf = sum(c for c, _ in band) / len(band)
        acc = sum(ok for _, ok in band) / len(band)
        ece += len(band) / len(rows) * abs(conf - acc)
        print(f"{low:.1f}-{min(high, 1.0):.1f}{len(band):>9}{conf:>11.2f}{acc:>10.2f}")
    mean_conf = sum(c for c, _ in rows) / len(rows)
    accuracy = sum(ok for _, ok in rows) / len(rows)
    print(f"all {len(rows)} cases: mean confidence {mean_conf:.2f}, top-1 accuracy {accuracy:.2f}, "
          f"expected calibration error {ece:.3f}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(Path(__file__).resolve().parents[2] / "shared" / "cases"))
