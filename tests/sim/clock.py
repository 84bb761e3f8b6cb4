"""A manual clock for driving the sans-I/O core in tests."""

from __future__ import annotations

import math

__all__ = ["FakeClock"]


class FakeClock:
    """A monotonic clock that only moves when told to.

    ``now`` is read-only; move it with :meth:`advance` or :meth:`advance_to`. It never goes
    backwards. Calling the clock (``clock()``) returns ``now``, so it can be handed to code that
    wants a ``Callable[[], float]`` time source.
    """

    __slots__ = ("_now",)

    def __init__(self, start: float = 0.0) -> None:
        if not math.isfinite(start):
            raise ValueError(f"start must be finite, got {start!r}")
        self._now = float(start)

    @property
    def now(self) -> float:
        """The current time in seconds."""
        return self._now

    def __call__(self) -> float:
        return self._now

    def advance(self, dt: float) -> float:
        """Move the clock forward by ``dt >= 0`` seconds and return the new time."""
        if not dt >= 0.0 or not math.isfinite(dt):
            raise ValueError(f"dt must be finite and >= 0, got {dt!r}")
        self._now += dt
        return self._now

    def advance_to(self, t: float) -> float:
        """Set the clock to ``t`` (``t >= now``) and return it. Going backwards is a ValueError."""
        if not t >= self._now or not math.isfinite(t):
            raise ValueError(f"cannot move the clock from {self._now!r} to {t!r}")
        self._now = float(t)
        return self._now

    def __repr__(self) -> str:
        return f"FakeClock(now={self._now!r})"
