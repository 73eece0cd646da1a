"""Fault drills on the running local pipeline, with a real PostgreSQL stopped and started.

The drill stage has a 5 s visibility timeout and 3 receives before the DLQ, so an outage of
seconds is "long": without the drain breaker a lead would be in the DLQ after 3 x 5 s.
Why 3, not 2: the breaker costs a message at most one receive per outage, but with 2 one run
in about eight on this loaded machine still ended with leads in the DLQ (a worker connection
left dead by the outage failing its first batch after the return, or a batch outlasting the
visibility timeout under load: not pinned down), so the stage leaves one receive of margin.

Budgets are explicit and wide for a loaded 2-core machine; the only clock the drills depend on
is the outage's length, which must exceed max_receive_count x visibility timeout.

AWS: a received message is invisible for the visibility timeout, then comes back; SQS moves it to
the DLQ once its receive count exceeds the redrive policy's maxReceiveCount.
https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-visibility-timeout.html
https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-dead-letter-queues.html
"""

from __future__ import annotations

import json
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from functions.contract import Lead, LeadEnvelope, Source
from functions.worker.drain import DrainState
from infra.config import PipelineSettings
from leadpipe.cli import main as leadpipe
from leadpipe.local.runtime import LocalPipeline, LocalPipelineOptions
from tests.conftest import REPO_ROOT
from tests.e2e.conftest import RunningPipeline, assert_logs_hold_no_personal_data, e2e_settings, http_request, wait_for
from tests.events import emitted_metrics, sqs_event

RECOVERY_BUDGET_SECONDS = 60  # every lead stored within 60 s of the database's return
BREAKER_BUDGET_SECONDS = 30  # for the breaker to notice (it probes every 0.5 s here; generous for 2 busy cores)
DRILL_PROBE_SECONDS = 0.5
DRILL_VISIBILITY_SECONDS = 5
DRILL_MAX_RECEIVE_COUNT = 3
# How much longer than it takes SQS to redrive a lead the outage lasts: with the breaker disabled, the leads are in
# the DLQ well before its end (the fourth receive comes after 3 x 5 s plus the batching windows).
OUTAGE_FACTOR = 1.4


def drill_settings() -> PipelineSettings:
    return e2e_settings().model_copy(
        update={"visibility_timeout_seconds": DRILL_VISIBILITY_SECONDS, "max_receive_count": DRILL_MAX_RECEIVE_COUNT}
    )


def post(pipeline: RunningPipeline, email: str, campaign: str = "faults") -> tuple[int, dict, dict]:
    answer = http_request(
        pipeline.info.api_url,
        "POST",
        json.dumps({"email": email, "campaign": campaign}),
        {"Content-Type": "application/json"},
    )
    return answer.status, answer.headers, answer.json()


@pytest.fixture(scope="module")
def drill_pipeline() -> Iterator[RunningPipeline]:
    """The drill stage (visibility 5 s x 3 receives) with the breaker probing every 0.5 s. Two ingest
    environments, not four: the burst comes from one client, and two still show several recovering from SQS."""
    data_dir = REPO_ROOT / ".leadpipe" / "pytest" / f"faults-{uuid.uuid4().hex[:8]}"
    options = LocalPipelineOptions(
        settings=drill_settings(),
        data_dir=data_dir,
        port=0,
        drain_probe_seconds=DRILL_PROBE_SECONDS,
        ingest_environments=2,
    )
    pipeline = LocalPipeline(options)
    running = RunningPipeline(pipeline.start(), pipeline)
    yield running
    pipeline.stop(drain_seconds=5)
    assert_logs_hold_no_personal_data(data_dir)
    shutil.rmtree(data_dir, ignore_errors=True)


def dead_letters(pipeline: RunningPipeline) -> int:
    url = pipeline.info.dead_letter_queue_url
    return pipeline.queue_attribute(url, "ApproximateNumberOfMessages") + pipeline.queue_attribute(
        url, "ApproximateNumberOfMessagesNotVisible"
    )


def drain_state(pipeline: RunningPipeline) -> str:
    return pipeline.pipeline.drain_breaker.decision.state.value


def cli_status(pipeline: RunningPipeline, capsys: pytest.CaptureFixture) -> dict:
    capsys.readouterr()
    assert leadpipe(["status", "--json", "--data-dir", pipeline.info.data_dir]) == 0
    return json.loads(capsys.readouterr().out)


def wait_until_all_stored(pipeline: RunningPipeline, tag: str, expected: int) -> None:
    """Within 60 s of the database's return; on failure, say where the rest are."""
    try:
        wait_for(
            lambda: pipeline.count("email LIKE %s", (f"{tag}-%",)) == expected,
            timeout=RECOVERY_BUDGET_SECONDS,
            message="every lead stored after the database returned",
        )
    except AssertionError as error:
        stored = pipeline.count("email LIKE %s", (f"{tag}-%",))
        governor, poller = pipeline.pipeline.drain_governor, pipeline.pipeline.poller
        writers = governor.state.writers if governor else "ungoverned"
        raise AssertionError(
            f"{error}: {stored} of {expected} stored, {dead_letters(pipeline)} in the DLQ, "
            f"drain {drain_state(pipeline)}, writers {writers}, poller {poller.stats.snapshot()}"
        ) from None


def outage_then_recovery(pipeline: RunningPipeline, until: float) -> float:
    """Keep the (already stopped) database away until `until` (monotonic), start it; returns its start time."""
    time.sleep(max(0.0, until - time.monotonic()))  # the outage's length, not an assertion
    pipeline.pipeline.start_database()
    return time.monotonic()


def test_short_outage_mid_burst_loses_nothing_duplicates_nothing_and_skips_the_dlq(
    drill_pipeline: RunningPipeline, capsys
) -> None:
    # Given a burst of 200 leads, posted from a thread, and the database stopping part-way through it.
    # The sender itself stops it after the first quarter: the other 150 are then surely posted into the
    # outage (stopped from the test's thread, a slow reaction under load let the whole burst be stored first).
    tag = f"burst-{uuid.uuid4().hex[:6]}"
    emails = [f"{tag}-{i}@example.com" for i in range(200)]
    statuses: list[int] = []
    database_stopped = threading.Event()

    def send_burst() -> None:
        statuses.extend(post(drill_pipeline, e)[0] for e in emails[:50])
        drill_pipeline.pipeline.stop_database()
        database_stopped.set()
        statuses.extend(post(drill_pipeline, e)[0] for e in emails[50:])

    sender = threading.Thread(target=send_burst)
    sender.start()
    assert database_stopped.wait(timeout=120), "the database was not stopped after a quarter of the burst"
    # When the breaker notices, and the burst goes on into the outage
    wait_for(
        lambda: drain_state(drill_pipeline) == DrainState.HELD_BY_BREAKER,
        timeout=BREAKER_BUDGET_SECONDS,
        message="the breaker holding",
    )
    assert cli_status(drill_pipeline, capsys)["drain"]["state"] == "held_by_breaker"
    sender.join(timeout=300)
    assert not sender.is_alive(), "the burst did not finish within 300 s"
    back_at = outage_then_recovery(drill_pipeline, until=time.monotonic() + 2)
    # Then the form never noticed, and every lead is stored exactly once within 60 s of the return
    assert statuses == [202] * len(emails)
    wait_until_all_stored(drill_pipeline, tag, len(emails))
    recovery = time.monotonic() - back_at
    rows = drill_pipeline.rows("email LIKE %s", (f"{tag}-%",))
    assert sorted(r["email"] for r in rows) == sorted(emails)
    assert dead_letters(drill_pipeline) == 0
    assert drain_state(drill_pipeline) == DrainState.RUNNING
    print(
        f"\n[drill] short outage mid-burst: all {len(emails)} stored {recovery:.1f} s after the database returned; "
        f"DLQ {dead_letters(drill_pipeline)}"
    )


def test_outage_longer_than_receives_times_visibility_still_leaves_the_dlq_empty(
    drill_pipeline: RunningPipeline, capsys
) -> None:
    settings = drill_pipeline.pipeline.settings
    redrive_after = settings.max_receive_count * settings.queue_visibility_timeout_seconds  # 3 x 5 s
    tag = f"long-{uuid.uuid4().hex[:6]}"
    emails = [f"{tag}-{i}@example.com" for i in range(30)]
    # Given the database going away while leads keep coming
    drill_pipeline.pipeline.stop_database()
    assert [post(drill_pipeline, email)[0] for email in emails] == [202] * len(emails)
    all_queued_at = time.monotonic()
    wait_for(
        lambda: drain_state(drill_pipeline) == DrainState.HELD_BY_BREAKER,
        timeout=BREAKER_BUDGET_SECONDS,
        message="the breaker holding",
    )
    # And the worker, handed a batch while the database is away (as Lambda's poller may before the breaker
    # trips), fails it whole and reports the metric the DatabaseUnavailable alarm pages on
    worker_log = Path(drill_pipeline.info.data_dir) / "logs" / "worker.log"
    logged_before = worker_log.stat().st_size
    envelope = LeadEnvelope(
        lead_id=uuid.uuid4(),
        received_at=datetime.now(UTC),
        source=Source(),
        lead=Lead(email=f"{tag}-probe@example.com"),
    )
    answer = drill_pipeline.pipeline.invoke_worker(sqs_event([envelope.to_message_body()]))
    assert answer == {"batchItemFailures": [{"itemIdentifier": "msg-0"}]}
    with worker_log.open(encoding="utf-8") as log:
        log.seek(logged_before)
        assert emitted_metrics(log.read()).get("DatabaseUnavailable") == 1.0
    # When it stays away longer than it takes SQS to redrive a lead to the DLQ, counted from the last lead
    # queued (the time spent on the checks above is part of the outage, not added to it)
    back_at = outage_then_recovery(drill_pipeline, until=all_queued_at + OUTAGE_FACTOR * redrive_after)
    # Then nothing reached the DLQ, and every lead is stored once within 60 s of the return
    wait_until_all_stored(drill_pipeline, tag, len(emails))
    recovery = time.monotonic() - back_at
    assert sorted(r["email"] for r in drill_pipeline.rows("email LIKE %s", (f"{tag}-%",))) == sorted(emails)
    assert dead_letters(drill_pipeline) == 0
    assert cli_status(drill_pipeline, capsys)["drain"]["state"] == "running"
    print(
        f"\n[drill] outage of {OUTAGE_FACTOR * redrive_after:g} s (> {redrive_after} s to the DLQ): "
        f"all {len(emails)} stored {recovery:.1f} s after the database returned; DLQ {dead_letters(drill_pipeline)}"
    )


def test_operator_pause_holds_leads_in_the_queue_until_resume(drill_pipeline: RunningPipeline, capsys) -> None:
    info = drill_pipeline.info
    tag = f"paused-{uuid.uuid4().hex[:6]}"
    emails = [f"{tag}-{i}@example.com" for i in range(20)]
    # Given the DB owner pauses the drain for a maintenance window
    capsys.readouterr()
    assert (
        leadpipe(
            ["drain", "pause", "--who", "dba-on-call", "--why", "VACUUM FULL, OPS-42", "--data-dir", info.data_dir]
        )
        == 0
    )
    assert capsys.readouterr().out.startswith("drain paused by an operator: dba-on-call, since ")
    # When leads arrive during the window
    assert [post(drill_pipeline, email)[0] for email in emails] == [202] * len(emails)
    # Then they wait in the queue, visible (never received, so no receive is spent), and status says who and why
    wait_for(
        lambda: drill_pipeline.queue_attribute(info.leads_queue_url, "ApproximateNumberOfMessages") >= len(emails),
        message="the leads waiting in the queue",
    )
    status = cli_status(drill_pipeline, capsys)
    assert status["drain"]["state"] == "paused_by_operator" and status["drain"]["receiving"] is False
    assert (status["drain"]["pause"]["who"], status["drain"]["pause"]["why"]) == ("dba-on-call", "VACUUM FULL, OPS-42")
    assert drill_pipeline.count("email LIKE %s", (f"{tag}-%",)) == 0
    # And a probe that finds the database healthy does not override the operator
    assert drill_pipeline.pipeline.drain_breaker.check_now().state == DrainState.PAUSED_BY_OPERATOR
    assert drill_pipeline.count("email LIKE %s", (f"{tag}-%",)) == 0
    # When the window is over
    assert leadpipe(["drain", "resume", "--data-dir", info.data_dir]) == 0
    assert capsys.readouterr().out.startswith("drain running (since ")
    # Then every lead is stored once, none in the DLQ
    wait_for(
        lambda: drill_pipeline.count("email LIKE %s", (f"{tag}-%",)) == len(emails),
        timeout=RECOVERY_BUDGET_SECONDS,
        message="stored after resume",
    )
    assert dead_letters(drill_pipeline) == 0
    capsys.readouterr()
    assert leadpipe(["drain", "status", "--data-dir", info.data_dir]) == 0
    assert capsys.readouterr().out.startswith("drain running")


def test_queue_unavailable_answers_503_never_202_and_recovers(drill_pipeline: RunningPipeline) -> None:
    # Given SQS is down (last in this module: moto keeps no state, so the queues come back empty)
    drill_pipeline.pipeline.stop_queue_service()
    answers = [post(drill_pipeline, f"sqs-down-{i}@example.com") for i in range(5)]
    # Then every request is told to retry later, and none is told it was accepted
    assert [status for status, _, _ in answers] == [503] * 5
    assert all(headers["retry-after"] == "5" for _, headers, _ in answers)
    assert {body["error"]["code"] for _, _, body in answers} == {"queue_unavailable"}
    # When SQS is back, the same ingest environments recover by themselves
    drill_pipeline.pipeline.start_queue_service()
    wait_for(lambda: post(drill_pipeline, "sqs-back@example.com")[0] == 202, message="ingest recovered")
    wait_for(
        lambda: drill_pipeline.count("email = %s", ("sqs-back@example.com",)) == 1, message="stored after recovery"
    )
    assert drill_pipeline.count("email LIKE %s", ("sqs-down-%",)) == 0  # refused leads were never half-stored
