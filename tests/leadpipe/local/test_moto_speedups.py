"""The local runtime's moto patches change speed, never behaviour, and refuse a different moto."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import moto
import pytest
from moto.sqs import models as sqs_models

from leadpipe.local import moto_speedups
from tests.conftest import REPO_ROOT


def start_scenario(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.leadpipe.local.moto_scenario", *args],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def scenario_results(*started: subprocess.Popen[str]) -> list[dict]:
    try:
        outputs = [process.communicate(timeout=120) for process in started]
    finally:
        for process in started:
            process.kill()  # a no-op once it has ended; ends it if a wait gave up
            process.wait()
    for process, (_, stderr) in zip(started, outputs, strict=True):
        assert process.returncode == 0, stderr
    return [json.loads(stdout) for stdout, _ in outputs]


def test_patched_moto_behaves_exactly_like_stock_moto() -> None:
    # Given the same SQS conversation on stock moto and on the patched one (separate processes, side by side)
    stock, patched = scenario_results(start_scenario(), start_scenario("patched"))
    # Then a client observes the same thing, and the conversation exercised what matters
    assert patched == stock
    assert stock["after_send"] == {"Visible": 25, "NotVisible": 0, "Delayed": 0}
    assert stock["after_receive"] == {"Visible": 15, "NotVisible": 10, "Delayed": 0}
    assert stock["after_delete"] == {"Visible": 15, "NotVisible": 5, "Delayed": 0}
    assert stock["bogus_delete"] == "ReceiptHandleIsInvalid"
    # moved after 2 receives; the count travels with the message, so reading it from the DLQ makes 3
    assert stock["dlq"]["Visible"] == 15 and stock["dlq_receive_counts"] == ["3"]
    assert stock["past_retention"] == [[], ["fresh"]]


def test_tests_of_the_cloud_code_run_on_stock_moto() -> None:
    # The patches are applied only inside the local runtime's SQS server process
    assert sqs_models.Queue.delete_message is not moto_speedups._delete_by_indexed_handle
    assert not moto_speedups._applied


def test_a_different_moto_version_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(moto, "__version__", "5.3.0")
    with pytest.raises(moto_speedups.MotoInternalsChanged, match="written for moto 5.2.5, found 5.3.0"):
        moto_speedups.check_moto_internals()


def test_a_changed_internal_signature_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqs_models.SQSBackend, "receive_message", lambda self, queue_name, count: [])
    with pytest.raises(moto_speedups.MotoInternalsChanged, match="SQSBackend.receive_message now takes"):
        moto_speedups.check_moto_internals()


def test_a_lost_internal_field_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        sqs_models.Queue, "FIFO_ATTRIBUTES", property(lambda self: (_ for _ in ()).throw(AttributeError()))
    )
    with pytest.raises(moto_speedups.MotoInternalsChanged, match="lost"):
        moto_speedups.check_moto_internals()


def test_the_pinned_moto_is_the_installed_one() -> None:
    assert moto.__version__ == moto_speedups.PINNED_MOTO_VERSION
    moto_speedups.check_moto_internals()
