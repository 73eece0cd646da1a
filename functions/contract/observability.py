"""Names the functions publish under and the stack's dashboards and alarms read: one place."""

from __future__ import annotations

from collections.abc import Mapping

METRICS_NAMESPACE = "Leadpipe"
INGEST_SERVICE = "leadpipe-ingest"
WORKER_SERVICE = "leadpipe-worker"
# Set by the stack on every function; unset locally.
STAGE_VARIABLE = "LEADPIPE_STAGE"


def stage_dimension(environ: Mapping[str, str]) -> dict[str, str]:
    """The `stage` dimension of every custom metric in the cloud (none locally), so that two stages in one
    account and region never feed each other's alarms."""
    stage = environ.get(STAGE_VARIABLE)
    return {"stage": stage} if stage else {}
