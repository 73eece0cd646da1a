"""The README a newcomer reads: short, its links resolve, and the commands it shows run."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from leadpipe.cli import main as leadpipe

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCUMENTS = [README, *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)


def visible(path: Path) -> str:
    """The text a reader sees: HTML comments (the lead's placeholders) taken out."""
    return COMMENT.sub("", path.read_text())


def github_anchor(heading: str) -> str:
    """The fragment GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {github_anchor(line.lstrip("#")) for line in path.read_text().splitlines() if line.startswith("#")}


def relative_links() -> list[tuple[Path, str]]:
    found = []
    for document in DOCUMENTS:
        for target in LINK.findall(visible(document)):
            if not re.match(r"^[a-z]+:", target):  # http(s), mailto: not ours to check offline
                found.append((document, target))
    return found


def test_the_readme_is_read_in_five_minutes() -> None:
    # Given the README; Then it stays at most 250 lines (read in five minutes)
    assert len(README.read_text().splitlines()) <= 250


@pytest.mark.parametrize(
    ("document", "target"), relative_links(), ids=lambda v: str(v.relative_to(ROOT)) if isinstance(v, Path) else v
)
def test_every_relative_link_resolves(document: Path, target: str) -> None:
    # Given a relative link in the README or docs/; When it is followed from its file
    path, _, fragment = target.partition("#")
    resolved = (document.parent / path).resolve() if path else document
    # Then the file is there, and so is the heading it points at
    assert resolved.is_file(), f"{document.name}: {target} does not exist"
    if fragment:
        assert fragment in anchors(resolved), f"{document.name}: no heading #{fragment} in {resolved.name}"


def test_the_link_check_catches_a_broken_link(tmp_path: Path) -> None:
    # Given a document with a link to nothing; Then the same extraction finds it and it does not resolve
    document = tmp_path / "x.md"
    document.write_text("see [missing](docs/missing.md) and [ok](x.md#x) and [web](https://example.com)\n# X\n")
    targets = LINK.findall(document.read_text())
    assert targets == ["docs/missing.md", "x.md#x", "https://example.com"]
    assert not (tmp_path / "docs/missing.md").is_file() and "x" in anchors(document)


def readme_commands() -> list[str]:
    """Every `leadpipe ...` invocation the README shows in code, placeholders and all."""
    found = re.findall(r"`(?:\.venv/bin/)?(leadpipe [^`]+)`", visible(README))
    return sorted(set(found))


@pytest.mark.parametrize("command", readme_commands())
def test_every_cli_command_the_readme_shows_exists_with_its_options(
    command: str, capsys: pytest.CaptureFixture
) -> None:
    # Given a command as the README shows it, optional parts in [brackets]
    tokens = shlex.split(command.replace("[", "").replace("]", ""))[1:]
    path = [t for t in tokens[: next((i for i, t in enumerate(tokens) if t.startswith("-")), len(tokens))]]
    # When its --help is asked for
    status = leadpipe([*path, "--help"])
    help_text = capsys.readouterr().out
    # Then it exists, has a description, and knows every option the README uses
    assert status == 0
    after_usage = help_text.split("\n\n")[1]
    assert not after_usage.startswith(("Options:", "Commands:")), (
        f"`leadpipe {' '.join(path)} --help` has no description"
    )
    for option in (t for t in tokens if t.startswith("--")):
        assert option in help_text, f"the README shows {option} for `leadpipe {' '.join(path)}`"


def test_the_readme_plan_command_runs(capsys: pytest.CaptureFixture) -> None:
    # Given the README's plan invocation with its placeholders filled in
    command = next(c for c in readme_commands() if c.startswith("leadpipe plan --campaign"))
    argv = shlex.split(command.replace("X", "LAUNCH").replace(" N ", " 50000 ").replace(" M ", " 10 "))[1:]
    # When it runs; Then it prints the launch review
    assert leadpipe(argv) == 0
    assert "## Launch review: LAUNCH (stage `prod`)" in capsys.readouterr().out


@pytest.mark.parametrize("target", ["run", "test"])
def test_the_two_make_commands_exist(target: str) -> None:
    # Given the README's two commands; When make is asked what they would do (-n runs nothing)
    assert f"make {target}" in README.read_text()
    result = subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    # Then both are real targets
    assert result.returncode == 0, result.stderr


def test_the_picture_caption_states_the_runs_figures() -> None:
    # Given the summary the spike wrote beside the picture it drew
    summary = json.loads((ROOT / "docs" / "spike-local.json").read_text())
    caption = visible(README).split("docs/spike-local.png)", 1)[1].split("\n\n")[1]
    # Then the caption under the picture quotes that run, not another one
    for figure in (summary["accepted"], summary["max_queued"], summary["lost"], summary["duplicates"]):
        assert f"{figure:,}" in caption
    assert (
        f"{summary['observed_drain_per_s']:,.0f}" in caption and f"{summary['predicted_drain_per_s']:,.0f}" in caption
    )
