"""`leadpipe spike` behaves like a form with leadpipe.js under a stage throttle: a 429 is retried, never lost."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from leadpipe.spike import SpikeOptions, send_spike, summarise
from tests.siteverify import SHUTDOWN_POLL_SECONDS


class ThrottleOnce(BaseHTTPRequestHandler):
    """Answers each lead's first post with API Gateway's 429 (Retry-After: 0), its second with 202."""

    seen: list[tuple[str, str]] = []  # (Idempotency-Key, body) of every post
    lock = threading.Lock()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        key = self.headers.get("Idempotency-Key", "")
        with self.lock:
            first = all(k != key for k, _ in self.seen)
            self.seen.append((key, body))
        if first:
            answer, status, headers = (
                {"error": {"code": "throttled", "message": "too many requests", "fields": []}},
                429,
                {"Retry-After": "0"},
            )
        else:
            answer, status, headers = {"lead_id": f"id-{key}", "status": "queued"}, 202, {}
        data = json.dumps(answer).encode()
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", "Content-Length": str(len(data)), **headers}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def throttling_api() -> Iterator[str]:
    ThrottleOnce.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), ThrottleOnce)
    thread = threading.Thread(target=server.serve_forever, args=(SHUTDOWN_POLL_SECONDS,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/leads"
    server.shutdown()
    server.server_close()


def test_a_throttled_lead_is_posted_again_with_the_same_key_and_body_until_accepted(throttling_api: str) -> None:
    # Given an API that throttles every lead's first post
    options = SpikeOptions(
        url=throttling_api, total=5, concurrency=2, campaign="retry", timeout_seconds=30, run_id="r1"
    )
    # When a spike of five leads is sent
    requests, seconds = send_spike(options)
    summary = summarise(requests, seconds)
    # Then every lead was throttled once and accepted on its retry: five 429s, five 202s, nothing lost
    assert (summary.sent, summary.throttled, summary.accepted, summary.errors) == (10, 5, 5, 0)
    assert sorted(r.lead_id for r in requests if r.lead_id) == sorted(f"id-r1-{i}" for i in range(5))
    # And each retry carried the lead's own key and the very same body
    posts: dict[str, list[str]] = {}
    for key, body in ThrottleOnce.seen:
        posts.setdefault(key, []).append(body)
    assert sorted(posts) == [f"r1-{i}" for i in range(5)]
    assert all(len(bodies) == 2 and bodies[0] == bodies[1] for bodies in posts.values())
