"""`leadpipe dlq ... --destination NAME | --hand-off`: the events lane's dead-letter queues."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from leadpipe.cli.errors import CliError
from leadpipe.cli.options import TargetChoice


@dataclass(frozen=True)
class EventsQueueChoice:
    """A destination's DLQ (`destination`), or the events hand-off DLQ (`destination` None)."""

    destination: str | None

    def resolve(self, target: TargetChoice) -> Any:
        from leadpipe.event_dead_letters import resolve
        from leadpipe.local.runtime import DEFAULT_DATA_DIR
        from leadpipe.targets import TargetNotFound

        try:
            return resolve(target.stack, target.data_dir or DEFAULT_DATA_DIR, self.destination)
        except TargetNotFound as error:
            raise CliError(str(error)) from None


def events_queue_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """`--destination NAME` and `--hand-off`, handed to the command as `events_queue` (None: the leads DLQ)."""

    @functools.wraps(command)
    def with_choice(*args: Any, destination: str | None, hand_off: bool, **kwargs: Any) -> Any:
        if destination and hand_off:
            raise CliError("choose one of --destination or --hand-off")
        choice = EventsQueueChoice(destination) if destination or hand_off else None
        return command(*args, events_queue=choice, **kwargs)

    with_choice = click.option("--hand-off", is_flag=True, help="The events hand-off queue's DLQ instead.")(with_choice)
    return click.option("--destination", metavar="NAME", help="This event destination's DLQ instead.")(with_choice)


def list_events(target: TargetChoice, choice: EventsQueueChoice, limit: int, as_json: bool) -> int:
    from leadpipe import event_dead_letters
    from leadpipe.status import queue_depth

    queue = choice.resolve(target)
    total = queue_depth(queue.sqs, queue.url)
    letters = event_dead_letters.peek(queue, limit)
    if as_json:
        print(json.dumps({"count": total, "messages": [letter.as_dict() for letter in letters]}, indent=2))
        return 0
    print(f"{total} event(s) in {queue.description} (the leads are stored; these are their events)")
    for letter in letters:
        print(
            f"- {letter.message_id}  age {letter.age_seconds:.0f} s  lead {letter.lead_id or '?'}  "
            f"campaign {letter.campaign or '-'}  email {letter.email or '?'}\n  reason: {letter.reason}"
        )
    return 0


def redrive_events(
    target: TargetChoice, choice: EventsQueueChoice, limit: int | None, max_per_second: int | None
) -> int:
    from leadpipe import event_dead_letters

    print(event_dead_letters.redrive(choice.resolve(target), limit, max_per_second))
    return 0


def purge_events(target: TargetChoice, choice: EventsQueueChoice, yes: bool) -> int:
    from leadpipe import event_dead_letters
    from leadpipe.status import queue_depth

    queue = choice.resolve(target)
    total = queue_depth(queue.sqs, queue.url)
    if not yes:
        if not sys.stdin.isatty():
            raise CliError("purge deletes events for good: confirm with --yes when not at a terminal")
        if not click.confirm(f"Delete all {total} event(s) in {queue.description}?"):
            print("nothing deleted")
            return 1
    event_dead_letters.purge(queue)
    print(f"purged {total} event(s)")
    return 0
