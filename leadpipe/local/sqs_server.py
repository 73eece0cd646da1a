"""SQS on 127.0.0.1, served by moto in a child process, with the queues built from the settings."""

from __future__ import annotations

import json
import multiprocessing
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from infra.config import PipelineSettings

LOCAL_ACCOUNT = "123456789012"
LOCAL_REGION = "us-east-1"
LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": LOCAL_REGION}


@dataclass(frozen=True)
class PipelineQueues:
    leads_url: str
    leads_arn: str
    dead_letter_url: str
    dead_letter_arn: str


def _serve(port: int, report: Connection) -> None:
    """Child process: patch moto for spikes, serve SQS on uvicorn, report the port, serve until stopped.

    uvicorn (with httptools and uvloop) rather than a pure-Python WSGI server: a fraction of the
    CPU per SendMessage (docs/performance.md).
    """
    import signal
    import socket

    from leadpipe.local.asgi import serve_wsgi
    from leadpipe.local.moto_speedups import apply_sqs_speedups
    from leadpipe.local.sqs_app import may_block, sqs_wsgi_app

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the parent stops us
    apply_sqs_speedups()
    listener = socket.create_server(("127.0.0.1", port))
    report.send(listener.getsockname()[1])
    serve_wsgi(sqs_wsgi_app, listener, may_block=may_block)


class LocalSqsServer:
    """moto's server mode in its own process; boto3 reaches it over real HTTP."""

    def __init__(self, port: int = 0) -> None:
        self._port = port
        self._process: multiprocessing.process.BaseProcess | None = None
        self.endpoint_url = ""

    def start(self) -> str:
        context = multiprocessing.get_context("spawn")
        receive, send = context.Pipe(duplex=False)
        self._process = context.Process(target=_serve, args=(self._port, send), name="leadpipe-sqs", daemon=True)
        self._process.start()
        if not receive.poll(60):
            self.stop()
            raise RuntimeError("the local SQS server did not start within 60 s")
        self._port = receive.recv()  # a restart comes back on the same port, as a real endpoint would
        self.endpoint_url = f"http://127.0.0.1:{self._port}"
        return self.endpoint_url

    def stop(self) -> None:
        if self._process is not None and self._process.is_alive():
            self._process.terminate()
            self._process.join(10)
        self._process = None


def create_pipeline_queues(sqs: Any, settings: PipelineSettings, prefix: str = "leadpipe") -> PipelineQueues:
    """The leads queue and DLQ with the same visibility, retention and redrive as the stack."""
    retention = str(settings.retention_days * 24 * 3600)
    dead_letter_url = sqs.create_queue(
        QueueName=f"{prefix}-{settings.stage}-dead-letters", Attributes={"MessageRetentionPeriod": str(14 * 24 * 3600)}
    )["QueueUrl"]
    dead_letter_arn = sqs.get_queue_attributes(QueueUrl=dead_letter_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    leads_url = sqs.create_queue(
        QueueName=f"{prefix}-{settings.stage}-leads",
        Attributes={
            "VisibilityTimeout": str(settings.queue_visibility_timeout_seconds),
            "MessageRetentionPeriod": retention,
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": str(settings.max_receive_count)}
            ),
        },
    )["QueueUrl"]
    leads_arn = sqs.get_queue_attributes(QueueUrl=leads_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return PipelineQueues(leads_url, leads_arn, dead_letter_url, dead_letter_arn)
