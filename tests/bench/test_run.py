"""`make bench` is never part of `make test`, so nothing else notices when a change breaks it: twice
today it died half-way (a renamed keyword argument, a context without a clock). Its measuring code
runs here on tiny inputs; only that each measure runs and yields a figure is checked, never a speed."""

from __future__ import annotations

import math

import pytest

from bench import run as bench
from bench.main_app import main_app_under_drain
from functions.ingest import handler as ingest_handler
from infra.config import settings_from_file
from tests.conftest import LeadsDatabase


def real_figures(figures: dict[str, float]) -> bool:
    return all(math.isfinite(value) and value > 0 for value in figures.values())


def test_the_store_measures_run_against_a_real_table(leads_db: LeadsDatabase) -> None:
    # When the store path, the statement without the erasure check, row-by-row and COPY are measured on 50 rows
    rates = bench.store_rates(leads_db.uri, leads_db.leads_table, batch_size=10, rows=50)
    # Then each one stored its rows and gave a rate, and the database CPU of the store path and COPY was read
    cpu = {name: rates.pop(name) for name in ("store_db_cpu_us_per_lead", "copy_db_cpu_us_per_lead")}
    assert set(rates) == {"store", "unchecked", "naive", "copy"} and real_figures(rates)
    assert all(math.isfinite(value) and value >= 0 for value in cpu.values())  # 50 rows may take under one tick


def test_the_worker_handler_measure_runs(leads_db: LeadsDatabase, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the variables the measure sets for the worker, restored after the test
    for name in ("DATABASE_URL", "LEADS_TABLE", "POWERTOOLS_METRICS_DISABLED", "POWERTOOLS_LOG_LEVEL"):
        monkeypatch.setenv(name, "")
    # When the handler and the bare store path are measured on 50 rows (it asserts no batch item failed)
    rates = bench.handler_vs_store(leads_db.uri, leads_db.leads_table, rows=50, batch_size=10)
    # Then both gave a rate
    assert set(rates) == {"handler", "store"} and real_figures(rates)


def test_the_ingest_and_sqs_client_measures_run(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the variables and the SQS client factory the measure replaces, restored after the test
    for name in ("LEADS_QUEUE_URL", "POWERTOOLS_METRICS_DISABLED", "POWERTOOLS_LOG_LEVEL", "ALLOWED_ORIGINS"):
        monkeypatch.setenv(name, "")
    monkeypatch.setattr(ingest_handler, "get_sqs_client", ingest_handler.get_sqs_client)
    # When the ingest and its SQS client are measured on a few requests  Then each gave a figure
    ingest = bench.ingest_cost(requests=20)
    sdk = bench.sqs_client_send_cpu(sends=5)
    assert real_figures(ingest) and real_figures(sdk)


def test_the_main_app_under_drain_measure_runs(leads_db: LeadsDatabase, tmp_path) -> None:
    # Given the dev stage's governor limits, and the test's shared server (not pinned: other tests use it)
    limits = settings_from_file("dev").governor_limits()
    # When the main-app section runs one round of 0.5 s runs, pgbench at scale 1 (pgbench runs whole seconds: with
    # the 0.5 s warm-up, one second each)
    figures = main_app_under_drain(
        leads_db.uri,
        leads_db.leads_table,
        None,
        tmp_path,
        limits,
        batch_size=10,
        seconds=0.5,
        rounds=1,
        warm_up_seconds=0.5,
        scale=1,
    )
    # Then the main app got figures alone, beside the fixed drain and beside the governed one, and each drain stored
    # leads, none lost, never more writers than the cap
    for kind in ("alone", "fixed", "governed"):
        assert figures[kind]["tps"] > 0 and figures[kind]["p99_ms"] > 0
    for kind in ("fixed", "governed", "idle_fixed", "idle_governed"):
        assert figures[kind]["drain_rows_per_s"] > 0
        assert figures[kind]["lost"] == figures[kind]["unaccounted"] == 0
        assert figures[kind]["most_writers"] <= limits.cap
    assert figures["setup"]["database_cpus"] == "not pinned"
