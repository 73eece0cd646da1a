"""Erase one person's leads: the right-to-erasure request, answered with one command."""

from __future__ import annotations

import psycopg
from psycopg import sql

from functions.contract.lead import normalise_email
from functions.worker.repository import leads_table_identifier


def erase_person(database_url: str, leads_table: str, email: str) -> int:
    """Delete every row of `email` (normalised as the contract stores it); returns how many."""
    try:
        normalised = normalise_email(email.strip())
    except ValueError as error:
        raise ValueError(f"{email!r} is not an e-mail address: {error}") from None
    with psycopg.connect(database_url, autocommit=True) as connection:
        cursor = connection.execute(sql.SQL("DELETE FROM {} WHERE email = %s").format(leads_table_identifier(leads_table)), (normalised,))
        return cursor.rowcount
