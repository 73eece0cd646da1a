"""docs/design.md is the repository's own account of its rules: code cites them by name, never by a number."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DESIGN = ROOT / "docs" / "design.md"
# A rule or an issue cited by its number (the word, a space, maybe "#", digits) points outside the repository.
OUTSIDE_NUMBER = re.compile(r"\b(?:invariants?|issues?)\s+#?\d+", re.IGNORECASE)
RULES = [
    "No false 202",
    "Exactly one outcome per accepted lead",
    "Bounded DB pressure",
    "A bad message never blocks good ones",
    "Bad input gets a clear 4xx",
    "No PII or secrets in logs",
    "Every 202 is a row",
    "A database outage costs time, never leads",
    "The local runtime is never kinder than AWS",
    "What AWS does, not what we wrote",
    "The main application comes first",
    "Rows exactly once, events at least once",
]


def tracked_text_files() -> list[Path]:
    names = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    suffixes = {".py", ".md", ".js", ".html", ".toml", ".json", ".sql", ".txt", ""}
    return [ROOT / name for name in names if Path(name).suffix in suffixes and (ROOT / name).is_file()]


def test_every_rule_has_its_own_section() -> None:
    # Given the design document; Then each rule is a heading a citation can find
    headings = {line.removeprefix("## ").strip() for line in DESIGN.read_text().splitlines() if line.startswith("## ")}
    assert set(RULES) <= headings


def test_no_file_cites_a_rule_or_an_issue_by_number() -> None:
    # Given every tracked text file; Then none points outside the repository with a number
    citations = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in tracked_text_files()
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1)
        if OUTSIDE_NUMBER.search(line)
    ]
    assert citations == []


def test_the_check_finds_a_numbered_citation() -> None:
    # Given lines as they used to be written; Then the pattern catches each, and not a rule's name
    old_citations = [
        "(invar" + "iant 8)",
        "iss" + "ue 14: within 60 s",
        "see iss" + "ue #17",
    ]  # split: this file is checked too
    assert all(OUTSIDE_NUMBER.search(line) for line in old_citations)
    assert not any(OUTSIDE_NUMBER.search(rule) for rule in RULES)
