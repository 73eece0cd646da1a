"""`leadpipe spike --db-outage-after`: the local database stalls mid-burst; the queue holds the leads."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from leadpipe.cli import main as leadpipe
from tests.e2e.conftest import RunningPipeline

RATE = 60  # leads per second, from 4 clients
OUTAGE_AFTER = 1  # the database stalls 1 s into the burst
SLOWEST_RATE = 10  # leads per second sent on the slowest (busiest) machine seen


def test_a_stalled_database_costs_time_never_leads(
    local_pipeline: RunningPipeline, capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    # Given the running local pipeline, its own embedded PostgreSQL, stalled for longer than the ingest may take to
    # answer: an ingest that waited on the database would then time out, not just answer late
    outage_seconds = local_pipeline.pipeline.settings.ingest_timeout_seconds + 1
    total = RATE * (OUTAGE_AFTER + outage_seconds)  # the burst lasts until the database comes back
    report = tmp_path / "outage.png"
    # When leads are sent at 60/s and the database is stalled 1 s in until the burst ends
    code = leadpipe(
        [
            "spike",
            "--data-dir",
            local_pipeline.info.data_dir,
            "--total",
            str(total),
            "--rate",
            str(RATE),
            "--concurrency",
            "4",
            "--campaign",
            "e2eoutage",
            "--db-outage-after",
            str(OUTAGE_AFTER),
            "--db-outage-seconds",
            str(outage_seconds),
            "--report",
            str(report),
            "--json",
        ]
    )
    summary = json.loads(capsys.readouterr().out)
    # Then the API accepted every lead, the database away or not
    assert code == 0
    assert (summary["accepted"], summary["errors"]) == (total, 0)
    start, end = summary["db_outage"]
    assert end - start >= outage_seconds
    # the queue held what arrived meanwhile (at least 10/s for the whole stall on the slowest machine seen)
    assert summary["max_queued"] >= SLOWEST_RATE * outage_seconds
    # and once the database was back, every lead was stored exactly once
    assert (summary["lost"], summary["duplicates"], summary["drained"]) == (0, 0, True)
    assert local_pipeline.count("campaign = 'E2EOUTAGE'") == total
    # While it was stalled nobody could ask it: the samples in the window have no row count
    with report.with_suffix(".csv").open() as handle:
        rows = list(csv.DictReader(handle))
    inside = [r for r in rows if start + 0.5 < float(r["seconds"]) < end - 0.5]
    assert inside and all(r["stored"] == "" for r in inside)
    assert int(rows[-1]["stored"]) == total
