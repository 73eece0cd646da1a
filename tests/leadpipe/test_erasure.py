"""An erasure that sticks: `leadpipe db erase` against a real PostgreSQL and (moto) SQS queues."""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import psycopg
import pytest

from functions.contract import Lead, LeadEnvelope, Source
from functions.worker import handler as worker
from leadpipe import dlq
from leadpipe.cli import main as leadpipe
from leadpipe.erasure import erase_from_dead_letters, erase_person
from tests.conftest import LeadsDatabase
from tests.events import sqs_event
from tests.moto_mock import mock_aws

# The COPY-first and the INSERT-only store path; sweeps that short-poll moto
pytestmark = pytest.mark.usefixtures("both_store_paths", "short_polling_sweeps")


def envelope_of(email: str, received_at: datetime | None = None) -> LeadEnvelope:
    return LeadEnvelope(
        lead_id=uuid.uuid4(),
        received_at=received_at or datetime.now(UTC) - timedelta(minutes=1),
        source=Source(user_agent="pytest"),
        lead=Lead(email=email, campaign="SPRING"),
    )


@pytest.fixture
def queues() -> Iterator[tuple[Any, str, str]]:
    """(sqs client, leads queue URL, DLQ URL), the DLQ wired as the stack wires it."""
    with mock_aws():
        sqs = boto3.client("sqs")
        dead = sqs.create_queue(QueueName="leads-dlq")["QueueUrl"]
        dead_arn = sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        leads = sqs.create_queue(
            QueueName="leads",
            Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dead_arn, "maxReceiveCount": "5"})},
        )["QueueUrl"]
        yield sqs, leads, dead


@pytest.fixture
def worker_on(leads_db: LeadsDatabase, monkeypatch: pytest.MonkeyPatch) -> LeadsDatabase:
    monkeypatch.setenv("DATABASE_URL", leads_db.uri)
    monkeypatch.setenv("LEADS_TABLE", leads_db.leads_table)
    return leads_db


def drain(sqs: Any, queue_url: str, lambda_context: Any) -> dict[str, Any]:
    """What the event source would do: hand every queued message to the worker once."""
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
    return worker.lambda_handler(sqs_event([m["Body"] for m in messages]), lambda_context)


def emails(leads_db: LeadsDatabase) -> list[str]:
    return [row["email"] for row in leads_db.rows()]


def test_a_redriven_dead_letter_does_not_bring_an_erased_lead_back(
    worker_on: LeadsDatabase, queues, lambda_context
) -> None:
    sqs, leads_url, dead_url = queues
    # Given Jane's lead stored, and a copy of it in the DLQ next to someone else's dead letter
    jane, other = envelope_of("jane@example.com"), envelope_of("other@example.com")
    assert worker.lambda_handler(sqs_event([jane.to_message_body()]), lambda_context) == {"batchItemFailures": []}
    for envelope in (jane, other):
        sqs.send_message(QueueUrl=dead_url, MessageBody=envelope.to_message_body())
    # When ops erase Jane's rows (typed in another case), the DLQ copy left where it is
    assert erase_person(worker_on.uri, worker_on.leads_table, "  Jane@EXAMPLE.com ") == 1
    # And the DLQ is redriven and drained
    assert dlq.move_messages(sqs, dead_url, leads_url) == 2
    assert drain(sqs, leads_url, lambda_context) == {"batchItemFailures": []}
    # Then Jane's row stays gone and the other lead is stored
    assert emails(worker_on) == ["other@example.com"]


def test_the_erasure_also_deletes_the_persons_dead_letters(worker_on: LeadsDatabase, queues, lambda_context) -> None:
    sqs, leads_url, dead_url = queues
    # Given a copy of Jane's lead in the DLQ next to someone else's
    for email in ("jane@example.com", "other@example.com"):
        sqs.send_message(QueueUrl=dead_url, MessageBody=envelope_of(email).to_message_body())
    # When she is erased from the table and from the DLQ
    erase_person(worker_on.uri, worker_on.leads_table, "jane@example.com")
    assert erase_from_dead_letters(sqs, dead_url, "Jane@Example.com") == 1
    # Then only the other letter is left to redrive
    assert dlq.move_messages(sqs, dead_url, leads_url) == 1
    drain(sqs, leads_url, lambda_context)
    assert emails(worker_on) == ["other@example.com"]


def test_copies_still_queued_or_in_flight_are_stopped_by_the_tombstone(
    worker_on: LeadsDatabase, lambda_context
) -> None:
    # Given two leads of Jane received before the erasure, one stored, one still in the queue
    stored, queued = envelope_of("jane@example.com"), envelope_of("jane@example.com")
    worker.lambda_handler(sqs_event([stored.to_message_body()]), lambda_context)
    erase_person(worker_on.uri, worker_on.leads_table, "jane@example.com")
    # When both are delivered after the erasure (a redelivery and the queued one), with a new signup of hers
    again = envelope_of("jane@example.com", received_at=datetime.now(UTC) + timedelta(seconds=1))
    response = worker.lambda_handler(
        sqs_event([stored.to_message_body(), queued.to_message_body(), again.to_message_body()], receive_count=2),
        lambda_context,
    )
    # Then nothing received before the erasure is stored, but what she sent afterwards is
    assert response == {"batchItemFailures": []}
    assert [row["lead_id"] for row in worker_on.rows()] == [again.lead_id]


def test_the_tombstone_holds_no_address(worker_on: LeadsDatabase) -> None:
    # When a person is erased
    erase_person(worker_on.uri, worker_on.leads_table, "jane.doe@example.com")
    schema, table = worker_on.leads_table.split(".")
    with worker_on.connect() as connection:
        tombstones = connection.execute(f'SELECT * FROM {schema}."{table}_erasures"').fetchall()
    # Then one tombstone exists, holding neither the address nor its plain (unsalted) hash
    [(digest, erased_at)] = tombstones
    assert b"jane" not in bytes(digest) and "jane" not in repr(tombstones)
    assert bytes(digest) != hashlib.sha256(b"jane.doe@example.com").digest()
    assert erased_at <= datetime.now(UTC)


def test_erasing_twice_keeps_one_tombstone_and_moves_its_time(worker_on: LeadsDatabase) -> None:
    erase_person(worker_on.uri, worker_on.leads_table, "jane@example.com")
    erase_person(worker_on.uri, worker_on.leads_table, "JANE@example.com")
    schema, table = worker_on.leads_table.split(".")
    with worker_on.connect() as connection:
        assert connection.execute(f'SELECT count(*) FROM {schema}."{table}_erasures"').fetchone() == (1,)


def test_the_dlq_search_leaves_other_messages_visible(queues) -> None:
    sqs, _, dead_url = queues
    # Given a DLQ with two letters of Jane, one of someone else, and one that is not an envelope at all
    others = {envelope_of("bob@example.com").to_message_body(), "not json"}
    for body in [
        envelope_of("jane@example.com").to_message_body(),
        envelope_of("jane@example.com").to_message_body(),
        *others,
    ]:
        sqs.send_message(QueueUrl=dead_url, MessageBody=body)
    # When Jane's are erased
    assert erase_from_dead_letters(sqs, dead_url, "jane@example.com") == 2
    # Then the other two are visible again at once, untouched
    left = sqs.receive_message(QueueUrl=dead_url, MaxNumberOfMessages=10)["Messages"]
    assert {m["Body"] for m in left} == others


def test_the_cli_needs_a_stage_and_erases_from_its_table(worker_on: LeadsDatabase, lambda_context, capsys) -> None:
    # Given a stored lead
    worker.lambda_handler(sqs_event([envelope_of("cli@example.com").to_message_body()]), lambda_context)
    # When `db erase` is run without --stage, Then the CLI refuses it: no table is guessed
    refused = leadpipe(["db", "erase", "--email", "cli@example.com", "--database-url", worker_on.uri])
    assert refused == 2 and "--stage" in capsys.readouterr().err
    # When it names the stage (and, here, the test's own table)
    code = leadpipe(
        [
            "db",
            "erase",
            "--email",
            "CLI@example.com",
            "--stage",
            "dev",
            "--table",
            worker_on.leads_table,
            "--database-url",
            worker_on.uri,
            "--data-dir",
            "/nonexistent",
        ]
    )
    # Then the row is gone and the output says where from, and that the DLQ could not be searched
    out = capsys.readouterr().out
    assert code == 0 and worker_on.count_rows() == 0
    assert out.startswith(f"erased 1 row(s) from {worker_on.leads_table}")
    assert "DLQ not searched" in out


def test_an_insert_in_flight_during_the_erasure_does_not_survive_it(worker_on: LeadsDatabase) -> None:
    # Given a worker's INSERT of Jane's lead, running but not yet committed
    in_flight = psycopg.connect(worker_on.uri)
    in_flight.execute(
        f"INSERT INTO {worker_on.leads_table} (lead_id, email, envelope_version, received_at) VALUES (%s, %s, 1, "
        "now())",
        (uuid.uuid4(), "jane@example.com"),
    )
    erased: list[int] = []
    # When Jane is erased meanwhile
    eraser = threading.Thread(
        target=lambda: erased.append(erase_person(worker_on.uri, worker_on.leads_table, "jane@example.com"))
    )
    eraser.start()
    with worker_on.connect() as admin:
        deadline = time.monotonic() + 10  # a bound on the wait, not a timing assertion
        while time.monotonic() < deadline and eraser.is_alive():
            waiting = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND position('LOCK TABLE' in "
                "query) > 0"
            ).fetchone()[0]
            if waiting:
                break
            time.sleep(0.05)
    in_flight.commit()
    in_flight.close()
    eraser.join(15)
    # Then the erasure waited for that INSERT and deleted its row too
    assert erased == [1]
    assert worker_on.count_rows() == 0
