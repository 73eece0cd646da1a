"""The drain breaker's states and transitions, its AWS probe (moto), the local breaker and the poller's pause."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from functions.worker import probe_handler
from functions.worker.drain import (
    NOT_PAUSED,
    DrainState,
    OperatorPause,
    PauseRecordError,
    decide,
    observed_state,
    parse_pause_record,
    run_breaker,
)
from leadpipe.local.drain_breaker import PAUSE_FILE_NAME, STATE_FILE_NAME, LocalDrainBreaker, read_local_drain_state
from leadpipe.local.poller import EventSourceSettings, SqsEventSourcePoller
from tests.conftest import TEST_REGION
from tests.events import emitted_metrics
from tests.functions.worker.conftest import worker_outage_datapoints

PAUSE = OperatorPause(who="dba-on-call", why="VACUUM FULL", since="2026-11-30T03:00:00+00:00")


# --- the decision ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("database_answers", "pause", "state", "receiving"),
    [
        (True, None, DrainState.RUNNING, True),
        (False, None, DrainState.HELD_BY_BREAKER, False),
        (True, PAUSE, DrainState.PAUSED_BY_OPERATOR, False),  # the breaker never overrides an operator
        (False, PAUSE, DrainState.PAUSED_BY_OPERATOR, False),
    ],
)
def test_decide_every_combination(
    database_answers: bool, pause: OperatorPause | None, state: DrainState, receiving: bool
) -> None:
    # Given a probe result and an operator's record; When deciding
    decision = decide(database_answers, pause)
    # Then the state and the Enabled flag follow the table in docs/drain-breaker.md
    assert (decision.state, decision.receiving, decision.pause) == (state, receiving, pause)


def test_pause_record_round_trip_and_unreadable_record_still_counts_as_a_pause() -> None:
    # Given a pause written by the CLI
    pause = OperatorPause.now("  dba-on-call ", "maintenance", clock=datetime(2026, 11, 30, 3, 0, tzinfo=UTC))
    # Then it reads back as written, and "not paused" reads as no pause
    assert parse_pause_record(pause.to_json()) == OperatorPause(
        "dba-on-call", "maintenance", "2026-11-30T03:00:00+00:00"
    )
    assert parse_pause_record(NOT_PAUSED) is None
    assert parse_pause_record(None) is None
    # And a mangled record holds the drain rather than letting the breaker resume it
    mangled = parse_pause_record('{"paused": true}')
    assert mangled is not None and mangled.who == "unknown"
    assert parse_pause_record("not json") is not None
    with pytest.raises(PauseRecordError, match="who paused it and why"):
        OperatorPause.now("ops", " ")


def test_observed_state_from_the_switch_and_the_record() -> None:
    assert observed_state(True, None) is DrainState.RUNNING
    assert observed_state(False, None) is DrainState.HELD_BY_BREAKER
    assert observed_state(False, PAUSE) is DrainState.PAUSED_BY_OPERATOR


class FakeSwitch:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.writes: list[bool] = []

    def is_enabled(self) -> bool:
        return self.enabled

    def set_enabled(self, enabled: bool) -> None:
        self.writes.append(enabled)
        self.enabled = enabled


def test_run_breaker_trips_resumes_and_leaves_an_operator_pause_alone() -> None:
    probes: list[str] = []

    def probe(answer: bool):
        return lambda: probes.append("probed") or answer

    switch = FakeSwitch(enabled=True)
    # When the database stops answering, the switch goes off
    assert run_breaker(probe(False), lambda: NOT_PAUSED, switch).switched is True
    assert (switch.enabled, switch.writes) == (False, [False])
    # And a second run with the same answer writes nothing
    assert run_breaker(probe(False), lambda: NOT_PAUSED, switch).switched is False
    # When it answers again, the switch goes back on
    run = run_breaker(probe(True), lambda: NOT_PAUSED, switch)
    assert (run.decision.state, switch.writes) == (DrainState.RUNNING, [False, True])
    # When an operator's record exists but the switch is still on (the CLI stopped half-way), it is turned off
    probes.clear()
    run = run_breaker(probe(True), lambda: PAUSE.to_json(), switch)
    assert (run.decision.state, switch.enabled, probes) == (DrainState.PAUSED_BY_OPERATOR, False, [])  # no probe needed
    # And a healthy database never re-enables a paused drain
    assert run_breaker(probe(True), lambda: PAUSE.to_json(), switch).switched is False
    assert switch.enabled is False


# --- the probe function in AWS (moto) ----------------------------------------------------------


def test_probe_disables_the_mapping_while_the_database_is_away_and_enables_it_when_back(
    deployed_mapping: Any, leads_db: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, lambda_context: Any, capsys
) -> None:
    postgres_uri = leads_db.uri
    monkeypatch.setenv("LEADS_TABLE", leads_db.leads_table)  # the probe checks it can take the worker's writes
    # Given a database that does not answer (a socket folder with no server in it)
    monkeypatch.setenv("DATABASE_URL", f"postgresql://leadpipe@/postgres?host={tmp_path}&connect_timeout=1")
    # When the probe runs
    answer = probe_handler.lambda_handler({"detail-type": "Scheduled Event"}, lambda_context)
    # Then the mapping is disabled, and the held state is a metric on-call can graph
    assert (answer["state"], answer["switched"], deployed_mapping()) == ("held_by_breaker", True, "Disabled")
    printed = capsys.readouterr().out
    assert emitted_metrics(printed)["DrainHeldByBreaker"] == 1.0
    # And it speaks for the idle worker: the DatabaseUnavailable alarm's own metric and dimension, so the
    # page does not turn OK while the breaker holds a drain that no batch runs through
    assert worker_outage_datapoints(printed) == [1.0]
    # When the database answers again (a real PostgreSQL) and the probe runs
    monkeypatch.setenv("DATABASE_URL", postgres_uri)
    probe_handler.reset_for_tests()
    answer = probe_handler.lambda_handler({"detail-type": "Scheduled Event"}, lambda_context)
    # Then the mapping is enabled again, and no outage is reported
    assert (answer["state"], answer["switched"], deployed_mapping()) == ("running", True, "Enabled")
    assert worker_outage_datapoints(capsys.readouterr().out) == []


def test_probe_never_enables_a_drain_the_operator_paused(
    deployed_mapping: Any, postgres_uri: str, monkeypatch: pytest.MonkeyPatch, lambda_context: Any
) -> None:
    # Given an operator's pause record and a healthy database
    boto3.client("ssm", region_name=TEST_REGION).put_parameter(
        Name="/leadpipe/drain-pause", Value=PAUSE.to_json(), Type="String", Overwrite=True
    )
    monkeypatch.setenv("DATABASE_URL", postgres_uri)
    # When the probe runs
    answer = probe_handler.lambda_handler({"detail-type": "CloudWatch Alarm State Change"}, lambda_context)
    # Then the drain stays (here: is put) off, and the answer names who paused it
    assert (answer["state"], deployed_mapping()) == ("paused_by_operator", "Disabled")
    assert answer["pause"]["who"] == "dba-on-call"


# --- the local breaker and the poller's pause ----------------------------------------------------


class FakeSource:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def pause(self) -> None:
        self.calls.append("pause")

    def resume(self) -> None:
        self.calls.append("resume")

    def wait_until_idle(self, timeout: float) -> bool:
        self.calls.append("idle?")
        return True


def test_local_breaker_follows_the_probe_and_the_pause_file(tmp_path: Path) -> None:
    source, answers = FakeSource(), [True]
    breaker = LocalDrainBreaker(source, lambda: answers[-1], tmp_path, interval_seconds=60)
    # Given a healthy database
    assert breaker.check_now().state is DrainState.RUNNING
    assert read_local_drain_state(tmp_path)["state"] == "running"
    # When it stops answering: the poller pauses, and the state is written once it is idle
    answers.append(False)
    assert breaker.check_now().state is DrainState.HELD_BY_BREAKER
    assert source.calls[-2:] == ["pause", "idle?"]
    assert read_local_drain_state(tmp_path)["receiving"] is False
    # When an operator pauses while it is away, and it comes back: the operator's pause holds
    (tmp_path / PAUSE_FILE_NAME).write_text(PAUSE.to_json())
    answers.append(True)
    assert breaker.check_now().state is DrainState.PAUSED_BY_OPERATOR
    assert read_local_drain_state(tmp_path)["pause"]["why"] == "VACUUM FULL"
    # When the operator resumes: the probe decides again
    (tmp_path / PAUSE_FILE_NAME).unlink()
    assert breaker.check_now().state is DrainState.RUNNING
    assert source.calls[-1] == "resume"
    assert [state for _, state in breaker.transitions] == [
        "running",
        "held_by_breaker",
        "paused_by_operator",
        "running",
    ]


def test_local_breaker_records_a_resume_before_the_source_receives_again(tmp_path: Path) -> None:
    answers = [True, False, True]
    seen_at_resume: list[tuple[str, str]] = []

    class WatchingSource(FakeSource):
        def resume(self) -> None:
            seen_at_resume.append((breaker.decision.state.value, read_local_drain_state(tmp_path)["state"]))

    breaker = LocalDrainBreaker(WatchingSource(), lambda: answers.pop(0), tmp_path, interval_seconds=60)
    # Given a drain held by the breaker
    breaker.check_now()
    assert breaker.check_now().state is DrainState.HELD_BY_BREAKER
    seen_at_resume.clear()
    # When the database answers again
    breaker.check_now()
    # Then the source may receive again once, and only once the breaker and its state file both say running:
    # a lead stored after the hold is never seen while `leadpipe status` still says held
    assert seen_at_resume == [("running", "running")]


def test_a_state_file_that_cannot_be_written_never_holds_the_drain(tmp_path: Path) -> None:
    source, answers = FakeSource(), [True]
    breaker = LocalDrainBreaker(source, lambda: answers[-1], tmp_path, interval_seconds=60)
    # Given a drain held by the breaker
    breaker.check_now()
    answers.append(False)
    assert breaker.check_now().state is DrainState.HELD_BY_BREAKER
    # And a data directory where drain.json can no longer be written (a full or read-only disk)
    (tmp_path / STATE_FILE_NAME).unlink()
    (tmp_path / STATE_FILE_NAME).mkdir()
    (tmp_path / STATE_FILE_NAME / "blocker").write_text("x")
    # When the database answers again, tick after tick
    answers.append(True)
    breaker.check_now()
    breaker.check_now()
    # Then the poller receives again (the queued leads become rows), and the change is noted once, not per tick
    assert source.calls[-1] == "resume"
    assert [state for _, state in breaker.transitions] == ["running", "held_by_breaker", "running"]
    # And once the file can be written again, the next tick writes it
    (tmp_path / STATE_FILE_NAME / "blocker").unlink()
    (tmp_path / STATE_FILE_NAME).rmdir()
    breaker.check_now()
    assert read_local_drain_state(tmp_path)["state"] == "running"


def test_a_second_outage_after_an_unwritten_hold_is_noted_again(tmp_path: Path) -> None:
    source, answers = FakeSource(), [True]
    breaker = LocalDrainBreaker(source, lambda: answers[-1], tmp_path, interval_seconds=60)
    breaker.check_now()
    # Given a hold whose drain.json could not be written (a full disk for a moment)
    (tmp_path / STATE_FILE_NAME).unlink()
    (tmp_path / STATE_FILE_NAME).mkdir()
    answers.append(False)
    breaker.check_now()
    (tmp_path / STATE_FILE_NAME).rmdir()
    # When the database answers again, then goes away a second time
    answers.append(True)
    breaker.check_now()
    answers.append(False)
    breaker.check_now()
    # Then each change is noted, the second outage too, and the state file says held since the second one
    assert [state for _, state in breaker.transitions] == ["running", "held_by_breaker", "running", "held_by_breaker"]
    state = read_local_drain_state(tmp_path)
    assert (state["state"], state["since"]) == ("held_by_breaker", breaker.transitions[-1][0])


def test_local_breaker_survives_a_probe_that_raises(tmp_path: Path) -> None:
    def broken_probe() -> bool:
        raise RuntimeError("boom")

    # A poller thread calls check_now: it must never raise into it
    assert LocalDrainBreaker(FakeSource(), broken_probe, tmp_path).check_now() is None


class ScriptedSqs:
    """Hands out one batch, then nothing; records receives and deletes."""

    def __init__(self) -> None:
        self.receives = 0
        self.deleted: list[str] = []
        self._batches = [[{"MessageId": "m1", "ReceiptHandle": "r1", "Body": "{}"}]]

    def receive_message(self, **_: Any) -> dict[str, Any]:
        self.receives += 1
        return {"Messages": self._batches.pop()} if self._batches else {}

    def delete_message_batch(self, Entries: list[dict[str, str]], **_: Any) -> dict[str, Any]:
        self.deleted.extend(entry["ReceiptHandle"] for entry in Entries)
        return {"Successful": [{"Id": entry["Id"]} for entry in Entries], "Failed": []}


def test_paused_poller_finishes_the_batch_it_holds_then_receives_nothing() -> None:
    sqs, invoked, release = ScriptedSqs(), threading.Event(), threading.Event()

    def slow_invoke(event: dict[str, Any]) -> dict[str, Any]:
        invoked.set()
        assert release.wait(10)
        return {"batchItemFailures": []}

    settings = EventSourceSettings(
        "url",
        "arn:aws:sqs:eu-west-1:123456789012:leads",
        TEST_REGION,
        batch_size=1,
        max_batching_window_seconds=0,
        max_concurrency=2,
    )
    poller = SqsEventSourcePoller(sqs, settings, slow_invoke)
    poller.start()
    try:
        # Given a poller in the middle of a batch
        assert invoked.wait(10)
        # When the drain is paused
        poller.pause()
        assert poller.wait_until_idle(0.2) is False  # it still holds the batch
        release.set()
        # Then the batch is finished and deleted, and no receive happens after that
        assert poller.wait_until_idle(10) is True
        assert sqs.deleted == ["r1"]
        receives = sqs.receives
        threading.Event().wait(0.5)  # long enough for several receives, had the poller not paused
        assert sqs.receives == receives and poller.receiving is False
        # When resumed, it receives again
        poller.resume()
        threading.Event().wait(0.5)
        assert sqs.receives > receives
    finally:
        poller.stop()


def test_poller_reports_a_batch_in_which_every_record_failed() -> None:
    reports = []
    settings = EventSourceSettings(
        "url", "arn", TEST_REGION, batch_size=1, max_batching_window_seconds=0, max_concurrency=1
    )
    poller = SqsEventSourcePoller(
        ScriptedSqs(),
        settings,
        lambda event: {"batchItemFailures": [{"itemIdentifier": "m1"}]},
        on_batch_failed=lambda: reports.append("failed"),
    )
    poller.start()
    try:
        assert poller.wait_until_idle(10)
        threading.Event().wait(0.3)
    finally:
        poller.stop()
    assert reports == ["failed"]
    assert poller.stats.snapshot()["records_failed"] == 1


# --- `leadpipe drain --stack`: the operator's side in AWS (moto) --------------------------------


def test_operator_pause_in_aws_writes_the_record_before_disabling_and_status_reads_both(deployed_mapping: Any) -> None:
    import os

    from leadpipe.drain import AwsDrainControl

    control = AwsDrainControl(
        boto3.client("lambda", region_name=TEST_REGION),
        boto3.client("ssm", region_name=TEST_REGION),
        os.environ["EVENT_SOURCE_MAPPING_ID"],
        "/leadpipe/drain-pause",
        "probe",
    )
    # Given a running drain
    assert control.status().state == "running"
    # When the DB owner pauses it
    status = control.pause(PAUSE)
    # Then the mapping is disabled, the record says who and why, and status shows both
    assert deployed_mapping() == "Disabled"
    record = boto3.client("ssm", region_name=TEST_REGION).get_parameter(Name="/leadpipe/drain-pause")["Parameter"][
        "Value"
    ]
    assert parse_pause_record(record) == PAUSE
    assert (status.state, status.receiving, status.pause["who"]) == ("paused_by_operator", False, "dba-on-call")
    assert status.as_text().startswith(
        "paused by an operator: dba-on-call, since 2026-11-30T03:00:00+00:00, because VACUUM FULL"
    )
    # And a disabled mapping without a record reads as the breaker's hold
    boto3.client("ssm", region_name=TEST_REGION).put_parameter(
        Name="/leadpipe/drain-pause", Value=NOT_PAUSED, Type="String", Overwrite=True
    )
    assert control.status().state == "held_by_breaker"
