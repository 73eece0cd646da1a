"""A small HTTP receiver for local event destinations: prints what it gets, remembers when.

`make run` points the stage's destinations at one, so a team sees what its CRM or Slack would
receive without sending anything anywhere. Also on its own:
`.venv/bin/python -m leadpipe.local.receiver --port 9000`.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TextIO

STOP_POLL_SECONDS = 0.05  # stop() waits for the serve loop's next poll (the standard library's default: 0.5 s)


@dataclass(frozen=True)
class Received:
    """One request as it arrived: the receiver's monotonic clock, the path and the body."""

    at: float
    path: str
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class LocalReceiver:
    """Listens on 127.0.0.1 (port 0: any free one), answers 200, keeps and optionally prints each request."""

    def __init__(
        self, port: int = 0, echo: TextIO | None = None, answer: Callable[[Received], int] = lambda _: 200
    ) -> None:
        """`answer`: the HTTP status for each request (tests make an endpoint fail with it)."""
        self.received: list[Received] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                arrived = time.monotonic()  # before the answer: the sender cannot have sent the next one yet
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                received = Received(arrived, self.path, body)
                receiver._keep(received)
                self.send_response(answer(received))
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *_: Any) -> None:
                pass

        self._echo = echo
        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(STOP_POLL_SECONDS,), name="leadpipe-receiver", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> LocalReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def snapshot(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def _keep(self, received: Received) -> None:
        with self._lock:
            self.received.append(received)
        if self._echo is not None:
            self._echo.write(f"received {received.path}: {received.body.decode(errors='replace')[:500]}\n")
            self._echo.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (default: any free one)")
    port = parser.parse_args().port
    receiver = LocalReceiver(port, echo=sys.stdout).start()
    print(f"listening on {receiver.url} (Ctrl-C stops)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        receiver.stop()


if __name__ == "__main__":
    main()
