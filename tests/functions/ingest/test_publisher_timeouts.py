"""The ingest always answers for itself: a slow SQS costs a 503 with Retry-After, never a Lambda
timeout (which API Gateway turns into a bare 502 with no JSON, and no metrics are flushed)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from functions.ingest import handler as ingest
from functions.ingest.publisher import STANDARD_MODE_FIRST_BACKOFF_SECONDS, sqs_call_budget
from tests.events import api_event, emitted_metrics


@pytest.mark.parametrize("function_timeout", [1, 2, 3, 5, 10, 29])
def test_the_worst_case_of_every_sqs_attempt_fits_in_the_function_timeout(function_timeout: int) -> None:
    budget = sqs_call_budget(function_timeout)
    # Every attempt timing out, plus botocore's back-off, still leaves time to answer
    assert budget.worst_case_seconds() <= function_timeout - min(1.0, function_timeout / 5) + 1e-9
    assert budget.attempts == (1 if function_timeout <= 2 else 2)
    if budget.attempts == 2:
        assert budget.worst_case_seconds() == pytest.approx(
            2 * (budget.connect_timeout + budget.read_timeout) + STANDARD_MODE_FIRST_BACKOFF_SECONDS
        )


def test_the_client_is_configured_from_the_function_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the stack's INGEST_TIMEOUT_SECONDS (5 s, the default)
    monkeypatch.setenv("LEADS_QUEUE_URL", "https://sqs.eu-west-1.amazonaws.com/123456789012/leads")
    monkeypatch.setenv("INGEST_TIMEOUT_SECONDS", "5")
    config = ingest.get_sqs_client().meta.config
    # Then two attempts of 0.5 s connect + 1 s read, plus up to 1 s back-off, leave 1 s to answer
    assert (config.connect_timeout, config.read_timeout, config.retries["total_max_attempts"]) == (0.5, 1.0, 2)


@pytest.fixture
def silent_sqs() -> Iterator[str]:
    """A socket that accepts connections (the kernel completes the handshake) and never answers."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=16)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()


def test_a_silent_sqs_gets_a_503_before_the_function_times_out(
    silent_sqs: str, lambda_context: Any, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    # Given an ingest with a 5 s timeout (the default) whose SQS endpoint accepts and never answers
    function_timeout = 5
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", silent_sqs)
    monkeypatch.setenv("LEADS_QUEUE_URL", f"{silent_sqs}/123456789012/leads")
    monkeypatch.setenv("INGEST_TIMEOUT_SECONDS", str(function_timeout))
    answers: list[dict[str, Any]] = []
    # When a lead is posted (in a thread: Lambda would stop the function at its timeout)
    call = threading.Thread(
        target=lambda: answers.append(
            ingest.lambda_handler(api_event(json.dumps({"email": "a@example.com"})), lambda_context)
        )
    )
    call.start()
    call.join(timeout=function_timeout)
    # Then the ingest answered before the timeout: a 503 the client can retry, with metrics
    assert not call.is_alive(), f"no answer within the function's {function_timeout} s timeout"
    [response] = answers
    assert response["statusCode"] == 503
    assert response["multiValueHeaders"]["Retry-After"] == ["5"]
    assert json.loads(response["body"])["error"]["code"] == "queue_unavailable"
    assert emitted_metrics(capsys.readouterr().out) == {"Rejected_queue_unavailable": 1.0, "EnqueueFailures": 1.0}
