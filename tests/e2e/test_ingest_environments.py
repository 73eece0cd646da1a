"""The local API is served by four ingest execution environments sharing one listening socket:
the ingest's concurrency is theirs, and no gateway process sits in front of them."""

from __future__ import annotations

import json
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

from tests.e2e.conftest import RunningPipeline, http_request

LISTEN = "0A"  # the TCP state of a listening socket in /proc/net/tcp


def listening_socket_inode(port: int) -> str:
    """The inode of the socket listening on 127.0.0.1:`port`, from the kernel's own table."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].split(":")[1], 16)
        if local_port == port and fields[3] == LISTEN:
            return fields[9]
    raise AssertionError(f"nothing listens on port {port}")


def processes_holding(inode: str) -> set[int]:
    holders = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            links = [os.readlink(fd) for fd in (proc / "fd").iterdir()]
        except OSError:  # exited meanwhile, or not ours to read
            continue
        if f"socket:[{inode}]" in links:
            holders.add(int(proc.name))
    return holders


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def test_four_ingest_environments_share_the_port(local_pipeline: RunningPipeline) -> None:
    # Given the running local pipeline and the port its API answers on
    port = urlsplit(local_pipeline.info.api_url).port
    # When the kernel is asked who holds that listening socket
    holders = processes_holding(listening_socket_inode(port))
    # Then exactly the configured environments do, each a child of the runtime, and the runtime itself does not
    assert len(holders) == local_pipeline.pipeline.options.ingest_environments == 4
    assert os.getpid() not in holders
    assert {parent_of(pid) for pid in holders} == {os.getpid()}

    # And concurrent posts on that one port are all answered by them
    def post(index: int) -> int:
        body = json.dumps({"email": f"shared-port-{index}-{uuid.uuid4().hex[:6]}@example.com"})
        return http_request(local_pipeline.info.api_url, "POST", body, {"Content-Type": "application/json"}).status

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert set(pool.map(post, range(24))) == {202}
