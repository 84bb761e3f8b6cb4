"""The pure part of the WAN emulator: what happens to one packet on one direction of a link.

No I/O and no clock: every call takes ``now`` (seconds) and all randomness comes from the
``random.Random`` handed in, so the model is unit-tested with literal times and a seed
(``tests/bench/test_netlab_model.py``) and the forwarder (``bench/netlab/forwarder.py``) only
moves bytes between TUN devices.

A packet entering a :class:`LinkDirection` goes through these stages, in this order:

1. the bottleneck: a rate limit with a drop-tail queue bounded in bytes. The packet waits for
   the bytes ahead of it to serialize, then takes ``size / rate`` seconds itself; if the bytes
   still to serialize plus its own would exceed ``queue_limit`` it is dropped (a *queue drop*,
   the congestion signal a sender causes itself);
2. independent random loss, then Gilbert-Elliott burst loss (a lost packet still used the
   bottleneck, as with a radio hop behind the router: the loss is not congestion);
3. one-way delay, plus jitter (uniform in ``[-jitter, +jitter]``) that never reorders: a packet
   is never delivered before the one admitted before it, as on one physical path;
4. reordering: with probability ``reorder`` a packet waits ``reorder_delay`` more, and packets
   admitted after it overtake it.

:class:`DelayLine` holds the admitted packets until their delivery time.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from dataclasses import asdict, dataclass
from typing import Any, Generic, TypeVar

from rudp.aio.impairment import GilbertElliott

__all__ = [
    "MIN_QUEUE_LIMIT",
    "DelayLine",
    "DirectionCounters",
    "GilbertElliott",
    "LinkDirection",
    "LinkParams",
]

MIN_QUEUE_LIMIT = 3 * 1500
"""Floor of the default queue limit: a few full-size packets, so a link with a tiny
bandwidth-delay product still carries back-to-back packets."""

T = TypeVar("T")


def _probability(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")


def _duration(name: str, value: float) -> None:
    if not (value >= 0.0 and math.isfinite(value)):
        raise ValueError(f"{name} must be finite and >= 0 seconds, got {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkParams:
    """One direction of an emulated link. The defaults are a perfect wire."""

    delay: float = 0.0
    """One-way delay in seconds (the RTT of a symmetric link is twice this)."""
    jitter: float = 0.0
    """Uniform extra delay in ``[-jitter, +jitter]`` seconds per packet, order kept."""
    loss: float = 0.0
    """Independent loss probability per packet."""
    burst: GilbertElliott | None = None
    """Bursty loss after ``loss``; None for none."""
    reorder: float = 0.0
    """Probability that a packet is held ``reorder_delay`` more so that later ones overtake it."""
    reorder_delay: float = 0.002
    """Extra seconds a reordered packet waits."""
    rate: float | None = None
    """Bottleneck rate in bytes/s (IP packet bytes); None for no limit and no queue."""
    queue_limit: int | None = None
    """Drop-tail limit in bytes; None is one bandwidth-delay product, ``rate * 2 * delay``
    (the RTT of a symmetric link), at least ``MIN_QUEUE_LIMIT``. Needs ``rate``."""

    def __post_init__(self) -> None:
        for name in ("delay", "jitter", "reorder_delay"):
            _duration(name, getattr(self, name))
        _probability("loss", self.loss)
        _probability("reorder", self.reorder)
        if self.rate is not None and not (self.rate > 0 and math.isfinite(self.rate)):
            raise ValueError(f"rate must be finite and > 0 bytes/s, got {self.rate!r}")
        if self.queue_limit is not None:
            if self.rate is None:
                raise ValueError("queue_limit needs a rate (there is no queue without one)")
            if self.queue_limit < 1:
                raise ValueError("queue_limit must be >= 1 byte")

    @property
    def effective_queue_limit(self) -> int | None:
        """The drop-tail limit in bytes once the default (one BDP) is applied."""
        if self.rate is None:
            return None
        if self.queue_limit is not None:
            return self.queue_limit
        return max(MIN_QUEUE_LIMIT, math.ceil(self.rate * 2 * self.delay))

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["effective_queue_limit"] = self.effective_queue_limit
        return out


@dataclass(slots=True)
class DirectionCounters:
    """What one direction did. ``packets_in == delivered + dropped + in flight``."""

    packets_in: int = 0
    bytes_in: int = 0
    queue_drops: int = 0
    queue_drop_bytes: int = 0
    random_drops: int = 0
    burst_drops: int = 0
    loss_drop_bytes: int = 0  # bytes of random and burst drops together
    reordered: int = 0
    max_queue_bytes: int = 0  # the most bytes waiting at the bottleneck at any admission

    @property
    def dropped(self) -> int:
        return self.queue_drops + self.random_drops + self.burst_drops

    @property
    def dropped_bytes(self) -> int:
        return self.queue_drop_bytes + self.loss_drop_bytes

    def as_dict(self) -> dict[str, int]:
        out = asdict(self)
        out["dropped"] = self.dropped
        out["dropped_bytes"] = self.dropped_bytes
        return out


class LinkDirection:
    """Decides each packet's fate and delivery time; see the module docstring for the order."""

    __slots__ = (
        "params",
        "counters",
        "_rng",
        "_rate",
        "_limit",
        "_busy_until",
        "_last_delivery",
        "_bad",
    )

    def __init__(self, params: LinkParams, rng: random.Random) -> None:
        self.params = params
        self.counters = DirectionCounters()
        self._rng = rng
        self._rate = params.rate
        self._limit = params.effective_queue_limit
        self._busy_until = 0.0  # when the bottleneck has serialized everything admitted
        self._last_delivery = 0.0  # delivery time of the last in-order packet
        self._bad = False  # Gilbert-Elliott state

    def queued_bytes(self, now: float) -> int:
        """Bytes admitted to the bottleneck and not yet serialized at ``now``."""
        if self._rate is None or self._busy_until <= now:
            return 0
        return math.ceil((self._busy_until - now) * self._rate)

    def admit(self, size: int, now: float) -> float | None:
        """The time at which a packet of ``size`` bytes arriving at ``now`` is delivered, or
        None when it is dropped (counted by cause)."""
        c = self.counters
        c.packets_in += 1
        c.bytes_in += size
        p = self.params
        depart = now
        if self._rate is not None and self._limit is not None:
            start = self._busy_until if self._busy_until > now else now
            queued = math.ceil((start - now) * self._rate)
            if queued + size > self._limit:
                c.queue_drops += 1
                c.queue_drop_bytes += size
                return None
            if queued + size > c.max_queue_bytes:
                c.max_queue_bytes = queued + size
            depart = self._busy_until = start + size / self._rate
        rng = self._rng
        if p.loss and rng.random() < p.loss:
            c.random_drops += 1
            c.loss_drop_bytes += size
            return None
        if p.burst is not None:
            ge = p.burst
            lost = rng.random() < (ge.loss_in_bad if self._bad else ge.loss_in_good)
            if rng.random() < (ge.p_bad_to_good if self._bad else ge.p_good_to_bad):
                self._bad = not self._bad
            if lost:
                c.burst_drops += 1
                c.loss_drop_bytes += size
                return None
        deliver = depart + p.delay
        if p.jitter:
            deliver += rng.uniform(-p.jitter, p.jitter)
            if deliver < depart:
                deliver = depart
        if p.reorder and rng.random() < p.reorder:
            c.reordered += 1
            return max(deliver, self._last_delivery) + p.reorder_delay
        if deliver < self._last_delivery:
            deliver = self._last_delivery
        self._last_delivery = deliver
        return deliver


class DelayLine(Generic[T]):
    """Items waiting for their delivery time, earliest first (ties in arrival order)."""

    __slots__ = ("_heap", "_order")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, T]] = []
        self._order = itertools.count()

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, at: float, item: T) -> None:
        heapq.heappush(self._heap, (at, next(self._order), item))

    def next_deadline(self) -> float | None:
        """The earliest delivery time held, or None when empty."""
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float) -> list[tuple[float, T]]:
        """Every ``(deadline, item)`` due at or before ``now``, earliest first."""
        heap = self._heap
        out: list[tuple[float, T]] = []
        while heap and heap[0][0] <= now:
            at, _, item = heapq.heappop(heap)
            out.append((at, item))
        return out
