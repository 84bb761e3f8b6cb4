"""A token-bucket pacer for DATA (cf. aioquic's ``QuicPacketPacer``, Linux ``sch_fq``).

The bucket fills at ``rate`` bytes per second up to ``burst`` bytes, where burst is the larger
of two segments and one millisecond at the rate: the sender cannot rely on waking more often
than about once a millisecond, so finer pacing would only add timer wake-ups. A segment may
leave when the bucket holds a full segment's credit; sending it takes its bytes out.

The bucket is kept as one number, ``next_time``: the instant at which it holds a full segment
again. A sender that ran out of credit sleeps until ``wake_time``, when the bucket is full, so a
wake-up releases a whole burst: the rate is the same, the wake-ups (each a timer, a flush and a
system call, or one GSO batch) are fewer. Both are exact absolute deadlines for the
connection's folded timer, and a deadline that comes due tests true at that very ``now`` (a
1 ns slack absorbs float rounding in ``next_time`` itself).
"""

from __future__ import annotations

__all__ = ["BURST_SEGMENTS", "BURST_TIME", "Pacer"]

BURST_TIME = 0.001
"""Seconds of credit the bucket holds at most (but never less than ``BURST_SEGMENTS``)."""
BURST_SEGMENTS = 2
"""Segments the bucket holds at least (Linux ``tcp_min_tso_segs``). Four were tried to halve
the wake-ups of many slow connections on a busy host: two CUBIC flows sharing a 10 Mbit/s
bottleneck then fell from a Jain index of 0.99 to 0.62 (``tests/test_bench_sim_cc.py``)."""

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
        """Bucket capacity in bytes: max(BURST_SEGMENTS segments, rate x BURST_TIME)."""
        return max(BURST_SEGMENTS * self.smss, int(self._rate * BURST_TIME))

    @property
    def wake_time(self) -> float:
        """When the bucket is full again: the time to wake a sender that ran out of credit,
        so that each wake-up sends a whole burst rather than one segment (every wake-up costs
        a timer, a flush and a system call)."""
        return self.next_time + self._headroom

    def set_rate(self, rate: float) -> None:
        """Pace at ``rate`` bytes/s (> 0) from now on; credit already earned is kept."""
        if rate != self._rate:
            self._rate = rate
            burst = rate * BURST_TIME
            if burst < BURST_SEGMENTS * self.smss:
                burst = BURST_SEGMENTS * self.smss
            self._headroom = (burst - self.smss) / rate

    def can_send(self, now: float) -> bool:
        """True when the bucket holds a segment's credit at ``now``."""
        return self.next_time <= now + _SLACK

    def on_sent(self, nbytes: int, now: float) -> None:
        """Take ``nbytes`` just sent at ``now`` out of the bucket."""
        floor = now - self._headroom  # a full bucket: no more credit accrues while idle
        start = self.next_time if self.next_time > floor else floor
        self.next_time = start + nbytes / self._rate
