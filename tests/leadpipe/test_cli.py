"""The CLI as a shell sees it: every command described, quiet in a closed pipe, one-line errors."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import pytest

from leadpipe.cli import build_parser, main

CLI = [sys.executable, "-m", "leadpipe.cli"]


def every_command(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, subparser in action.choices.items():
                found += [((*path, name), subparser), *every_command(subparser, (*path, name))]
    return found


def test_every_subcommand_has_a_description_in_its_help() -> None:
    # Given every command and subcommand the parser knows (whoever added it)
    commands = every_command(build_parser())
    assert {("plan",), ("spike",), ("dlq", "list"), ("db", "erase")} <= {path for path, _ in commands}
    # Then each one's --help opens with a description
    for path, parser in commands:
        assert parser.description, f"`leadpipe {' '.join(path)} --help` has no description"
        assert " ".join(parser.description.split()) in " ".join(parser.format_help().split())  # wrapped to the terminal


def test_output_into_a_closed_pipe_ends_quietly() -> None:
    # Given a pipe whose reader has already gone (`leadpipe plan ... | head` after head exits)
    read_end, write_end = os.pipe()
    os.close(read_end)
    # When the plan is printed into it
    result = subprocess.run(
        [*CLI, "plan", "--campaign", "X", "--leads", "1000000", "--within-minutes", "1", "--stage", "prod"],
        stdout=write_end,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
        check=False,
    )
    os.close(write_end)
    # Then there is no traceback, nothing on stderr at all
    assert result.stderr == ""
    assert result.returncode == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["plan", "--campaign", "X", "--leads", "ten", "--within-minutes", "1"],
            "argument --leads: 'ten' is not a number",
        ),
        (["plan", "--leads", "10"], "the following arguments are required: --campaign"),
        (["nosuchcommand"], "invalid choice: 'nosuchcommand'"),
        (["spike", "--total", "many"], "argument --total: 'many' is not a whole number"),
        (["plan", "--campaign", "X", "--leads", "10"], "exactly one of --within-minutes or --peak-hour-share"),
    ],
)
def test_errors_are_one_line_and_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture) -> None:
    # When the CLI is used wrongly
    try:
        status = main(argv)
    except SystemExit as exit_:
        status = exit_.code
    error = capsys.readouterr().err
    # Then: one line on stderr that names the mistake, exit status 2
    assert status == 2
    assert message in error
    assert error.count("\n") == 1, error
