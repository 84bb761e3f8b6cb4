"""When each byte of new data was first sent, kept as ranges rather than per-segment records.

Every segment that one flush sends leaves at the same ``now`` and new data goes out in sequence
order, so the first-transmission time of any byte in flight is a step function of its sequence
number: one ``(end_seq, time)`` entry per flush that sent new data, merged while ``now`` does
not move. RACK (RFC 8985 §6.2) reads it for the send time of a delivered or candidate-lost
segment, and persistent-congestion detection (RFC 9002 §7.6) for the age of the oldest
unacknowledged byte. Entries below the cumulative ACK are dropped, so the log holds about one
entry per flush in the last round trip. Both columns only grow, so lookups bisect.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right

__all__ = ["XmitLog"]

_COMPACT_AT = 1024  # drop acknowledged entries from the lists once this many pile up


class XmitLog:
    """First-transmission times of new data: ``record(end, now)`` per flush, lookups by seq."""

    __slots__ = ("_ends", "_head", "_times")

    def __init__(self) -> None:
        self._ends: list[int] = []  # sequence number after the last byte of each entry
        self._times: list[float] = []  # when that entry's bytes were sent
        self._head = 0  # index of the first entry not yet cumulatively acknowledged

    def __len__(self) -> int:
        return len(self._ends) - self._head

    def __repr__(self) -> str:
        pairs = list(zip(self._ends[self._head :], self._times[self._head :], strict=True))
        return f"<XmitLog {pairs}>"

    def record(self, end: int, now: float) -> None:
        """New data up to ``end`` (exclusive) was sent at ``now``; ``end`` never decreases."""
        times = self._times
        if len(times) > self._head and times[-1] == now:
            self._ends[-1] = end
        else:
            self._ends.append(end)
            times.append(now)

    def trim(self, una: int) -> None:
        """Forget entries below the cumulative ACK ``una``, but the one holding its last
        acknowledged byte (``una - 1``): the ACK that just moved ``una`` asks for its time."""
        ends = self._ends
        head = bisect_left(ends, una, self._head)
        if head >= _COMPACT_AT and head * 2 >= len(ends):
            del ends[:head]
            del self._times[:head]
            head = 0
        self._head = head

    def clear(self) -> None:
        self._ends.clear()
        self._times.clear()
        self._head = 0

    def time_of(self, seq: int) -> float | None:
        """When byte ``seq`` was first sent, or None if it is not in the log."""
        i = bisect_right(self._ends, seq, self._head)
        return self._times[i] if i < len(self._ends) else None

    def sent_by(self, when: float, *, strictly: bool = False) -> int | None:
        """The sequence number after the last byte first sent at or before ``when`` (before,
        with ``strictly``); None when no logged byte was."""
        times = self._times
        if strictly:
            i = bisect_left(times, when, self._head)
        else:
            i = bisect_right(times, when, self._head)
        return self._ends[i - 1] if i > self._head else None

    def first_after(self, when: float) -> float | None:
        """The earliest send time later than ``when``, or None."""
        times = self._times
        i = bisect_right(times, when, self._head)
        return times[i] if i < len(times) else None
