"""One direction of a simulated network path: loss, bursts, duplication, reordering,
corruption, delay, jitter, a rate-limited drop-tail queue, and scripted drops.

All randomness comes from the ``random.Random`` handed to :class:`LossyLink`, so a run is
exactly reproducible from its seed.
"""

from __future__ import annotations

import math
import random
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from rudp.aio.impairment import GilbertElliott  # one burst-loss model for both worlds

__all__ = ["DropPredicate", "GilbertElliott", "Impairment", "LinkStats", "LossyLink"]

DropPredicate = Callable[[int, bytes], bool]
"""``predicate(index, data)``: ``index`` is the 1-based number of the datagram on its link."""


def _check_probability(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")


def _check_duration(name: str, value: float) -> None:
    if not (value >= 0.0 and math.isfinite(value)):
        raise ValueError(f"{name} must be finite and >= 0, got {value!r}")


@dataclass(slots=True)
class _DropRule:
    predicate: DropPredicate
    remaining: int | None = field(default=None)


@dataclass(frozen=True, slots=True)
class Impairment:
    """How one direction of a path misbehaves. The defaults describe a perfect link."""

    loss: float = 0.0
    """Independent loss probability per datagram."""
    burst: GilbertElliott | None = None
    """Bursty loss, applied after (and in addition to) ``loss``."""
    duplicate: float = 0.0
    """Probability that a datagram is delivered twice (each copy is delayed independently)."""
    reorder: float = 0.0
    """Probability that a datagram (copy) is held back by an extra ``reorder_delay``."""
    reorder_delay: float = 0.01
    """Extra seconds for a held-back datagram."""
    corrupt: float = 0.0
    """Probability that one random byte is XORed with a random non-zero value."""
    delay: float = 0.0
    """One-way propagation delay in seconds (added after serialization)."""
    jitter: float = 0.0
    """Uniform extra delay in ``[0, jitter)`` seconds, drawn per copy (may reorder)."""
    rate: float | None = None
    """Bottleneck rate in bytes/s; serialization takes ``len / rate`` behind a FIFO queue."""
    queue_limit: int | None = None
    """Drop-tail limit of the rate queue in bytes (requires ``rate``); None means unbounded."""
    checksum: bool = True
    """Model the UDP checksum: drop corrupted datagrams (``dropped_corrupt``) if True,
    deliver them if False."""

    def __post_init__(self) -> None:
        _check_probability("loss", self.loss)
        _check_probability("duplicate", self.duplicate)
        _check_probability("reorder", self.reorder)
        _check_probability("corrupt", self.corrupt)
        _check_duration("reorder_delay", self.reorder_delay)
        _check_duration("delay", self.delay)
        _check_duration("jitter", self.jitter)
        if self.burst is not None and not isinstance(self.burst, GilbertElliott):
            raise ValueError(f"burst must be a GilbertElliott or None, got {self.burst!r}")
        if self.rate is not None and not (self.rate > 0.0 and math.isfinite(self.rate)):
            raise ValueError(f"rate must be finite and > 0 bytes/s, got {self.rate!r}")
        if self.queue_limit is not None:
            if self.rate is None:
                raise ValueError("queue_limit needs a rate (there is no queue without one)")
            if self.queue_limit < 0:
                raise ValueError(f"queue_limit must be >= 0 bytes, got {self.queue_limit!r}")

    @property
    def is_perfect(self) -> bool:
        """True if this impairment delivers every datagram unchanged, at once, in order."""
        return (
            self.loss == 0.0
            and self.burst is None
            and self.duplicate == 0.0
            and self.reorder == 0.0
            and self.corrupt == 0.0
            and self.delay == 0.0
            and self.jitter == 0.0
            and self.rate is None
        )


@dataclass(slots=True)
class LinkStats:
    """Counters of one :class:`LossyLink`.

    ``sent == delivered - duplicated + dropped_loss + dropped_burst + dropped_scripted
    + dropped_queue + dropped_corrupt`` always holds.
    """

    sent: int = 0
    delivered: int = 0
    """Deliveries scheduled, duplicates included."""
    dropped_loss: int = 0
    dropped_burst: int = 0
    dropped_scripted: int = 0
    dropped_queue: int = 0
    dropped_corrupt: int = 0
    duplicated: int = 0
    reordered: int = 0
    """Copies held back by ``reorder_delay`` (whether or not that changed their order)."""
    corrupted: int = 0
    """Datagrams corrupted, including those then dropped by the checksum."""
    bytes_sent: int = 0
    bytes_delivered: int = 0

    @property
    def dropped(self) -> int:
        """All drops, whatever the reason."""
        return (
            self.dropped_loss
            + self.dropped_burst
            + self.dropped_scripted
            + self.dropped_queue
            + self.dropped_corrupt
        )


class LossyLink:
    """One direction of a path. :meth:`transmit` turns one sent datagram into 0, 1 or 2
    ``(arrival_time, datagram)`` deliveries.

    Stages, in order: scripted drops, rate queue (drop-tail), independent loss, Gilbert-Elliott
    loss, corruption (and the checksum), duplication, then delay + jitter + reordering for each
    copy. A stage whose probability is 0 draws no random numbers.

    ``impairment`` may be reassigned at any time (e.g. to heal a link); counters, scripted
    drops, the Gilbert-Elliott state and the rate queue are kept.
    """

    __slots__ = (
        "stats",
        "_impairment",
        "_rng",
        "_fast",
        "_drop_next",
        "_drop_nth",
        "_drop_where",
        "_blackholes",
        "_scripted",
        "_ge_bad",
        "_busy_until",
        "_queue",
        "_queued_bytes",
    )

    def __init__(self, impairment: Impairment, rng: random.Random) -> None:
        self.stats = LinkStats()
        self._rng = rng
        self._drop_next = 0
        self._drop_nth: set[int] = set()
        self._drop_where: list[_DropRule] = []
        self._blackholes: list[tuple[float, float]] = []
        self._scripted = False
        self._ge_bad = False
        self._busy_until = -math.inf
        self._queue: deque[tuple[float, int]] = deque()  # (serialization end, size)
        self._queued_bytes = 0
        self._impairment = Impairment()
        self._fast = True
        self.impairment = impairment

    @property
    def impairment(self) -> Impairment:
        return self._impairment

    @impairment.setter
    def impairment(self, impairment: Impairment) -> None:
        if not isinstance(impairment, Impairment):
            raise TypeError(f"expected an Impairment, got {impairment!r}")
        self._impairment = impairment
        self._update_fast()

    @property
    def rng(self) -> random.Random:
        return self._rng

    @property
    def queued_bytes(self) -> int:
        """Bytes accepted by the rate queue whose serialization had not ended at the last
        :meth:`transmit` (the datagram on the wire included)."""
        return self._queued_bytes

    def _update_fast(self) -> None:
        self._scripted = bool(
            self._drop_next or self._drop_nth or self._drop_where or self._blackholes
        )
        self._fast = self._impairment.is_perfect and not self._scripted

    # -- scripted drops -------------------------------------------------------------------

    def drop_next(self, n: int = 1) -> None:
        """Drop the next ``n`` datagrams sent on this link (adds to any pending count)."""
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n!r}")
        self._drop_next += n
        self._update_fast()

    def drop_nth(self, k: int) -> None:
        """Drop the ``k``-th datagram ever sent on this link (1-based)."""
        if k < 1:
            raise ValueError(f"k is 1-based, got {k!r}")
        if k <= self.stats.sent:
            raise ValueError(
                f"datagram #{k} cannot be dropped: {self.stats.sent} were already sent"
            )
        self._drop_nth.add(k)
        self._update_fast()

    def drop_where(self, predicate: DropPredicate, *, times: int | None = None) -> None:
        """Drop datagrams for which ``predicate(index, data)`` is true.

        ``index`` is the datagram's 1-based number on this link. The rule stays active for
        ``times`` matches (None: forever); ``times=1`` drops only the first match.
        """
        if times is not None and times < 1:
            raise ValueError(f"times must be >= 1 or None, got {times!r}")
        self._drop_where.append(_DropRule(predicate, times))
        self._update_fast()

    def blackhole(self, start: float, end: float) -> None:
        """Drop every datagram sent at a time in ``[start, end)`` (a partition).

        Datagrams already in flight at ``start`` are still delivered.
        """
        if not start <= end:
            raise ValueError(f"blackhole needs start <= end, got [{start!r}, {end!r})")
        self._blackholes.append((start, end))
        self._update_fast()

    def clear_scripts(self) -> None:
        """Forget all pending scripted drops and blackholes."""
        self._drop_next = 0
        self._drop_nth.clear()
        self._drop_where.clear()
        self._blackholes.clear()
        self._update_fast()

    def _scripted_drop(self, index: int, data: bytes, now: float) -> bool:
        if index in self._drop_nth:
            self._drop_nth.discard(index)
            self._update_fast()
            return True
        for start, end in self._blackholes:
            if start <= now < end:
                return True
        if self._drop_next:
            self._drop_next -= 1
            self._update_fast()
            return True
        rules = self._drop_where
        for i, rule in enumerate(rules):
            if rule.predicate(index, data):
                if rule.remaining is not None:
                    rule.remaining -= 1
                    if rule.remaining <= 0:
                        del rules[i]
                        self._update_fast()
                return True
        return False

    # -- transmission ---------------------------------------------------------------------

    def transmit(self, data: bytes, now: float) -> list[tuple[float, bytes]]:
        """Send one datagram at ``now``; return its ``(arrival_time, datagram)`` deliveries."""
        stats = self.stats
        stats.sent += 1
        n = len(data)
        stats.bytes_sent += n
        if self._fast:
            stats.delivered += 1
            stats.bytes_delivered += n
            return [(now, data)]

        if self._scripted and self._scripted_drop(stats.sent, data, now):
            stats.dropped_scripted += 1
            return []

        imp = self._impairment
        rng = self._rng
        t = now

        rate = imp.rate
        if rate is not None:
            queue = self._queue
            while queue and queue[0][0] <= now:
                self._queued_bytes -= queue.popleft()[1]
            limit = imp.queue_limit
            if limit is not None and self._queued_bytes + n > limit:
                stats.dropped_queue += 1
                return []
            busy = self._busy_until
            t = (busy if busy > now else now) + n / rate
            self._busy_until = t
            queue.append((t, n))
            self._queued_bytes += n

        lost = imp.loss > 0.0 and rng.random() < imp.loss
        ge = imp.burst
        if ge is not None:
            if self._ge_bad:
                burst_lost = rng.random() < ge.loss_in_bad
                if rng.random() < ge.p_bad_to_good:
                    self._ge_bad = False
            else:
                burst_lost = rng.random() < ge.loss_in_good
                if rng.random() < ge.p_good_to_bad:
                    self._ge_bad = True
            if burst_lost and not lost:
                stats.dropped_burst += 1
                return []
        if lost:
            stats.dropped_loss += 1
            return []

        if imp.corrupt > 0.0 and n and rng.random() < imp.corrupt:
            stats.corrupted += 1
            damaged = bytearray(data)
            damaged[rng.randrange(n)] ^= rng.randrange(1, 256)
            if imp.checksum and zlib.crc32(damaged) != zlib.crc32(data):
                stats.dropped_corrupt += 1
                return []
            data = bytes(damaged)

        copies = 1
        if imp.duplicate > 0.0 and rng.random() < imp.duplicate:
            copies = 2
            stats.duplicated += 1
        stats.delivered += copies
        stats.bytes_delivered += n * copies

        t += imp.delay
        jitter = imp.jitter
        reorder = imp.reorder
        if not jitter and not reorder:
            if copies == 1:
                return [(t, data)]
            return [(t, data), (t, data)]
        out: list[tuple[float, bytes]] = []
        for _ in range(copies):
            arrival = t
            if jitter:
                arrival += rng.random() * jitter
            if reorder and rng.random() < reorder:
                arrival += imp.reorder_delay
                stats.reordered += 1
            out.append((arrival, data))
        return out

    def __repr__(self) -> str:
        return f"LossyLink({self._impairment!r}, stats={self.stats!r})"
