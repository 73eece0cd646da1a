"""Serve an ASGI or WSGI app on uvicorn, on a socket the caller already bound.

uvicorn parses HTTP in C, where a pure-Python server spent more CPU per request than the app
(docs/performance.md). Short requests run on the loop itself; those that may wait (`may_block`) go to a thread.
"""

from __future__ import annotations

import asyncio
import io
import socket
import sys
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
BLOCKING_THREADS = 16  # concurrent long polls: pollers, `leadpipe status`, tests


def _environ(scope: dict[str, Any], body: bytes) -> dict[str, Any]:
    host, port = scope.get("server") or ("127.0.0.1", 0)
    environ = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": "",
        "PATH_INFO": scope["path"],
        "RAW_URI": scope["raw_path"].decode("latin-1") if scope.get("raw_path") else scope["path"],
        "QUERY_STRING": scope["query_string"].decode("latin-1"),
        "SERVER_NAME": host,
        "SERVER_PORT": str(port),
        "SERVER_PROTOCOL": f"HTTP/{scope['http_version']}",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for raw_name, raw_value in scope["headers"]:
        name, value = raw_name.decode("latin-1").upper().replace("-", "_"), raw_value.decode("latin-1")
        if name == "CONTENT_TYPE":
            environ[name] = value
        elif name != "CONTENT_LENGTH":
            key = f"HTTP_{name}"
            environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ


def _call(app: WsgiApp, environ: dict[str, Any]) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    started: list[Any] = []
    chunks = app(environ, lambda status, headers, exc_info=None: started.extend((status, headers)))
    try:
        body = b"".join(chunks)
    finally:
        getattr(chunks, "close", lambda: None)()
    status, headers = started
    return int(status.split(" ", 1)[0]), [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers], body


async def read_body(receive: Callable[..., Any], limit: int | None = None) -> bytes | None:
    """The whole request body, or None once it grows past `limit` bytes."""
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if limit is not None and size > limit:
            return None
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


def asgi_from_wsgi(app: WsgiApp, may_block: Callable[[Mapping[str, Any]], bool]) -> Callable[..., Any]:
    """`may_block(environ)` says which requests go to the thread pool."""
    executor = ThreadPoolExecutor(BLOCKING_THREADS, thread_name_prefix="wsgi-blocking")

    async def asgi_app(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            return
        environ = _environ(scope, await read_body(receive) or b"")
        if may_block(environ):
            status, response_headers, body = await asyncio.get_running_loop().run_in_executor(
                executor, _call, app, environ
            )
        else:
            status, response_headers, body = _call(app, environ)
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": body})

    return asgi_app


def serve_asgi(app: Callable[..., Any], listener: socket.socket) -> None:
    """Serve until SIGTERM; requests in flight get one second to finish."""
    import uvicorn

    config = uvicorn.Config(
        app,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        log_level="error",
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=1,
        timeout_keep_alive=300,
    )
    uvicorn.Server(config).run(sockets=[listener])


def serve_wsgi(app: WsgiApp, listener: socket.socket, may_block: Callable[[Mapping[str, Any]], bool]) -> None:
    serve_asgi(asgi_from_wsgi(app, may_block), listener)
