"""A token-bucket pacer for DATA (cf. aioquic's ``QuicPacketPacer``, Linux ``sch_fq``).

The bucket fills at ``rate`` bytes per second up to ``burst`` bytes, where burst is the larger
of two segments and one millisecond at the rate: the sender cannot rely on waking more often
than about once a millisecond, so finer pacing would only add timer wake-ups. A segment may
leave when the bucket holds a full segment's credit; sending it takes its bytes out.

The bucket is kept as one number, ``next_time``: the instant at which it holds a full segment
again. That makes the answer to "when may the next segment leave?" an exact absolute deadline
for the connection's folded timer, and a deadline that comes due tests true at that very
``now`` (a 1 ns slack absorbs float rounding in ``next_time`` itself).
"""

from __future__ import annotations

__all__ = ["BURST_TIME", "Pacer"]

BURST_TIME = 0.001
"""Seconds of credit the bucket holds at most (but never less than two segments)."""

_SLACK = 1e-9  # seconds: a due deadline never fails its own test through rounding


class Pacer:
    """When the next DATA segment may leave, at a rate the congestion controller sets."""

    __slots__ = ("_headroom", "_rate", "next_time", "smss")

    next_time: float
    """Earliest time the next segment may be sent (meaningful while a rate is set)."""

    def __init__(self, smss: int) -> None:
        self.smss = smss
        self._rate = 0.0
        self._headroom = 0.0  # seconds of credit beyond one segment: (burst - smss) / rate
        self.next_time = float("-inf")

    def __repr__(self) -> str:
        return f"<Pacer rate={self._rate:.0f} next_time={self.next_time}>"

    @property
    def rate(self) -> float:
        return self._rate

    @property
    def burst(self) -> int:
        """Bucket capacity in bytes: max(2 segments, rate x BURST_TIME)."""
        return max(2 * self.smss, int(self._rate * BURST_TIME))

    def set_rate(self, rate: float) -> None:
        """Pace at ``rate`` bytes/s (> 0) from now on; credit already earned is kept."""
        if rate != self._rate:
            self._rate = rate
            burst = rate * BURST_TIME
            if burst < 2 * self.smss:
                burst = 2 * self.smss
            self._headroom = (burst - self.smss) / rate

    def can_send(self, now: float) -> bool:
        """True when the bucket holds a segment's credit at ``now``."""
        return self.next_time <= now + _SLACK

    def on_sent(self, nbytes: int, now: float) -> None:
        """Take ``nbytes`` just sent at ``now`` out of the bucket."""
        floor = now - self._headroom  # a full bucket: no more credit accrues while idle
        start = self.next_time if self.next_time > floor else floor
        self.next_time = start + nbytes / self._rate
