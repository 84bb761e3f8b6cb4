from __future__ import annotations

import math

import pytest

from tests.sim import FakeClock


def test_starts_at_zero_by_default() -> None:
    assert FakeClock().now == 0.0
    assert FakeClock(12.5).now == 12.5


def test_advance_adds_and_returns_new_time() -> None:
    clock = FakeClock(1.0)
    assert clock.advance(0.25) == 1.25
    assert clock.advance(0.0) == 1.25
    assert clock.now == 1.25
    assert clock() == 1.25


def test_advance_to_sets_absolute_time() -> None:
    clock = FakeClock()
    assert clock.advance_to(3.0) == 3.0
    assert clock.advance_to(3.0) == 3.0  # standing still is allowed
    assert clock.now == 3.0


@pytest.mark.parametrize("dt", [-0.001, math.nan, math.inf])
def test_advance_rejects_negative_or_non_finite(dt: float) -> None:
    clock = FakeClock(5.0)
    with pytest.raises(ValueError):
        clock.advance(dt)
    assert clock.now == 5.0


@pytest.mark.parametrize("t", [4.999, math.nan, math.inf])
def test_advance_to_never_goes_backwards(t: float) -> None:
    clock = FakeClock(5.0)
    with pytest.raises(ValueError):
        clock.advance_to(t)
    assert clock.now == 5.0


def test_now_is_read_only() -> None:
    clock = FakeClock()
    with pytest.raises(AttributeError):
        clock.now = 1.0  # type: ignore[misc]


def test_rejects_non_finite_start() -> None:
    with pytest.raises(ValueError):
        FakeClock(math.nan)
