"""The worker's functions give up on a silent AWS API within seconds, in one attempt, instead of botocore's minutes.

botocore waits 60 s to connect and 60 s to read by default, and retries (legacy mode: 5 attempts):
https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html
https://botocore.amazonaws.com/v1/documentation/api/latest/reference/config.html
A service's endpoint can be pointed elsewhere with AWS_ENDPOINT_URL_<SERVICE>:
https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.exceptions import ReadTimeoutError

from functions.worker import aws_clients, probe_handler
from functions.worker.aws_clients import ATTEMPTS, CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS
from functions.worker.credentials import database_conninfo
from functions.worker.settings import WorkerSettings
from tests.infra.aws_call_inventory import inventory

HANDLERS = (
    "functions.ingest.handler",
    "functions.worker.handler",
    "functions.worker.migrate_handler",
    "functions.worker.probe_handler",
)
BOUNDED_FACTORIES = {"bounded_client", "secrets_provider"}  # functions/worker/aws_clients.py


class SilentEndpoint:
    """A TCP server on 127.0.0.1 that accepts every connection and never answers: an API that hangs."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        self.connections: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._server.accept()
            except OSError:
                return
            self.connections.append(connection)

    def close(self) -> None:
        self._server.close()
        for connection in self.connections:
            connection.close()


@pytest.fixture
def silent_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[SilentEndpoint]:
    endpoint = SilentEndpoint()
    for variable in ("AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_ENDPOINT_URL_SSM", "AWS_ENDPOINT_URL_LAMBDA"):
        monkeypatch.setenv(variable, endpoint.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    probe_handler.reset_for_tests()
    yield endpoint
    endpoint.close()
    probe_handler.reset_for_tests()


def test_every_client_the_functions_build_is_bounded() -> None:
    # Given every place the functions' code builds an AWS client or a helper that holds one
    calls = {call for handler in HANDLERS for call in inventory(handler).client_calls}
    assert calls
    for call in calls:
        # Then it passes a botocore config (boto3.client) or a boto config (Powertools' provider), or it is one of
        # the bounded factories; never Powertools' module-level get_secret, whose client has botocore's defaults
        where = f"{call.module}:{call.line} {call.factory}"
        assert call.factory != "get_secret", where
        if call.factory == "client":
            assert "config" in call.keywords, where
        elif call.factory == "SecretsProvider":
            assert "boto_config" in call.keywords, where
        else:
            assert call.factory in BOUNDED_FACTORIES, where


def test_the_bounded_config_has_timeouts_and_one_attempt() -> None:
    config = aws_clients.bounded_config()
    assert (config.connect_timeout, config.read_timeout) == (CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS)
    assert config.retries == {"mode": "standard", "total_max_attempts": ATTEMPTS} and ATTEMPTS == 1


@pytest.mark.timeout(30)
def test_a_silent_secrets_manager_fails_the_secret_read_after_one_attempt(silent_endpoint: SilentEndpoint) -> None:
    # Given a worker whose Secrets Manager accepts the connection and never answers
    settings = WorkerSettings.from_env(
        {"DB_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf"}
    )
    # When it builds its connection string
    with pytest.raises(GetParameterError) as failed:
        database_conninfo(settings)
    # Then the read fails with a read timeout, not a hang, after a single attempt (the caller's retry follows)
    assert "Read timeout on endpoint URL" in str(failed.value)  # Powertools keeps botocore's message
    assert len(silent_endpoint.connections) == ATTEMPTS


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("client_index", "call"),
    [
        (1, lambda ssm: ssm.get_parameter(Name="/leadpipe/pause")),
        (0, lambda lam: lam.get_event_source_mapping(UUID="a1b2c3d4-0000-0000-0000-000000000000")),
    ],
    ids=["ssm", "lambda"],
)
def test_a_silent_ssm_or_lambda_api_fails_the_probes_call_after_one_attempt(
    silent_endpoint: SilentEndpoint, client_index: int, call: object
) -> None:
    # Given the probe's own clients, and an API that never answers
    client = probe_handler.get_clients()[client_index]
    # When the probe calls it  Then the call ends with a timeout after one attempt: the probe still decides in time
    with pytest.raises(ReadTimeoutError):
        call(client)
    assert len(silent_endpoint.connections) == ATTEMPTS
