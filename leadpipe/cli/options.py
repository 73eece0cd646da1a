"""Typed options, and the options several commands share (which pipeline, which database)."""

from __future__ import annotations

import functools
import getpass
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from infra.config import settings_from_file
from leadpipe.cli.errors import CliError

if TYPE_CHECKING:
    from leadpipe.targets import PipelineTarget


class WholeNumber(click.ParamType):
    """An integer of at least `minimum`, refused in words a shell user reads at once."""

    name = "integer"

    def __init__(self, minimum: int = 1) -> None:
        self.minimum = minimum

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        try:
            number = int(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a whole number", param, ctx)
        if number < self.minimum:
            self.fail(f"{value} must be {self.minimum} or more", param, ctx)
        return number


class NonNegativeNumber(click.ParamType):
    name = "number"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if number < 0:
            self.fail(f"{value} must be 0 or more", param, ctx)
        return number


class IsoDateTime(click.ParamType):
    """ISO 8601 as Python reads it (click.DateTime wants the seconds)."""

    name = "datetime"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            self.fail(f"{value!r} is not an ISO 8601 date and time, e.g. 2026-12-01T09:00", param, ctx)


POSITIVE = WholeNumber(1)
NON_NEGATIVE = NonNegativeNumber()
PATH = click.Path(path_type=Path)

json_output = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
data_dir_option = click.option("--data-dir", type=PATH, default=None, help="The local runtime's data folder.")
database_url_option = click.option(
    "--database-url", envvar="DATABASE_URL", show_envvar=True, help="Read the leads table in this database."
)


def operating_system_user() -> str:
    """$USER, else the login name the operating system knows; empty when it knows none."""
    try:
        return os.environ.get("USER") or getpass.getuser()
    except (OSError, KeyError):  # a container's bare uid has no name
        return ""


@dataclass(frozen=True)
class TargetChoice:
    """Which pipeline a command talks to: a deployed stack by name, or the local runtime."""

    stack: str | None
    data_dir: Path | None
    database_url: str | None

    def resolve(self) -> PipelineTarget:
        from leadpipe.local.runtime import DEFAULT_DATA_DIR
        from leadpipe.targets import TargetNotFound, resolve_target

        try:
            return resolve_target(self.stack, self.data_dir or DEFAULT_DATA_DIR, self.database_url)
        except TargetNotFound as error:
            raise CliError(str(error)) from None


def target_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """`--stack`, `--data-dir` and `--database-url`, handed to the command as `target`."""

    @functools.wraps(command)
    def with_target(
        *args: Any, stack: str | None, data_dir: Path | None, database_url: str | None, **kwargs: Any
    ) -> Any:
        return command(*args, target=TargetChoice(stack, data_dir, database_url), **kwargs)

    options = (
        click.option("--stack", help="A deployed stack's name (default: the local runtime)."),
        data_dir_option,
        database_url_option,
    )
    for option in reversed(options):
        with_target = option(with_target)
    return with_target


@dataclass(frozen=True)
class DatabaseChoice:
    """A leads table to work on: given, or the stage's, in a database given or the local runtime's."""

    database_url: str | None
    data_dir: Path | None
    table: str | None
    stage: str

    def resolve(self) -> tuple[str, str]:
        """(database URL, leads table)."""
        from leadpipe.local.runtime import DEFAULT_DATA_DIR, RuntimeInfo

        table = self.table or settings_from_file(self.stage).leads_table
        if self.database_url:
            return self.database_url, table
        try:
            return RuntimeInfo.load(self.data_dir or DEFAULT_DATA_DIR).database_url, table
        except FileNotFoundError:
            raise CliError("no database: set DATABASE_URL (or --database-url), or start the local runtime") from None


def database_options(*, stage_required: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`--database-url`, `--data-dir`, `--table` and `--stage`, handed to the command as `database`."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(command)
        def with_database(
            *args: Any, database_url: str | None, data_dir: Path | None, table: str | None, stage: str, **kwargs: Any
        ) -> Any:
            return command(*args, database=DatabaseChoice(database_url, data_dir, table, stage), **kwargs)

        stage = (
            click.option("--stage", required=True, help="Whose leads table (from cdk.json).")
            if stage_required
            else click.option("--stage", default="dev", show_default=True, help="Whose leads table (from cdk.json).")
        )
        options = (
            click.option(
                "--database-url", envvar="DATABASE_URL", show_envvar=True, help="Default: the local runtime's."
            ),
            data_dir_option,
            click.option("--table", help="schema.table (default: the stage's leads_table)."),
            stage,
        )
        for option in reversed(options):
            with_database = option(with_database)
        return with_database

    return decorate
