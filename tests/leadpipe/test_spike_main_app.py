"""`leadpipe spike --main-app-clients`: a fifth panel, the main application's p99 with the governor's writers."""

from __future__ import annotations

import csv
import struct

from leadpipe.spike import Request, Sample, write_report


def png_height(path) -> int:
    # The IHDR chunk follows the 8-byte signature: length, type, width, height (big-endian)
    return struct.unpack(">I", path.read_bytes()[20:24])[0]


def test_the_report_gains_the_main_apps_p99_and_the_governors_writers(tmp_path) -> None:
    # Given a 10 s spike: 202s, samples with the governor's writers, and pgbench's transactions beside it
    requests = [Request(started=i / 10, latency=0.01, status=202, lead_id=f"id{i}") for i in range(100)]
    samples = [
        Sample(
            at=float(t),
            queued=10,
            stored=t * 10,
            worker_connections=1,
            active_writers=1,
            governor_writers=2.0 if t < 5 else 0.25,
        )
        for t in range(10)
    ]
    latencies = [(t / 100, 5.0 + (20.0 if t > 500 else 0.0)) for t in range(1_000)]
    # When the report is drawn with and without the main application
    plain = write_report(requests, samples, tmp_path / "plain.png", writer_cap=2)
    with_app = write_report(requests, samples, tmp_path / "app.png", writer_cap=2, main_app_latencies=latencies)
    # Then the picture with the main application has a fifth panel (a taller image), and the CSV keeps the writers
    assert png_height(tmp_path / "app.png") > png_height(tmp_path / "plain.png")
    rows = list(csv.DictReader(with_app.open()))
    assert [float(r["governor_writers"]) for r in rows] == [2.0] * 5 + [0.25] * 5
    assert list(csv.DictReader(plain.open())) == rows  # the CSV is the same with or without it
