"""A Lambda handler for the pool's tests: it sleeps as long as the event says (a database that never answers)."""

import time
from typing import Any


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    print("invocation started", flush=True)  # the environment's log: the test waits for this line
    time.sleep(event["seconds"])
    return {}
