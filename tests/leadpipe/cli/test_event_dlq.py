"""`leadpipe dlq ... --destination NAME | --hand-off`: which queue, and one-line errors."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from leadpipe.cli import main as leadpipe
from leadpipe.local.runtime import STATE_FILE_NAME, RuntimeInfo


def runtime_without_events(folder: Path) -> Path:
    info = RuntimeInfo(
        stage="dev",
        api_url="http://127.0.0.1:9/leads",
        landing_page_url="http://127.0.0.1:9/",
        sqs_endpoint_url="http://127.0.0.1:9",
        leads_queue_url="http://127.0.0.1:9/123456789012/leads",
        dead_letter_queue_url="http://127.0.0.1:9/123456789012/dlq",
        database_url="postgresql:///nowhere",
        leads_table="leadpipe.leads",
        data_dir=str(folder),
        postgres_data_dir=None,
        pid=os.getpid(),
    )
    (folder / STATE_FILE_NAME).write_text(json.dumps(dataclasses.asdict(info)))
    return folder


@pytest.mark.parametrize("action", [["list"], ["redrive"], ["purge", "--yes"]])
def test_one_queue_at_a_time(action: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = leadpipe(["dlq", *action, "--destination", "crm", "--hand-off", "--data-dir", str(tmp_path)])
    assert status == 2
    assert capsys.readouterr().err == "leadpipe: choose one of --destination or --hand-off\n"


def test_a_runtime_without_the_events_lane_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = leadpipe(["dlq", "list", "--destination", "crm", "--data-dir", str(runtime_without_events(tmp_path))])
    assert status == 2
    assert capsys.readouterr().err == (
        "leadpipe: the local runtime runs no events lane (its stage has events_enabled off)\n"
    )
