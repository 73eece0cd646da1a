"""The local stage throttle: API Gateway's token bucket, one per stage, shared by every serving process.

AWS: "API Gateway throttles requests to your API using the token bucket algorithm, where a token
counts for a request ... the rate limit [is] the steady-state rate and the burst limit [is] the
bucket's capacity"; a request over the limit gets "429 Too Many Requests".
(https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-request-throttling.html)
"""

from __future__ import annotations

import json
import multiprocessing

import pytest

from leadpipe.local.gateway import ApiGatewayApp
from leadpipe.local.stage_throttle import StageThrottle
from tests.leadpipe.local.gateway_requests import ACCEPTED, RecordingFunction, request


class FakeClock:
    """A clock the test moves by hand; picklable, so spawned processes read the same time."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_full_bucket_lets_the_burst_through_then_refuses() -> None:
    # Given a stage with burst 3 at 2 requests per second, and a clock that does not move
    throttle = StageThrottle(rate_per_second=2, burst=3, clock=FakeClock())
    # When 5 requests arrive at the same instant
    granted = [throttle.try_acquire() for _ in range(5)]
    # Then the burst passes and the rest is throttled
    assert granted == [True, True, True, False, False]


def test_tokens_come_back_at_the_rate_and_never_above_the_burst() -> None:
    # Given an emptied bucket (burst 2, 4 per second)
    clock = FakeClock()
    throttle = StageThrottle(rate_per_second=4, burst=2, clock=clock)
    assert [throttle.try_acquire() for _ in range(3)] == [True, True, False]
    # When a quarter of a second passes: one token is back
    clock.now += 0.25
    # Then exactly one request passes
    assert [throttle.try_acquire() for _ in range(2)] == [True, False]
    # When a whole minute passes, the bucket is full again but holds no more than the burst
    clock.now += 60
    assert [throttle.try_acquire() for _ in range(3)] == [True, True, False]


def test_a_refused_request_takes_no_token() -> None:
    # Given an empty bucket refilling at 1 per second
    clock = FakeClock()
    throttle = StageThrottle(rate_per_second=1, burst=1, clock=clock)
    assert throttle.try_acquire() is True
    # When clients hammer it for just under a second
    for _ in range(10):
        clock.now += 0.09
        assert throttle.try_acquire() is False
    # Then the token that has accrued by then is still granted (refusals did not spend it)
    clock.now += 0.1
    assert throttle.try_acquire() is True


def _take_all(throttle: StageThrottle, attempts: int, granted: multiprocessing.Queue) -> None:
    granted.put(sum(throttle.try_acquire() for _ in range(attempts)))


def test_processes_share_one_bucket_for_the_stage() -> None:
    # Given one bucket of 10 handed to 3 processes, as the local API's environments get it
    throttle = StageThrottle(rate_per_second=1, burst=10, clock=FakeClock())
    context = multiprocessing.get_context("spawn")
    granted: multiprocessing.Queue = context.Queue()
    processes = [context.Process(target=_take_all, args=(throttle, 10, granted)) for _ in range(3)]
    # When each tries 10 requests at the same instant
    for process in processes:
        process.start()
    counts = [granted.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(10)
    # Then the stage let 10 through in all, not 10 per process
    assert sum(counts) == 10


def test_the_local_api_answers_429_in_the_project_shape_without_calling_the_function() -> None:
    # Given the local API with a stage burst of 2 and a still clock
    clock = FakeClock()
    function = RecordingFunction(ACCEPTED)
    app = ApiGatewayApp(
        function,
        "dev",
        "http://127.0.0.1:8080",
        allowed_origins=("http://127.0.0.1:8080",),
        throttle=StageThrottle(rate_per_second=5, burst=2, clock=clock),
    )
    post = {"Content-Type": "application/json", "Origin": "http://127.0.0.1:8080"}
    # When three leads arrive at once
    statuses = [request(app, "POST", "/leads", b"{}", post)[0] for _ in range(2)]
    status, headers, body = request(app, "POST", "/leads", b"{}", post)
    # Then two reach the function and the third is API Gateway's THROTTLED answer
    assert statuses == [202, 202] and len(function.events) == 2
    assert status == 429
    assert json.loads(body) == {
        "error": {"code": "throttled", "message": "too many requests; please retry after a moment", "fields": []}
    }
    assert headers["retry-after"] == "1" and headers["access-control-allow-origin"] == "http://127.0.0.1:8080"
    assert headers["access-control-expose-headers"] == "Retry-After" and headers["content-type"] == "application/json"
    # And once a token is back (1/5 s later) the next lead goes through
    clock.now += 0.2
    assert request(app, "POST", "/leads", b"{}", post)[0] == 202 and len(function.events) == 3


def test_the_landing_page_is_not_throttled() -> None:
    # Given an exhausted stage bucket
    app = ApiGatewayApp(
        RecordingFunction(ACCEPTED),
        "dev",
        "http://127.0.0.1:9",
        throttle=StageThrottle(rate_per_second=1, burst=1, clock=FakeClock()),
    )
    request(app, "POST", "/leads", b"{}", {"Content-Type": "application/json"})
    # When the page is loaded; Then it is served (a local extra, not part of the stage)
    assert request(app, "GET", "/")[0] == 200


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (1, 0)])
def test_a_bucket_that_could_never_grant_is_refused(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match="rate above 0"):
        StageThrottle(rate_per_second=rate, burst=burst)
