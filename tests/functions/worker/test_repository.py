"""The worker against a real PostgreSQL: one transaction per batch, exactly one row per lead."""

from __future__ import annotations

import json
import os
import shutil
import threading
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import psycopg
import pytest

from functions.contract import Lead, LeadEnvelope, Source
from functions.worker import handler as worker
from functions.worker.migrate import apply_migrations, migration_files
from functions.worker.repository import (
    PREPARE_AFTER_RUNS,
    ConnectionProvider,
    DatabaseUnavailable,
    LeadRepository,
    connect,
)
from functions.worker.settings import WorkerSettings
from leadpipe.embedded_postgres import start_embedded_postgres
from tests.conftest import REPO_ROOT, LeadsDatabase
from tests.events import emitted_metrics, sqs_event

pytestmark = pytest.mark.usefixtures("both_store_paths")  # every test on both store paths


def make_envelope(email: str, **lead_fields: Any) -> LeadEnvelope:
    return LeadEnvelope(
        lead_id=uuid4(),
        received_at=datetime.now(UTC) - timedelta(minutes=2),
        source=Source(user_agent="pytest", origin="https://www.example.com"),
        lead=Lead(email=email, **lead_fields),
    )


@pytest.fixture
def worker_env(leads_db: LeadsDatabase, monkeypatch: pytest.MonkeyPatch) -> LeadsDatabase:
    monkeypatch.setenv("DATABASE_URL", leads_db.uri)
    monkeypatch.setenv("LEADS_TABLE", leads_db.leads_table)
    return leads_db


def test_batch_is_stored_with_every_field(worker_env: LeadsDatabase, lambda_context: Any) -> None:
    # Given a batch with a fully filled lead and a minimal one
    full = make_envelope(
        "full@example.com",
        first_name="Ada",
        last_name="Lovelace",
        phone="+44 20 7946 0000",
        company="Analytical Engines",
        job_title="Engineer",
        country="GB",
        campaign="SUMMERSALE20",
        landing_page="https://www.example.com/summer",
        utm_source="newsletter",
        utm_medium="email",
        utm_campaign="summer",
        utm_term="engines",
        utm_content="hero",
        consent=True,
        custom={"size": "XL"},
    )
    minimal = make_envelope("min@example.com")
    # When the worker handles it
    response = worker.lambda_handler(sqs_event([full.to_message_body(), minimal.to_message_body()]), lambda_context)
    # Then both rows exist, with every field as sent
    assert response == {"batchItemFailures": []}
    rows = {row["email"]: row for row in worker_env.rows()}
    stored = rows["full@example.com"]
    assert stored["lead_id"] == full.lead_id
    assert {k: stored[k] for k in ("first_name", "phone", "country", "campaign", "consent", "custom")} == {
        "first_name": "Ada",
        "phone": "+44 20 7946 0000",
        "country": "GB",
        "campaign": "SUMMERSALE20",
        "consent": True,
        "custom": {"size": "XL"},
    }
    assert stored["source"] == {"user_agent": "pytest", "origin": "https://www.example.com", "referer": None}
    assert stored["received_at"] == full.received_at
    assert stored["stored_at"] >= stored["received_at"]
    assert rows["min@example.com"]["consent"] is False


def test_redelivered_batch_creates_no_duplicates(worker_env: LeadsDatabase, lambda_context: Any, capsys) -> None:
    # Given a batch that was stored once
    bodies = [make_envelope(f"user{i}@example.com").to_message_body() for i in range(5)]
    worker.lambda_handler(sqs_event(bodies), lambda_context)
    # When SQS delivers it again (and one message twice within the same batch)
    response = worker.lambda_handler(sqs_event(bodies + bodies[:1], receive_count=2), lambda_context)
    # Then it succeeds as a no-op: still one row per lead
    assert response == {"batchItemFailures": []}
    assert worker_env.count_rows() == 5
    summaries = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"batch done"' in line]
    assert [(s["inserted"], s["duplicates"]) for s in summaries] == [(5, 0), (0, 6)]


def test_poison_record_fails_alone(worker_env: LeadsDatabase, lambda_context: Any) -> None:
    good = [make_envelope(f"good{i}@example.com").to_message_body() for i in range(3)]
    response = worker.lambda_handler(sqs_event([good[0], '{"v": 7}', good[1], "garbage", good[2]]), lambda_context)
    assert response == {"batchItemFailures": [{"itemIdentifier": "msg-1"}, {"itemIdentifier": "msg-3"}]}
    assert [row["email"] for row in worker_env.rows()] == [
        "good0@example.com",
        "good1@example.com",
        "good2@example.com",
    ]


def test_database_down_fails_all_then_recovers(lambda_context: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a worker whose connection to its own PostgreSQL server is already open
    data_dir = REPO_ROOT / ".leadpipe" / "pytest" / f"down-{os.getpid()}-{uuid4().hex[:8]}"
    server = start_embedded_postgres(data_dir)
    try:
        with psycopg.connect(server.uri, autocommit=True) as connection:
            apply_migrations(connection, "leadpipe.leads")
        monkeypatch.setenv("DATABASE_URL", server.uri)
        first = make_envelope("first@example.com").to_message_body()
        assert worker.lambda_handler(sqs_event([first]), lambda_context) == {"batchItemFailures": []}
        # When the server really stops: its session ends and new connections are refused
        server.stop()
        batch = [make_envelope(f"retry{i}@example.com").to_message_body() for i in range(3)]
        down = worker.lambda_handler(sqs_event(batch), lambda_context)
        # Then every record of the batch is reported failed
        assert down == {"batchItemFailures": [{"itemIdentifier": f"msg-{i}"} for i in range(3)]}
        # When the server is back, the same execution environment reconnects and stores them
        server = start_embedded_postgres(data_dir)
        assert worker.lambda_handler(sqs_event(batch, receive_count=2), lambda_context) == {"batchItemFailures": []}
        with psycopg.connect(server.uri, autocommit=True) as connection:
            assert connection.execute("SELECT count(*) FROM leadpipe.leads").fetchone() == (4,)
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def repository_counting_connections(leads_db: LeadsDatabase) -> tuple[LeadRepository, list[psycopg.Connection]]:
    """A repository, and the list of every connection it has opened."""
    opened: list[psycopg.Connection] = []

    def tracked() -> psycopg.Connection:
        opened.append(connect(leads_db.uri))
        return opened[-1]

    return LeadRepository(ConnectionProvider(tracked), leads_db.leads_table), opened


def test_a_refused_row_is_isolated_and_the_connection_kept(leads_db: LeadsDatabase) -> None:
    # Given a batch whose second row violates a table constraint
    repository, opened = repository_counting_connections(leads_db)
    with leads_db.connect() as admin:
        admin.execute(f"ALTER TABLE {leads_db.leads_table} ADD CONSTRAINT no_acme CHECK (company <> 'ACME')")
    good, bad = make_envelope("ok@example.com"), make_envelope("bad@example.com", company="ACME")
    # When it is stored
    outcome = repository.store_batch([good, bad])
    # Then the good row is stored, the bad one reported by lead id, on the same connection
    assert (outcome.inserted, outcome.duplicates) == (1, 0)
    assert outcome.rejected == {str(bad.lead_id): "CheckViolation"}
    assert [r["email"] for r in leads_db.rows()] == ["ok@example.com"]
    assert len(opened) == 1


def test_a_lost_connection_is_retried_once_on_a_fresh_one(leads_db: LeadsDatabase) -> None:
    repository, opened = repository_counting_connections(leads_db)
    repository.store_batch([make_envelope("first@example.com")])
    # When the server ends our session between batches
    with leads_db.connect() as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (opened[0].info.backend_pid,))
    outcome = repository.store_batch([make_envelope("after@example.com")])
    # Then the batch is stored on a second, fresh connection at once
    assert (outcome.inserted, len(opened)) == (1, 2)
    assert leads_db.count_rows() == 2


def test_a_fresh_connection_that_fails_is_not_retried_and_stores_nothing(leads_db: LeadsDatabase) -> None:
    # Given a repository whose every new connection is refused
    attempts: list[int] = []

    def refused() -> psycopg.Connection:
        attempts.append(1)
        return connect("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")

    repository = LeadRepository(ConnectionProvider(refused), leads_db.leads_table)
    # When a batch is stored, Then it fails as "unavailable" after one attempt (nothing to retry on)
    with pytest.raises(DatabaseUnavailable):
        repository.store_batch([make_envelope("lost@example.com")])
    assert len(attempts) == 1 and leads_db.count_rows() == 0


def test_two_workers_inserting_the_same_lead_at_once_store_one_row(leads_db: LeadsDatabase) -> None:
    # Given two workers (two connections), each about to store the same delivery of the same leads
    envelopes = [make_envelope(f"twice{i}@example.com") for i in range(20)]
    repositories = [repository_counting_connections(leads_db)[0] for _ in range(2)]
    outcomes: list[Any] = [None, None]
    start = threading.Barrier(2)

    def store(index: int) -> None:
        start.wait(10)
        outcomes[index] = repositories[index].store_batch(envelopes)

    # When both run at the same moment
    threads = [threading.Thread(target=store, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    # Then both batches succeed, every lead is one row, and each row was inserted by exactly one of them
    assert all(outcome is not None and outcome.rejected == {} for outcome in outcomes)
    assert leads_db.count_rows() == 20
    assert sorted((o.inserted + o.duplicates) for o in outcomes) == [20, 20]
    assert outcomes[0].inserted + outcomes[1].inserted == 20


class CountingCursor(psycopg.Cursor):
    """Counts every statement the repository sends, however it sends it."""

    sent: list[str] = []

    def execute(self, query, params=None, **kwargs):  # type: ignore[override]
        CountingCursor.sent.append(query.as_string(self) if hasattr(query, "as_string") else str(query))
        return super().execute(query, params, **kwargs)

    def copy(self, statement, params=None, **kwargs):  # type: ignore[override]
        CountingCursor.sent.append(statement.as_string(self) if hasattr(statement, "as_string") else str(statement))
        return super().copy(statement, params, **kwargs)

    def executemany(self, query, params_seq, **kwargs):  # type: ignore[override]
        CountingCursor.sent.extend(str(query) for _ in params_seq)
        return super().executemany(query, params_seq, **kwargs)


def test_store_is_one_transaction_per_batch(leads_db: LeadsDatabase, both_store_paths: bool) -> None:
    # Given a repository whose connection counts the statements it is given
    CountingCursor.sent = []

    def counting_connection() -> psycopg.Connection:
        return psycopg.connect(leads_db.uri, autocommit=True, prepare_threshold=None, cursor_factory=CountingCursor)

    repository = LeadRepository(ConnectionProvider(counting_connection), leads_db.leads_table)
    # When a batch of 100 is stored
    outcome = repository.store_batch([make_envelope(f"bulk{i}@example.com") for i in range(100)])
    # Then all 100 rows landed in one transaction: by one COPY (and one look at the tombstones) on a direct
    # connection, or through exactly one set-based INSERT
    assert outcome.inserted == 100 and leads_db.count_rows() == 100
    if both_store_paths:
        assert [sent.split(" ")[0] for sent in CountingCursor.sent] == ["COPY", "SELECT"]
    else:
        assert len(CountingCursor.sent) == 1
        assert "json_to_recordset" in CountingCursor.sent[0] and "ON CONFLICT" in CountingCursor.sent[0]


@pytest.mark.parametrize(
    ("prepare_statements", "prepared"), [(True, 1), (False, 0)], ids=["direct", "through-rds-proxy"]
)
def test_the_batch_insert_is_prepared_unless_through_a_proxy(
    leads_db: LeadsDatabase, prepare_statements: bool, prepared: int, both_store_paths: bool
) -> None:
    # Given the worker's connection, direct to PostgreSQL or (no prepared statements) via RDS Proxy
    connections = ConnectionProvider(lambda: connect(leads_db.uri, prepare_statements=prepare_statements))
    repository = LeadRepository(connections, leads_db.leads_table)
    # When it stores more batches than psycopg waits before preparing a query
    for index in range(PREPARE_AFTER_RUNS + 1):
        repository.store_batch([make_envelope(f"prepared{index}@example.com")])
    # Then the statement each batch runs (the INSERT; on the COPY-first path its look at the tombstones: COPY
    # itself is never prepared) is planned once and kept in that session, or never prepared at all
    statements = connections.get().execute("SELECT statement FROM pg_prepared_statements").fetchall()
    if both_store_paths:
        per_batch = [s for (s,) in statements if s.startswith("SELECT coalesce((SELECT max(erased_at)")]
    else:
        per_batch = [s for (s,) in statements if s.startswith("INSERT INTO") and "json_to_recordset($1::json)" in s]
    assert len(per_batch) == prepared
    assert leads_db.count_rows() == PREPARE_AFTER_RUNS + 1


def test_the_worker_prepares_statements_unless_its_settings_name_an_rds_proxy() -> None:
    direct = WorkerSettings.from_env({"DB_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db"})
    proxied = WorkerSettings.from_env(
        {**direct.model_dump(by_alias=True, exclude_none=True), "DB_PROXY_ENDPOINT": "proxy.example"}
    )
    assert direct.prepares_statements and not proxied.prepares_statements


def test_migrations_are_idempotent_and_recorded(leads_db: LeadsDatabase) -> None:
    # Given a table already migrated by the fixture
    with leads_db.connect() as connection:
        # When the migrations run again
        applied_again = apply_migrations(connection, leads_db.leads_table)
        schema = leads_db.leads_table.split(".")[0]
        recorded = [r[0] for r in connection.execute(f"SELECT version FROM {schema}.schema_migrations ORDER BY 1")]
        indexes = {
            r[0]
            for r in connection.execute(
                "SELECT indexname FROM pg_indexes WHERE schemaname = %s AND tablename = 'leads'", (schema,)
            )
        }
    # Then nothing is applied twice, every file is recorded once, and the indexes exist
    assert applied_again == []
    assert recorded == [version for version, _ in migration_files()]
    assert indexes == {
        "leads_pkey",
        "leads_campaign_received_at_idx",
        "leads_email_idx",
        "leads_received_at_idx",
        "leads_consent_text_idx",
    }


def test_migrations_honour_a_custom_table_name(postgres_uri: str) -> None:
    table = f"m_{uuid4().hex[:8]}.campaign_leads"
    with psycopg.connect(postgres_uri, autocommit=True) as connection:
        assert apply_migrations(connection, table) == [v for v, _ in migration_files()]
        assert connection.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)
        connection.execute(f"DROP SCHEMA {table.split('.')[0]} CASCADE")


def test_a_row_the_database_refuses_fails_alone_and_the_rest_commit(
    worker_env: LeadsDatabase, lambda_context: Any
) -> None:
    # Given a table rule the contract does not know about (a DB owner's CHECK constraint)
    with worker_env.connect() as admin:
        admin.execute(
            f"ALTER TABLE {worker_env.leads_table} ADD CONSTRAINT no_test_campaign CHECK (campaign <> 'BLOCKED')"
        )
    bodies = [
        make_envelope("ok1@example.com").to_message_body(),
        make_envelope("refused@example.com", campaign="BLOCKED").to_message_body(),
        make_envelope("ok2@example.com").to_message_body(),
    ]
    # When a batch holds one row the database refuses
    response = worker.lambda_handler(sqs_event(bodies), lambda_context)
    # Then only that record is reported (it will reach the DLQ), and its batch-mates are stored
    assert response == {"batchItemFailures": [{"itemIdentifier": "msg-1"}]}
    assert [r["email"] for r in worker_env.rows()] == ["ok1@example.com", "ok2@example.com"]
    # And redelivering the whole batch stays exact: duplicates skipped, the refused one refused again
    assert worker.lambda_handler(sqs_event(bodies, receive_count=2), lambda_context) == response
    assert worker_env.count_rows() == 2


def test_an_outage_mid_row_by_row_counts_the_rows_already_committed(
    worker_env: LeadsDatabase, lambda_context: Any, capsys: pytest.CaptureFixture
) -> None:
    # Given a row the database refuses (so the batch is stored row by row), and a later row whose insert
    # ends the server session, as a failover or a restart does in the middle of the fallback
    table = worker_env.leads_table
    schema = table.split(".")[0]
    with worker_env.connect() as admin:
        admin.execute(f"ALTER TABLE {table} ADD CONSTRAINT no_blocked CHECK (campaign <> 'BLOCKED')")
        # A statement-level trigger, so only the fallback's one-row insert of that lead ends the session:
        # the set-based attempt must fail on the refused row whatever order its plan visits the rows in.
        admin.execute(
            f"CREATE FUNCTION {schema}.go_away() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN IF (SELECT count(*) FROM new_rows) = 1 AND EXISTS "
            "(SELECT 1 FROM new_rows WHERE campaign = 'OUTAGE') THEN "
            "PERFORM pg_terminate_backend(pg_backend_pid()); END IF; RETURN NULL; END $$"
        )
        admin.execute(
            f"CREATE TRIGGER go_away AFTER INSERT ON {table} REFERENCING NEW TABLE AS new_rows "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {schema}.go_away()"
        )
    bodies = [
        make_envelope("ok1@example.com").to_message_body(),
        make_envelope("refused@example.com", campaign="BLOCKED").to_message_body(),
        make_envelope("ok2@example.com").to_message_body(),
        make_envelope("outage@example.com", campaign="OUTAGE").to_message_body(),
        make_envelope("later@example.com").to_message_body(),
    ]
    # When the worker stores the batch
    response = worker.lambda_handler(sqs_event(bodies), lambda_context)
    # Then the two committed rows count as stored and are not sent back; the refused row, the one the
    # outage hit and the one after it are retried, and the outage is counted as one
    assert response == {"batchItemFailures": [{"itemIdentifier": f"msg-{i}"} for i in (1, 3, 4)]}
    assert [r["email"] for r in worker_env.rows()] == ["ok1@example.com", "ok2@example.com"]
    metrics = emitted_metrics(capsys.readouterr().out)
    assert (metrics["LeadsStored"], metrics["DatabaseUnavailable"]) == (2.0, 1.0)


HOSTILE_TEXT = [
    "Robert'); DROP TABLE leads; --",
    "1' OR '1'='1",
    "$$; SELECT pg_sleep(10); $$",
    "Ünïcødé ✓ 名前 👩‍💻",
    "\u202eevil\u202c right-to-left",
    'back\\slash "quotes" and %s %(name)s {placeholders}',
]


def test_hostile_strings_are_stored_byte_for_byte(worker_env: LeadsDatabase, lambda_context: Any) -> None:
    envelopes = [
        make_envelope(f"hostile{i}@example.com", first_name=text[:100], company=text, custom={"note": text})
        for i, text in enumerate(HOSTILE_TEXT)
    ]
    response = worker.lambda_handler(sqs_event([e.to_message_body() for e in envelopes]), lambda_context)
    assert response == {"batchItemFailures": []}
    stored = {r["email"]: r for r in worker_env.rows()}
    for i, text in enumerate(HOSTILE_TEXT):
        row = stored[f"hostile{i}@example.com"]
        assert (row["first_name"], row["company"], row["custom"]) == (text[:100], text, {"note": text})
    assert worker_env.count_rows() == len(HOSTILE_TEXT)  # and the table is still there


def test_worker_killed_before_commit_then_redelivered_stores_each_lead_once(
    worker_env: LeadsDatabase, lambda_context: Any
) -> None:
    import threading

    batch = [make_envelope(f"killed{i}@example.com").to_message_body() for i in range(5)]
    with worker_env.connect() as admin:
        # Given the worker mid-transaction: its INSERT waits behind a lock we hold
        blocker = psycopg.connect(worker_env.uri)
        blocker.execute(f"LOCK TABLE {worker_env.leads_table} IN SHARE MODE")
        responses: list[dict] = []
        invocation = threading.Thread(
            target=lambda: responses.append(worker.lambda_handler(sqs_event(batch), lambda_context))
        )
        invocation.start()
        pid = None
        for _ in range(100):
            row = admin.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = 'leadpipe-worker' AND wait_event_type = "
                "'Lock'"
            ).fetchone()
            if row:
                pid = row[0]
                break
            threading.Event().wait(0.05)
        assert pid is not None, "the worker never reached its INSERT"
        # When its session is killed before the commit (as when Lambda ends a timed-out invocation)
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        invocation.join(30)
        blocker.rollback()
        blocker.close()
    # Then the whole batch is reported failed and nothing of it was committed
    assert responses == [{"batchItemFailures": [{"itemIdentifier": f"msg-{i}"} for i in range(5)]}]
    assert worker_env.count_rows() == 0
    # And when SQS delivers it again (twice, as at-least-once allows), each lead is stored once
    for receive_count in (2, 3):
        assert worker.lambda_handler(sqs_event(batch, receive_count=receive_count), lambda_context) == {
            "batchItemFailures": []
        }
    assert worker_env.count_rows() == 5
