"""The drain breaker's probe gets a Lambda timeout long enough to decide, whatever database timeouts the settings allow.

The probe (functions/worker/probe_handler.py) connects with the worker's own `connect_timeout` and only then starts
its round-trip deadline (`time_left - connect_timeout`, floored at 0.5 s). Its Lambda timeout was a fixed 30 s
(infra/breaker.py), but `db_connect_timeout_seconds` may be up to 60 and is checked only against
`worker_timeout_seconds` (infra/config.py). With db_connect_timeout_seconds=30 a path that drops the SYN (a security
group or NACL change, a NAT losing the flow) makes libpq wait the full connect_timeout ("Maximum time to wait while
connecting", libpq docs, https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNECT-CONNECT-TIMEOUT),
so Lambda ends the probe at its 30 s timeout (Lambda Developer Guide, "Configure Lambda function timeout",
https://docs.aws.amazon.com/lambda/latest/dg/configuration-timeout.html). With connect_timeout >= 28 the probe's
round-trip deadline is also floored to 0.5 s for three round trips: a false "held" on a slow but healthy path. A probe
that times out neither holds nor resumes the drain: the worker's
batches keep failing on the same path and burn receives into the DLQ. DrainProbeErrors pages after
3 minutes, but the drain is not held meanwhile, nor after. Now infra/breaker.py derives the probe's timeout from the
settings: connect + statement timeout + margin + reserve + its API calls, at least 30 s.
"""

from __future__ import annotations

from typing import Any

from infra.config import SettingsError, settings_from_context
from tests.infra.conftest import synthesize
from tests.infra.template_queries import PROBE_HANDLER, function_by_handler, with_stage


def test_the_probe_outlasts_its_own_connect_timeout_and_the_workers_round_trip(tmp_path: Any) -> None:
    # Given a stage with a long connect timeout, which the settings model accepts (30 + 10 + 5 < 60)
    overrides = {
        "worker_timeout_seconds": 60,
        "db_connect_timeout_seconds": 30,
        "db_statement_timeout_seconds": 10,
        "db_lock_timeout_seconds": 5,
    }
    try:
        settings = settings_from_context(with_stage("prod", **overrides), "prod")
    except SettingsError:
        return  # refusing such settings is one fix
    # When the stack is synthesized
    _, template = synthesize(settings, str(tmp_path))
    _, probe = function_by_handler(template, PROBE_HANDLER)
    probe_timeout = probe["Properties"]["Timeout"]
    # Then the probe may wait as long as the worker would (connect, then one round trip) and still have time to decide
    needed = (
        settings.db_connect_timeout_seconds + settings.db_statement_timeout_seconds + 2 + 2
    )  # + margin + response reserve
    assert probe_timeout >= needed, (
        f"probe timeout {probe_timeout} s < connect {settings.db_connect_timeout_seconds} s + round trip + reserve "
        f"({needed} s)"
    )


def test_the_default_stage_keeps_the_probe_at_30_seconds(tmp_path: Any) -> None:
    # Given the default database timeouts (connect 5 s, statement 10 s): 5 + 10 + 2 + 2 + 10 s of API calls = 29 s
    settings = settings_from_context(with_stage("prod"), "prod")
    # When the stack is synthesized
    _, template = synthesize(settings, str(tmp_path))
    _, probe = function_by_handler(template, PROBE_HANDLER)
    # Then the probe keeps its 30 s floor
    assert probe["Properties"]["Timeout"] == 30
