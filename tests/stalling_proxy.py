"""A TCP stand-in on 127.0.0.1 for RDS Proxy (or a NAT path) in front of the test PostgreSQL.

It forwards everything, startup and authentication included. On `stall()` every connection that has
finished its startup (the server's first ReadyForQuery) keeps the client's bytes and forwards none,
so nothing comes back: RDS Proxy waiting up to ConnectionBorrowTimeout to borrow a database
connection, or a half-open path. `release()` then forwards what it held, even for a client that has
gone meanwhile -- the worst case for duplicates: a statement the worker gave up on still commits.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import quote

import psycopg

READY_FOR_QUERY = ord("Z")


@dataclass
class _Link:
    client: socket.socket
    server: socket.socket
    ready: threading.Event = field(default_factory=threading.Event)
    held: list[bytes] = field(default_factory=list)
    client_gone: bool = False
    server_done: threading.Event = field(default_factory=threading.Event)  # the server hung up: it ran all it got
    lock: threading.Lock = field(default_factory=threading.Lock)


class StallingProxy:
    """Listens on 127.0.0.1 (`port`); forwards to the PostgreSQL at `postgres_uri` (a Unix socket)."""

    def __init__(self, postgres_uri: str) -> None:
        with psycopg.connect(postgres_uri) as probe:
            host, port = probe.info.host, probe.info.port
            self.user, self.password, self.dbname = probe.info.user, probe.info.password, probe.info.dbname
        # The embedded server listens on a Unix socket; a DATABASE_URL server may be TCP.
        self._server_address = (
            (socket.AF_UNIX, f"{host}/.s.PGSQL.{port}") if host.startswith("/") else (socket.AF_INET, (host, port))
        )
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._stalled = False
        self._links: list[_Link] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def uri(self) -> str:
        """Plain TCP, no TLS or GSS negotiation: the startup is the first thing on the wire."""
        login = quote(self.user) + (f":{quote(self.password)}" if self.password else "")
        return f"postgresql://{login}@127.0.0.1:{self.port}/{quote(self.dbname)}?sslmode=disable&gssencmode=disable"

    def stall(self) -> None:
        with self._lock:
            self._stalled = True

    def release(self) -> None:
        """Forward what was held, in order; a client that went away meanwhile is then hung up on."""
        with self._lock:
            self._stalled = False
            links = list(self._links)
        for link in links:
            with link.lock:
                self._flush(link)
                if link.client_gone:
                    _quietly(link.server.shutdown, socket.SHUT_WR)

    def wait_for_holding_clients_to_leave(self, timeout: float) -> bool:
        """Whether, within `timeout`, every client whose bytes are held has been seen to go away. Call it before
        `release()` once the clients gave up: a client whose going this proxy has not yet read would get its held
        statements forwarded without the hang-up, and `wait_for_abandoned_sessions` would not wait for them."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                links = list(self._links)
            if all(_client_gone_or_nothing_held(link) for link in links):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)

    def wait_for_abandoned_sessions(self, timeout: float) -> bool:
        """After `release()`: whether the server has ended every session whose client went away (done with what it
        held)."""
        with self._lock:
            abandoned = [link for link in self._links if link.client_gone]
        return all(link.server_done.wait(timeout) for link in abandoned)

    def close(self) -> None:
        self._listener.close()
        with self._lock:
            links = list(self._links)
        for link in links:
            _quietly(link.client.close)
            _quietly(link.server.close)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            family, address = self._server_address
            server = socket.socket(family, socket.SOCK_STREAM)
            server.connect(address)
            link = _Link(client=client, server=server)
            with self._lock:
                self._links.append(link)
            threading.Thread(target=self._client_to_server, args=(link,), daemon=True).start()
            threading.Thread(target=self._server_to_client, args=(link,), daemon=True).start()

    def _holding(self, link: _Link) -> bool:
        with self._lock:
            return self._stalled and link.ready.is_set()

    def _flush(self, link: _Link) -> None:
        if link.held:
            _quietly(link.server.sendall, b"".join(link.held))
            link.held.clear()

    def before_forwarding(self, link: _Link) -> None:
        """Called with each chunk of the client's bytes after the login, before it goes on: a subclass may delay it
        here."""

    def _client_to_server(self, link: _Link) -> None:
        while True:
            try:
                data = link.client.recv(65536)
            except OSError:
                data = b""
            if data and link.ready.is_set():
                self.before_forwarding(link)
            with link.lock:
                if self._holding(link):
                    if data:
                        link.held.append(data)
                        continue
                    link.client_gone = True  # release() forwards the held bytes, then hangs up
                    return
                self._flush(link)
                if not data:
                    _quietly(link.server.shutdown, socket.SHUT_WR)
                    return
                _quietly(link.server.sendall, data)

    def _server_to_client(self, link: _Link) -> None:
        pending = b""
        client_open = True
        while True:
            try:
                data = link.server.recv(65536)
            except OSError:
                data = b""
            if not data:
                link.server_done.set()
                _quietly(link.client.close)
                return
            if not link.ready.is_set():
                pending += data
                while len(pending) >= 5:  # type byte, then a length that counts itself
                    length = int.from_bytes(pending[1:5], "big")
                    if pending[0] == READY_FOR_QUERY:
                        link.ready.set()  # before the client can see it, so its next query is held
                        break
                    if len(pending) < 1 + length:
                        break  # the rest of this message is still on its way
                    pending = pending[1 + length :]
            if client_open:
                try:
                    link.client.sendall(data)
                except OSError:
                    client_open = False  # keep reading: the server must be able to finish what it was sent


def _client_gone_or_nothing_held(link: _Link) -> bool:
    with link.lock:
        return link.client_gone or not link.held


def _quietly(call, *args) -> None:
    with contextlib.suppress(OSError):
        call(*args)
