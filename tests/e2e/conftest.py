"""The local runtime, started by the test session on ephemeral ports with data of its own."""

from __future__ import annotations

import http.client
import json
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import psycopg
import pytest

from infra.config import PipelineSettings, settings_from_file
from leadpipe.local.runtime import LocalPipeline, LocalPipelineOptions, RuntimeInfo, local_sqs_client
from tests.conftest import REPO_ROOT
from tests.events import without_json_escapes


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


# A hung ingest fails the test in seconds; a healthy one answers in milliseconds even on a busy machine.
HTTP_TIMEOUT_SECONDS = 10


def http_request(
    url: str, method: str = "GET", body: bytes | str | None = None, headers: dict[str, str] | None = None
) -> HttpAnswer:
    """One request, no redirect following (a 303 must be seen as a 303)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=HTTP_TIMEOUT_SECONDS)
    try:
        connection.request(method, parts.path or "/", body=body, headers=headers or {})
        response = connection.getresponse()
        answer = HttpAnswer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        connection.close()
    if method == "POST" and answer.status == 202:
        ACCEPTED_LEAD_IDS.setdefault(url, {})[answer.json()["lead_id"]] = _submitted_email(body)
    return answer


# Every 202 an e2e test got (lead id -> e-mail sent), by API URL: at the end of the session each
# must be a row, unless ops erased that person on purpose (invariant 7). No e2e test fills the
# honeypot, whose 202 is deliberately not stored; Chromium's posts are not recorded here.
ACCEPTED_LEAD_IDS: dict[str, dict[str, str]] = {}
ERASED_EMAILS: set[str] = set()


def _submitted_email(body: bytes | str | None) -> str:
    text = body.decode() if isinstance(body, bytes) else body or ""
    try:
        fields = json.loads(text)
    except ValueError:
        fields = dict(parse_qsl(text))
    return str(fields.get("email", "")).strip().lower() if isinstance(fields, dict) else ""


@pytest.fixture(scope="session", autouse=True)
def erasures_are_recorded() -> Iterator[None]:
    """`leadpipe db erase` deletes rows on purpose: those leads are accounted for, not lost."""
    from leadpipe import erasure

    erase_person = erasure.erase_person

    def recording(database_url: str, leads_table: str, email: str) -> int:
        erased = erase_person(database_url, leads_table, email)
        ERASED_EMAILS.add(email.strip().lower())
        return erased

    erasure.erase_person = recording
    yield
    erasure.erase_person = erase_person


def assert_every_202_is_a_row(running: RunningPipeline, timeout: float = 60) -> int:
    """Wait (bounded) until every lead answered 202 by this pipeline is in its table (or was
    erased by ops); returns how many 202s were checked."""
    accepted = ACCEPTED_LEAD_IDS.get(running.info.api_url, {})

    def missing() -> dict[str, str]:
        stored = {str(r["lead_id"]) for r in running.rows("lead_id::text = ANY(%s)", (list(accepted),))}
        return {
            lead_id: email
            for lead_id, email in accepted.items()
            if lead_id not in stored and email not in ERASED_EMAILS
        }

    try:
        wait_for(lambda: not missing(), timeout=timeout, message=f"every 202 as a row ({len(accepted)} accepted)")
    except AssertionError:
        raise AssertionError(f"202 answered, no row: {missing()}") from None
    return len(accepted)


def wait_for(check: Callable[[], Any], timeout: float = 30, message: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {message}")


def e2e_settings() -> PipelineSettings:
    """dev's settings, with a short visibility timeout so poison reaches the DLQ in seconds."""
    return settings_from_file("dev").model_copy(update={"visibility_timeout_seconds": 1, "max_receive_count": 2})


class RunningPipeline:
    def __init__(self, info: RuntimeInfo, pipeline: LocalPipeline) -> None:
        self.info = info
        self.pipeline = pipeline
        self.sqs = local_sqs_client(info.sqs_endpoint_url)

    def rows(self, where: str = "true", params: tuple = ()) -> list[dict]:
        with (
            psycopg.connect(self.info.database_url, autocommit=True) as connection,
            connection.cursor(row_factory=psycopg.rows.dict_row) as cursor,
        ):
            return cursor.execute(f"SELECT * FROM {self.info.leads_table} WHERE {where}", params).fetchall()

    def count(self, where: str = "true", params: tuple = ()) -> int:
        return len(self.rows(where, params))

    def queue_attribute(self, url: str, name: str) -> int:
        return int(self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[name])["Attributes"][name])


def start_pipeline(data_dir: Path, settings: PipelineSettings | None = None, **options: Any) -> RunningPipeline:
    pipeline = LocalPipeline(
        LocalPipelineOptions(settings=settings or e2e_settings(), data_dir=data_dir, port=0, **options)
    )
    return RunningPipeline(pipeline.start(), pipeline)


@pytest.fixture(scope="session")
def e2e_data_dir() -> Iterator[Path]:
    path = REPO_ROOT / ".leadpipe" / "pytest" / f"e2e-{uuid.uuid4().hex[:8]}"
    yield path
    shutil.rmtree(path, ignore_errors=True)


RAW_EMAIL = re.compile(r"[\w.%+-]+@[\w-]+\.[\w.-]+")  # \w: any script, IDN domains too
RAW_PHONE = re.compile(
    r"\+\d[\d ().-]{6,}\d|\(\d{2,5}\) ?\d{3}[ -]?\d{4}|\b\d{3}-\d{3}-\d{4}\b|\b0\d{2,4}[ /-]\d{5,8}\b"
)


@pytest.fixture(scope="session")
def local_pipeline(e2e_data_dir: Path) -> Iterator[RunningPipeline]:
    running = start_pipeline(e2e_data_dir)
    yield running
    accepted = assert_every_202_is_a_row(running)
    print(f"\nevery 202 of the session is a row (or erased by ops): {accepted} checked")
    running.pipeline.stop(drain_seconds=5)
    # Every e2e test has run through this pipeline: not one raw e-mail or phone in any log it wrote.
    assert_logs_hold_no_personal_data(e2e_data_dir)


def assert_logs_hold_no_personal_data(data_dir: Path) -> None:
    logged = "".join(path.read_text() for path in (data_dir / "logs").glob("*.log"))
    assert logged, "the pipeline wrote no logs at all"
    logged += "\n" + without_json_escapes(logged)  # "j\\u00f6hn@..." in a JSON line is jöhn@... to a reader
    assert RAW_EMAIL.findall(logged) == [] and RAW_PHONE.findall(logged) == []
