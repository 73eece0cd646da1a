"""Isolated Lambda "execution environments": one process each, as many as the concurrency allows.

Each process imports the function's handler module once and keeps its module state (cached
clients, the worker's one DB connection) across invocations, exactly like a warm Lambda. A
process runs one invocation at a time, so `size` is a hard cap on concurrent invocations.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Each function's own timeout, as the stack hands it to the function (infra/config.py, infra/api.py).
FUNCTION_TIMEOUT_VARIABLES = ("RETENTION_TIMEOUT_SECONDS", "WORKER_TIMEOUT_SECONDS", "INGEST_TIMEOUT_SECONDS")
LAMBDA_DEFAULT_TIMEOUT_SECONDS = 3  # what Lambda gives a function that configures no timeout
TERMINATE_SECONDS = 2  # SIGTERM ends a process at once unless it is trapped
SHUTDOWN_SECONDS = 10  # the longest `close` waits for the executor's own reaping once every environment has ended


def function_timeout_seconds(environ: Mapping[str, str]) -> float:
    """The timeout of the function whose environment this is, from its own setting (Lambda's default without one)."""
    for name in FUNCTION_TIMEOUT_VARIABLES:
        if environ.get(name):
            return float(environ[name])
    return LAMBDA_DEFAULT_TIMEOUT_SECONDS


@dataclass
class LocalLambdaContext:
    """The parts of Lambda's context object that Powertools and the handlers read.

    As on Lambda, the time left starts at the function's timeout and counts down from the invocation's start.
    """

    function_name: str
    aws_request_id: str
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = ""
    timeout_seconds: float = LAMBDA_DEFAULT_TIMEOUT_SECONDS
    started_at: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.started_at + self.timeout_seconds - time.monotonic()) * 1000))


FUNCTION_SETTING_PREFIXES = (
    "AWS_",
    "POWERTOOLS_",
    "DATABASE_URL",
    "DB_",
    "LEADS_",
    "ALLOWED_ORIGINS",
    "MAX_BODY",
    "HONEYPOT",
    "METRIC_",
    "INGEST_",
    "CAPTCHA_",
    "WORKER_",
)
_handler: Any = None
_function_name = ""
_all_started: Any = None  # a barrier for `size` parties: warm_up returns once every environment is up


def become_environment(handler_path: str, function_name: str, environment: dict[str, str], log_file: str) -> None:
    """Turn this fresh process into a warm environment of one function."""
    global _handler, _function_name
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the parent stops us
    # Like Lambda: the function sees only its own configuration, not whatever the parent had set.
    for name in [n for n in os.environ if n.startswith(FUNCTION_SETTING_PREFIXES)]:
        del os.environ[name]
    os.environ.update(environment)
    # Like CloudWatch Logs: whatever the function prints goes to its own log.
    stream = open(log_file, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - lives as long as the process
    sys.stdout = sys.stderr = stream
    module_name, attribute = handler_path.rsplit(".", 1)
    _handler = getattr(importlib.import_module(module_name), attribute)
    _function_name = function_name


def become_pool_environment(
    pool_settings: tuple[str, str, dict[str, str], str], started: Any, all_started: Any
) -> None:
    """An environment of a `LambdaPool`: reports its pid to `started`, then meets its siblings in warm_up."""
    global _all_started
    started.put(os.getpid())
    _all_started = all_started
    become_environment(*pool_settings)


def wait_for_every_environment() -> None:
    _all_started.wait(timeout=120)


def invoke_loaded_handler(event: dict[str, Any]) -> dict[str, Any]:
    context = LocalLambdaContext(
        function_name=_function_name,
        aws_request_id=str(uuid.uuid4()),
        timeout_seconds=function_timeout_seconds(os.environ),
    )
    return _handler(event, context)


class LambdaPool:
    """`size` warm environments of one function; `invoke` blocks, `submit` returns a Future."""

    def __init__(self, handler_path: str, function_name: str, size: int, environment: dict[str, str], log_file: Path):
        log_file.parent.mkdir(parents=True, exist_ok=True)
        self.size = size
        context = multiprocessing.get_context("spawn")
        self._started = context.SimpleQueue()  # each environment's pid: the executor has no public list of them
        self._pids: set[int] = set()
        self._executor = ProcessPoolExecutor(
            max_workers=size,
            mp_context=context,
            initializer=become_pool_environment,
            initargs=((handler_path, function_name, environment, str(log_file)), self._started, context.Barrier(size)),
        )

    def warm_up(self) -> None:
        """Start every environment now (cold starts at launch, not on the first lead)."""
        # Each task holds its environment until all have started, so the executor starts `size` of them.
        futures = [self._executor.submit(wait_for_every_environment) for _ in range(self.size)]
        for future in futures:
            future.result(timeout=120)

    def submit(self, event: dict[str, Any]) -> Future:
        return self._executor.submit(invoke_loaded_handler, event)

    def invoke(self, event: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        return self.submit(event).result(timeout=timeout)

    def environments(self) -> list[multiprocessing.process.BaseProcess]:
        """The environment processes still running."""
        while not self._started.empty():
            self._pids.add(self._started.get())
        return [process for process in multiprocessing.active_children() if process.pid in self._pids]

    def close(self, grace_seconds: float = 10.0) -> None:
        """Let running invocations finish for `grace_seconds`, then end the environments."""
        processes = self.environments()
        # The executor's own thread reaps the environments too, and until it is done a child it reaped can still
        # look alive here: shutdown(wait=True) returns once it is done, so it runs beside the grace and the ending.
        shutdown = threading.Thread(
            target=self._executor.shutdown, kwargs={"wait": True, "cancel_futures": True}, daemon=True
        )
        shutdown.start()
        deadline = time.monotonic() + grace_seconds
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():  # stuck, e.g. on a database that does not answer
                process.terminate()
                process.join(TERMINATE_SECONDS)
            if process.is_alive():  # a handler that caught SIGTERM: Lambda would not wait either
                process.kill()
                process.join(TERMINATE_SECONDS)
        shutdown.join(SHUTDOWN_SECONDS)
