"""The project's corpus of real-world cases: add a case to its split, and check the whole corpus.

    .venv/bin/python benchmarks/corpus.py add CASE.json [...] [--shared ../shared/cases-realworld]
    .venv/bin/python benchmarks/corpus.py check [--shared ../shared/cases-realworld]

Each case is one public thread whose answer settled the cause (format: `cases/case.schema.json`,
the same as `../shared/cases-realworld`). Its split is fixed by its source, never chosen by hand:
a case goes to `test/` when the SHA-256 of its normalised source falls in the lowest
TEST_SHARE of the hash space, else to `dev/`. Reasoning is tuned on `dev/` only.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from collections import Counter
from pathlib import Path

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parent
CORPUS = ROOT / "cases" / "realworld"
SCHEMA = json.loads((ROOT / "cases" / "case.schema.json").read_text(encoding="utf-8"))
KNOWLEDGE = ROOT.parent / "knowledge"
#: Share of threads held out for testing.
TEST_SHARE = 0.3
#: Lines that show the asker pasted code rather than described it.
CODE = re.compile(r"\b(?:model\.(?:add|compile|fit)\(|Dense\(|Sequential\(|import \w|def \w+\(|optimizer\s*=)")


def normalised(source: str) -> str:
    """One spelling per thread: scheme, www., mirrors' slugs and GitHub URL forms dropped."""
    text = source.strip().lower()
    text = re.sub(r"^https?://(?:www\.)?", "", text).rstrip("/")
    github = re.match(r"github\.com/([^/]+/[^/]+)/(?:issues|pull)/(\d+)", text)
    if github:
        return f"{github[1]}#{github[2]}"
    question = re.match(r"([a-z.]*(?:stackoverflow|stackexchange)\.com)/(?:questions|q)/(\d+)", text)
    if question:
        return f"{question[1]}/q/{question[2]}"
    return text.split(" ")[0]


def split_of(source: str) -> str:
    digest = int(hashlib.sha256(normalised(source).encode()).hexdigest()[:8], 16)
    return "test" if digest < TEST_SHARE * 16**8 else "dev"


def known_causes() -> set[str]:
    return {yaml.safe_load(p.read_text(encoding="utf-8"))["id"] for p in (KNOWLEDGE / "causes").glob("*.yaml")}


def input_facts() -> set[str]:
    facts = yaml.safe_load((KNOWLEDGE / "facts.yaml").read_text(encoding="utf-8"))["facts"]
    return {name for name, spec in facts.items() if spec["kind"] == "input"}


def problems(case: dict, causes: set[str], keys: set[str]) -> list[str]:
    """What is wrong with one case, beyond its schema."""
    found = [e.message for e in jsonschema.Draft202012Validator(SCHEMA).iter_errors(case)]
    if found:
        return found
    expected = case["expected"]
    for cause in (expected["primary"], *expected.get("acceptable", [])):
        if cause not in causes:
            found.append(f"unknown cause {cause!r}")
    for where, mapping in (("facts", case["facts"]), ("request.dataset", case["request"].get("dataset", {})),
                           ("request.training", case["request"].get("training", {}))):
        found += [f"{where}: {key!r} is not a contract fact key" for key in mapping if key not in keys]
    for key, value in {**case["request"].get("dataset", {}), **case["request"].get("training", {})}.items():
        if key in case["facts"] and case["facts"][key] != value:
            found.append(f"request says {key}={value!r} but facts say {case['facts'][key]!r}")
    return found


def corpus_cases() -> dict[Path, dict]:
    return {p: json.loads(p.read_text(encoding="utf-8")) for p in sorted(CORPUS.glob("*/*.json"))}


def shared_sources(shared: str | None) -> set[str]:
    if not shared:
        return set()
    return {normalised(json.loads(p.read_text(encoding="utf-8"))["source"]) for p in Path(shared).glob("*.json")}


def kind(case: dict) -> dict[str, bool]:
    request = case["request"]
    return {"log": "metrics" in request, "code": bool(CODE.search(request["symptom"])),
            "thin": "training" not in request and "dataset" not in request}


def add(paths: list[str], shared: str | None) -> int:
    causes, keys = known_causes(), input_facts()
    taken = {normalised(c["source"]): p for p, c in corpus_cases().items()}
    public = shared_sources(shared)
    status = 0
    for name in paths:
        case = json.loads(Path(name).read_text(encoding="utf-8"))
        wrong = problems(case, causes, keys)
        source = normalised(case.get("source", ""))
        if source in taken:
            wrong.append(f"the thread is already in the corpus: {taken[source].relative_to(ROOT)}")
        if source in public:
            wrong.append("the thread is one of the shared public cases")
        if wrong:
            print(f"{name}: refused: " + "; ".join(wrong), file=sys.stderr)
            status = 1
            continue
        target = CORPUS / split_of(case["source"]) / f"{case['id']}.json"
        if target.exists():
            print(f"{name}: refused: {target.relative_to(ROOT)} exists; pick another id", file=sys.stderr)
            status = 1
            continue
        target.write_text(json.dumps(case, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        taken[source] = target
        print(f"{name}: added as {target.relative_to(ROOT)}")
    return status


def check(shared: str | None) -> int:
    causes, keys = known_causes(), input_facts()
    cases = corpus_cases()
    public = shared_sources(shared)
    seen: dict[str, Path] = {}
    status = 0
    for path, case in cases.items():
        wrong = problems(case, causes, keys)
        source = normalised(case.get("source", ""))
        if path.parent.name != split_of(case.get("source", "")):
            wrong.append(f"belongs in {split_of(case['source'])}/ by its source's hash")
        if source in seen:
            wrong.append(f"same thread as {seen[source].relative_to(ROOT)}")
        if source in public:
            wrong.append("the thread is one of the shared public cases")
        seen[source] = path
        if wrong:
            print(f"{path.relative_to(ROOT)}: " + "; ".join(wrong), file=sys.stderr)
            status = 1
    splits = Counter(p.parent.name for p in cases)
    kinds = Counter(k for c in cases.values() for k, v in kind(c).items() if v)
    print(f"{len(cases)} cases: dev {splits['dev']}, test {splits['test']}; "
          f"with a log {kinds['log']}, with code {kinds['code']}, thin {kinds['thin']}")
    per = Counter(c["expected"]["primary"] for c in cases.values())
    for cause in sorted(causes):
        print(f"  {cause:<28} {per.get(cause, 0)}")
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    add_parser = sub.add_parser("add", help="validate cases and file each under its split")
    add_parser.add_argument("paths", nargs="+")
    for p in (add_parser, sub.add_parser("check", help="validate the whole corpus and count it")):
        p.add_argument("--shared", help="the shared public cases, to refuse their threads")
    args = parser.parse_args(argv)
    return add(args.paths, args.shared) if args.command == "add" else check(args.shared)


if __name__ == "__main__":
    sys.exit(main())
