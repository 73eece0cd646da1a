"""Fixtures shared by the tests of the `leadpipe` package."""

from __future__ import annotations

import pytest

from leadpipe import queue_sweep


@pytest.fixture
def short_polling_sweeps(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto answers a short poll from its one store: a sweep's last, empty receive need not wait a second."""
    monkeypatch.setattr(queue_sweep, "SWEEP_WAIT_SECONDS", 0)
