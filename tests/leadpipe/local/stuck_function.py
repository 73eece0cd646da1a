"""A Lambda handler for the pool's tests: it sleeps as long as the event says (a database that never answers)."""

import signal
import time
from typing import Any


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if event.get("ignore_sigterm"):  # a function that traps SIGTERM for a clean-up of its own
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print("invocation started", flush=True)  # the environment's log: the test waits for this line
    time.sleep(event["seconds"])
    return {}
