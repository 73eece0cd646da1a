"""`leadpipe spike --url`: a deployed API's leads are verified in that stage's table, not dev's."""

from __future__ import annotations

import importlib

import pytest

from infra.config import PipelineSettings, settings_from_context
from leadpipe.cli import main as leadpipe
from tests.infra.template_queries import with_stage

spike_command = importlib.import_module("leadpipe.cli.spike")  # the module; `leadpipe.cli.spike` is the command


def stage_with_its_own_table(stage: str) -> PipelineSettings:
    """cdk.json as a team with one schema per stage writes it."""
    return settings_from_context(with_stage(stage, leads_table=f"{stage}_leads.leads"), stage)


def test_a_url_is_verified_in_the_named_stages_table(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given stages whose leads tables differ
    monkeypatch.setattr(spike_command, "settings_from_file", stage_with_its_own_table)
    # When a spike names a deployed API, its stage and its database
    options = {"url": "https://api.example.com/prod/leads", "stage": "prod", "database_url": "postgresql:///leads"}
    target = spike_command.spike_target({**options, "stack": None, "data_dir": None})
    # Then the accepted leads are looked for in that stage's table
    assert (target.url, target.leads_table) == (options["url"], "prod_leads.leads")


def test_a_url_with_a_database_but_no_stage_is_refused(capsys: pytest.CaptureFixture) -> None:
    # When a spike at a deployed API would verify in a database without knowing which stage's table
    status = leadpipe(["spike", "--url", "http://127.0.0.1:1/leads", "--database-url", "postgresql:///x"])
    # Then it stops before sending anything, saying what to add
    assert status == 2
    assert capsys.readouterr().err == "leadpipe: with --url, name the stage whose leads table to verify (--stage)\n"
