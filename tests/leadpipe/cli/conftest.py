"""Shared by the CLI's tests."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from leadpipe.local.runtime import STATE_FILE_NAME, RuntimeInfo


def runtime_state_in(folder: Path) -> Path:
    """A data folder as a running local runtime leaves it (its services at a closed port, no events lane)."""
    info = RuntimeInfo(
        stage="dev",
        api_url="http://127.0.0.1:9/leads",
        landing_page_url="http://127.0.0.1:9/",
        sqs_endpoint_url="http://127.0.0.1:9",
        leads_queue_url="http://127.0.0.1:9/123456789012/leads",
        dead_letter_queue_url="http://127.0.0.1:9/123456789012/dlq",
        database_url="postgresql:///nowhere",
        leads_table="leadpipe.leads",
        data_dir=str(folder),
        postgres_data_dir=None,
        pid=os.getpid(),  # alive, as RuntimeInfo.load checks
    )
    (folder / STATE_FILE_NAME).write_text(json.dumps(dataclasses.asdict(info)))
    return folder
