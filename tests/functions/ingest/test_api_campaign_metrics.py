"""Per-campaign metrics: only for the campaigns listed in `metric_campaigns`, whatever case the list uses."""

from __future__ import annotations

import json
from typing import Any

import pytest

from functions.ingest import handler as ingest
from functions.ingest.api import build_app
from functions.ingest.settings import IngestSettings
from tests.events import RecordingQueue, api_event


def campaign_metrics(capsys: pytest.CaptureFixture[str]) -> list[tuple[str, list[float]]]:
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    return [(doc["campaign"], doc["LeadsAcceptedByCampaign"]) for doc in emf if "LeadsAcceptedByCampaign" in doc]


def post(metric_campaigns: str, lead: dict[str, Any]) -> int:
    config = IngestSettings(LEADS_QUEUE_URL="https://sqs.invalid/q", METRIC_CAMPAIGNS=metric_campaigns)
    app = build_app(config, RecordingQueue().publish, ingest.logger, ingest.metrics)
    response = app.resolve(api_event(json.dumps(lead)), None)
    ingest.metrics.flush_metrics()
    return response["statusCode"]


@pytest.mark.parametrize("listed", ["summersale20", "SummerSale20", " SUMMERSALE20 "])
def test_a_campaign_listed_in_any_case_gets_its_metric(listed: str, capsys: pytest.CaptureFixture[str]) -> None:
    # Given metric_campaigns naming the campaign as ops typed it (cdk.json: lower case, mixed, padded)
    # When a lead of that campaign arrives (the contract upper-cases its code)
    status = post(listed, {"email": "ada@example.com", "campaign": "summersale20"})
    # Then it is counted under the campaign's canonical code
    assert status == 202
    assert campaign_metrics(capsys) == [("SUMMERSALE20", [1.0])]


def test_an_unlisted_campaign_gets_no_metric_of_its_own(capsys: pytest.CaptureFixture[str]) -> None:
    # Given one tracked campaign; When a lead of another arrives
    status = post("summersale20", {"email": "ada@example.com", "campaign": "WINTER"})
    # Then no per-campaign metric is emitted: the dimension's values stay a bounded list
    assert status == 202
    assert campaign_metrics(capsys) == []
