"""leadpipe.js stays small enough to put on any landing page."""

from __future__ import annotations

import gzip
from importlib import resources

MAX_GZIPPED_BYTES = 6 * 1024


def test_the_client_is_under_six_kib_gzipped() -> None:
    # Given the client as the local runtime serves it
    client = resources.files("leadpipe.local").joinpath("landing_page", "leadpipe.js").read_bytes()
    # Then, compressed as a web server would (gzip -9), it stays under the budget
    assert len(gzip.compress(client, compresslevel=9)) < MAX_GZIPPED_BYTES
