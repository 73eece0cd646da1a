"""cfn-lint over the synthesized templates, and one real, docker-free bundle through the CDK CLI."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from aws_cdk.assertions import Template

from infra.bundling import LAMBDA_PYTHON_VERSION
from infra.config import REPO_ROOT
from tests.infra.conftest import SynthesizedStage, cfn_lint_serverless

# cfn-lint ORs one bit per severity into its exit code (2 error, 4 warning, 8 informational);
# 1 or anything above 15 means cfn-lint itself failed.
CFN_LINT_ERROR_BIT = 2
CFN_LINT_FINDING_BITS = 2 | 4 | 8
CDK_SYNTH_TIMEOUT_SECONDS = 600


# e_machine of an ELF header (little-endian, offset 18) for AArch64, the CPU of Lambda's arm64.
ELF_MACHINE_AARCH64 = 183


def elf_machine(path: Path) -> int | None:
    """The CPU an ELF file is built for, or None when it is not ELF."""
    header = path.read_bytes()[:20]
    return int.from_bytes(header[18:20], "little") if header[:4] == b"\x7fELF" else None


def lint_failed(returncode: int) -> bool:
    """True when cfn-lint found an error or could not lint; warnings and informational findings pass."""
    return bool(returncode & CFN_LINT_ERROR_BIT) or returncode & ~CFN_LINT_FINDING_BITS != 0


@pytest.mark.parametrize(
    ("returncode", "failed"),
    [(0, False), (4, False), (8, False), (12, False), (2, True), (6, True), (14, True), (1, True), (32, True)],
)
def test_only_the_error_bit_or_a_lint_crash_fails_the_build(returncode: int, failed: bool) -> None:
    # Given cfn-lint's OR-ed exit codes: 12 is warnings plus informational findings, no error
    # When it is read  Then only an error (bit 2) or cfn-lint's own failure counts
    assert lint_failed(returncode) is failed


def test_cfn_lint_reports_an_error_it_is_shown(tmp_path: Path) -> None:
    # Given a template with a real error: a queue whose retention is over SQS's 14-day maximum
    path = tmp_path / "broken.json"
    path.write_text(
        json.dumps(
            {"Resources": {"Q": {"Type": "AWS::SQS::Queue", "Properties": {"MessageRetentionPeriod": 99_999_999}}}}
        )
    )
    # When cfn-lint checks it, as the session's run checks the stages  Then the error bit is set and the check fails
    result = cfn_lint_serverless([path])
    assert result.returncode & CFN_LINT_ERROR_BIT, result.stdout
    assert lint_failed(result.returncode)


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_cfn_lint_finds_no_errors(
    stage: str, stages: dict[str, SynthesizedStage], cfn_lint_of_every_stage: subprocess.CompletedProcess[str]
) -> None:
    # Given the session's one cfn-lint run over every stage's template (its rules plus the serverless ones)
    result = cfn_lint_of_every_stage
    path = str(stages[stage].template_path)
    # Then this stage's template has no error (E*): warnings and informational findings do not fail the build
    errors = [line for line in result.stdout.splitlines() if line.startswith(f"{path}:") and ":E" in line]
    assert errors == [], "\n".join(errors)
    assert not lint_failed(result.returncode), result.stdout + result.stderr


@pytest.mark.slow
@pytest.mark.timeout(CDK_SYNTH_TIMEOUT_SECONDS + 120)
def test_cdk_cli_synth_bundles_both_functions_without_docker(tmp_path: Path) -> None:
    # Given the pinned CDK CLI, no AWS credentials, and a `docker` that records any call and fails
    fake_docker = tmp_path / "bin" / "docker"
    fake_docker.parent.mkdir()
    docker_calls = tmp_path / "docker-calls"
    fake_docker.write_text(f'#!/bin/sh\necho "$@" >> {docker_calls}\nexit 1\n')
    fake_docker.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20",
        CDK_DISABLE_VERSION_CHECK="1",
        CDK_DISABLE_CLI_TELEMETRY="true",
        PATH=f"{fake_docker.parent}:{env['PATH']}",
        CDK_DOCKER=str(fake_docker),
    )
    out = tmp_path / "cdk.out"
    # When `cdk synth` runs for prod (the stage with every resource)
    result = subprocess.run(
        [
            "npx",
            "--no-install",
            "cdk",
            "synth",
            "-c",
            "stage=prod",
            "--no-notices",
            "--no-version-reporting",
            "--quiet",
            "--output",
            str(out),
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=CDK_SYNTH_TIMEOUT_SECONDS,
    )
    # Then it succeeds without credentials and without ever calling Docker, with cdk-nag clean
    # (not offline: pip fetches the functions' wheels from the package index unless cached)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not docker_calls.exists(), docker_calls.read_text()
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
    # psycopg's C extension built for Lambda: CPython 3.13 on arm64 (aarch64) Linux
    binaries = [p.name for p in (worker / "psycopg_binary").glob("_psycopg.cpython-*.so")]
    assert binaries == ["_psycopg.cpython-313-aarch64-linux-gnu.so"]
    pydantic_core = [p.name for p in (worker / "pydantic_core").glob("_pydantic_core.cpython-*.so")]
    assert pydantic_core == ["_pydantic_core.cpython-313-aarch64-linux-gnu.so"]
    # And every compiled file of both bundles is built for the deployed runtime: an extension module
    # tagged for CPython 3.13 (or the stable ABI), and machine code for arm64, never this machine's
    compiled = [p for bundle in (ingest, worker) for p in bundle.rglob("*.so*") if p.is_file()]
    assert compiled, "the worker's bundle must hold psycopg's and pydantic's compiled modules"
    wrong_machine = [str(p.relative_to(out)) for p in compiled if elf_machine(p) != ELF_MACHINE_AARCH64]
    assert wrong_machine == [], f"built for another machine than Lambda arm64: {wrong_machine}"
    lambda_tag = f".cpython-{LAMBDA_PYTHON_VERSION.replace('.', '')}-aarch64-linux-gnu.so"
    extensions = [p.name for p in compiled if ".cpython-" in p.name or ".abi3." in p.name]
    wrong_python = [name for name in extensions if not name.endswith((lambda_tag, ".abi3.so"))]
    assert wrong_python == [], f"built for another CPython than {LAMBDA_PYTHON_VERSION}: {wrong_python}"
    # The runtime's own boto3/botocore are used; a second copy would only add 30 MB
    assert not (worker / "botocore").exists() and not (ingest / "botocore").exists()
    assert bundles["functions.worker.migrate_handler.lambda_handler"] == worker
