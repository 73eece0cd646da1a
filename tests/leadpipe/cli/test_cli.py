"""The CLI as a shell sees it: every command described, quiet in a closed pipe, one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys

import click
import pytest

from leadpipe.cli import leadpipe, main

CLI = [sys.executable, "-m", "leadpipe.cli"]


def every_command(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    found = []
    for name, command in group.commands.items():
        found.append(((*path, name), command))
        if isinstance(command, click.Group):
            found += every_command(command, (*path, name))
    return found


def help_of(path: tuple[str, ...], command: click.Command) -> str:
    context = click.Context(command, info_name=" ".join(("leadpipe", *path)))
    return command.get_help(context)


def test_every_subcommand_has_a_description_in_its_help() -> None:
    # Given every command and subcommand the parser knows (whoever added it)
    commands = every_command(leadpipe)
    assert {("plan",), ("spike",), ("dlq", "list"), ("db", "erase")} <= {path for path, _ in commands}
    # Then each one's --help opens with a description
    for path, command in commands:
        assert command.help, f"`leadpipe {' '.join(path)} --help` has no description"
        help_text = " ".join(help_of(path, command).split())  # wrapped to the terminal
        assert " ".join(command.help.split()) in help_text


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
