"""The planner's inventory of custom metrics against what the functions' code publishes."""

from __future__ import annotations

import ast
from pathlib import Path

from infra.config import REPO_ROOT, settings_from_context
from leadpipe.custom_metrics import BY_CAMPAIGN, REFUSED_PREFIX, custom_metrics, refusal_codes
from leadpipe.plan import LaunchTicket, load_price_table, plan_launch
from tests.infra.template_queries import with_stage

FUNCTIONS = REPO_ROOT / "functions"


def published_metric_names(path: Path) -> set[str]:
    """Each `name=` given to Powertools' add_metric or single_metric; Rejected_<code> stands for every code."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if not (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) in ("add_metric", "single_metric")
        ):
            continue
        [name] = [k.value for k in node.keywords if k.arg == "name"]
        if isinstance(name, ast.Constant):
            names.add(name.value)
        else:  # f"Rejected_{error.code}"
            assert isinstance(name, ast.JoinedStr) and name.values[0].value == REFUSED_PREFIX, ast.unparse(name)
            names |= {REFUSED_PREFIX + code for code in refusal_codes()}
    return names


def test_the_inventory_names_every_metric_the_functions_publish() -> None:
    # Given every metric name in the deployed code
    published = set().union(*(published_metric_names(path) for path in FUNCTIONS.rglob("*.py")))
    # Then the planner's inventory holds exactly those (the per-campaign metric once per tracked campaign)
    everything = settings_from_context(
        with_stage(
            "dev",
            db_secret_arn="arn:aws:secretsmanager:eu-west-1:123456789012:secret:leadpipe/db-AbCdEf",
            captcha_provider="turnstile",
            captcha_secret_arn="arn:aws:secretsmanager:eu-west-1:123456789012:secret:leadpipe/captcha-AbCdEf",
            events_enabled=True,
        ),
        "dev",
    )
    assert published == {*custom_metrics(everything), BY_CAMPAIGN}
    assert "Rejected_captcha_expired" in published and len(published) > 20


def test_the_plan_prices_each_metric_a_stage_publishes() -> None:
    # Given a stage with a database and two tracked campaigns, no captcha
    stage = settings_from_context(
        with_stage(
            "dev",
            db_secret_arn="arn:aws:secretsmanager:eu-west-1:123456789012:secret:leadpipe/db-AbCdEf",
            metric_campaigns=["SUMMERSALE20", "WINTER"],
        ),
        "dev",
    )
    # When its launch is planned
    ticket = LaunchTicket.from_inputs(campaign="X", leads=1000, within_minutes=10)
    plan = plan_launch(ticket, stage, load_price_table())
    # Then the fixed costs count the ingest's 4 + 5 refusal codes, the worker's 5, the probe's 1 and its drain
    # governor's 2 (writers, cap), 2 campaigns
    [cloudwatch] = [c for c in plan.fixed_monthly_costs if c.item.startswith("CloudWatch")]
    assert len(custom_metrics(stage)) == 4 + 5 + 5 + 1 + 2 + 2
    assert "19 custom metrics" in cloudwatch.item
