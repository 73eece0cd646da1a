"""The canary check's Lambda entry point: the worker's settings and credentials code, one answer per call."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

from functions.worker import canary_handler
from functions.worker.canary import canary_address
from tests.conftest import LeadsDatabase
from tests.functions.worker.conftest import canary_envelope as envelope
from tests.functions.worker.conftest import store_as_worker as store


@pytest.fixture
def canary_env(leads_db: LeadsDatabase, monkeypatch: pytest.MonkeyPatch) -> LeadsDatabase:
    monkeypatch.setenv("DATABASE_URL", leads_db.uri)
    monkeypatch.setenv("LEADS_TABLE", leads_db.leads_table)
    canary_handler.reset_for_tests()
    yield leads_db
    canary_handler.reset_for_tests()


def test_the_handler_confirms_and_erases_the_canary(canary_env: LeadsDatabase, lambda_context: Any) -> None:
    # Given a stored canary lead
    canary = envelope(canary_address("verify-handler"))
    store(canary_env, canary)
    # When `leadpipe verify` invokes the function with its lead id and address
    answer = canary_handler.lambda_handler({"lead_id": str(canary.lead_id), "email": canary.lead.email}, lambda_context)
    # Then the answer says it was stored, and the row is gone
    assert answer == {"stored": True, "tombstoned": False}
    assert canary_env.count_rows() == 0


def test_the_handler_refuses_a_real_address(canary_env: LeadsDatabase, lambda_context: Any) -> None:
    # Given a real lead  When the function is asked to erase it  Then the invocation fails and the row stays
    real = envelope("jane@example.com")
    store(canary_env, real)
    with pytest.raises(pydantic.ValidationError):
        canary_handler.lambda_handler({"lead_id": str(real.lead_id), "email": "jane@example.com"}, lambda_context)
    assert canary_env.count_rows() == 1
