"""`leadpipe plan` prices the alarms each stage really deploys, counted in its synthesized template.

CloudWatch bills every standard alarm per month (https://aws.amazon.com/cloudwatch/pricing/), so a
count kept by hand in the planner drifts whenever a construct adds an alarm.
"""

from __future__ import annotations

import re

from leadpipe.plan import LaunchTicket, load_price_table, plan_launch
from tests.infra.conftest import SynthesizedStage


def priced_alarms(stage: SynthesizedStage) -> int:
    plan = plan_launch(
        LaunchTicket.from_inputs(campaign="TEST", leads=1_000, within_minutes=10), stage.settings, load_price_table()
    )
    counts = [re.match(r"CloudWatch: (\d+) (?:events-lane )?alarms", c.item) for c in plan.fixed_monthly_costs]
    return sum(int(match.group(1)) for match in counts if match)


def test_the_plan_prices_every_alarm_the_stage_deploys(stage: SynthesizedStage) -> None:
    # Given a stage of cdk.json, synthesized
    deployed = [r for r in stage.resources.values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    # When the launch review prices its fixed monthly costs
    # Then it counts exactly the alarms the template holds
    assert priced_alarms(stage) == len(deployed)
