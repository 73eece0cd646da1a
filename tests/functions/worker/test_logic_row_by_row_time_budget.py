"""The row-by-row fallback starts no round trip once the invocation's time is gone: the rows not tried are retried.

The deadline promises every round trip ends "never past the invocation's end less a reserve"
(RESPONSE_RESERVE_SECONDS, kept "to answer `batchItemFailures`"). That holds per round trip, not per batch:
after one refused row, `_store_row_by_row` runs one round trip per lead (batch_size may be 10,000, infra/config.py)
asked the clock only to size each deadline -- never whether there was time left to start it. Once the time left
was below the reserve every further row still got SHORTEST_ROUND_TRIP_SECONDS (0.5 s) and ran on. Lambda ends an
invocation at its timeout, and for an SQS event source "When your Lambda function encounters an error while
processing a batch, all messages in that batch become visible in the queue again by default, including messages
that Lambda processed successfully" (AWS Lambda Developer Guide, "Handling errors for an SQS event source in Lambda",
https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html). So one bad row in a large batch can make
every good lead
of it burn a receive on every try and reach the DLQ after max_receive_count. Now, before each
row, too little time left (under the reserve plus the shortest try) ends the fallback: the rows not tried are
reported in `batchItemFailures` as not tried (retried, not refused), and the rows stored dedupe on the retry.

The invocation clock here is simulated: each call of `get_remaining_time_in_millis` (the store asks once per round
trip) stands for one round trip of a healthy but busy database taking 4 s. No wall-clock timing is asserted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from functions.worker import handler as worker
from functions.worker.round_trip_deadline import RESPONSE_RESERVE_SECONDS
from tests.conftest import FakeLambdaContext, LeadsDatabase
from tests.events import emitted_metrics, sqs_event
from tests.functions.worker.conftest import make_envelope, worker_summaries

ROUND_TRIP_MS = 4_000


@dataclass
class CountingDownContext(FakeLambdaContext):
    """Lambda's context counts down; this one moves on ROUND_TRIP_MS each time the store asks (once per round trip)."""

    remaining_ms: int = 30_000
    asked_at: list[int] = field(default_factory=list)

    def get_remaining_time_in_millis(self) -> int:
        self.asked_at.append(self.remaining_ms)
        now = self.remaining_ms
        self.remaining_ms -= ROUND_TRIP_MS
        return now


def test_row_by_row_fallback_starts_no_round_trip_once_the_invocation_is_out_of_time(
    leads_db: LeadsDatabase, lambda_context: FakeLambdaContext, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("DATABASE_URL", leads_db.uri)
    monkeypatch.setenv("LEADS_TABLE", leads_db.leads_table)
    with leads_db.connect() as admin:
        admin.execute(f"ALTER TABLE {leads_db.leads_table} ADD CONSTRAINT no_acme CHECK (company <> 'ACME')")
    # Given a batch of 9 leads, one of which the database refuses (the whole batch then goes row by row)
    envelopes = [make_envelope(f"lead{i}@example.com") for i in range(8)] + [
        make_envelope("bad@example.com", company="ACME")
    ]
    context = CountingDownContext()
    # When the worker stores it in an invocation of 30 s where each round trip takes 4 s
    batch = [e.to_message_body() for e in envelopes]
    response = worker.lambda_handler(sqs_event(batch), context)
    # Then no round trip starts once less than the reserve to answer is left (Lambda would end the invocation mid-way
    # and the whole batch, good leads included, would come back and burn a receive)
    started_late = [ms for ms in context.asked_at if ms < RESPONSE_RESERVE_SECONDS * 1000]
    assert started_late == [], (
        f"round trips started with {started_late} ms of the invocation left (all asks: {context.asked_at})"
    )
    # And the rows stored before the time ran out stay stored; the rest (the refused row among them, not yet tried)
    # come back for a retry, as not tried rather than refused, and no outage is counted: the database answered
    # (asks: 30 s for the batch, then 26 s check + 22 s insert, 18 + 14, 10 + 6, and 2 s < 2.5 s: stop)
    assert response == {"batchItemFailures": [{"itemIdentifier": f"msg-{i}"} for i in range(3, 9)]}
    assert leads_db.count_rows() == 3
    output = capsys.readouterr().out
    assert "DatabaseUnavailable" not in emitted_metrics(output)
    [summary] = worker_summaries(output)
    assert {f["reason"].split(":")[0] for f in summary["failed"]} == {"NotTriedInTime"}
    # When SQS delivers those six again, to an invocation with time enough
    retry = {"Records": sqs_event(batch, receive_count=2)["Records"][3:]}
    response = worker.lambda_handler(retry, lambda_context)
    # Then the good ones are stored and only the refused row fails, now as refused
    assert response == {"batchItemFailures": [{"itemIdentifier": "msg-8"}]}
    assert leads_db.count_rows() == 8
    [summary] = worker_summaries(capsys.readouterr().out)
    assert [f["reason"].split(":")[0] for f in summary["failed"]] == ["RejectedByDatabase"]
