"""`leadpipe verify`'s canary check against a real PostgreSQL: it confirms the canary's row and erases it,
leaves a tombstone when the canary never came, and touches no real person's lead."""

from __future__ import annotations

from uuid import uuid4

import pydantic
import pytest

from functions.worker.canary import CANARY_DOMAIN, CanaryRequest, canary_address, confirm_and_erase
from functions.worker.repository import ConnectionProvider, LeadRepository, SessionTimeouts, connect
from tests.conftest import LeadsDatabase
from tests.functions.worker.conftest import canary_envelope as envelope
from tests.functions.worker.conftest import store_as_worker as store

TIMEOUTS = SessionTimeouts(statement_timeout_seconds=5, lock_timeout_seconds=5, idle_in_transaction_timeout_seconds=30)


def check(leads_db: LeadsDatabase, request: CanaryRequest) -> dict[str, bool]:
    with connect(leads_db.uri, prepare_statements=False) as connection:
        return confirm_and_erase(connection, leads_db.leads_table, request, TIMEOUTS).as_dict()


def test_a_stored_canary_is_confirmed_and_erased_and_nothing_else(leads_db: LeadsDatabase) -> None:
    # Given the canary lead stored by the worker, beside a real person's lead
    canary = envelope(canary_address("verify-1"))
    store(leads_db, canary, envelope("jane@example.com"))
    # When the canary check asks for it
    answer = check(leads_db, CanaryRequest(lead_id=canary.lead_id, email=canary.lead.email))
    # Then it was there, it is gone, and the real lead is untouched
    assert answer == {"stored": True, "tombstoned": False}
    assert [row["email"] for row in leads_db.rows()] == ["jane@example.com"]


def test_a_canary_not_yet_stored_is_reported_and_then_stored_normally(leads_db: LeadsDatabase) -> None:
    # Given a canary the worker has not stored yet
    canary = envelope(canary_address("verify-2"))
    # When the check asks without giving up  Then it is not there, and nothing stops it from arriving
    assert check(leads_db, CanaryRequest(lead_id=canary.lead_id, email=canary.lead.email)) == {
        "stored": False,
        "tombstoned": False,
    }
    store(leads_db, canary)
    assert check(leads_db, CanaryRequest(lead_id=canary.lead_id, email=canary.lead.email))["stored"] is True


def test_giving_up_leaves_a_tombstone_so_a_late_canary_is_never_stored(leads_db: LeadsDatabase) -> None:
    # Given a canary still on its way (received before the check gave up)
    late = envelope(canary_address("verify-3"))
    # When verify gives up on it
    answer = check(leads_db, CanaryRequest(lead_id=late.lead_id, email=late.lead.email, give_up=True))
    # Then a tombstone is left, and the worker's INSERT skips the canary when it finally arrives
    assert answer == {"stored": False, "tombstoned": True}
    repository = LeadRepository(ConnectionProvider(lambda: connect(leads_db.uri)), leads_db.leads_table)
    outcome = repository.store_batch([late])
    assert (outcome.inserted, outcome.duplicates) == (0, 1)
    assert leads_db.count_rows() == 0


def test_the_same_lead_id_with_a_real_address_is_refused_and_kept(leads_db: LeadsDatabase) -> None:
    # Given a real person's lead
    real = envelope("jane@example.com")
    store(leads_db, real)
    # When someone asks the canary check to erase it  Then the request is refused before any SQL runs
    with pytest.raises(pydantic.ValidationError, match=f"only canary addresses under {CANARY_DOMAIN}"):
        CanaryRequest(lead_id=real.lead_id, email="jane@example.com")
    assert leads_db.count_rows() == 1


def test_a_canary_address_with_the_wrong_lead_id_erases_nothing(leads_db: LeadsDatabase) -> None:
    # Given a stored canary  When asked about another lead id with its address  Then nothing is erased
    canary = envelope(canary_address("verify-4"))
    store(leads_db, canary)
    assert check(leads_db, CanaryRequest(lead_id=uuid4(), email=canary.lead.email))["stored"] is False
    assert leads_db.count_rows() == 1
