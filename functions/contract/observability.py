"""Names the functions publish under and the stack's dashboards and alarms read: one place."""

METRICS_NAMESPACE = "Leadpipe"
INGEST_SERVICE = "leadpipe-ingest"
WORKER_SERVICE = "leadpipe-worker"
