"""`make run` (stage dev) shows events flowing: a posted lead reaches the shipped CRM and Slack examples,
delivered to the local receiver, which prints what each would get."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import threading
import uuid

import pytest

from tests.conftest import REPO_ROOT
from tests.e2e.conftest import http_request, wait_for
from tests.e2e.test_run_prod_stage import STOP_TIMEOUT_SECONDS, read_banner


@pytest.mark.slow
def test_make_run_prints_what_the_crm_and_slack_receive() -> None:
    # Given `make run` (stage dev, whose cdk.json ships a CRM webhook and a Slack webhook)
    data_dir = REPO_ROOT / ".leadpipe" / "pytest" / f"run-dev-events-{uuid.uuid4().hex[:8]}"
    command = [sys.executable, "-m", "leadpipe.cli", "run", "--port", "0", "--data-dir", str(data_dir)]
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    printed: list[str] = []
    try:
        banner = read_banner(process)
        assert re.search(r"events\s+LeadStored on a local EventBridge", banner)
        assert "crm: 5/s" in banner and "slack: 1/s" in banner
        threading.Thread(target=lambda: printed.extend(iter(process.stdout.readline, "")), daemon=True).start()

        # When a lead is posted
        api_url = re.search(r"API\s+POST (\S+)", banner).group(1)
        email = f"events-{uuid.uuid4().hex[:8]}@example.com"
        answer = http_request(
            api_url,
            "POST",
            json.dumps({"email": email, "campaign": "summersale20"}),
            {"Content-Type": "application/json"},
        )
        assert answer.status == 202, answer.body
        lead_id = json.loads(answer.body)["lead_id"]

        # Then the runtime prints what each destination received: the CRM the lead as JSON, Slack the
        # headline only (the address is not posted without include_email)
        def lines(prefix: str) -> list[str]:
            return [line for line in list(printed) if line.startswith(prefix)]

        wait_for(lambda: lines("received /crm: ") and lines("received /slack: "), timeout=60, message="both deliveries")
        [crm] = lines("received /crm: ")
        assert crm.startswith(f'received /crm: {{"version": 1, "lead_id": "{lead_id}", "campaign": "SUMMERSALE20"')
        assert lines("received /slack: ") == ['received /slack: {"text": "New lead for SUMMERSALE20"}\n']
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=STOP_TIMEOUT_SECONDS) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        process.stderr.close()
        shutil.rmtree(data_dir, ignore_errors=True)
