"""`leadpipe status` text: the drain governor's writers against the cap, why, and its last changes."""

from __future__ import annotations

from leadpipe.status import PipelineStatus


def test_status_shows_the_governors_writers_against_the_cap_why_and_its_last_three_changes() -> None:
    # Given a status whose governor went down twice and back up twice
    changes = [
        {"at": f"2026-12-06T09:0{i}:00+00:00", "writers": writers, "reason": reason}
        for i, (writers, reason) in enumerate(
            [(1.0, "main application busy"), (0.5, "main application busy"), (1.0, "healthy"), (1.5, "healthy")]
        )
    ]
    status = PipelineStatus(source="local runtime", queued=5, in_flight=0, dead_letters=0, oldest_message_age_seconds=1)
    status.governor = {
        "writers": 1.5,
        "cap": 2,
        "reason": "healthy: one step up",
        "mapping_concurrency": None,
        "changes": changes,
    }
    # When it is printed
    lines = status.as_text().splitlines()
    # Then one line gives the writers of the cap and why, and the last three changes follow, newest last
    at = lines.index("  drain writers         1.5 of 2 (the cap): healthy: one step up")
    assert lines[at + 1 : at + 4] == [
        "    2026-12-06T09:01:00+00:00  -> 0.5: main application busy",
        "    2026-12-06T09:02:00+00:00  -> 1: healthy",
        "    2026-12-06T09:03:00+00:00  -> 1.5: healthy",
    ]


def test_in_aws_the_status_names_the_mappings_maximum_concurrency() -> None:
    status = PipelineStatus(source="stack", queued=0, in_flight=0, dead_letters=0, oldest_message_age_seconds=None)
    status.governor = {
        "writers": 0.25,
        "cap": 4,
        "reason": "main application busy: 3.0 other active sessions",
        "mapping_concurrency": 2,
        "changes": [],
    }
    assert (
        "  drain writers         0.25 of 4 (the cap), MaximumConcurrency 2: main application busy" in status.as_text()
    )
