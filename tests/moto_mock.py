"""moto's in-process mock for the tests, keeping boto3's default session from one test to the next.

By default each mock starts a fresh boto3 default session (so no real credentials reach it), and every client
of a fresh session parses botocore's service models again: tenths of a second per client. Every credential in
this suite is fake (`aws_test_environment` in tests/conftest.py), so one session serves them all; each mock
still starts with empty AWS backends. The setting is moto's own (`core.reset_boto3_session`,
https://docs.getmoto.org/en/latest/docs/configuration/index.html).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

import moto

MOTO_CONFIG = {"core": {"mock_credentials": True, "reset_boto3_session": False}}


def mock_aws() -> AbstractContextManager[Any]:
    return moto.mock_aws(config=MOTO_CONFIG)
