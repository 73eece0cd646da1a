"""Every lead the contract accepts is stored byte for byte by the real repository in a real
PostgreSQL: text and jsonb refuse NUL and lone surrogates, so the contract must refuse them first."""

from __future__ import annotations

import json
from typing import Any
from uuid import uuid4

import psycopg
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from functions.contract import LeadEnvelope, parse_envelope
from functions.ingest import handler as ingest
from functions.ingest.api import build_app
from functions.ingest.settings import IngestSettings
from functions.worker.repository import LEAD_COLUMNS, ConnectionProvider, LeadRepository, connect, lead_row
from tests.all_of_unicode import any_character, printable_text
from tests.conftest import LeadsDatabase
from tests.events import api_event
from tests.functions.conftest import TEXT_FIELDS, with_value

custom_keys = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,10}", fullmatch=True)
lead_fields = st.fixed_dictionaries(
    {"email": st.emails()},
    optional={
        **{
            name: printable_text
            for name in ("first_name", "last_name", "company", "job_title", "utm_source", "utm_content")
        },
        "custom": st.dictionaries(custom_keys, printable_text, max_size=4),
        "landing_page": st.builds("https://www.example.com/{}".format, printable_text),
    },
)


def accepted_envelope(fields: dict[str, Any]) -> LeadEnvelope | None:
    """The envelope the ingest would queue for these fields, read back as the worker reads it."""
    sent: list[LeadEnvelope] = []
    app = build_app(IngestSettings(LEADS_QUEUE_URL="https://sqs.invalid/q"), sent.append, ingest.logger, ingest.metrics)
    response = app.resolve(api_event(json.dumps(fields), headers={"User-Agent": "pytest"}), None)
    ingest.metrics.clear_metrics()
    if response["statusCode"] != 202:
        return None
    # Its own id: the same content drawn twice would otherwise (rightly) be one row
    return parse_envelope(sent[0].to_message_body()).model_copy(update={"lead_id": uuid4()})


@settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(fields=lead_fields, field=st.sampled_from(sorted(TEXT_FIELDS)), character=any_character)
# What PostgreSQL itself refuses (NUL in jsonb and in text), always tried besides the random draws
@example(fields={}, field="custom.note", character="\x00")
@example(fields={}, field="company", character="\x00")
def test_every_accepted_lead_is_stored_byte_for_byte(
    leads_db: LeadsDatabase, fields: dict[str, Any], field: str, character: str
) -> None:
    # Given a lead with text from all of Unicode, and one character of all of Unicode typed
    # into one of its fields, that the contract accepted
    injected = with_value(field, TEXT_FIELDS[field].format(character))
    envelope = accepted_envelope(
        {**fields, **injected, "custom": {**fields.get("custom", {}), **injected.get("custom", {})}}
    )
    if envelope is None:
        return  # refused with a 4xx: tests/functions/contract/test_lead_travelling_characters.py checks those
    # When the worker's repository stores it
    repository = LeadRepository(ConnectionProvider(lambda: connect(leads_db.uri)), leads_db.leads_table)
    outcome = repository.store_batch([envelope])
    # Then it went in with the batch statement, and every column reads back exactly as sent
    assert (outcome.inserted, outcome.rejected) == (1, {})
    expected = lead_row(envelope)
    with (
        psycopg.connect(leads_db.uri, autocommit=True) as connection,
        connection.cursor(row_factory=psycopg.rows.dict_row) as cursor,
    ):
        stored = cursor.execute(
            f"SELECT * FROM {leads_db.leads_table} WHERE lead_id = %s", (envelope.lead_id,)
        ).fetchone()
    text_columns = [name for name, kind in LEAD_COLUMNS if kind == "text"]
    assert {c: stored[c] for c in text_columns} == {c: expected[c] for c in text_columns}
    assert [(stored[c] or "").encode("utf-8") for c in text_columns] == [
        (expected[c] or "").encode("utf-8") for c in text_columns
    ]
    assert (stored["custom"], stored["source"]) == (expected["custom"], expected["source"])
