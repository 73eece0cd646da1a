"""`make bench` is never part of `make test`, so nothing else notices when a change breaks it: twice
today it died half-way (a renamed keyword argument, a context without a clock). Its measuring code
runs here on tiny inputs; only that each measure runs and yields a figure is checked, never a speed."""

from __future__ import annotations

import math

import pytest

from bench import run as bench
from functions.ingest import handler as ingest_handler
from tests.conftest import LeadsDatabase


def real_figures(figures: dict[str, float]) -> bool:
    return all(math.isfinite(value) and value > 0 for value in figures.values())


def test_the_store_measures_run_against_a_real_table(leads_db: LeadsDatabase) -> None:
    # When the store path, the statement without the erasure check, row-by-row and COPY are measured on 50 rows
    rates = bench.store_rates(leads_db.uri, leads_db.leads_table, batch_size=10, rows=50)
    # Then each one stored its rows and gave a rate
    assert set(rates) == {"store", "unchecked", "naive", "copy"} and real_figures(rates)


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
