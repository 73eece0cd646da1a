"""API Gateway's stage throttle, locally: one token bucket for the whole stage
(https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-request-throttling.html).

The local API runs in several processes, so the bucket lives in shared memory: one per stage, as in the cloud.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from typing import Any

_TOKENS, _LAST_REFILL = 0, 1


class StageThrottle:
    """A token bucket shared by every process it is handed to (pickled through `spawn`); `clock` must be the same
    in every process, as `time.monotonic` is on Linux."""

    def __init__(
        self, rate_per_second: float, burst: int, clock: Callable[[], float] = time.monotonic, context: Any = None
    ) -> None:
        if rate_per_second <= 0 or burst < 1:
            raise ValueError("a stage throttle needs a rate above 0 and a burst of at least 1")
        context = context or multiprocessing.get_context("spawn")
        self.rate_per_second = rate_per_second
        self.burst = burst
        self._clock = clock
        self._lock = context.Lock()
        # A full bucket at the start, as a freshly deployed stage has.
        self._state = context.RawArray("d", [float(burst), clock()])

    def try_acquire(self) -> bool:
        """Take one token if there is one: True lets the request through, False is a 429."""
        with self._lock:
            now = self._clock()
            elapsed = max(0.0, now - self._state[_LAST_REFILL])
            tokens = min(float(self.burst), self._state[_TOKENS] + elapsed * self.rate_per_second)
            self._state[_LAST_REFILL] = now
            if tokens < 1.0:
                self._state[_TOKENS] = tokens
                return False
            self._state[_TOKENS] = tokens - 1.0
            return True
