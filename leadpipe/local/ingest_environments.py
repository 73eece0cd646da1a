"""The ingest's execution environments, each its own API Gateway stand-in: `size` warm processes on one socket,
one request at a time each. No gateway process in front: that hop's CPU per lead (docs/performance.md) is too
much of a CPU-bound burst's budget.
"""

from __future__ import annotations

import multiprocessing
import socket
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

from leadpipe.local.asgi import serve_asgi
from leadpipe.local.gateway import ApiGatewayApp
from leadpipe.local.lambda_pool import become_environment, invoke_loaded_handler
from leadpipe.local.stage_throttle import StageThrottle

INGEST_HANDLER = "functions.ingest.handler.lambda_handler"


def _serve(
    listener: socket.socket,
    function_name: str,
    environment: dict[str, str],
    log_file: str,
    stage: str,
    public_url: str,
    ready: Connection,
    gateway: GatewaySettings,
) -> None:
    become_environment(INGEST_HANDLER, function_name, environment, log_file)
    app = ApiGatewayApp(
        invoke_loaded_handler,
        stage=stage,
        public_url=public_url,
        allowed_origins=(public_url, *gateway.allowed_origins),
        throttle=gateway.throttle,
        function_timeout_seconds=gateway.function_timeout_seconds,
    )
    ready.send(True)  # the cold start is over: imports done, clients built lazily as in Lambda
    ready.close()
    serve_asgi(app, listener)


@dataclass(frozen=True)
class GatewaySettings:
    """What the stage's API Gateway enforces before the function runs.

    The local page's origin is put first in the gateway's own answers' CORS header: it is the page
    the local runtime serves (the stack names the first of `allowed_origins`).
    """

    throttle: StageThrottle | None = None  # one bucket for the stage, shared by every process
    allowed_origins: tuple[str, ...] = ()
    function_timeout_seconds: float | None = None  # the ingest's Lambda timeout

    @classmethod
    def for_stage(
        cls,
        rate_per_second: float,
        burst: int,
        allowed_origins: tuple[str, ...] = (),
        function_timeout_seconds: float | None = None,
    ) -> GatewaySettings:
        return cls(StageThrottle(rate_per_second, burst), tuple(allowed_origins), function_timeout_seconds)


class IngestEnvironments:
    """Start, and stop, the processes that answer on `listener`."""

    def __init__(
        self,
        listener: socket.socket,
        size: int,
        function_name: str,
        environment: dict[str, str],
        log_file: Path,
        stage: str,
        gateway: GatewaySettings | None = None,
    ) -> None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        host, port = listener.getsockname()[:2]
        self.url = f"http://{host}:{port}"
        context = multiprocessing.get_context("spawn")
        # Held for the processes' lifetime: `start()` drops its args, and a collected lock unlinks its semaphore.
        self._gateway = gateway or GatewaySettings()
        self._ready: list[Connection] = []
        self._ready_senders: list[Connection] = []
        self._processes: list[multiprocessing.process.BaseProcess] = []
        for index in range(size):
            receive, send = context.Pipe(duplex=False)
            self._ready.append(receive)
            self._ready_senders.append(send)
            self._processes.append(
                context.Process(
                    target=_serve,
                    name=f"{function_name}-{index}",
                    daemon=True,
                    args=(listener, function_name, environment, str(log_file), stage, self.url, send, self._gateway),
                )
            )

    def start(self, timeout: float = 120) -> None:
        for process, send in zip(self._processes, self._ready_senders, strict=True):
            process.start()
            send.close()  # the child holds the only copy now: if it dies, we read EOF
        for receive, process in zip(self._ready, self._processes, strict=True):
            try:
                if not receive.poll(timeout):
                    raise EOFError
                receive.recv()
            except EOFError:
                self.stop()
                raise RuntimeError(
                    f"ingest environment {process.name} did not start within {timeout:.0f} s; see its log"
                ) from None

    def stop(self, grace_seconds: float = 5.0) -> None:
        """Stop taking requests; those in flight get uvicorn's one-second grace."""
        for process in self._processes:
            if process.is_alive():
                process.terminate()
        for process in self._processes:
            process.join(grace_seconds)
            if process.is_alive():
                process.kill()
                process.join(5)
