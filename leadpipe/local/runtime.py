"""Bring the whole pipeline up on this machine, with the same handlers and settings as the cloud."""

from __future__ import annotations

import json
import os
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import boto3
import psycopg
from botocore.config import Config

from functions.worker.migrate import apply_migrations
from functions.worker.retention import RETENTION_TIMEOUT_SECONDS
from functions.worker.round_trip_deadline import ROUND_TRIP_MARGIN_SECONDS
from infra.config import REPO_ROOT, PipelineSettings
from leadpipe.embedded_postgres import EmbeddedPostgres, start_embedded_postgres
from leadpipe.local.drain_breaker import LocalDrainBreaker, probe_database
from leadpipe.local.drain_governor import STATE_FILE_NAME as GOVERNOR_STATE_FILE_NAME
from leadpipe.local.drain_governor import LocalDrainGovernor, WriterGate
from leadpipe.local.events_lane import LocalEventsLane
from leadpipe.local.gateway import LEADS_PATH
from leadpipe.local.ingest_environments import GatewaySettings, IngestEnvironments
from leadpipe.local.lambda_pool import LambdaPool
from leadpipe.local.poller import EventSourceSettings, SqsEventSourcePoller
from leadpipe.local.queue_snapshot import make_visible, restore_queue_snapshot, save_queue_snapshot
from leadpipe.local.retention import LocalRetention
from leadpipe.local.sqs_server import (
    LOCAL_CREDENTIALS,
    LOCAL_REGION,
    LocalSqsServer,
    PipelineQueues,
    create_pipeline_queues,
)
from leadpipe.status import queue_depth

DEFAULT_DATA_DIR = REPO_ROOT / ".leadpipe" / "local"
STATE_FILE_NAME = "runtime.json"
SNAPSHOT_FILE_NAME = "queue-snapshot.json"


@dataclass(frozen=True)
class RuntimeInfo:
    """Where everything is; written to `<data_dir>/runtime.json` for `leadpipe status` and friends."""

    stage: str
    api_url: str
    landing_page_url: str
    sqs_endpoint_url: str
    leads_queue_url: str
    dead_letter_queue_url: str
    database_url: str
    leads_table: str
    data_dir: str
    postgres_data_dir: str | None
    pid: int
    events: dict[str, Any] | None = None  # the events lane's queues and endpoints (LocalEventsInfo), if it runs

    @classmethod
    def load(cls, data_dir: Path = DEFAULT_DATA_DIR) -> RuntimeInfo:
        path = data_dir / STATE_FILE_NAME
        if not path.is_file():
            raise FileNotFoundError(f"no local pipeline is running (no {path}); start one with `make run`")
        info = cls(**json.loads(path.read_text()))
        try:
            os.kill(info.pid, 0)
        except ProcessLookupError:
            path.unlink(missing_ok=True)
            raise FileNotFoundError(
                f"no local pipeline is running (process {info.pid} is gone); start one with `make run`"
            ) from None
        return info


@dataclass
class LocalPipelineOptions:
    settings: PipelineSettings
    data_dir: Path = DEFAULT_DATA_DIR
    port: int = 8080
    database_url: str | None = None  # None: the embedded server under data_dir/postgres
    ingest_environments: int = 4
    extra_allowed_origins: list[str] = field(default_factory=list)
    drain_probe_seconds: float = 1.0  # the drain breaker's probe interval (AWS: once a minute)
    drain_governor_seconds: float = 1.0  # the drain governor's decision interval (AWS: the probe's minute)
    retention_interval_seconds: float = 3600.0  # the retention's schedule (AWS: every hour); it also runs at start
    ingest_environment: dict[str, str] = field(default_factory=dict)  # more ingest settings, e.g. a captcha check's
    events: bool = False  # run the stage's events lane (when it has events_enabled): moto's EventBridge, local senders
    events_to: str | None = None  # every destination posts here (default: a local receiver that prints what it gets)
    events_echo: TextIO | None = None  # where the local receiver prints


def local_sqs_client(endpoint_url: str) -> Any:
    return boto3.client(
        "sqs",
        endpoint_url=endpoint_url,
        region_name=LOCAL_REGION,
        aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        config=Config(
            retries={"mode": "standard", "total_max_attempts": 3},
            max_pool_connections=32,
            user_agent="leadpipe-local",  # cheap per call: see functions/ingest/handler.sqs_client_config
        ),
    )


class LocalPipeline:
    """PostgreSQL, SQS, the API and the worker's event source, started and stopped as one."""

    def __init__(self, options: LocalPipelineOptions) -> None:
        self.options = options
        self.settings = options.settings
        self.info: RuntimeInfo | None = None
        self.poller: SqsEventSourcePoller | None = None
        self.drain_breaker: LocalDrainBreaker | None = None
        self.drain_governor: LocalDrainGovernor | None = None
        self.retention: LocalRetention | None = None
        self._postgres: EmbeddedPostgres | None = None
        self._sqs_server = LocalSqsServer()
        self._ingest: IngestEnvironments | None = None
        self._worker: LambdaPool | None = None
        self._retention: LambdaPool | None = None
        self.events: LocalEventsLane | None = None

    # --- start ------------------------------------------------------------------------------

    def start(self) -> RuntimeInfo:
        data_dir = self.options.data_dir.resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        with ThreadPoolExecutor(max_workers=1) as background:
            queue_service = background.submit(self._sqs_server.start)  # a process of its own: it starts meanwhile
            database_url = self.options.database_url or self._start_postgres(data_dir / "postgres")
            with psycopg.connect(database_url, autocommit=True) as connection:
                apply_migrations(connection, self.settings.leads_table)
            endpoint = queue_service.result()
        sqs = local_sqs_client(endpoint)
        queues = create_pipeline_queues(sqs, self.settings)
        restore_queue_snapshot(
            sqs, data_dir / SNAPSHOT_FILE_NAME, {"leads": queues.leads_url, "dead_letters": queues.dead_letter_url}
        )
        # The port is bound first: the page it serves is an origin the ingest must allow.
        listener = socket.create_server(("127.0.0.1", self.options.port))
        public_url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        aws_env = {**LOCAL_CREDENTIALS, "AWS_ENDPOINT_URL_SQS": endpoint, "POWERTOOLS_TRACE_DISABLED": "true"}
        self._ingest = self._ingest_environments(listener, public_url, aws_env, queues, data_dir / "logs")
        events_env: dict[str, str] = {}
        if self.options.events and self.settings.events_enabled:
            options = self.options
            self.events = LocalEventsLane(
                self.settings, sqs, aws_env, data_dir / "logs", options.events_to, options.events_echo
            )
            events_env = self.events.start()
        self._worker = self._worker_environments({**aws_env, **events_env}, database_url, data_dir / "logs")
        with ThreadPoolExecutor(max_workers=1) as background:
            ingest_started = background.submit(self._ingest.start)  # its processes start while the worker's do
            self._worker.warm_up()
            self._start_retention(database_url, data_dir / "logs")
            self._start_drain(sqs, queues, database_url, data_dir)
            ingest_started.result()
        listener.close()  # the environments hold it now
        self.info = RuntimeInfo(
            stage=self.settings.stage,
            api_url=f"{public_url}{LEADS_PATH}",
            landing_page_url=f"{public_url}/",
            sqs_endpoint_url=endpoint,
            leads_queue_url=queues.leads_url,
            dead_letter_queue_url=queues.dead_letter_url,
            database_url=database_url,
            leads_table=self.settings.leads_table,
            data_dir=str(data_dir),
            postgres_data_dir=str(self._postgres.data_dir) if self._postgres else None,
            pid=os.getpid(),
            events=asdict(self.events.info) if self.events else None,
        )
        (data_dir / STATE_FILE_NAME).write_text(json.dumps(asdict(self.info), indent=2))
        return self.info

    def _ingest_environments(
        self, listener: socket.socket, public_url: str, aws_env: dict[str, str], queues: PipelineQueues, logs: Path
    ) -> IngestEnvironments:
        settings, options = self.settings, self.options
        origins = [*settings.allowed_origins, public_url, *options.extra_allowed_origins]
        environment = {
            **aws_env,
            "LEADS_QUEUE_URL": queues.leads_url,
            "ALLOWED_ORIGINS": ",".join(origins),
            "MAX_BODY_BYTES": str(settings.max_body_bytes),
            "HONEYPOT_FIELD": settings.honeypot_field,
            "METRIC_CAMPAIGNS": ",".join(settings.metric_campaigns),
            "INGEST_TIMEOUT_SECONDS": str(settings.ingest_timeout_seconds),
            **options.ingest_environment,
        }
        gateway = GatewaySettings.for_stage(
            settings.throttle_rate_per_second, settings.throttle_burst, tuple(origins), settings.ingest_timeout_seconds
        )
        return IngestEnvironments(
            listener,
            options.ingest_environments,
            "leadpipe-ingest",
            environment,
            logs / "ingest.log",
            stage=settings.stage,
            gateway=gateway,
        )

    def _worker_environments(self, aws_env: dict[str, str], database_url: str, logs: Path) -> LambdaPool:
        # One process per allowed concurrent batch: the DB never sees more writers than this.
        environment = {
            **aws_env,
            "DATABASE_URL": database_url,
            "LEADS_TABLE": self.settings.leads_table,
            **self.settings.worker_database_environment(),
        }
        return LambdaPool(
            "functions.worker.handler.lambda_handler",
            "leadpipe-worker",
            self.settings.max_concurrency,
            environment,
            logs / "worker.log",
        )

    def _start_retention(self, database_url: str, logs: Path) -> None:
        """The retention function, in an environment of its own, on its schedule (infra/retention.py in AWS)."""
        settings = self.settings
        self._retention = LambdaPool(
            "functions.worker.retention_handler.lambda_handler",
            "leadpipe-retention",
            1,
            {
                "DATABASE_URL": database_url,
                "LEADS_TABLE": settings.leads_table,
                **settings.worker_database_environment(),
                **settings.retention_environment(),
            },
            logs / "retention.log",
        )
        self.retention = LocalRetention(
            self._retention, self.options.retention_interval_seconds, RETENTION_TIMEOUT_SECONDS
        )
        self.retention.start()

    def _start_drain(self, sqs: Any, queues: PipelineQueues, database_url: str, data_dir: Path) -> None:
        """The worker's event source, the breaker that holds it while the database is away, and the governor
        that keeps its writers below the cap while the database is busy."""
        settings = self.settings
        gate = WriterGate(settings.max_concurrency) if settings.governor_enabled else None
        (data_dir / GOVERNOR_STATE_FILE_NAME).unlink(missing_ok=True)  # a governor of an earlier run is not this one's
        self.poller = SqsEventSourcePoller(
            sqs,
            EventSourceSettings(
                queue_url=queues.leads_url,
                queue_arn=queues.leads_arn,
                region=LOCAL_REGION,
                batch_size=settings.batch_size,
                max_batching_window_seconds=settings.max_batching_window_seconds,
                max_concurrency=settings.max_concurrency,
            ),
            lambda event: self._worker.invoke(event, timeout=settings.worker_timeout_seconds),
            on_batch_failed=lambda: self.drain_breaker.check_now(),
            gate=gate,
        )
        # Decided before the first receive: a database already down never costs a receive.
        answer_within = settings.db_statement_timeout_seconds + ROUND_TRIP_MARGIN_SECONDS  # the AWS probe's limit
        self.drain_breaker = LocalDrainBreaker(
            self.poller,
            lambda: probe_database(database_url, settings.leads_table, answer_within),
            data_dir,
            self.options.drain_probe_seconds,
        )
        self.drain_breaker.start()
        if gate is not None:
            poller = self.poller
            self.drain_governor = LocalDrainGovernor(
                gate,
                settings.governor_limits(),
                database_url,
                data_dir,
                lambda: poller.receiving,
                self.options.drain_governor_seconds,
            )
            self.drain_governor.start()
        self.poller.start()

    def _start_postgres(self, folder: Path) -> str:
        self._postgres = start_embedded_postgres(folder)
        return self._postgres.uri

    # --- fault drills: take a dependency away and bring it back --------------------------------

    def stop_queue_service(self) -> None:
        """SQS goes away (the ingest must answer 503, never 202)."""
        self._sqs_server.stop()

    def start_queue_service(self) -> None:
        """SQS comes back on the same endpoint, with the same queues (empty: moto keeps no state)."""
        sqs = local_sqs_client(self._sqs_server.start())
        create_pipeline_queues(sqs, self.settings)

    def invoke_worker(self, event: dict[str, Any]) -> dict[str, Any]:
        """Hand the worker one SQS event, as the event source does (fault drills use it directly)."""
        return self._worker.invoke(event, timeout=self.settings.worker_timeout_seconds)

    def stop_database(self) -> None:
        """The embedded PostgreSQL goes away; the worker's connections break."""
        if self._postgres is None:
            raise RuntimeError("only the embedded database can be stopped by the runtime")
        self._postgres.stop()

    def start_database(self) -> None:
        if self._postgres is None:
            raise RuntimeError("only the embedded database can be started by the runtime")
        self._postgres = start_embedded_postgres(self._postgres.data_dir)

    # --- stop -------------------------------------------------------------------------------

    def stop(self, drain_seconds: float = 10.0) -> int:
        """Stop taking leads, let the worker drain for up to `drain_seconds`, keep what is left.

        Returns how many messages were saved to the snapshot (restored on the next start).
        """
        saved = 0
        with ThreadPoolExecutor(max_workers=1) as background:
            retention_stopped = background.submit(self._stop_retention)  # it owes the drain nothing: ends meanwhile
            if self._ingest:
                self._ingest.stop()
            if self.drain_breaker:
                self.drain_breaker.stop()
            if self.drain_governor:
                self.drain_governor.stop()
            if self.info and self.poller:
                sqs = local_sqs_client(self.info.sqs_endpoint_url)
                self._wait_until_drained(sqs, drain_seconds)
                self.poller.stop()
                # Failed records wait out their visibility timeout, invisible to the snapshot: end it.
                make_visible(sqs, self.info.leads_queue_url, self.poller.held_receipt_handles())
                saved = save_queue_snapshot(
                    sqs,
                    Path(self.info.data_dir) / SNAPSHOT_FILE_NAME,
                    {"leads": self.info.leads_queue_url, "dead_letters": self.info.dead_letter_queue_url},
                )
            retention_stopped.result()
        if self._worker:
            self._worker.close()
        if self.events:
            self.events.wait_until_delivered(drain_seconds)
            self.events.stop()
        self._sqs_server.stop()
        if self._postgres:
            self._postgres.stop()
        if self.info:
            (Path(self.info.data_dir) / STATE_FILE_NAME).unlink(missing_ok=True)
        return saved

    def _stop_retention(self) -> None:
        if self.retention:
            self.retention.stop()
        if self._retention:
            self._retention.close()

    def _wait_until_drained(self, sqs: Any, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if queue_depth(sqs, self.info.leads_queue_url) == 0:
                return
            time.sleep(0.2)
