"""Where the worker's connection string comes from in the cloud: the RDS-format secret (moto Secrets Manager)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from psycopg.conninfo import conninfo_to_dict

from functions.worker.credentials import database_conninfo
from functions.worker.settings import WorkerSettings
from tests.moto_mock import mock_aws

# The JSON Secrets Manager keeps for an RDS database (AWS's "Amazon RDS database credentials" secret type).
RDS_SECRET = {
    "engine": "postgres",
    "host": "leads.cluster-abc.eu-west-1.rds.amazonaws.com",
    "port": 5433,
    "username": "leadpipe_worker",
    "password": "s3cr3t with spaces & 'quotes'",
    "dbname": "marketing",
}


@pytest.fixture
def secret_arn() -> Iterator[str]:
    parameters.clear_caches()  # Powertools keeps secrets per execution environment
    with mock_aws():
        client = boto3.client("secretsmanager")
        yield client.create_secret(Name="leadpipe/prod/db", SecretString=json.dumps(RDS_SECRET))["ARN"]
    parameters.clear_caches()


def cloud_settings(secret_arn: str, **env: str) -> WorkerSettings:
    return WorkerSettings.from_env({"DB_SECRET_ARN": secret_arn, "DB_SSLMODE": "verify-full", **env})


def test_the_rds_secret_becomes_the_connection_string(secret_arn: str) -> None:
    # Given a worker configured with the secret's ARN only
    settings = cloud_settings(
        secret_arn, DB_CONNECT_TIMEOUT_SECONDS="4", DB_STATEMENT_TIMEOUT_SECONDS="9", DB_LOCK_TIMEOUT_SECONDS="2"
    )
    # When it builds its connection string
    parsed = conninfo_to_dict(database_conninfo(settings))
    # Then every field of the secret reaches libpq, with sslmode, the connect timeout and the session limits
    assert {k: parsed[k] for k in ("host", "port", "user", "password", "dbname", "sslmode", "connect_timeout")} == {
        "host": RDS_SECRET["host"],
        "port": "5433",
        "user": "leadpipe_worker",
        "password": RDS_SECRET["password"],
        "dbname": "marketing",
        "sslmode": "verify-full",
        "connect_timeout": "4",
    }
    assert parsed["options"].split(" -c ") == [
        "-c statement_timeout=9000",
        "lock_timeout=2000",
        "idle_in_transaction_session_timeout=30000",  # the function's own timeout: its client is gone by then
        "plan_cache_mode=force_generic_plan",  # the prepared batch INSERT is planned once, not once per batch
        "tcp_keepalives_idle=30",  # the server reaps the session of a client that vanished within about a minute
        "tcp_keepalives_interval=10",
        "tcp_keepalives_count=3",
    ]
    assert (parsed["keepalives"], parsed["keepalives_idle"]) == ("1", "30")


def test_an_rds_proxy_endpoint_replaces_the_host_and_no_session_state_is_sent(secret_arn: str) -> None:
    # Given a worker that reaches the database through RDS Proxy
    settings = cloud_settings(secret_arn, DB_PROXY_ENDPOINT="leadpipe.proxy-xyz.eu-west-1.rds.amazonaws.com")
    # When it builds its connection string
    parsed = conninfo_to_dict(database_conninfo(settings))
    # Then it connects to the proxy with the secret's credentials, and sets nothing that would pin its session
    assert parsed["host"] == "leadpipe.proxy-xyz.eu-west-1.rds.amazonaws.com"
    assert (parsed["user"], parsed["password"], parsed["sslmode"]) == (
        "leadpipe_worker",
        RDS_SECRET["password"],
        "verify-full",
    )
    assert "options" not in parsed
    assert not settings.prepares_statements


def rotate(secret_arn: str, password: str) -> None:
    boto3.client("secretsmanager").put_secret_value(
        SecretId=secret_arn, SecretString=json.dumps({**RDS_SECRET, "password": password})
    )


def test_the_secret_is_cached_for_its_max_age(secret_arn: str) -> None:
    # Given a worker that has read the secret once (default max age: 300 s)
    settings = cloud_settings(secret_arn)
    assert conninfo_to_dict(database_conninfo(settings))["password"] == RDS_SECRET["password"]
    # When the password is rotated
    rotate(secret_arn, "rotated")
    # Then within the max age the worker reconnects with the value it has: no Secrets Manager call per connection
    assert conninfo_to_dict(database_conninfo(settings))["password"] == RDS_SECRET["password"]


def test_a_rotation_is_seen_once_the_max_age_has_passed(secret_arn: str) -> None:
    # Given a worker whose cached secret expires at once (max age 0 s)
    settings = cloud_settings(secret_arn, DB_SECRET_MAX_AGE_SECONDS="0")
    assert conninfo_to_dict(database_conninfo(settings))["password"] == RDS_SECRET["password"]
    # When the password is rotated, Then its next connection uses the new one, without a redeploy
    rotate(secret_arn, "rotated")
    assert conninfo_to_dict(database_conninfo(settings))["password"] == "rotated"


def test_a_local_database_url_gets_the_same_limits_and_keeps_its_own_options() -> None:
    # Given a local DATABASE_URL that already carries an option of its own
    settings = WorkerSettings.from_env(
        {"DATABASE_URL": "postgresql://me@127.0.0.1:5432/leads?options=-c%20search_path%3Dpublic"}
    )
    # When the worker builds its connection string
    parsed = conninfo_to_dict(database_conninfo(settings))
    # Then its option is kept and the worker's limits are added
    assert parsed["options"].startswith("-c search_path=public ")
    assert "-c statement_timeout=10000" in parsed["options"] and parsed["connect_timeout"] == "5"


@pytest.mark.parametrize(
    "env", [{}, {"DATABASE_URL": "postgresql://x@h/db", "DB_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:1:secret:x"}]
)
def test_exactly_one_credential_source(env: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="set exactly one of DATABASE_URL"):
        WorkerSettings.from_env(env)
