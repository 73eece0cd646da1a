"""Independent rule sets over every stage of cdk.json: cdk-nag (AwsSolutions and ServerlessChecks), cfn-lint with
the serverless rules, and checkov. Every finding kept on purpose is acknowledged on its resource with a reason
(infra/rule_acknowledgements.py); anything else fails here.

A clean run is not evidence that the stack works (the AWS-semantics tests beside this one are): it shows that
what these tools know to look for was looked at, and every exception was decided.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import aws_lambda as lambda_

from infra.config import REPO_ROOT, settings_from_file
from tests.infra.conftest import SynthesizedStage, cfn_lint_serverless, synthesize

CHECKOV_TIMEOUT_SECONDS = 300
# checkov pins an old boto3, so it lives in its own venv (the Makefile builds it); PATH is the fallback.
CHECKOV = REPO_ROOT / ".venv-checkov" / "bin" / "checkov"
# A template with a function that breaks checkov's DLQ and concurrency rules: the run must report it.
CANARY = {
    "Resources": {
        "Canary": {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "Runtime": "python3.13",
                "Handler": "x.y",
                "Role": "arn:aws:iam::123456789012:role/r",
                "Code": {"ZipFile": "x"},
            },
        }
    }
}


def checkov_binary() -> str:
    found = str(CHECKOV) if CHECKOV.is_file() else shutil.which("checkov")
    assert found, f"checkov is not installed: `make test` builds {CHECKOV.parent.parent} (checkov pins its own boto3)"
    return found


@pytest.fixture(scope="session")
def checkov_reports(stages: dict[str, SynthesizedStage], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One checkov run over every stage's template and the canary, by file name."""
    folder = tmp_path_factory.mktemp("checkov")
    for stage in stages.values():
        shutil.copy(stage.template_path, folder / stage.template_path.name)
    (folder / "canary.template.json").write_text(json.dumps(CANARY))
    result = subprocess.run(
        [
            checkov_binary(),
            "-d",
            str(folder),
            "--framework",
            "cloudformation",
            "-o",
            "json",
            "--compact",
            "--skip-download",
        ],
        capture_output=True,
        text=True,
        timeout=CHECKOV_TIMEOUT_SECONDS,
    )
    reports = json.loads(result.stdout)
    by_file: dict[str, Any] = {}
    for report in reports if isinstance(reports, list) else [reports]:
        for outcome in ("failed_checks", "skipped_checks", "passed_checks"):
            for check in report["results"].get(outcome, []):
                by_file.setdefault(Path(check["file_path"]).name, {}).setdefault(outcome, []).append(check)
    return by_file


def metadata_of(stage: SynthesizedStage, tool: str) -> dict[str, Any]:
    return {i: r["Metadata"][tool] for i, r in stage.resources.items() if tool in r.get("Metadata", {})}


def test_cdk_nag_packs_pass_on_every_stage(stages: dict[str, SynthesizedStage]) -> None:
    # Given every stage, synthesized (once per session) with AwsSolutions and ServerlessChecks attached
    # Then each synthesized: an unacknowledged error would have raised in the fixture
    assert set(stages) >= {"dev", "prod", "staging"}
    for stage in stages.values():
        assert stage.template_path.is_file()


def test_an_unacknowledged_serverless_finding_stops_synth(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Given the real stack plus one function nobody decided about
    import tests.infra.conftest as conftest

    class Extended(conftest.LeadpipeStack):
        def __init__(self, scope: Any, construct_id: str, **kwargs: Any) -> None:
            super().__init__(scope, construct_id, **kwargs)
            lambda_.Function(
                self, "Bare", runtime=lambda_.Runtime.PYTHON_3_13, handler="x.y", code=lambda_.Code.from_inline("x=1")
            )

    monkeypatch.setattr(conftest, "LeadpipeStack", Extended)
    # When it is synthesized with the packs  Then synth stops, naming a ServerlessChecks rule
    with pytest.raises(Exception) as stopped:
        synthesize(settings_from_file("dev"), str(tmp_path))
    assert "Serverless-LambdaDLQ" in str(stopped.value)


def test_cfn_lint_with_the_serverless_rules_finds_nothing_undecided(
    stages: dict[str, SynthesizedStage], cfn_lint_of_every_stage: subprocess.CompletedProcess[str]
) -> None:
    # Given every stage's template  When cfn-lint runs with the serverless rules (one run for all)
    result = cfn_lint_of_every_stage
    # Then it reports nothing: no error, warning or serverless finding that is not acknowledged with a reason
    assert result.stdout.strip() == "", result.stdout
    assert result.returncode == 0, result.stderr[-2000:]
    for stage in stages.values():
        for logical_id, lint in metadata_of(stage, "cfn-lint").items():
            config = lint["config"]
            assert set(config["ignore_checks"]) == set(config["ignore_reasons"]), logical_id
            assert all(reason.strip() for reason in config["ignore_reasons"].values()), logical_id


def test_cfn_lint_serverless_rules_do_run(tmp_path: Path) -> None:
    # Given the canary function (no log group, no tracing)  Then the serverless rules report it: they are loaded
    path = tmp_path / "canary.json"
    path.write_text(json.dumps(CANARY))
    assert ":WS1000:" in cfn_lint_serverless([path]).stdout


@pytest.mark.timeout(CHECKOV_TIMEOUT_SECONDS + 60)
def test_checkov_finds_nothing_undecided(stages: dict[str, SynthesizedStage], checkov_reports: dict[str, Any]) -> None:
    # Given one checkov run over every stage's template and a canary
    # Then the canary's missing DLQ is reported: the run looked
    assert "CKV_AWS_116" in {c["check_id"] for c in checkov_reports["canary.template.json"]["failed_checks"]}
    for stage in stages.values():
        report = checkov_reports[stage.template_path.name]
        # And no stage has a failed check
        failed = [(c["check_id"], c["resource"]) for c in report.get("failed_checks", [])]
        assert failed == [], f"{stage.settings.stage}: {failed}"
        assert report.get("passed_checks"), "checkov must have checked something"
        # And every skip is one the template carries, with its reason
        skips = metadata_of(stage, "checkov")
        for skipped in report.get("skipped_checks", []):
            logical_id = skipped["resource"].split(".", 1)[1]
            [entry] = [s for s in skips[logical_id]["skip"] if s["id"] == skipped["check_id"]]
            assert entry["comment"].strip(), (logical_id, entry)
