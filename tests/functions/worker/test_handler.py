"""The worker Lambda's start-up, without a database.

Its batch answers are tested against a real PostgreSQL in tests/functions/worker/test_logic.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest

from functions.contract import Lead, LeadEnvelope, Source
from functions.worker import handler as worker
from tests.conftest import REPO_ROOT
from tests.events import sqs_event


def envelope_body() -> str:
    envelope = LeadEnvelope(
        lead_id=uuid4(),
        received_at=datetime.now(UTC),
        source=Source(user_agent="test"),
        lead=Lead(email="a@example.com"),
    )
    return json.dumps(json.loads(envelope.to_message_body()))


def test_worker_refuses_to_start_without_a_credential_source(lambda_context: Any) -> None:
    with pytest.raises(ValueError, match="exactly one of DATABASE_URL"):
        worker.lambda_handler(sqs_event([envelope_body()]), lambda_context)


def test_the_worker_freezes_what_its_cold_start_built() -> None:
    # In a fresh interpreter, as a new execution environment: nothing frozen before the import,
    # the handler module's objects (and its libraries') out of the collector's reach after it
    probe = (
        "import gc; before = gc.get_freeze_count(); import functions.worker.handler; "
        "print(before, gc.get_freeze_count())"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    before, after = map(int, result.stdout.split())
    assert before == 0 and after > 10_000
