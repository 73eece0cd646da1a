"""Apply the SQL migrations in order, once each, recorded in `<schema>.schema_migrations`."""

from __future__ import annotations

from importlib import resources

import psycopg
from psycopg import sql

from functions.worker.repository import (
    erasure_salt_table_identifier,
    erasures_table_identifier,
    heartbeat_table_identifier,
)
from functions.worker.retention import retention_table_identifier

MIGRATIONS_PACKAGE = "functions.worker.migrations"


def migration_files() -> list[tuple[str, str]]:
    """(version, SQL text) of every migration, in the order they apply."""
    folder = resources.files(MIGRATIONS_PACKAGE)
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return [(f.name.removesuffix(".sql"), f.read_text(encoding="utf-8")) for f in files]


def apply_migrations(connection: psycopg.Connection, leads_table: str) -> list[str]:
    """Apply the migrations not yet recorded, in one transaction; return the versions applied.

    Safe to run twice and from two places at once: an advisory lock serialises runners, and
    each version is recorded with the schema change it made.
    """
    schema, table = leads_table.split(".", 1)
    names = {
        "schema": sql.Identifier(schema),
        "leads_table": sql.Identifier(schema, table),
        "campaign_received_at_index": sql.Identifier(f"{table}_campaign_received_at_idx"),
        "email_index": sql.Identifier(f"{table}_email_idx"),
        "received_at_index": sql.Identifier(f"{table}_received_at_idx"),
        "erasures_table": erasures_table_identifier(leads_table),
        "erasure_salt_table": erasure_salt_table_identifier(leads_table),
        "erasures_erased_at_index": sql.Identifier(f"{table}_erasures_erased_at_idx"),
        "heartbeat_table": heartbeat_table_identifier(leads_table),
        "consent_text_index": sql.Identifier(f"{table}_consent_text_idx"),
        "retention_table": retention_table_identifier(leads_table),
    }
    ledger = sql.Identifier(schema, "schema_migrations")
    applied: list[str] = []
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"leadpipe-migrations:{leads_table}",))
        # The worker's conninfo caps statements at seconds; building an index may take longer.
        connection.execute("SET LOCAL statement_timeout = 0")
        connection.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(names["schema"]))
        connection.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT "
                "now())"
            ).format(ledger)
        )
        done = {row[0] for row in connection.execute(sql.SQL("SELECT version FROM {}").format(ledger))}
        for version, text in migration_files():
            if version in done:
                continue
            connection.execute(sql.SQL(text).format(**names))
            connection.execute(sql.SQL("INSERT INTO {} (version) VALUES (%s)").format(ledger), (version,))
            applied.append(version)
    return applied
