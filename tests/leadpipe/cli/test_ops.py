"""`leadpipe drain pause` against a local runtime whose breaker is a stand-in (files in a data folder)."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import pytest

from leadpipe.cli import main as leadpipe
from leadpipe.local.drain_breaker import PAUSE_FILE_NAME, STATE_FILE_NAME
from tests.leadpipe.cli.conftest import runtime_state_in


@pytest.fixture
def paused_runtime(tmp_path: Path) -> Path:
    """A data folder as a running local runtime leaves it, its breaker already showing a pause."""
    runtime_state_in(tmp_path)
    state = {"state": "paused_by_operator", "receiving": False, "pause": None, "since": None}
    (tmp_path / STATE_FILE_NAME).write_text(json.dumps(state))
    return tmp_path


def test_drain_pause_names_the_operating_systems_user_when_user_is_unset(
    paused_runtime: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    # Given a shell without $USER (cron, a container's exec), where the operating system still knows the user
    monkeypatch.delenv("USER", raising=False)
    expected = getpass.getuser()
    # When an operator pauses the drain without --who
    code = leadpipe(["drain", "pause", "--why", "DB maintenance", "--data-dir", str(paused_runtime)])
    # Then the pause is recorded under the operating system's name for the user
    assert (code, capsys.readouterr().err) == (0, "")
    record = json.loads((paused_runtime / PAUSE_FILE_NAME).read_text())
    assert (record["who"], record["why"]) == (expected, "DB maintenance")
