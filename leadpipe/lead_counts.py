"""What marketing and ops ask first: leads per campaign and per utm_source, in the last hour and day;
and what the retention keeps and when it last ran. Read from the table, so it costs no metric."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from functions.worker.repository import leads_table_identifier
from functions.worker.retention import RetentionPolicy, last_retention_run

NONE_LABEL = "(none)"


def leads_by_campaign_and_source(
    connection: psycopg.Connection, leads_table: str, now: datetime | None = None
) -> dict[str, dict[str, dict[str, int]]]:
    """`{"campaign": {code: {"last_hour": n, "last_day": n}}, "utm_source": {...}}` by the time the ingest received
    each lead; a lead without one counts under "(none)". One scan of the last day (the received_at index)."""
    now = now or datetime.now(UTC)
    rows = connection.execute(
        sql.SQL(
            "SELECT grouping(campaign), coalesce(campaign, utm_source), count(*) FILTER (WHERE received_at >= %s),"
            " count(*) FROM {} WHERE received_at >= %s GROUP BY GROUPING SETS ((campaign), (utm_source))"
        ).format(leads_table_identifier(leads_table)),
        (now - timedelta(hours=1), now - timedelta(days=1)),
    ).fetchall()
    counts: dict[str, dict[str, dict[str, int]]] = {"campaign": {}, "utm_source": {}}
    for by_source, value, last_hour, last_day in rows:
        counts["utm_source" if by_source else "campaign"][value or NONE_LABEL] = {
            "last_hour": last_hour,
            "last_day": last_day,
        }
    return counts


def retention_status(connection: psycopg.Connection, leads_table: str) -> dict[str, Any] | None:
    """The policy the retention applied last and how that run went (None: it has not run yet)."""
    try:
        run = last_retention_run(connection, leads_table)
    except psycopg.errors.UndefinedTable:  # a database not yet migrated to the retention's record
        return None
    if run is None:
        return None
    policy = RetentionPolicy(run["lead_retention_days"], run["tombstone_retention_days"])
    return {"policy": policy.as_text(), **run}


def counts_as_text(title: str, counts: dict[str, dict[str, int]]) -> list[str]:
    lines = [f"  {title:<24}{'last hour':>10}{'last day':>10}"]
    ranked = sorted(counts.items(), key=lambda item: (-item[1]["last_day"], item[0]))
    for value, count in ranked or [("-", {"last_hour": 0, "last_day": 0})]:
        lines.append(f"    {value[:22]:<22}{count['last_hour']:>10}{count['last_day']:>10}")
    return lines


def retention_as_text(retention: dict[str, Any] | None) -> list[str]:
    if retention is None:
        return ["  retention             not run yet"]
    ran = f"last run {retention['started_at']}: {retention['outcome']}"
    if retention["outcome"] == "failed":
        ran += f" ({retention['error']})"
    else:
        ran += f", {retention['leads_deleted']} leads and {retention['tombstones_deleted']} tombstones deleted"
    return [
        f"  retention             {retention['policy']}",
        f"                        {ran}",
        f"                        last complete run {retention['last_done_at'] or 'never'}",
    ]
