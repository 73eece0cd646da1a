"""A stand-in for Cloudflare's and Google's `siteverify` on 127.0.0.1: nothing in the tests leaves the machine.

Both document the same exchange: a form POST of `secret` and `response`, a JSON answer with `success`
(and `score`, 0.0-1.0, for reCAPTCHA v3).
https://developers.cloudflare.com/turnstile/get-started/server-side-validation/
https://developers.google.com/recaptcha/docs/verify
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

SHUTDOWN_POLL_SECONDS = 0.02


class SiteverifyStandIn:
    """Answers each POST with `answer(form)`: an HTTP status and a JSON body (None: no body). Keeps every form in
    `requests`."""

    def __init__(self) -> None:
        self.requests: list[dict[str, list[str]]] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
                stand_in.requests.append(form)
                status, answer = stand_in.answer(form)
                payload = b"" if answer is None else json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/siteverify"
        # A short poll: shutdown() waits for the next one, and every captcha test closes a stand-in.
        threading.Thread(target=self.server.serve_forever, args=(SHUTDOWN_POLL_SECONDS,), daemon=True).start()

    def answer(self, form: dict[str, list[str]]) -> tuple[int, dict[str, Any] | None]:
        raise NotImplementedError

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
