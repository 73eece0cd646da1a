"""The only code in the worker that touches PostgreSQL (psycopg 3)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import psycopg
import pydantic_core
from psycopg import sql

from functions.contract import LeadEnvelope
from functions.contract.lead import CLICK_ID_FIELDS
from functions.worker.round_trip_deadline import (
    RoundTripDeadline,
    invocation_round_trip_seconds,
    time_for_another_round_trip,
)

WORKER_APPLICATION_NAME = "leadpipe-worker"
SERVER_KEEPALIVE_IDLE_SECONDS = 30
PREPARE_AFTER_RUNS = 5  # psycopg's own default

# The stored columns, with the SQL type each is read as from the batch's JSON rows.
LEAD_COLUMNS: tuple[tuple[str, str], ...] = (
    ("lead_id", "uuid"),
    ("email", "text"),
    ("first_name", "text"),
    ("last_name", "text"),
    ("phone", "text"),
    ("company", "text"),
    ("job_title", "text"),
    ("country", "text"),
    ("campaign", "text"),
    ("landing_page", "text"),
    ("utm_source", "text"),
    ("utm_medium", "text"),
    ("utm_campaign", "text"),
    ("utm_term", "text"),
    ("utm_content", "text"),
    ("consent", "boolean"),
    ("custom", "jsonb"),
    ("source", "jsonb"),
    ("envelope_version", "smallint"),
    ("received_at", "timestamptz"),
    *((name, "text") for name in CLICK_ID_FIELDS),
    ("referrer", "text"),
    ("first_touch", "jsonb"),
    ("last_touch", "jsonb"),
    ("consent_text_id", "text"),
    ("consent_text_version", "text"),
    ("consent_text_sha256", "text"),
    ("consent_purposes", "jsonb"),
    ("consent_at", "timestamptz"),
    ("consent_page", "text"),
)


# The database refused a row's data (a constraint, a value out of range): only that row is bad.
ROW_REJECTIONS = (psycopg.errors.IntegrityError, psycopg.errors.DataError)

# Server errors that mean "the database is not there for us": shutting down, crashed, still starting,
# out of connection slots. Class 08 (connection exception) is matched by its class prefix.
UNAVAILABLE_ERRORS = (
    psycopg.errors.AdminShutdown,  # 57P01, also what pg_terminate_backend sends
    psycopg.errors.CrashShutdown,  # 57P02
    psycopg.errors.CannotConnectNow,  # 57P03, starting up or in recovery
    psycopg.errors.TooManyConnections,  # 53300, no slot left for another writer
)
CONNECTION_EXCEPTION_CLASS = "08"
# The database answers but takes no write whatever the rows (read-only after a failover, out of disk or memory,
# lock or statement timeout): an outage for the drain, but no retry at once, which would only double the wait.
WRITES_REFUSED_SQLSTATES = frozenset({"25006", "55P03", "57014"})
INSUFFICIENT_RESOURCES_CLASS = "53"


def writes_refused(error: BaseException) -> bool:
    """True when the database answered but refuses every write for now (see WRITES_REFUSED_SQLSTATES)."""
    sqlstate = getattr(error, "sqlstate", None) or ""
    return sqlstate in WRITES_REFUSED_SQLSTATES or sqlstate.startswith(INSUFFICIENT_RESOURCES_CLASS)


class DatabaseUnavailable(Exception):
    """The batch could not be stored because the database could not be reached (nothing was stored)."""


class DatabaseNotAnswering(DatabaseUnavailable):
    """No answer before the client-side deadline; what reached the server may still commit, so a retry
    relies on `ON CONFLICT (lead_id) DO NOTHING`."""


def is_database_unavailable(error: BaseException) -> bool:
    """True for a refused, lost or timed-out connection and a server shutting down; never by message text.

    libpq's own connection failures carry no SQLSTATE, so a bare `OperationalError` counts.
    """
    if isinstance(error, UNAVAILABLE_ERRORS):
        return True
    if not isinstance(error, psycopg.OperationalError):
        return False
    return error.sqlstate is None or error.sqlstate.startswith(CONNECTION_EXCEPTION_CLASS)


@dataclass(frozen=True)
class StoreOutcome:
    """What one batch did to the table; `not_tried` ran out of time and is retried, nothing is known wrong with it."""

    inserted: int
    duplicates: int
    rejected: dict[str, str] = field(default_factory=dict)
    not_tried: tuple[str, ...] = ()
    interrupted_by: Exception | None = None  # row by row, this error stopped the rows in `not_tried`


def leads_table_identifier(leads_table: str) -> sql.Identifier:
    """`schema.table` (as the settings give it) as a quoted SQL identifier."""
    schema, table = leads_table.split(".", 1)
    return sql.Identifier(schema, table)


def erasures_table_identifier(leads_table: str) -> sql.Identifier:
    """The tombstones of erased people (migration 0002)."""
    schema, table = leads_table.split(".", 1)
    return sql.Identifier(schema, f"{table}_erasures")


def erasure_salt_table_identifier(leads_table: str) -> sql.Identifier:
    """The one-row salt of the tombstones' hashes (migration 0002)."""
    schema, table = leads_table.split(".", 1)
    return sql.Identifier(schema, f"{table}_erasure_salt")


def heartbeat_table_identifier(leads_table: str) -> sql.Identifier:
    """The one-row table the drain breaker's probe commits to (migration 0003)."""
    schema, table = leads_table.split(".", 1)
    return sql.Identifier(schema, f"{table}_heartbeat")


@dataclass(frozen=True)
class SessionTimeouts:
    """Server-side limits of the worker's session, so a stuck statement ends before the function does."""

    statement_timeout_seconds: int
    lock_timeout_seconds: int
    # An open transaction whose client vanished (a Lambda ended mid-batch) is ended by the server.
    idle_in_transaction_timeout_seconds: int

    def startup_options(self) -> str:
        """libpq `options` for a direct connection: set at session start, no extra round trip.

        Server-side keepalives end a torn-down Lambda's session in about a minute, not hours.
        """
        settings = [
            *self._statement_settings(),
            ("idle_in_transaction_session_timeout", self.idle_in_transaction_timeout_seconds * 1000),
        ]
        # The prepared batch INSERT keeps its one generic plan: a custom plan per batch would also parse the
        # batch's JSON once more while planning (docs/performance.md).
        settings += [("plan_cache_mode", "force_generic_plan")]
        settings += [
            ("tcp_keepalives_idle", SERVER_KEEPALIVE_IDLE_SECONDS),
            ("tcp_keepalives_interval", 10),
            ("tcp_keepalives_count", 3),
        ]
        return " ".join(f"-c {name}={value}" for name, value in settings)

    def set_local_statements(self) -> list[str]:
        """Statements setting the limits for the current transaction only (through RDS Proxy)."""
        return [f"SET LOCAL {name} = {value}" for name, value in self._statement_settings()]

    def _statement_settings(self) -> list[tuple[str, int]]:
        return [
            ("statement_timeout", self.statement_timeout_seconds * 1000),
            ("lock_timeout", self.lock_timeout_seconds * 1000),
        ]


def connect(conninfo: str, *, prepare_statements: bool = True) -> psycopg.Connection:
    """One connection as the worker uses it.

    Autocommit: a one-statement batch is one round trip, not three (BEGIN, INSERT, COMMIT).
    Prepared statements plan the batch INSERT once per connection (docs/performance.md); off through
    RDS Proxy, where they pin the session to one database connection
    (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-proxy-pinning.html#rds-proxy-pinning.postgres).
    """
    # application_name: DB owners (and `leadpipe spike`) can see the worker's connections.
    return psycopg.connect(
        conninfo,
        autocommit=True,
        prepare_threshold=PREPARE_AFTER_RUNS if prepare_statements else None,
        application_name=WORKER_APPLICATION_NAME,
    )


class ConnectionProvider:
    """Holds the execution environment's one connection; reopens it after it went bad."""

    def __init__(self, open_connection: Callable[[], psycopg.Connection]) -> None:
        self._open = open_connection
        self._connection: psycopg.Connection | None = None

    def get(self) -> psycopg.Connection:
        if not self.holds_open_connection():
            self._connection = self._open()
        return self._connection

    def holds_open_connection(self) -> bool:
        """Whether `get` would hand back a connection opened earlier (that may since have died)."""
        return self._connection is not None and not self._connection.closed and not self._connection.broken

    def discard(self) -> None:
        """Close the connection; the next `get` opens a fresh one."""
        if self._connection is not None:
            self._connection.close()
        self._connection = None


class LeadRepository:
    """Stores envelopes in the leads table, idempotently by `lead_id`."""

    def __init__(
        self,
        connections: ConnectionProvider,
        leads_table: str,
        *,
        transaction_timeouts: SessionTimeouts | None = None,
        fallback_round_trip_seconds: float | None = None,
        copy_first: bool = True,
    ) -> None:
        """`transaction_timeouts` and no `copy_first` through RDS Proxy, where a session-wide SET would pin.
        `fallback_round_trip_seconds`: a round trip's deadline when `store_batch` gets no `time_left`."""
        self._connections = connections
        self._leads_table = leads_table
        self._transaction_timeouts = transaction_timeouts
        self._fallback_round_trip = fallback_round_trip_seconds
        self._copy_first = copy_first and transaction_timeouts is None
        columns = sql.SQL(", ").join(sql.Identifier(name) for name, _ in LEAD_COLUMNS)
        definitions = sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(kind)) for name, kind in LEAD_COLUMNS
        )
        # One statement, the rows as one JSON parameter, rendered once (docs/performance.md). It skips a lead
        # erased after it was received; a lead newer than the newest tombstone skips the hashed look-up.
        self._insert = (
            sql.SQL(
                "INSERT INTO {table} ({columns}) SELECT {columns} FROM json_to_recordset(%s::json) AS "
                "batch({definitions})"
                " WHERE batch.received_at > coalesce((SELECT max(erased_at) FROM {erasures}), '-infinity')"
                " OR NOT EXISTS (SELECT 1 FROM {erasures} AS erased WHERE erased.email_sha256 ="
                " sha256(convert_to((SELECT salt FROM {erasure_salt}) || batch.email, 'UTF8'))"
                " AND batch.received_at <= erased.erased_at)"
                " ON CONFLICT (lead_id) DO NOTHING"
            )
            .format(
                table=leads_table_identifier(leads_table),
                columns=columns,
                definitions=definitions,
                erasures=erasures_table_identifier(leads_table),
                erasure_salt=erasure_salt_table_identifier(leads_table),
            )
            .as_string(None)
        )

        self._copy = sql.SQL("COPY {table} ({columns}) FROM STDIN").format(
            table=leads_table_identifier(leads_table), columns=columns
        )
        # max() reads one entry of the erased_at index whatever the plan; "WHERE erased_at >= $1" in a generic
        # plan would scan every tombstone.
        self._tombstone_since = sql.SQL("SELECT coalesce((SELECT max(erased_at) FROM {erasures}) >= %s, false)").format(
            erasures=erasures_table_identifier(leads_table)
        )

    def store_batch(
        self, envelopes: Sequence[LeadEnvelope], *, time_left: Callable[[], float] | None = None
    ) -> StoreOutcome:
        """Insert all envelopes in one transaction; redelivered or erased leads count as duplicates.

        A refused row sends the batch row by row, so only that row is reported. A dead kept connection
        gets one fresh try. `DatabaseUnavailable`: nothing stored. Every round trip ends before `time_left()`
        runs out (`DatabaseNotAnswering`, no retry).
        """
        if not envelopes:
            return StoreOutcome(inserted=0, duplicates=0)
        try:
            inserted = self._insert_in_one_transaction(envelopes, time_left)
        except ROW_REJECTIONS:
            return self._store_row_by_row(envelopes, time_left)
        return StoreOutcome(inserted=inserted, duplicates=len(envelopes) - inserted)

    def _store_row_by_row(
        self, envelopes: Sequence[LeadEnvelope], time_left: Callable[[], float] | None
    ) -> StoreOutcome:
        inserted, rejected = 0, {}
        for tried, envelope in enumerate(envelopes):
            # Past the invocation's end Lambda would fail the whole batch, the rows already stored included.
            if time_left is not None and not time_for_another_round_trip(time_left()):
                not_tried = tuple(str(e.lead_id) for e in envelopes[tried:])
                duplicates = tried - inserted - len(rejected)
                return StoreOutcome(inserted=inserted, duplicates=duplicates, rejected=rejected, not_tried=not_tried)
            try:
                inserted += self._insert_in_one_transaction([envelope], time_left)
            except ROW_REJECTIONS as error:
                rejected[str(envelope.lead_id)] = type(error).__name__
            except Exception as error:  # an outage mid-way: the rows committed so far stay counted as stored
                not_tried = tuple(str(e.lead_id) for e in envelopes[tried:])
                duplicates = tried - inserted - len(rejected)
                return StoreOutcome(inserted, duplicates, rejected, not_tried, interrupted_by=error)
        return StoreOutcome(inserted=inserted, duplicates=len(envelopes) - inserted - len(rejected), rejected=rejected)

    def _insert_in_one_transaction(
        self, envelopes: Sequence[LeadEnvelope], time_left: Callable[[], float] | None
    ) -> int:
        # In lead_id order: two workers storing overlapping batches (a redelivery) then wait on each other's rows
        # in the same order, instead of each holding a row the other needs (a deadlock fails a whole batch).
        rows = sorted((lead_row(e) for e in envelopes), key=lambda row: row["lead_id"])
        oldest = min(e.received_at for e in envelopes)
        reusing = self._connections.holds_open_connection()
        try:
            return self._execute_insert(rows, oldest, time_left)
        except ROW_REJECTIONS:
            raise  # the transaction rolled back; the connection is fine
        except DatabaseNotAnswering:
            # No retry at once: a fresh connection takes the same stalled path, and would double the wait.
            self._connections.discard()
            raise
        except psycopg.Error as error:
            self._connections.discard()
            if writes_refused(error):
                raise DatabaseUnavailable(f"{type(error).__name__} (SQLSTATE {error.sqlstate})") from error
            if not is_database_unavailable(error):
                raise
            if not reusing:
                raise DatabaseUnavailable(f"{type(error).__name__} (SQLSTATE {error.sqlstate or 'none'})") from error
        # The kept session died between batches (restart, failover, idle timeout): one fresh try.
        try:
            return self._execute_insert(rows, oldest, time_left)
        except ROW_REJECTIONS:
            raise
        except DatabaseNotAnswering:
            self._connections.discard()
            raise
        except psycopg.Error as error:
            self._connections.discard()
            if is_database_unavailable(error) or writes_refused(error):
                raise DatabaseUnavailable(f"{type(error).__name__} (SQLSTATE {error.sqlstate or 'none'})") from error
            raise

    def _execute_insert(
        self, rows: list[dict[str, object]], oldest: datetime, time_left: Callable[[], float] | None
    ) -> int:
        connection = self._connections.get()  # the connect itself is bounded by connect_timeout
        seconds = invocation_round_trip_seconds(None if time_left is None else time_left(), self._fallback_round_trip)
        with RoundTripDeadline(connection, seconds) as deadline:
            try:
                inserted = self._run_insert(connection, rows, oldest)
            except psycopg.Error as error:
                if deadline.expired:
                    raise DatabaseNotAnswering(f"no answer within {seconds:.1f} s ({type(error).__name__})") from error
                raise
        if deadline.expired:
            self._connections.discard()  # it answered just as the deadline shut its socket
        return inserted

    def _run_insert(self, connection: psycopg.Connection, rows: list[dict[str, object]], oldest: datetime) -> int:
        if self._copy_first:
            return self._copy_or_insert(connection, rows, oldest)
        # pydantic's Rust encoder, faster than json.dumps (docs/performance.md)
        batch = pydantic_core.to_json(rows).decode()
        if self._transaction_timeouts is None:
            with connection.cursor() as cursor:  # one statement: all of it commits, or none
                cursor.execute(self._insert, (batch,))
                return cursor.rowcount
        # Pipelined: BEGIN, the SET LOCALs, the INSERT and COMMIT travel together, one round trip.
        with connection.pipeline(), connection.transaction(), connection.cursor() as cursor:
            for statement in self._transaction_timeouts.set_local_statements():
                cursor.execute(statement)
            cursor.execute(self._insert, (batch,))
        return cursor.rowcount

    def _copy_or_insert(self, connection: psycopg.Connection, rows: list[dict[str, object]], oldest: datetime) -> int:
        """COPY, cheaper for the database, unless a lead is already stored or a tombstone is as new as the oldest
        lead; then the checked INSERT. Tombstones are read under the COPY's lock, so no erasure slips between."""
        try:
            with connection.transaction(), connection.cursor() as cursor:
                with cursor.copy(self._copy) as copy:
                    for row in rows:
                        copy.write_row([copy_value(row[name], kind) for name, kind in LEAD_COLUMNS])
                if cursor.execute(self._tombstone_since, (oldest,)).fetchone()[0]:
                    raise _CheckEachLead
            return len(rows)
        except (psycopg.errors.UniqueViolation, _CheckEachLead):
            pass  # rolled back whole
        with connection.cursor() as cursor:
            cursor.execute(self._insert, (pydantic_core.to_json(rows).decode(),))
            return cursor.rowcount

    def stored_at_of(self, lead_ids: Sequence[str]) -> dict[str, datetime]:
        """When each of these leads' rows was stored; a lead without a row (erased) is left out."""
        if not lead_ids:
            return {}
        connection = self._connections.get()
        query = sql.SQL("SELECT lead_id::text, stored_at FROM {} WHERE lead_id = ANY(%s::uuid[])").format(
            leads_table_identifier(self._leads_table)
        )
        try:
            with RoundTripDeadline(connection, self._fallback_round_trip):
                return dict(connection.execute(query, (list(lead_ids),)).fetchall())
        except psycopg.Error:
            self._connections.discard()
            raise


class _CheckEachLead(Exception):
    """A tombstone is as new as the batch's oldest lead: the COPY is rolled back for the checked INSERT."""


def copy_value(value: object, kind: str) -> object:
    """A lead_row value as COPY takes it: the JSON columns as their JSON text."""
    if kind == "jsonb" and value is not None:
        return pydantic_core.to_json(value).decode()
    return value


def lead_row(envelope: LeadEnvelope) -> dict[str, object]:
    """One row as JSON-ready values, keyed by LEAD_COLUMNS' names (attribute reads: faster than model_dump)."""
    lead, source = envelope.lead, envelope.source
    return {
        "lead_id": str(envelope.lead_id),
        "email": lead.email,
        "first_name": lead.first_name,
        "last_name": lead.last_name,
        "phone": lead.phone,
        "company": lead.company,
        "job_title": lead.job_title,
        "country": lead.country,
        "campaign": lead.campaign,
        "landing_page": None if lead.landing_page is None else str(lead.landing_page),
        "utm_source": lead.utm_source,
        "utm_medium": lead.utm_medium,
        "utm_campaign": lead.utm_campaign,
        "utm_term": lead.utm_term,
        "utm_content": lead.utm_content,
        "consent": lead.consent,
        "custom": lead.custom,
        "source": {"user_agent": source.user_agent, "origin": source.origin, "referer": source.referer},
        "envelope_version": envelope.v,
        "received_at": envelope.received_at.isoformat(),
        **attribution_and_consent_columns(envelope),
    }


def attribution_and_consent_columns(envelope: LeadEnvelope) -> dict[str, object]:
    """Attribution and consent columns; a consent without a time of its own is dated when it was received."""
    lead = envelope.lead
    received_at = envelope.received_at.isoformat()
    return {
        **{name: getattr(lead, name) for name in CLICK_ID_FIELDS},
        "referrer": None if lead.referrer is None else str(lead.referrer),
        "first_touch": None
        if lead.first_touch is None
        else lead.first_touch.model_dump(mode="json", exclude_none=True),
        "last_touch": None if lead.last_touch is None else lead.last_touch.model_dump(mode="json", exclude_none=True),
        "consent_text_id": lead.consent_text_id,
        "consent_text_version": lead.consent_text_version,
        "consent_text_sha256": lead.consent_text_sha256,
        "consent_purposes": list(lead.consent_purposes),
        "consent_at": lead.consent_at.isoformat() if lead.consent_at else received_at if lead.consent else None,
        "consent_page": None if lead.consent_page is None else str(lead.consent_page),
    }
