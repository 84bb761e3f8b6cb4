"""The I/O path every adapter test runs on: batched Linux I/O and the loop's plain transport."""

from __future__ import annotations

import pytest

from rudp import Config


@pytest.fixture(params=["batched", "plain"])
def config(request: pytest.FixtureRequest) -> Config:
    return Config(io=request.param, time_wait=0.05)
