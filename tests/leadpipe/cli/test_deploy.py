"""`leadpipe preflight` and `leadpipe verify` as the operator runs them: one line per check, exit 2 on a failure.

What each check decides is tested in tests/leadpipe/test_preflight.py and test_verify.py.
"""

from __future__ import annotations

import boto3
import pytest

from leadpipe.cli import main as leadpipe
from tests.leadpipe.aws_not_in_moto import account_limit, answer
from tests.moto_mock import mock_aws


def test_preflight_prints_one_line_per_check_and_exits_2_on_a_failure(
    capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the dev stage (no VPC, no database, no alarm e-mail) and an account with the default quotas
    with mock_aws():
        monkeypatch.setattr(boto3, "DEFAULT_SESSION", boto3.Session())  # the clients the command builds see the answer
        answer(
            boto3.DEFAULT_SESSION, "GetAccountSettings", account_limit(total=1000, unreserved=1000), service="lambda"
        )
        # When the operator runs preflight
        code = leadpipe(["preflight", "--stage", "dev"])
    out, err = capsys.readouterr()
    # Then each check is one line, the e-mail check says what to do, and the exit code is 2
    lines = out.splitlines()
    assert code == 2 and err == ""
    assert [line.split(":")[0] for line in lines] == [
        "ok    concurrency", "ok    api throttle", "ok    api logging role", "ok    vpc", "ok    aws api routes",
        "ok    database secret",
        "ok    captcha secret", "ok    rds proxy", "ok    database path", "FAIL  alarm e-mail",
    ]  # fmt: skip
    assert lines[-1] == "FAIL  alarm e-mail: no alarm_email: nobody will be paged; set it (or subscribe a pager)"


def test_verify_of_an_unknown_stack_is_one_line_and_exit_2(capsys: pytest.CaptureFixture) -> None:
    # Given no such stack  When the operator verifies it  Then one line says so, exit status 2
    with mock_aws():
        code = leadpipe(["verify", "--stack", "Leadpipe-nope"])
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert err.startswith("leadpipe: stack 'Leadpipe-nope' not found") and err.count("\n") == 1
