"""`leadpipe dlq ... --destination NAME | --hand-off`: which queue, and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from leadpipe.cli import main as leadpipe
from tests.leadpipe.cli.conftest import runtime_state_in


@pytest.mark.parametrize("action", [["list"], ["redrive"], ["purge", "--yes"]])
def test_one_queue_at_a_time(action: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = leadpipe(["dlq", *action, "--destination", "crm", "--hand-off", "--data-dir", str(tmp_path)])
    assert status == 2
    assert capsys.readouterr().err == "leadpipe: choose one of --destination or --hand-off\n"


def test_a_runtime_without_the_events_lane_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = leadpipe(["dlq", "list", "--destination", "crm", "--data-dir", str(runtime_state_in(tmp_path))])
    assert status == 2
    assert capsys.readouterr().err == (
        "leadpipe: the local runtime runs no events lane (its stage has events_enabled off)\n"
    )
