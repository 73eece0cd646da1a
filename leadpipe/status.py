"""What the pipeline holds right now: queue, in flight, DLQ, and what reached the database."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from functions.worker.repository import leads_table_identifier
from leadpipe.drain import DrainStatus
from leadpipe.lead_counts import counts_as_text, leads_by_campaign_and_source, retention_as_text, retention_status


@dataclass
class PipelineStatus:
    source: str
    queued: int
    in_flight: int
    dead_letters: int
    oldest_message_age_seconds: float | None
    leads_stored: int | None = None
    stored_last_hour_by_campaign: dict[str, int] = field(default_factory=dict)
    last_stored_at: str | None = None
    database_error: str | None = None  # the database could not be reached for the counts above
    drain: dict[str, Any] | None = None  # leadpipe.drain.DrainStatus: running, paused_by_operator or held_by_breaker
    governor: dict[str, Any] | None = None  # the drain governor's writers, why, and its last changes
    # leadpipe.lead_counts: {"campaign": {code: {"last_hour", "last_day"}}, "utm_source": {...}}
    leads_received: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    retention: dict[str, Any] | None = None  # leadpipe.lead_counts.retention_status: the policy and the last run

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def as_text(self) -> str:
        age = "unknown here" if self.oldest_message_age_seconds is None else f"{self.oldest_message_age_seconds:.0f} s"
        lines = [
            f"Leadpipe status ({self.source})",
            f"  queued (visible)      {self.queued}",
            f"  in flight             {self.in_flight}",
            f"  dead letters (DLQ)    {self.dead_letters}",
            f"  oldest message age    {age}",
        ]
        if self.drain is not None:
            lines.append(f"  drain                 {_drain_text(self.drain)}")
        if self.governor is not None:
            lines += governor_lines(self.governor)
        if self.database_error is not None:
            lines.append(f"  database              unreachable: {self.database_error}")
        if self.leads_stored is not None:
            lines.append(f"  leads stored          {self.leads_stored}  (last at {self.last_stored_at or '-'})")
            lines += counts_as_text("received, by campaign", self.leads_received.get("campaign", {}))
            lines += counts_as_text("received, by utm_source", self.leads_received.get("utm_source", {}))
            lines += retention_as_text(self.retention)
        return "\n".join(lines)


def governor_lines(governor: dict[str, Any]) -> list[str]:
    """The drain governor's writers against the cap, why, and its last changes (newest last)."""
    writers, cap = governor["writers"], governor["cap"]
    where = f"MaximumConcurrency {governor['mapping_concurrency']}" if governor.get("mapping_concurrency") else ""
    lines = [
        f"  drain writers         {writers:g} of {cap} (the cap){f', {where}' if where else ''}: {governor['reason']}"
    ]
    for change in governor.get("changes", [])[-3:]:
        lines.append(f"    {change['at']}  -> {change['writers']:g}: {change['reason']}")
    return lines


def _drain_text(drain: dict[str, Any]) -> str:
    return DrainStatus(**drain).as_text()


def queue_counts(sqs: Any, queue_url: str) -> dict[str, int]:
    """Messages waiting (`visible`) and received but not yet deleted (`in_flight`)."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return {
        "visible": int(attributes["ApproximateNumberOfMessages"]),
        "in_flight": int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    }


def queue_depth(sqs: Any, queue_url: str) -> int:
    """Every message the queue still holds, visible or in flight."""
    counts = queue_counts(sqs, queue_url)
    return counts["visible"] + counts["in_flight"]


def queue_status(sqs: Any, leads_queue_url: str, dead_letter_url: str) -> dict[str, int]:
    leads = queue_counts(sqs, leads_queue_url)
    return {
        "queued": leads["visible"],
        "in_flight": leads["in_flight"],
        "dead_letters": queue_depth(sqs, dead_letter_url),
    }


def database_status(database_url: str, leads_table: str) -> dict[str, Any]:
    target = leads_table_identifier(leads_table)
    since = datetime.now(UTC) - timedelta(hours=1)
    with psycopg.connect(database_url, autocommit=True) as connection:
        total, last = connection.execute(sql.SQL("SELECT count(*), max(stored_at) FROM {}").format(target)).fetchone()
        rows = connection.execute(
            sql.SQL("SELECT coalesce(campaign, '(none)'), count(*) FROM {} WHERE stored_at >= %s GROUP BY 1").format(
                target
            ),
            (since,),
        ).fetchall()
        leads_received = leads_by_campaign_and_source(connection, leads_table)
        retention = retention_status(connection, leads_table)
    return {
        "leads_received": leads_received,
        "retention": retention,
        "leads_stored": total,
        "last_stored_at": last.isoformat(timespec="seconds") if last else None,
        "stored_last_hour_by_campaign": dict(rows),
    }


def oldest_message_age_from_cloudwatch(cloudwatch: Any, queue_name: str) -> float | None:
    """SQS reports the age of the oldest message only as a CloudWatch metric (1-minute lag)."""
    now = datetime.now(UTC)
    points = cloudwatch.get_metric_statistics(
        Namespace="AWS/SQS",
        MetricName="ApproximateAgeOfOldestMessage",
        Dimensions=[{"Name": "QueueName", "Value": queue_name}],
        StartTime=now - timedelta(minutes=10),
        EndTime=now,
        Period=60,
        Statistics=["Maximum"],
    )["Datapoints"]
    return max(points, key=lambda p: p["Timestamp"])["Maximum"] if points else None
