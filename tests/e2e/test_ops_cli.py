"""The ops commands against the running local pipeline: status, dlq list / redrive / purge, db migrate."""

from __future__ import annotations

import json
import uuid

import psycopg
import pytest

from functions.worker.migrate import migration_files
from leadpipe.cli import main as leadpipe
from tests.e2e.conftest import RunningPipeline, http_request, wait_for


def run_cli(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str]:
    code = leadpipe(list(args))
    return code, capsys.readouterr().out


def test_poison_is_listed_fixed_redriven_and_stored_once(local_pipeline: RunningPipeline, capsys) -> None:
    info = local_pipeline.info
    data_dir = ["--data-dir", info.data_dir]
    email = f"stuck-{uuid.uuid4().hex[:8]}@example.com"
    # Given a database rule that refuses this campaign (the "bug" is in the database)
    with psycopg.connect(info.database_url, autocommit=True) as admin:
        admin.execute(f"ALTER TABLE {info.leads_table} ADD CONSTRAINT e2e_no_blocked CHECK (campaign <> 'BLOCKED')")
    try:
        answer = http_request(
            info.api_url,
            "POST",
            json.dumps({"email": email, "campaign": "blocked"}),
            {"Content-Type": "application/json"},
        )
        assert answer.status == 202

        # When it has failed max_receive_count times it sits in the DLQ
        def listed() -> list[dict]:
            code, out = run_cli(capsys, "dlq", "list", "--json", *data_dir)
            assert code == 0 and email not in out
            return [m for m in json.loads(out)["messages"] if m["lead_id"] == answer.json()["lead_id"]]

        [letter] = wait_for(listed, message="the refused lead in the DLQ")
        # Then ops see it, masked, with its receive count
        assert letter["campaign"] == "BLOCKED"
        assert letter["email"] == email[0] + "***@example.com"
        assert letter["receive_count"] >= 2
    finally:
        # When the database is fixed
        with psycopg.connect(info.database_url, autocommit=True) as admin:
            admin.execute(f"ALTER TABLE {info.leads_table} DROP CONSTRAINT e2e_no_blocked")
    # And the DLQ is redriven (listing did not consume it)
    code, out = run_cli(capsys, "dlq", "redrive", *data_dir)
    assert code == 0 and out.startswith("moved ")
    # Then the lead is stored exactly once, and the DLQ is empty of it
    wait_for(lambda: local_pipeline.count("email = %s", (email,)) == 1, message="redriven lead stored")
    code, out = run_cli(capsys, "dlq", "list", "--json", *data_dir)
    assert code == 0 and answer.json()["lead_id"] not in out
    code, out = run_cli(capsys, "status", "--json", *data_dir)
    status = json.loads(out)
    assert code == 0 and status["leads_stored"] >= 1 and "BLOCKED" in status["stored_last_hour_by_campaign"]


def test_purge_needs_confirmation(local_pipeline: RunningPipeline, capsys) -> None:
    info = local_pipeline.info
    local_pipeline.sqs.send_message(QueueUrl=info.dead_letter_queue_url, MessageBody="junk")
    code = leadpipe(["dlq", "purge", "--data-dir", info.data_dir])  # no --yes, no terminal
    assert code == 2
    assert "confirm with --yes" in capsys.readouterr().err
    assert run_cli(capsys, "dlq", "purge", "--yes", "--data-dir", info.data_dir)[0] == 0
    assert local_pipeline.queue_attribute(info.dead_letter_queue_url, "ApproximateNumberOfMessages") == 0


def test_db_migrate_is_idempotent_and_says_so(local_pipeline: RunningPipeline, capsys) -> None:
    info = local_pipeline.info
    code, out = run_cli(capsys, "db", "migrate", "--database-url", info.database_url)
    assert code == 0 and out.strip() == "leadpipe.leads is up to date; nothing applied"
    table = f"m{uuid.uuid4().hex[:6]}.leads"
    code, out = run_cli(capsys, "db", "migrate", "--database-url", info.database_url, "--table", table)
    assert out.strip() == f"applied to {table}: {', '.join(version for version, _ in migration_files())}"
    with psycopg.connect(info.database_url, autocommit=True) as admin:
        admin.execute(f"DROP SCHEMA {table.split('.')[0]} CASCADE")


def test_cli_errors_are_one_readable_line(capsys) -> None:
    assert leadpipe(["status", "--data-dir", "/nonexistent"]) == 2
    assert capsys.readouterr().err.startswith("leadpipe: no local pipeline is running")
    assert leadpipe(["db", "migrate", "--database-url", "postgresql://nobody@127.0.0.1:1/x"]) == 2
    assert "cannot reach the database" in capsys.readouterr().err
    assert leadpipe(["dlq", "list", "--limit", "0"]) == 2
    assert "must be 1 or more" in capsys.readouterr().err


def test_spike_sends_verifies_and_draws(local_pipeline: RunningPipeline, capsys, tmp_path) -> None:
    # Given the running local pipeline
    report = tmp_path / "spike.png"
    # When a small spike is sent through it with a report
    code, out = run_cli(
        capsys,
        "spike",
        "--data-dir",
        local_pipeline.info.data_dir,
        "--total",
        "300",
        "--concurrency",
        "8",
        "--campaign",
        "e2espike",
        "--report",
        str(report),
        "--json",
    )
    summary = json.loads(out)
    # Then every lead was accepted and stored exactly once, never past the writer cap; a post the stage
    # throttle answered 429 (dev: 100/s, burst 200) was sent again after Retry-After, as a form would
    assert code == 0
    assert (summary["accepted"], summary["errors"], summary["rejected"]) == (300, 0, 0)
    assert summary["sent"] == summary["accepted"] + summary["throttled"]
    assert (summary["lost"], summary["duplicates"], summary["drained"]) == (0, 0, True)
    assert summary["max_worker_connections"] <= local_pipeline.pipeline.settings.max_concurrency
    assert local_pipeline.count("campaign = 'E2ESPIKE'") == 300
    # And the picture and its data were written
    assert report.stat().st_size > 10_000 and report.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = report.with_suffix(".csv").read_text().splitlines()
    assert lines[0] == (
        "seconds,queued,stored,db_write_rate_per_s,worker_connections,active_writers,predicted_queued,governor_writers"
    )
    assert lines[-1].split(",")[2] == "300"


def test_spike_refuses_a_deployed_stack_without_an_explicit_url(capsys) -> None:
    assert leadpipe(["spike", "--stack", "Leadpipe-prod"]) == 2
    assert "--url" in capsys.readouterr().err
    assert leadpipe(["spike", "--url", "ftp://example.com/leads"]) == 2
    assert "not an http(s) URL" in capsys.readouterr().err


def test_db_erase_removes_one_persons_leads(local_pipeline: RunningPipeline, capsys) -> None:
    info = local_pipeline.info
    email = f"Erase.Me-{uuid.uuid4().hex[:6]}@Example.com"
    for campaign in ("one", "two"):
        http_request(
            info.api_url,
            "POST",
            json.dumps({"email": email, "campaign": campaign}),
            {"Content-Type": "application/json"},
        )
    http_request(info.api_url, "POST", json.dumps({"email": "keep-" + email}), {"Content-Type": "application/json"})
    wait_for(lambda: local_pipeline.count("email LIKE %s", ("%" + email.lower(),)) == 3, message="rows to erase")
    # When ops erase the person, typed in another case
    code, out = run_cli(
        capsys, "db", "erase", "--email", email.upper(), "--stage", "dev", "--database-url", info.database_url
    )
    # Then both of their leads are gone and nobody else's
    assert code == 0 and out.startswith("erased 2 row(s)")
    assert local_pipeline.count("email = %s", (email.lower(),)) == 0
    assert local_pipeline.count("email = %s", ("keep-" + email.lower(),)) == 1
    assert (
        leadpipe(["db", "erase", "--email", "not-an-address", "--stage", "dev", "--database-url", info.database_url])
        == 2
    )
    assert "is not an e-mail address" in capsys.readouterr().err


def test_drain_commands_fail_in_one_line_without_a_pipeline_or_a_reason(capsys) -> None:
    assert leadpipe(["drain", "status", "--data-dir", "/nonexistent"]) == 2
    assert capsys.readouterr().err.startswith("leadpipe: no local pipeline is running")
    assert leadpipe(["drain", "pause", "--who", "dba"]) == 2  # no --why
    assert "--why" in capsys.readouterr().err
    assert leadpipe(["drain", "pause", "--who", " ", "--why", "maintenance", "--data-dir", "/nonexistent"]) == 2
    assert capsys.readouterr().err == "leadpipe: a pause needs both who paused it and why\n"


def test_status_shows_the_drain_running(local_pipeline: RunningPipeline, capsys) -> None:
    code, out = run_cli(capsys, "status", "--data-dir", local_pipeline.info.data_dir)
    assert code == 0 and "  drain                 running (since " in out
