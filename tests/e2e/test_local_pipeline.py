"""The whole pipeline on one machine: HTTP in, rows out, poison to the DLQ, data kept across restarts."""

from __future__ import annotations

import json
import re
import shutil
import uuid
from pathlib import Path
from urllib.parse import urlencode

from tests.conftest import REPO_ROOT
from tests.e2e.conftest import RunningPipeline, http_request, start_pipeline, wait_for


def unique_email(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex[:8]}@example.com"


def test_json_and_form_leads_are_stored_exactly_once(local_pipeline: RunningPipeline) -> None:
    api = local_pipeline.info.api_url
    json_email, form_email = unique_email("json"), unique_email("form")
    # Given a lead posted as JSON (twice, as a retrying client would) and one as a plain form
    json_body = json.dumps({"email": json_email, "campaign": "summersale20"})
    answers = [
        http_request(api, "POST", json_body, {"Content-Type": "application/json", "Idempotency-Key": "k-" + json_email})
        for _ in range(2)
    ]
    form_answer = http_request(
        api,
        "POST",
        urlencode({"email": form_email, "consent": "on"}),
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    # Then each was accepted with its id
    assert [a.status for a in answers] == [202, 202] and form_answer.status == 202
    assert answers[0].json()["lead_id"] == answers[1].json()["lead_id"]
    # And each reaches PostgreSQL exactly once
    wait_for(lambda: local_pipeline.count("email IN (%s, %s)", (json_email, form_email)) == 2, message="both rows")
    rows = local_pipeline.rows("email IN (%s, %s)", (json_email, form_email))
    assert sorted(str(r["lead_id"]) for r in rows if r["email"] == json_email) == [answers[0].json()["lead_id"]]
    assert [r["consent"] for r in rows if r["email"] == form_email] == [True]


def test_form_redirects_to_the_thank_you_page(local_pipeline: RunningPipeline) -> None:
    thanks = local_pipeline.info.landing_page_url + "thanks"
    form = urlencode({"email": unique_email("redirect"), "_redirect": thanks})
    answer = http_request(
        local_pipeline.info.api_url, "POST", form, {"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert answer.status == 303 and answer.headers["location"] == thanks
    assert b"Thank you" in http_request(thanks).body


def test_gateway_behaves_like_api_gateway(local_pipeline: RunningPipeline) -> None:
    api = local_pipeline.info.api_url
    base = local_pipeline.info.landing_page_url.rstrip("/")
    # Unknown paths never reach the function: the stack's 404 in the project's shape, not API Gateway's 403
    assert http_request(base + "/admin").status == 404
    assert http_request(base + "/admin").json()["error"]["code"] == "not_found"
    # The function's own answers pass through untouched
    too_big = http_request(
        api, "POST", json.dumps({"email": "a@example.com", "x": "y" * 20_000}), {"Content-Type": "application/json"}
    )
    assert too_big.status == 413 and too_big.json()["error"]["code"] == "payload_too_large"
    invalid = http_request(api, "POST", "{}", {"Content-Type": "application/json"})
    assert invalid.status == 422 and invalid.json()["error"]["fields"][0]["field"] == "email"
    wrong_type = http_request(api, "POST", "hello", {"Content-Type": "text/plain"})
    assert wrong_type.status == 415
    # A preflight from the local page's own origin is answered
    preflight = http_request(api, "OPTIONS", headers={"Origin": base, "Access-Control-Request-Method": "POST"})
    assert preflight.status == 204 and preflight.headers["access-control-allow-origin"] == base


def test_poison_message_reaches_the_dlq_after_max_receive_count(local_pipeline: RunningPipeline) -> None:
    info = local_pipeline.info
    settings = local_pipeline.pipeline.settings
    # Given a message from an unknown producer version, between good leads
    good = [unique_email("around-poison") for _ in range(3)]
    http_request(info.api_url, "POST", json.dumps({"email": good[0]}), {"Content-Type": "application/json"})
    poison_id = local_pipeline.sqs.send_message(
        QueueUrl=info.leads_queue_url, MessageBody=json.dumps({"v": 99, "lead": {}})
    )["MessageId"]
    for email in good[1:]:
        http_request(info.api_url, "POST", json.dumps({"email": email}), {"Content-Type": "application/json"})
    # Then the good ones are stored and the poison one moves to the DLQ, retried max_receive_count times
    wait_for(lambda: local_pipeline.count("email = ANY(%s)", (good,)) == 3, message="good leads stored")

    def poison_in_dlq() -> list[dict]:
        messages = local_pipeline.sqs.receive_message(
            QueueUrl=info.dead_letter_queue_url, AttributeNames=["All"], VisibilityTimeout=0, MaxNumberOfMessages=10
        ).get("Messages", [])
        return [m for m in messages if m["MessageId"] == poison_id]

    [moved] = wait_for(poison_in_dlq, message="poison message in the DLQ")
    assert int(moved["Attributes"]["ApproximateReceiveCount"]) == settings.max_receive_count + 1  # +1: this look
    assert local_pipeline.pipeline.poller.stats.snapshot()["records_failed"] >= 1  # the worker saw it fail


def test_logs_of_the_whole_run_hold_no_raw_email(local_pipeline: RunningPipeline) -> None:
    email = unique_email("logscan")
    http_request(
        local_pipeline.info.api_url,
        "POST",
        json.dumps({"email": email, "phone": "+44 20 7946 0000"}),
        {"Content-Type": "application/json"},
    )
    wait_for(lambda: local_pipeline.count("email = %s", (email,)) == 1, message="row")
    logs = Path(local_pipeline.info.data_dir) / "logs"
    text = "".join(p.read_text() for p in logs.glob("*.log"))
    assert "lead queued" in text and "batch done" in text
    assert re.findall(r"[a-z0-9.+-]+@example\.com", text) == []
    assert "7946 0000" not in text


def test_stored_leads_survive_a_restart() -> None:
    data_dir = REPO_ROOT / ".leadpipe" / "pytest" / f"restart-{uuid.uuid4().hex[:8]}"
    email = unique_email("restart")
    # One ingest environment each time: a single lead is posted, and a runtime starts quicker with fewer.
    first = start_pipeline(data_dir, ingest_environments=1)
    try:
        answer = http_request(
            first.info.api_url, "POST", json.dumps({"email": email}), {"Content-Type": "application/json"}
        )
        assert answer.status == 202
        wait_for(lambda: first.count("email = %s", (email,)) == 1, message="row before restart")
    finally:
        first.pipeline.stop()
    second = start_pipeline(data_dir, ingest_environments=1)
    try:
        assert [str(r["lead_id"]) for r in second.rows("email = %s", (email,))] == [answer.json()["lead_id"]]
    finally:
        second.pipeline.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
