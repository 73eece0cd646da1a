"""`leadpipe verify`'s canary lead: confirm it was stored, then erase it, from inside the database's network.

Only canary addresses (under CANARY_DOMAIN, a name RFC 2606 reserves) are ever touched: whoever may invoke
the canary check can erase no real person's lead with it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from uuid import UUID

import psycopg
from psycopg import sql
from pydantic import BaseModel, ConfigDict, field_validator

from functions.contract.lead import normalise_email
from functions.worker.repository import (
    SessionTimeouts,
    erasure_salt_table_identifier,
    erasures_table_identifier,
    leads_table_identifier,
)

# ".example" is reserved for documentation and tests (RFC 2606); ".invalid" is too, but the contract refuses it.
CANARY_DOMAIN = "leadpipe-canary.example"


def is_canary_address(email: str) -> bool:
    """Whether `email` (as the contract normalises it) is a canary's: such a lead is never anyone's."""
    return email.endswith(f"@{CANARY_DOMAIN}")


def canary_address(lead_name: str) -> str:
    """The canary's e-mail address for one run, e.g. `verify-3f2a...@leadpipe-canary.example`."""
    return normalise_email(f"{lead_name}@{CANARY_DOMAIN}")


class CanaryRequest(BaseModel):
    """What `leadpipe verify` asks: is this canary lead stored? `give_up`: it was not in time, so make sure
    it never will be (a tombstone, as `leadpipe db erase` leaves)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    lead_id: UUID
    email: str
    give_up: bool = False

    @field_validator("email")
    @classmethod
    def _only_canaries(cls, value: str) -> str:
        address = normalise_email(value.strip())
        if not is_canary_address(address):
            raise ValueError(f"only canary addresses under {CANARY_DOMAIN} may be checked and erased")
        return address


@dataclass(frozen=True)
class CanaryOutcome:
    stored: bool  # the lead's row was there (and is erased now)
    tombstoned: bool = False  # not stored, and a tombstone keeps it from ever being stored

    def as_dict(self) -> dict[str, bool]:
        return asdict(self)


def confirm_and_erase(
    connection: psycopg.Connection, leads_table: str, request: CanaryRequest, timeouts: SessionTimeouts
) -> CanaryOutcome:
    """Delete the canary's row (by lead id AND address) and say whether it was there, in one transaction.

    With `give_up` and no row, a tombstone of the address makes the worker skip the lead if it arrives later.
    """
    names = {
        "leads": leads_table_identifier(leads_table),
        "erasures": erasures_table_identifier(leads_table),
        "salt": erasure_salt_table_identifier(leads_table),
    }
    with connection.transaction():
        for statement in timeouts.set_local_statements():
            connection.execute(statement)
        deleted = connection.execute(
            sql.SQL("DELETE FROM {leads} WHERE lead_id = %s AND email = %s").format(**names),
            (request.lead_id, request.email),
        ).rowcount
        if deleted or not request.give_up:
            return CanaryOutcome(stored=bool(deleted))
        connection.execute(
            sql.SQL(
                "INSERT INTO {erasures} (email_sha256) SELECT sha256(convert_to(salt || %s, 'UTF8')) FROM {salt}"
                " ON CONFLICT (email_sha256) DO UPDATE SET erased_at = now()"
            ).format(**names),
            (request.email,),
        )
    return CanaryOutcome(stored=False, tombstoned=True)
