"""The local runtime's Lambda context starts at the function's own timeout and counts down, as Lambda's does.

The worker's new deadline sizes every round trip from `context.get_remaining_time_in_millis()` ("never past the
invocation's end less a reserve", functions/worker/round_trip_deadline.py). On Lambda that is "the number of
milliseconds left before the execution times out" (AWS Lambda Developer Guide, "Using the Lambda context object to
retrieve Python function information", https://docs.aws.amazon.com/lambda/latest/dg/python-context.html): it starts
at the function's configured timeout and falls as the invocation runs. The local runtime's `LocalLambdaContext`
answered a constant 30,000 ms whatever `worker_timeout_seconds` says (it is handed to the environment as
WORKER_TIMEOUT_SECONDS) and however long the invocation had run. So locally the deadline never shrank with the
invocation (the row-by-row fallback, the retry on a fresh connection, a 3 s worker_timeout_seconds all behave
differently from AWS): "The local runtime is never kinder than AWS" (docs/design.md).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from leadpipe.local import lambda_pool


@pytest.fixture
def captured_context(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    seen: list[Any] = []
    monkeypatch.setattr(lambda_pool, "_handler", lambda event, context: seen.append(context) or {})
    monkeypatch.setattr(lambda_pool, "_function_name", "leadpipe-local-worker")
    # What the local runtime puts in the worker environment (infra/config.py worker_database_environment)
    monkeypatch.setenv("WORKER_TIMEOUT_SECONDS", "10")
    return seen


def test_the_local_context_starts_at_the_configured_worker_timeout(captured_context: list[Any]) -> None:
    lambda_pool.invoke_loaded_handler({"Records": []})
    [context] = captured_context
    assert context.get_remaining_time_in_millis() <= 10_000, "a 10 s worker is told it has 30 s left"


def test_the_local_context_counts_down_as_the_invocation_runs(captured_context: list[Any]) -> None:
    lambda_pool.invoke_loaded_handler({"Records": []})
    [context] = captured_context
    first = context.get_remaining_time_in_millis()
    time.sleep(0.05)
    assert context.get_remaining_time_in_millis() < first, "the local invocation never runs out of time"


def test_the_local_ingest_context_starts_at_the_ingest_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an ingest environment: its own timeout setting, and none of the worker's
    seen: list[Any] = []
    monkeypatch.setattr(lambda_pool, "_handler", lambda event, context: seen.append(context) or {})
    monkeypatch.delenv("WORKER_TIMEOUT_SECONDS", raising=False)
    monkeypatch.setenv("INGEST_TIMEOUT_SECONDS", "5")
    # When it is invoked
    lambda_pool.invoke_loaded_handler({})
    # Then it is told at most its own 5 s, and more than nothing
    [context] = seen
    assert 0 < context.get_remaining_time_in_millis() <= 5_000
