"""`make run STAGE=prod`: the prod settings (a Secrets Manager ARN, WAF, other origins) still bring
the whole pipeline up on one machine, store a lead, and stop cleanly on Ctrl-C."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid

import pytest

from leadpipe.cli import main as leadpipe
from tests.conftest import REPO_ROOT
from tests.e2e.conftest import http_request, wait_for

START_TIMEOUT_SECONDS = 120
STOP_TIMEOUT_SECONDS = 60


def read_banner(process: subprocess.Popen[str]) -> str:
    """What `leadpipe run` prints until it is ready (it ends with the Ctrl-C line)."""
    lines: list[str] = []
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("Ctrl-C stops everything."):
            return "".join(lines)
    process.kill()
    raise AssertionError(f"leadpipe run did not come up:\n{''.join(lines)}\n{process.stderr.read()}")


@pytest.mark.slow
def test_make_run_with_the_prod_stage_stores_a_lead_and_stops_on_ctrl_c(capsys: pytest.CaptureFixture) -> None:
    # Given `make run STAGE=prod`, i.e. `leadpipe run --stage prod`, on a free port with data of its own
    # (under the project, like the e2e runtime's: the embedded PostgreSQL's own user must reach it)
    data_dir = REPO_ROOT / ".leadpipe" / "pytest" / f"run-prod-{uuid.uuid4().hex[:8]}"
    command = [
        sys.executable,
        "-m",
        "leadpipe.cli",
        "run",
        "--stage",
        "prod",
        "--port",
        "0",
        "--data-dir",
        str(data_dir),
    ]
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # When it has started
        banner = read_banner(process)
        assert "Leadpipe is running (stage prod)" in banner
        api_url = re.search(r"API\s+POST (\S+)", banner).group(1)
        # And a lead is posted to it
        email = f"prod-stage-{uuid.uuid4().hex[:8]}@example.com"
        answer = http_request(
            api_url, "POST", json.dumps({"email": email, "campaign": "prodlocal"}), {"Content-Type": "application/json"}
        )
        # Then it is accepted and stored in the embedded database (prod's secret ARN is never used locally)
        assert answer.status == 202, answer.body

        # (`leadpipe status` in this process: a new interpreter per look would cost more than the look)
        def stored() -> bool:
            capsys.readouterr()
            code = leadpipe(["status", "--json", "--data-dir", str(data_dir)])
            return (
                code == 0 and json.loads(capsys.readouterr().out)["stored_last_hour_by_campaign"].get("PRODLOCAL") == 1
            )

        wait_for(stored, timeout=60, message="the lead stored by the prod-stage runtime")
        # And Ctrl-C stops it cleanly
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=STOP_TIMEOUT_SECONDS) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        process.stdout.close()
        process.stderr.close()
        shutil.rmtree(data_dir, ignore_errors=True)
