"""`leadpipe`: run the pipeline locally and look after it, locally or in AWS.

Built on click: each command is a decorated function whose docstring is its `--help`. Click rather
than Typer: Typer is a layer over click that reads options from type hints; click alone keeps the
options explicit, has one dependency fewer, and is what Typer's own errors and help come from.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import click

from infra.config import SettingsError
from leadpipe.cli.database import db
from leadpipe.cli.deploy import preflight, verify
from leadpipe.cli.errors import CliError
from leadpipe.cli.launch import openapi, plan
from leadpipe.cli.local import run
from leadpipe.cli.ops import dlq, drain, status
from leadpipe.cli.spike import spike

__all__ = ["CliError", "leadpipe", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def leadpipe() -> None:
    """Run the pipeline locally and look after it, locally or in AWS."""


for _command in (run, status, drain, dlq, plan, spike, openapi, db, preflight, verify):
    leadpipe.add_command(_command)


def main(argv: Sequence[str] | None = None) -> int:
    """The `leadpipe` console script: the exit status; every error is one line on stderr."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        try:
            status = leadpipe.main(args=argv, prog_name="leadpipe", standalone_mode=False)
        except click.UsageError as error:
            return _fail(_usage_line(error), error.ctx)
        except (CliError, SettingsError, click.ClickException) as error:
            return _fail(str(error) if not isinstance(error, click.ClickException) else error.format_message())
        except (BotoCoreError, ClientError) as error:
            return _fail(f"AWS said: {error}")
        except click.Abort:
            return 130
        sys.stdout.flush()  # a closed pipe shows here, inside the handler, not at exit
        return status or 0
    except BrokenPipeError:
        # The reader (`| head`) has gone: stop quietly, and keep Python's exit-time flush from complaining.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except SystemExit as exit_:  # click's own quiet exit after a closed pipe
        return exit_.code if isinstance(exit_.code, int) else 1


def _fail(message: str, context: click.Context | None = None) -> int:
    line = " ".join(message.split())
    if context is None:
        print(f"leadpipe: {line}", file=sys.stderr)
    else:
        print(f"{context.command_path}: {line} (see {context.command_path} --help)", file=sys.stderr)
    return 2


def _usage_line(error: click.UsageError) -> str:
    """The mistake in argparse's words, which the docs and scripts already know."""
    if isinstance(error, click.exceptions.NoArgsIsHelpError):
        return "the following arguments are required: COMMAND"
    if isinstance(error, click.MissingParameter) and error.param is not None:
        return f"the following arguments are required: {_option_name(error.param)}"
    if isinstance(error, click.BadParameter) and error.param is not None:
        return f"argument {_option_name(error.param)}: {error.message}"
    if isinstance(error, click.exceptions.NoSuchCommand) and error.ctx is not None:
        group = error.ctx.command
        choices = ", ".join(group.list_commands(error.ctx)) if isinstance(group, click.Group) else ""
        return f"invalid choice: {error.command_name!r} (choose from {choices})"
    return error.format_message()


def _option_name(parameter: click.Parameter) -> str:
    return "/".join(parameter.opts) if isinstance(parameter, click.Option) else (parameter.name or "?").upper()
