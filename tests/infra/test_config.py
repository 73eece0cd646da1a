"""The settings model: defaults that synthesize, and bad values that stop synth naming the key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from infra.config import REPO_ROOT, SettingsError, settings_from_context, settings_from_file
from tests.infra.template_queries import BASE, with_stage


def test_checked_in_stages_are_valid() -> None:
    dev, prod = settings_from_file("dev"), settings_from_file("prod")
    assert (dev.stage, prod.stage) == ("dev", "prod")
    assert prod.has_database and not dev.has_database
    assert dev.queue_visibility_timeout_seconds == 6 * dev.worker_timeout_seconds + dev.max_batching_window_seconds


def test_defaults_apply_and_stages_override() -> None:
    settings = settings_from_context(with_stage("dev", batch_size=50), "dev")
    assert settings.batch_size == 50
    assert settings.allowed_origins == ["https://www.example.com"]
    assert settings_from_context(BASE, None).stage == "dev"  # no -c stage: dev


@pytest.mark.parametrize(
    ("overrides", "stage", "message"),
    [
        (
            {"max_concurrency": 1},
            "dev",
            "leadpipe.stages.dev.max_concurrency: Input should be greater than or equal to 2",
        ),
        (
            {"max_concurrency": 5, "reserved_concurrency": 4},
            "dev",
            "leadpipe.stages.dev.max_concurrency: 5 is above reserved_concurrency (4)",
        ),
        (
            {"visibility_timeout_seconds": 100},
            "dev",
            "leadpipe.stages.dev.visibility_timeout_seconds: 100 is below 6x worker_timeout_seconds + "
            "max_batching_window_seconds (181)",
        ),
        (
            {"db_statement_timeout_seconds": 20, "db_lock_timeout_seconds": 5},
            "dev",
            "leadpipe.stages.dev.db_statement_timeout_seconds: db_connect_timeout_seconds + "
            "db_statement_timeout_seconds + db_lock_timeout_seconds (30) must be below worker_timeout_seconds (30)",
        ),
        (
            {"db_connect_timeout_seconds": 0},
            "dev",
            "leadpipe.stages.dev.db_connect_timeout_seconds: Input should be greater than or equal to 1",
        ),
        ({"allowed_origins": ["*"]}, "dev", "leadpipe.stages.dev.allowed_origins.0: '*' is not an origin"),
        (
            {"allowed_origins": ["https://example.com/path"]},
            "dev",
            "allowed_origins.0: 'https://example.com/path' is not an origin",
        ),
        ({"allowed_origins": []}, "dev", "leadpipe.stages.dev.allowed_origins: List should have at least 1 item"),
        ({"batch_size": "lots"}, "dev", "leadpipe.stages.dev.batch_size: Input should be a valid integer"),
        (
            {"batch_size": 50, "max_batching_window_seconds": 0},
            "dev",
            "leadpipe.stages.dev.max_batching_window_seconds: a batch_size above 10 needs",
        ),
        ({"log_retention_days": 8}, "dev", "leadpipe.stages.dev.log_retention_days: Input should be 1, 3"),
        ({"db_secret_arn": "my-secret"}, "dev", "leadpipe.stages.dev.db_secret_arn: String should match pattern"),
        (
            {"vpc_id": "vpc-0abc"},
            "dev",
            "leadpipe.stages.dev.vpc_id: set vpc_id, vpc_subnet_ids and vpc_security_group_ids together",
        ),
        (
            {"db_proxy_endpoint": "proxy.example"},
            "dev",
            "leadpipe.stages.dev.db_proxy_endpoint: an RDS Proxy needs db_secret_arn",
        ),
        ({"db_secret_arn": None}, "prod", "leadpipe.stages.prod.db_secret_arn: prod must name its database secret"),
        ({"max_concurency": 3}, "dev", "leadpipe.stages.dev.max_concurency: Extra inputs are not permitted"),
    ],
)
def test_bad_settings_name_the_key(overrides: dict[str, Any], stage: str, message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        settings_from_context(with_stage(stage, **overrides), stage)
    assert message in str(caught.value)


def test_an_origin_with_a_trailing_slash_is_accepted_without_it() -> None:
    # Given an origin copied from the browser's address bar, slash and all
    settings = settings_from_context(with_stage("dev", allowed_origins=["https://www.example.com/"]), "dev")
    # Then it is the origin browsers send in their Origin header (which never ends in a slash)
    assert settings.allowed_origins == ["https://www.example.com"]


def test_unknown_stage_lists_the_known_ones() -> None:
    with pytest.raises(
        SettingsError, match=r"unknown stage 'staging' \(-c stage=\.\.\.\); cdk.json defines: dev, prod"
    ):
        settings_from_context(BASE, "staging")


def test_synth_stops_with_a_readable_message_on_a_bad_value(tmp_path) -> None:
    # Given cdk.json context with an impossible cap, passed the way the CDK CLI passes it
    context = {"leadpipe": with_stage("dev", max_concurrency=9, reserved_concurrency=3), "stage": "dev"}
    env = {**os.environ, "CDK_CONTEXT_JSON": json.dumps(context), "CDK_OUTDIR": str(tmp_path)}
    # When app.py runs, Then it exits non-zero with one line naming the key, no traceback
    result = subprocess.run(
        [sys.executable, "app.py"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=240
    )
    assert result.returncode == 1
    assert (
        "leadpipe: invalid settings:\n  leadpipe.stages.dev.max_concurrency: 9 is above reserved_concurrency (3)"
        in result.stderr
    )
    assert "Traceback" not in result.stderr


# AWS Lambda developer guide, "Using Lambda with Amazon SQS" (services-sqs-configure / with-sqs-scaling): set the
# queue's visibility timeout to at least six times the function timeout plus MaximumBatchingWindowInSeconds.
@pytest.mark.parametrize(
    ("worker_timeout", "window", "minimum"), [(30, 1, 181), (30, 20, 200), (60, 0, 360), (900, 300, 5_700)]
)
def test_default_visibility_covers_six_function_timeouts_plus_the_batching_window(
    worker_timeout: int, window: int, minimum: int
) -> None:
    # Given a stage that leaves visibility_timeout_seconds unset
    context = with_stage(
        "dev", worker_timeout_seconds=worker_timeout, max_batching_window_seconds=window, batch_size=10
    )
    # When its settings are read
    settings = settings_from_context(context, "dev")
    # Then the queue gets 6 x timeout + window, and one second less is refused naming the key
    assert settings.queue_visibility_timeout_seconds == minimum
    assert settings_from_context(
        with_stage("dev", **context["stages"]["dev"], visibility_timeout_seconds=minimum), "dev"
    )
    with pytest.raises(SettingsError, match=f"leadpipe.stages.dev.visibility_timeout_seconds: {minimum - 1} is below"):
        settings_from_context(
            with_stage("dev", **context["stages"]["dev"], visibility_timeout_seconds=minimum - 1), "dev"
        )


def test_database_timeouts_have_sane_defaults_below_the_worker_timeout() -> None:
    # Given dev's checked-in settings, which set no database timeout
    dev = settings_from_file("dev")
    # Then a connect, a lock wait and a statement all end before Lambda would end the invocation
    assert (dev.db_connect_timeout_seconds, dev.db_statement_timeout_seconds, dev.db_lock_timeout_seconds) == (5, 10, 5)
    assert (
        dev.db_connect_timeout_seconds + dev.db_statement_timeout_seconds + dev.db_lock_timeout_seconds
        < dev.worker_timeout_seconds
    )
    # And one second below the worker timeout is still accepted
    assert (
        settings_from_context(with_stage("dev", db_statement_timeout_seconds=19), "dev").db_statement_timeout_seconds
        == 19
    )
