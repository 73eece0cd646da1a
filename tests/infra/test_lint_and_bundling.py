"""cfn-lint over the synthesized templates, and one real, docker-free bundle through the CDK CLI."""

from __future__ import annotations

import json
import os
import subprocess
import zipfile
from pathlib import Path

import pytest
from aws_cdk.assertions import Template

from infra.config import REPO_ROOT, settings_from_file
from tests.infra.conftest import synthesize


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_cfn_lint_finds_no_errors(stage: str, tmp_path: Path) -> None:
    template, _ = synthesize(settings_from_file(stage), str(tmp_path / "out"))
    path = tmp_path / "template.json"
    path.write_text(json.dumps(template))
    # Errors only (E*): warnings and informational findings do not fail the build.
    result = subprocess.run(
        [str(REPO_ROOT / ".venv/bin/cfn-lint"), "--format", "parseable", "--regions", "eu-west-1", "--", str(path)],
        capture_output=True,
        text=True,
    )
    errors = [line for line in result.stdout.splitlines() if ":E" in line]
    assert errors == [], "\n".join(errors)
    assert result.returncode in (0, 4, 8), result.stderr  # 4 = warnings, 8 = informational


@pytest.mark.slow
def test_cdk_cli_synth_bundles_both_functions_without_docker(tmp_path: Path) -> None:
    # Given the pinned CDK CLI and no Docker, no AWS credentials
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20", CDK_DISABLE_VERSION_CHECK="1", CDK_DISABLE_CLI_TELEMETRY="true", PATH=f"/nonexistent-docker:{env['PATH']}")
    out = tmp_path / "cdk.out"
    # When `cdk synth` runs for prod (the stage with every resource)
    result = subprocess.run(
        ["npx", "--no-install", "cdk", "synth", "-c", "stage=prod", "--no-notices", "--no-version-reporting", "--quiet", "--output", str(out)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    # Then it succeeds offline, with cdk-nag clean
    assert result.returncode == 0, result.stderr[-3000:]
    template = Template.from_json(json.loads((out / "Leadpipe-prod.template.json").read_text()))
    assets = json.loads((out / "Leadpipe-prod.assets.json").read_text())["files"]
    # And each function's asset holds its handler, the contract and its own dependencies only
    bundles = {}
    for function in template.find_resources("AWS::Lambda::Function").values():
        handler = function["Properties"].get("Handler", "")
        if handler.startswith("functions."):
            asset_hash = function["Properties"]["Code"]["S3Key"].removesuffix(".zip")
            bundles[handler] = out / assets[asset_hash]["source"]["path"]
    ingest = bundles["functions.ingest.handler.lambda_handler"]
    worker = bundles["functions.worker.handler.lambda_handler"]
    assert (ingest / "functions/ingest/handler.py").is_file() and (ingest / "functions/contract/lead.py").is_file()
    assert not (ingest / "functions/worker").exists()
    assert not list(ingest.glob("psycopg*")), "the ingest must not carry psycopg"
    assert (worker / "functions/worker/handler.py").is_file()
    assert (worker / "functions/worker/migrations/0001_create_leads.sql").is_file()
    assert not (worker / "functions/ingest").exists()
    # psycopg's C extension built for Lambda: CPython 3.14 on arm64 (aarch64) Linux
    binaries = [p.name for p in (worker / "psycopg_binary").glob("_psycopg.cpython-*.so")]
    assert binaries == ["_psycopg.cpython-314-aarch64-linux-gnu.so"]
    pydantic_core = [p.name for p in (worker / "pydantic_core").glob("_pydantic_core.cpython-*.so")]
    assert pydantic_core == ["_pydantic_core.cpython-314-aarch64-linux-gnu.so"]
    # The runtime's own boto3/botocore are used; a second copy would only add 30 MB
    assert not (worker / "botocore").exists() and not (ingest / "botocore").exists()
    assert bundles["functions.worker.migrate_handler.lambda_handler"] == worker
