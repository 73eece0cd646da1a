"""A full ingest -> SQS -> worker -> PostgreSQL pass must never write an e-mail or phone to a log."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import boto3
import pytest

from functions.ingest import handler as ingest
from functions.worker import handler as worker
from tests.conftest import LeadsDatabase
from tests.events import api_event, sqs_record, without_json_escapes
from tests.moto_mock import mock_aws

EMAILS = ["Grace.Hopper@Navy.example", "alan@turing.example", "broken@", "mallory@evil.example", "jöhn@exämple.com"]
PHONE = "+1 202 555 0143"
NATIONAL_PHONES = ["(202) 555-0143", "030 1234567"]
RAW_PII = re.compile(
    "|".join(
        re.escape(v)
        for v in [*EMAILS, *(e.lower() for e in EMAILS), PHONE, *NATIONAL_PHONES, "Grace", "Hopper", "555-0143"]
    )
)


def test_no_raw_email_or_phone_reaches_the_logs(
    leads_db: LeadsDatabase, lambda_context: Any, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    # Given both functions logging at DEBUG, so every log line they could write is written
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "DEBUG")
    for module in (ingest, worker):
        module.logger.setLevel(logging.DEBUG)
    monkeypatch.setenv("DATABASE_URL", leads_db.uri)
    monkeypatch.setenv("LEADS_TABLE", leads_db.leads_table)
    with leads_db.connect() as admin:
        # A constraint whose violation message quotes the whole row, e-mail included
        admin.execute(
            f"ALTER TABLE {leads_db.leads_table} ADD CONSTRAINT no_mallory CHECK (email NOT IN "
            "('mallory@evil.example', 'jöhn@exämple.com'))"
        )

    with mock_aws():
        sqs = boto3.client("sqs")
        queue_url = sqs.create_queue(QueueName="leads")["QueueUrl"]
        monkeypatch.setenv("LEADS_QUEUE_URL", queue_url)
        # When leads (valid, invalid, and one the database will refuse) go through the ingest
        submissions = [
            {"email": EMAILS[0], "first_name": "Grace", "last_name": "Hopper", "phone": PHONE},
            {"email": EMAILS[1], "phone": PHONE, "custom": {"note": f"call {PHONE} or {EMAILS[1]}"}},
            {"email": EMAILS[2], "phone": PHONE},
            {"email": EMAILS[3]},
            {"email": EMAILS[4], "phone": NATIONAL_PHONES[0], "custom": {"landline": NATIONAL_PHONES[1]}},
        ]
        statuses = [ingest.lambda_handler(api_event(json.dumps(s)), lambda_context)["statusCode"] for s in submissions]
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    # And the worker stores what was queued (the database refuses mallory's row)
    event = {"Records": [sqs_record(m["MessageId"], m["Body"]) for m in messages]}
    failed = worker.lambda_handler(event, lambda_context)["batchItemFailures"]

    # Then the pass really happened: four queued, two refused by the database, two stored
    assert statuses == [202, 202, 422, 202, 202]
    assert len(failed) == 2
    assert sorted(r["email"] for r in leads_db.rows()) == ["alan@turing.example", "grace.hopper@navy.example"]
    # And not one raw e-mail address, phone number or name appears in anything logged
    logged = without_json_escapes(capsys.readouterr().out)
    assert '"batch done"' in logged and "CheckViolation" in logged and "lead queued" in logged
    assert RAW_PII.findall(logged) == []
