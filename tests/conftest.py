"""Fixtures shared by every test layer."""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from hypothesis import settings as hypothesis_settings
from hypothesis.database import DirectoryBasedExampleDatabase

from functions.worker.migrate import apply_migrations
from leadpipe.embedded_postgres import start_embedded_postgres

REPO_ROOT = Path(__file__).resolve().parent.parent
TEST_REGION = "eu-west-1"
END_TO_END_TESTS = REPO_ROOT / "tests" / "e2e"

# Hypothesis profiles: "ci" (the default, make test) tries the same few inputs every run;
# "fuzz" (make fuzz) draws fresh ones and keeps every failure it finds under .leadpipe/.
HYPOTHESIS_PROFILE_VARIABLE = "LEADPIPE_HYPOTHESIS_PROFILE"
CI_EXAMPLES = 150
FUZZ_EXAMPLES = 10_000
hypothesis_settings.register_profile("ci", max_examples=CI_EXAMPLES, derandomize=True, database=None, deadline=None)
hypothesis_settings.register_profile(
    "fuzz",
    max_examples=FUZZ_EXAMPLES,
    derandomize=False,
    database=DirectoryBasedExampleDatabase(str(REPO_ROOT / ".leadpipe" / "hypothesis")),
    deadline=None,
)
HYPOTHESIS_PROFILE = os.environ.get(HYPOTHESIS_PROFILE_VARIABLE, "ci")
hypothesis_settings.load_profile(HYPOTHESIS_PROFILE)


@pytest.fixture(autouse=True)
def aws_test_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fake credentials and a fixed region: no test may ever reach a real AWS account."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS", "DATABASE_URL", "DB_SECRET_ARN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", TEST_REGION)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_DEV", "false")
    yield


class _CurrentStdout:
    """Writes to whatever `sys.stdout` is now, so capsys sees the functions' JSON logs."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


@pytest.fixture(autouse=True)
def fresh_execution_environment() -> Iterator[None]:
    """Each test starts like a cold Lambda: no cached clients, settings or metrics."""
    from functions.ingest import handler as ingest_handler
    from functions.worker import handler as worker_handler

    for module in (ingest_handler, worker_handler):
        # The log handler keeps the stdout it saw at import; make it follow capsys instead.
        module.logger.registered_handler.setStream(_CurrentStdout())
        module.reset_for_tests()
        module.metrics.clear_metrics()
        module.metrics.clear_default_dimensions()
    yield


@dataclass
class FakeLambdaContext:
    function_name: str = "leadpipe-test"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:leadpipe-test"
    aws_request_id: str = "11111111-2222-3333-4444-555555555555"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


@pytest.fixture(scope="session")
def postgres_uri() -> Iterator[str]:
    """A real PostgreSQL for the whole session: `DATABASE_URL` if set, else an embedded one."""
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    data_dir = REPO_ROOT / ".leadpipe" / "pytest" / f"pg-{os.getpid()}"
    shutil.rmtree(data_dir, ignore_errors=True)
    server = start_embedded_postgres(data_dir)
    try:
        yield server.uri
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@dataclass(frozen=True)
class LeadsDatabase:
    """A migrated leads table of the test's own, in a schema nobody else uses."""

    uri: str
    leads_table: str

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(self.uri, autocommit=True)

    def count_rows(self) -> int:
        with self.connect() as connection:
            return connection.execute(f"SELECT count(*) FROM {self.leads_table}").fetchone()[0]

    def rows(self) -> list[dict]:
        with self.connect() as connection, connection.cursor(row_factory=psycopg.rows.dict_row) as cursor:
            return cursor.execute(f"SELECT * FROM {self.leads_table} ORDER BY email").fetchall()


@pytest.fixture
def leads_db(postgres_uri: str) -> Iterator[LeadsDatabase]:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    database = LeadsDatabase(uri=postgres_uri, leads_table=f"{schema}.leads")
    with database.connect() as connection:
        apply_migrations(connection, database.leads_table)
    yield database
    with database.connect() as connection:
        connection.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=[True, False], ids=["copy-first", "insert-only"])
def both_store_paths(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Runs a test with each of the worker's two store paths as LeadRepository's default: COPY first (a direct
    connection) and the one-statement INSERT (through RDS Proxy). Use: pytestmark = usefixtures("both_store_paths")."""
    from functions.worker.repository import LeadRepository

    monkeypatch.setitem(LeadRepository.__init__.__kwdefaults__, "copy_first", request.param)
    return request.param


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """End-to-end tests last: the session's browser keeps Playwright's event loop running in the main
    thread, where the local gateway's tests need asyncio.run (and their signal-based timeouts) to work."""
    items.sort(key=lambda item: item.path.is_relative_to(END_TO_END_TESTS))
