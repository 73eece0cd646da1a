"""The destination settings: a bad value stops synth with one line naming the key."""

from __future__ import annotations

from typing import Any

import pytest

from infra.config import SettingsError, settings_from_context
from tests.infra.template_queries import with_stage

SECRET = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:leadpipe/crm-AbCdEf"


def destination(**overrides: Any) -> dict[str, Any]:
    return {"name": "crm", "url": "https://crm.example.com/leads", "invocation_rate_per_second": 5, **overrides}


@pytest.mark.parametrize(
    ("stage", "message"),
    [
        ({"event_destinations": [destination()]}, "leadpipe.stages.dev.events_enabled: event_destinations need"),
        (
            {"events_enabled": True, "event_destinations": [destination(invocation_rate_per_second=301)]},
            "leadpipe.stages.dev.event_destinations.0.invocation_rate_per_second: Input should be less than or equal",
        ),
        (
            {"events_enabled": True, "event_destinations": [destination(url="http://crm.example.com/leads")]},
            "leadpipe.stages.dev.event_destinations.0: url must be https",
        ),
        (
            {"events_enabled": True, "event_destinations": [destination(url_secret_arn=SECRET)]},
            "leadpipe.stages.dev.event_destinations.0: set exactly one of url or url_secret_arn",
        ),
        (
            {"events_enabled": True, "event_destinations": [destination(), destination()]},
            "leadpipe.stages.dev.event_destinations: destination names must be unique",
        ),
        (
            {"events_enabled": True, "event_destinations": [destination(include_email=True)]},
            "leadpipe.stages.dev.event_destinations.0: include_email applies to body 'slack_text' only",
        ),
        (
            {"events_enabled": True, "event_destinations": [destination(auth={"kind": "api_key", "secret_arn": "x"})]},
            "leadpipe.stages.dev.event_destinations.0.auth.api_key.secret_arn: String should match pattern",
        ),
        (
            {"events_enabled": True, "event_destinations": [destination(max_event_age_hours=25)]},
            "leadpipe.stages.dev.event_destinations.0.max_event_age_hours: Input should be less than or equal to 24",
        ),
    ],
)
def test_a_bad_destination_setting_names_its_key(stage: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError) as raised:
        settings_from_context(with_stage("dev", **stage), "dev")
    assert message in str(raised.value)


def test_events_are_off_unless_a_stage_turns_them_on() -> None:
    settings = settings_from_context(with_stage("dev"), "dev")
    assert settings.events_enabled is False and settings.event_destinations == []


def test_campaign_filters_are_stored_as_the_contract_normalises_campaigns() -> None:
    stage = {"events_enabled": True, "event_destinations": [destination(campaigns=[" summersale20 "])]}
    assert settings_from_context(with_stage("dev", **stage), "dev").event_destinations[0].campaigns == ["SUMMERSALE20"]
