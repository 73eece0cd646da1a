"""Erase one person's leads, for good: the right-to-erasure request, answered with one command.

Three places can hold the person's leads: the table (deleted), the leads queue and messages in
flight (stopped by a tombstone the worker's INSERT honours), and the DLQ (searched and deleted).
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
from psycopg import sql

from functions.contract import UnreadableEnvelope, parse_envelope
from functions.contract.lead import normalise_email
from functions.worker.repository import erasure_salt_table_identifier, erasures_table_identifier, leads_table_identifier
from leadpipe.queue_sweep import delete_matching

SEARCH_VISIBILITY_SECONDS = 60
ERASE_LOCK_TIMEOUT = "10s"


def normalised_address(email: str) -> str:
    """The address as the contract stores it; ValueError naming it if it is not one."""
    try:
        return normalise_email(email.strip())
    except ValueError as error:
        raise ValueError(f"{email!r} is not an e-mail address: {error}") from None


def erase_person(database_url: str, leads_table: str, email: str) -> int:
    """Delete every row of `email` and leave a tombstone; returns how many rows were deleted.

    The tombstone (a salted hash of the address and the time) makes the worker skip any lead of
    that person received before now, whenever it arrives. Both happen in one transaction, after
    the worker's in-flight INSERTs have finished (a SHARE lock), so none can slip in between.
    """
    normalised = normalised_address(email)
    names = {
        "leads": leads_table_identifier(leads_table),
        "erasures": erasures_table_identifier(leads_table),
        "salt": erasure_salt_table_identifier(leads_table),
    }
    with psycopg.connect(database_url, autocommit=True, connect_timeout=10) as connection, connection.transaction():
        connection.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(ERASE_LOCK_TIMEOUT)))
        # Waits for INSERTs already running, holds new ones back until the commit (milliseconds).
        connection.execute(sql.SQL("LOCK TABLE {leads} IN SHARE MODE").format(**names))
        connection.execute(
            sql.SQL(
                "INSERT INTO {erasures} (email_sha256) SELECT sha256(convert_to(salt || %s, 'UTF8')) FROM {salt}"
                " ON CONFLICT (email_sha256) DO UPDATE SET erased_at = now()"
            ).format(**names),
            (normalised,),
        )
        return connection.execute(
            sql.SQL("DELETE FROM {leads} WHERE email = %s").format(**names), (normalised,)
        ).rowcount


def erase_from_dead_letters(sqs: Any, dead_letter_url: str, email: str) -> int:
    """Delete the DLQ messages of `email`; every other message is made visible again. Returns how many.

    A message that no longer parses as an envelope is matched on its `lead.email` if it has one.
    """
    normalised = normalised_address(email)
    return delete_matching(
        sqs, dead_letter_url, lambda body: _address_of(body) == normalised, SEARCH_VISIBILITY_SECONDS
    )


def _address_of(body: str) -> str | None:
    try:
        return parse_envelope(body).lead.email
    except UnreadableEnvelope:
        pass
    try:
        raw = json.loads(body)["lead"]["email"]
        return normalise_email(str(raw).strip())
    except (ValueError, TypeError, KeyError):
        return None
