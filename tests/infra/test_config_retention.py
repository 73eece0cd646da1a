"""The settings of the retention and of the per-campaign metrics: defaults, and bad values that stop synth."""

from __future__ import annotations

import pytest

from infra.config import SettingsError, settings_from_context
from tests.infra.template_queries import with_stage


def test_leads_are_kept_and_tombstones_outlive_a_redriven_message_by_default() -> None:
    # Given a stage that says nothing about retention
    settings = settings_from_context(with_stage("dev"), "dev")
    # Then leads are kept, and a tombstone lives past SQS's 14 days plus a redrive's 14 more
    # (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/setting-up-dead-letter-queue-retention.html)
    assert settings.lead_retention_days is None
    assert settings.erasure_tombstone_retention_days == 30


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"lead_retention_days": 0},
            "leadpipe.stages.dev.lead_retention_days: Input should be greater than or equal to 1",
        ),
        (
            {"erasure_tombstone_retention_days": 14},
            "leadpipe.stages.dev.erasure_tombstone_retention_days: Input should be greater than or equal to 29",
        ),
        ({"metric_campaigns": ["summer sale!"]}, "leadpipe.stages.dev.metric_campaigns.0: must be letters, digits"),
    ],
)
def test_bad_values_name_the_key(overrides: dict, message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        settings_from_context(with_stage("dev", **overrides), "dev")
    assert message in str(caught.value)


def test_metric_campaigns_are_kept_in_the_form_leads_carry() -> None:
    # Given campaigns typed in any case in cdk.json
    settings = settings_from_context(with_stage("dev", metric_campaigns=["summersale20", " Winter-Promo "]), "dev")
    # Then they are compared as the contract stores a lead's code: upper case
    assert settings.metric_campaigns == ["SUMMERSALE20", "WINTER-PROMO"]
