"""A seeded, bad network in front of a real socket: loss, bursts, duplication, reordering,
delay, jitter and a rate-limited drop-tail queue.

Users test their code against a bad network, and the demo and benchmarks inject loss, by
passing an :class:`Impairment` as ``impairment=`` to ``open_connection`` / ``start_server`` /
``create_connection`` / ``create_server``. The endpoint then talks through an
:class:`ImpairedIO`, which sits between the endpoint protocol and the real ``DatagramIO``.

The model is the one of the deterministic simulator's link (``tests/sim/link.py``), but on
real sockets and the event loop's clock:

* The impairment applies **independently to each direction it covers**: the datagrams this
  endpoint sends (before they reach the socket) and the datagrams it receives (before the
  protocol sees them). ``directions`` chooses which. So an endpoint impaired with
  ``delay=0.01`` in both directions sees the path's RTT + 20 ms, and ``loss=0.05`` in both
  directions is 5 % loss each way (about 9.75 % of round trips lose something). Impairing
  only one of two peers is usually what a test wants; impairing both doubles everything.
* Each direction has its own ``random.Random``, both derived from ``seed``, so the same seed
  gives the same loss / duplication / reorder / jitter draws for the same sequence of
  datagrams in that direction, whatever the batching. What depends on the real clock (the
  rate queue's drops, which datagrams a timer wake-up delivers together) can differ.
* Everything held back is bounded in bytes (``queue_limit`` for the rate queue,
  ``pending_limit`` for datagrams waiting out their delay); beyond the bounds datagrams are
  dropped and counted, as a real router would.
"""

from __future__ import annotations

import asyncio
import dataclasses
import heapq
import itertools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .dgram import Addr, DatagramIO, DatagramReceiver, IOStats

__all__ = [
    "DEFAULT_PENDING_LIMIT",
    "DirectionStats",
    "GilbertElliott",
    "ImpairedIO",
    "Impairment",
    "ImpairmentStats",
    "MIN_DEFAULT_QUEUE_LIMIT",
    "PENDING_OVERHEAD",
]

Direction = Literal["both", "send", "receive"]

DEFAULT_PENDING_LIMIT = 32 * 1024 * 1024
"""Default ``pending_limit``: 32 MiB per direction holds 250 ms of delay at 1 Gbit/s, far more
than a pure-Python endpoint moves, while still bounding memory."""

PENDING_OVERHEAD = 64
"""Bytes charged per held datagram on top of its length, so that the ``pending_limit`` bound
also bounds the number of (possibly empty) datagrams held, not only their payload."""

MIN_DEFAULT_QUEUE_LIMIT = 65_536
"""Floor of the default ``queue_limit``: one second of a slow rate may be smaller than one
datagram, and a queue that cannot hold the largest UDP datagram would drop everything."""


def _check_number(name: str, value: object) -> float:
    # bool is an int, but ``loss=True`` is a mistake, not a probability.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, got {value!r}")
    return float(value)


def _check_probability(name: str, value: object) -> None:
    if not 0.0 <= _check_number(name, value) <= 1.0:  # also rejects NaN
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")


def _check_duration(name: str, value: object) -> None:
    number = _check_number(name, value)
    if not (number >= 0.0 and math.isfinite(number)):
        raise ValueError(f"{name} must be finite and >= 0 seconds, got {value!r}")


def _check_byte_count(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be an int >= 0 bytes, got {value!r}")


@dataclass(frozen=True, slots=True)
class GilbertElliott:
    """Two-state (Gilbert-Elliott) bursty loss, stepped once per datagram.

    Real loss comes in bursts (a full queue, a fading radio), and recovery code that survives
    5 % independent loss can still fail on five losses in a row. The chain starts in the good
    state; a datagram is lost with ``loss_in_good`` or ``loss_in_bad`` according to the
    current state, then the state moves. With the default loss probabilities, bursts have a
    geometric length of mean ``1 / p_bad_to_good`` and the long-run loss rate is
    ``p_good_to_bad / (p_good_to_bad + p_bad_to_good)``.
    """

    p_good_to_bad: float
    """Probability of moving from the good to the bad state after a datagram."""
    p_bad_to_good: float
    """Probability of moving from the bad to the good state after a datagram."""
    loss_in_good: float = 0.0
    """Loss probability while in the good state."""
    loss_in_bad: float = 1.0
    """Loss probability while in the bad state."""

    def __post_init__(self) -> None:
        _check_probability("p_good_to_bad", self.p_good_to_bad)
        _check_probability("p_bad_to_good", self.p_bad_to_good)
        _check_probability("loss_in_good", self.loss_in_good)
        _check_probability("loss_in_bad", self.loss_in_bad)


@dataclass(frozen=True, slots=True, kw_only=True)
class Impairment:
    """How the datagrams of one endpoint misbehave. The defaults describe a perfect network.

    Every field is keyword-only: a dozen numbers in a row are too easy to swap. Each datagram
    goes through the stages in this order: the rate queue (serialization time, drop-tail),
    independent loss, Gilbert-Elliott loss, duplication, then delay + jitter + reordering for
    each copy. A stage whose probability is 0 draws no random numbers.

    Each covered direction (see ``directions``) is impaired independently with these
    settings: ``delay=0.01`` on both directions adds 20 ms to the round trip, ``loss=0.05``
    on both directions loses 5 % each way.

    ``seed=None`` picks a random seed at construction (``random.SystemRandom``) and stores it
    in ``seed``, so ``seed`` is always an int afterwards: log it, and pass it back as
    ``seed=`` to repeat a run's random draws. Two ``Impairment()`` therefore compare unequal
    unless given the same seed.
    """

    loss: float = 0.0
    """Independent loss probability per datagram, in [0, 1]."""
    burst: GilbertElliott | None = None
    """Bursty loss, applied after (and in addition to) ``loss``; None: no bursts."""
    duplicate: float = 0.0
    """Probability that a datagram is delivered twice; each copy is then delayed (and
    jittered, and possibly held back) independently."""
    reorder: float = 0.0
    """Probability that a datagram (copy) is held back ``reorder_delay`` extra seconds, so that
    datagrams sent after it overtake it."""
    delay: float = 0.0
    """One-way delay in seconds added to every datagram in each covered direction (after the
    rate queue's serialization time)."""
    jitter: float = 0.0
    """Uniform extra delay in ``[0, jitter)`` seconds, drawn per copy. Jitter larger than the
    gap between datagrams reorders them, as on a real multipath network."""
    rate: float | None = None
    """Bottleneck rate in bytes/s, or None for none. A datagram takes ``len / rate`` seconds
    to serialize behind the bytes already queued; this paces bursts and, with
    ``queue_limit``, drops what overflows the queue."""
    seed: int | None = None
    """Seed of the random draws. None picks one at construction; it is then stored here."""
    reorder_delay: float = 0.01
    """Extra seconds a held-back datagram (``reorder``) waits."""
    queue_limit: int | None = None
    """Drop-tail limit of the rate queue in bytes: a datagram is dropped if the bytes still to
    serialize plus its own length exceed it. None means one second of ``rate``, but at least
    ``MIN_DEFAULT_QUEUE_LIMIT`` (so any UDP datagram fits an idle link). Requires ``rate``."""
    pending_limit: int = DEFAULT_PENDING_LIMIT
    """Bytes of datagrams held back (delayed, jittered, reordered or waiting in the rate
    queue) per direction; each is charged its length plus ``PENDING_OVERHEAD``. A datagram
    that would exceed the bound is dropped (``dropped_pending``), so memory stays bounded
    whatever the sender does."""
    directions: Direction = "both"
    """Which datagrams are impaired: ``"both"``, only those this endpoint ``"send"``\\ s, or
    only those it ``"receive"``\\ s. The other direction is passed through untouched."""

    def __post_init__(self) -> None:
        _check_probability("loss", self.loss)
        if self.burst is not None and not isinstance(self.burst, GilbertElliott):
            raise ValueError(f"burst must be a GilbertElliott or None, got {self.burst!r}")
        _check_probability("duplicate", self.duplicate)
        _check_probability("reorder", self.reorder)
        _check_duration("reorder_delay", self.reorder_delay)
        _check_duration("delay", self.delay)
        _check_duration("jitter", self.jitter)
        if self.rate is not None:
            rate = _check_number("rate", self.rate)
            if not (rate > 0.0 and math.isfinite(rate)):
                raise ValueError(f"rate must be finite and > 0 bytes/s, got {self.rate!r}")
        if self.queue_limit is not None:
            _check_byte_count("queue_limit", self.queue_limit)
            if self.rate is None:
                raise ValueError("queue_limit needs a rate (there is no queue without one)")
        _check_byte_count("pending_limit", self.pending_limit)
        if self.directions not in ("both", "send", "receive"):
            raise ValueError(
                f"directions must be 'both', 'send' or 'receive', got {self.directions!r}"
            )
        if self.seed is None:
            # Frozen: the only way to record the chosen seed is to bypass __setattr__.
            object.__setattr__(self, "seed", random.SystemRandom().getrandbits(64))
        elif isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed must be an int or None, got {self.seed!r}")

    @property
    def is_perfect(self) -> bool:
        """True if every datagram is delivered unchanged, at once and in order."""
        return (
            self.loss == 0.0
            and self.burst is None
            and self.duplicate == 0.0
            and self.reorder == 0.0
            and self.delay == 0.0
            and self.jitter == 0.0
            and self.rate is None
        )

    @property
    def effective_queue_limit(self) -> int | None:
        """The rate queue's limit in bytes once the default is applied (None without rate)."""
        if self.rate is None:
            return None
        if self.queue_limit is not None:
            return self.queue_limit
        return max(math.ceil(self.rate), MIN_DEFAULT_QUEUE_LIMIT)

    def covers(self, direction: Literal["send", "receive"]) -> bool:
        """True if datagrams going in ``direction`` are impaired."""
        return self.directions == "both" or self.directions == direction


@dataclass(slots=True)
class DirectionStats:
    """Counters of one direction of an :class:`ImpairedIO`.

    ``sent + duplicated == delivered + dropped + pending`` always holds (``sent`` counts the
    datagrams that entered the impairment, ``delivered`` the copies passed on).
    """

    sent: int = 0
    """Datagrams that entered this direction."""
    delivered: int = 0
    """Copies passed on (to the inner I/O, or to the receiver), duplicates included."""
    dropped_loss: int = 0
    """Dropped by independent loss."""
    dropped_burst: int = 0
    """Dropped by the Gilbert-Elliott model (and not already by independent loss)."""
    dropped_queue: int = 0
    """Dropped by the rate queue's drop-tail limit."""
    dropped_pending: int = 0
    """Copies dropped because holding them would exceed ``pending_limit``."""
    dropped_closed: int = 0
    """Copies still held back when the I/O was closed."""
    duplicated: int = 0
    """Datagrams delivered twice."""
    reordered: int = 0
    """Copies held back by ``reorder_delay`` (whether or not that changed their order)."""
    delayed: int = 0
    """Copies that were held back for any reason instead of being passed on at once."""
    pending: int = 0
    """Copies held back right now."""

    @property
    def dropped(self) -> int:
        """All drops, whatever the reason."""
        return (
            self.dropped_loss
            + self.dropped_burst
            + self.dropped_queue
            + self.dropped_pending
            + self.dropped_closed
        )

    def as_dict(self) -> dict[str, int]:
        """Plain counters, for logs and benchmark reports."""
        return dataclasses.asdict(self)


class ImpairmentStats:
    """The counters of both directions: ``send`` (outgoing) and ``receive`` (incoming)."""

    __slots__ = ("send", "receive")

    def __init__(self) -> None:
        self.send = DirectionStats()
        self.receive = DirectionStats()

    def as_dict(self) -> dict[str, dict[str, int]]:
        """Plain counters per direction, for logs and benchmark reports."""
        return {"send": self.send.as_dict(), "receive": self.receive.as_dict()}

    def __repr__(self) -> str:
        return f"ImpairmentStats(send={self.send!r}, receive={self.receive!r})"


class _Direction:
    """The mutable state of one direction: its random stream, the Gilbert-Elliott state and
    the rate queue (kept as the time its last accepted byte finishes serializing, which gives
    the queued bytes as ``(busy_until - now) * rate`` without storing the queue)."""

    __slots__ = ("active", "rng", "ge_bad", "busy_until", "pending_bytes", "stats")

    def __init__(self, active: bool, rng: random.Random, stats: DirectionStats) -> None:
        self.active = active
        self.rng = rng
        self.ge_bad = False
        self.busy_until = -math.inf
        self.pending_bytes = 0
        self.stats = stats


# (due time, tie-breaker keeping FIFO order among equal due times, outgoing?, data, address)
_Held = tuple[float, int, bool, bytes, Addr]


class ImpairedIO:
    """A ``DatagramIO`` that impairs what it sends, and the ``DatagramReceiver`` of the inner
    I/O that impairs what it receives.

    The inner I/O must deliver to this object, so it is created after it and attached::

        impaired = ImpairedIO(loop, endpoint, impairment)   # endpoint: the real receiver
        io = BatchedDatagramIO(loop, sock, impaired)        # the inner I/O delivers to impaired
        impaired.attach(io)
        endpoint.attach_io(impaired)                        # the endpoint sends through it

    An inner I/O that already exists can be given as ``inner=`` instead. Sending before
    :meth:`attach` is a programming error (``RuntimeError``); receiving is fine.

    Undelayed datagrams pass on at once, as one batch per call. Held-back ones wait in one
    heap shared by both directions, served by a single ``loop.call_at`` timer for the whole
    object, re-armed only when the earliest due time moves; each wake-up passes on
    everything due as one batch per direction. A direction the impairment does not cover (or
    a perfect impairment) passes the very batch object through, synchronously.
    """

    __slots__ = (
        "_loop",
        "_receiver",
        "_impairment",
        "_inner",
        "_closed",
        "_send",
        "_receive",
        "_impairment_stats",
        "_heap",
        "_tiebreak",
        "_timer",
        "_timer_when",
        "_detached_stats",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        receiver: DatagramReceiver,
        impairment: Impairment,
        *,
        inner: DatagramIO | None = None,
    ) -> None:
        if not isinstance(impairment, Impairment):
            raise TypeError(f"expected an Impairment, got {impairment!r}")
        self._loop = loop
        self._receiver = receiver
        self._impairment = impairment
        self._inner: DatagramIO | None = None
        self._closed = False
        # Both streams come from the one seed, in a fixed order, so a seed repeats both.
        master = random.Random(impairment.seed)
        send_rng = random.Random(master.getrandbits(64))
        receive_rng = random.Random(master.getrandbits(64))
        stats = ImpairmentStats()
        self._impairment_stats = stats
        self._send = _Direction(
            impairment.covers("send") and not impairment.is_perfect, send_rng, stats.send
        )
        self._receive = _Direction(
            impairment.covers("receive") and not impairment.is_perfect,
            receive_rng,
            stats.receive,
        )
        self._heap: list[_Held] = []
        self._tiebreak = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_when = math.inf
        self._detached_stats = IOStats()
        if inner is not None:
            self.attach(inner)

    # -- wiring ---------------------------------------------------------------------------

    def attach(self, inner: DatagramIO) -> None:
        """Send through ``inner`` from now on. ``inner`` should deliver to this object.

        Attaching to an already closed ``ImpairedIO`` closes ``inner`` at once, so a setup
        that failed half-way does not leak the socket.
        """
        if self._inner is not None:
            raise RuntimeError("ImpairedIO is already attached to an inner DatagramIO")
        self._inner = inner
        if self._closed:
            inner.close()

    @property
    def inner(self) -> DatagramIO | None:
        """The wrapped I/O, or None before :meth:`attach`."""
        return self._inner

    @property
    def impairment(self) -> Impairment:
        return self._impairment

    @property
    def impairment_stats(self) -> ImpairmentStats:
        """What the impairment did, per direction."""
        return self._impairment_stats

    @property
    def stats(self) -> IOStats:
        """The inner I/O's counters (what really went through the socket)."""
        inner = self._inner
        return inner.stats if inner is not None else self._detached_stats

    @property
    def pending(self) -> int:
        """Copies held back right now, both directions."""
        return len(self._heap)

    @property
    def closed(self) -> bool:
        return self._closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """The inner I/O's extra info; ``"impairment"`` gives this object's Impairment."""
        if name == "impairment":
            return self._impairment
        inner = self._inner
        return inner.get_extra_info(name, default) if inner is not None else default

    def close(self) -> None:
        """Cancel the timer, drop everything held back (counted as ``dropped_closed``) and
        close the inner I/O. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_when = math.inf
        for _, _, outgoing, _, _ in self._heap:
            stats = self._send.stats if outgoing else self._receive.stats
            stats.pending -= 1
            stats.dropped_closed += 1
        self._heap.clear()
        self._send.pending_bytes = 0
        self._receive.pending_bytes = 0
        if self._inner is not None:
            self._inner.close()

    # -- the two directions ---------------------------------------------------------------

    def send_batch(self, datagrams: Sequence[tuple[bytes, Addr]]) -> None:
        """Impair and send ``datagrams``; the undelayed ones go on at once as one batch."""
        inner = self._inner
        if inner is None:
            raise RuntimeError("ImpairedIO.send_batch before attach()")
        direction = self._send
        if self._closed or not direction.active:
            if not self._closed:
                direction.stats.sent += len(datagrams)
                direction.stats.delivered += len(datagrams)
            # After close the (closed) inner I/O counts these as its own send drops.
            inner.send_batch(datagrams)
            return
        immediate = self._impair(direction, True, datagrams)
        if immediate:
            inner.send_batch(immediate)

    def datagrams_received(self, datagrams: list[tuple[bytes, Addr]]) -> None:
        """From the inner I/O: impair, then deliver the undelayed ones at once as one batch."""
        if self._closed:
            return
        direction = self._receive
        if not direction.active:
            direction.stats.sent += len(datagrams)
            direction.stats.delivered += len(datagrams)
            self._receiver.datagrams_received(datagrams)
            return
        immediate = self._impair(direction, False, datagrams)
        if immediate:
            self._receiver.datagrams_received(immediate)

    def error_received(self, exc: OSError) -> None:
        """Errors are not impaired: they pass straight to the receiver."""
        if not self._closed:
            self._receiver.error_received(exc)

    # -- the model ------------------------------------------------------------------------

    def _impair(
        self, direction: _Direction, outgoing: bool, datagrams: Sequence[tuple[bytes, Addr]]
    ) -> list[tuple[bytes, Addr]]:
        """Run each datagram through the stages; hold back the delayed copies (arming the
        timer if the earliest due time moved) and return the ones to pass on now, in order."""
        imp = self._impairment
        rng = direction.rng
        stats = direction.stats
        now = self._loop.time()
        rate = imp.rate
        queue_limit = imp.effective_queue_limit
        loss = imp.loss
        burst = imp.burst
        duplicate = imp.duplicate
        delay = imp.delay
        jitter = imp.jitter
        reorder = imp.reorder
        reorder_delay = imp.reorder_delay
        pending_limit = imp.pending_limit
        heap = self._heap
        tiebreak = self._tiebreak
        earliest = math.inf
        immediate: list[tuple[bytes, Addr]] = []

        for data, addr in datagrams:
            stats.sent += 1
            size = len(data)
            t = now
            if rate is not None and queue_limit is not None:
                busy = direction.busy_until
                if busy < now:
                    busy = now
                # Bytes still to serialize, rounded to whole bytes so that float error in
                # ``busy - now`` cannot flip an exact fit into a drop.
                backlog = int((busy - now) * rate + 0.5)
                if backlog + size > queue_limit:
                    stats.dropped_queue += 1
                    continue
                t = busy + size / rate
                direction.busy_until = t

            lost = loss > 0.0 and rng.random() < loss
            if burst is not None:
                # The chain steps for every datagram past the queue, lost or not.
                if direction.ge_bad:
                    burst_lost = rng.random() < burst.loss_in_bad
                    if rng.random() < burst.p_bad_to_good:
                        direction.ge_bad = False
                else:
                    burst_lost = rng.random() < burst.loss_in_good
                    if rng.random() < burst.p_good_to_bad:
                        direction.ge_bad = True
                if burst_lost and not lost:
                    stats.dropped_burst += 1
                    continue
            if lost:
                stats.dropped_loss += 1
                continue

            copies = 1
            if duplicate > 0.0 and rng.random() < duplicate:
                copies = 2
                stats.duplicated += 1

            base = t + delay
            for _ in range(copies):
                due = base
                if jitter > 0.0:
                    due += rng.random() * jitter
                if reorder > 0.0 and rng.random() < reorder:
                    due += reorder_delay
                    stats.reordered += 1
                if due <= now:
                    immediate.append((data, addr))
                    stats.delivered += 1
                    continue
                cost = size + PENDING_OVERHEAD
                if direction.pending_bytes + cost > pending_limit:
                    stats.dropped_pending += 1
                    continue
                direction.pending_bytes += cost
                stats.pending += 1
                stats.delayed += 1
                heapq.heappush(heap, (due, next(tiebreak), outgoing, data, addr))
                if due < earliest:
                    earliest = due

        if earliest < self._timer_when:
            self._arm(earliest)
        return immediate

    def _arm(self, when: float) -> None:
        """Point the one timer at ``when`` (replacing a later one)."""
        if self._timer is not None:
            self._timer.cancel()
        self._timer_when = when
        self._timer = self._loop.call_at(when, self._on_timer, when)

    def _on_timer(self, deadline: float) -> None:
        """Pass on everything due, one batch per direction, after re-arming for the rest (so a
        receiver that raises, or sends from inside the callback, leaves a consistent state)."""
        self._timer = None
        self._timer_when = math.inf
        # Timers may fire slightly early (clock resolution, uvloop's millisecond ticks); the
        # datagrams due at the deadline are due now.
        now = max(deadline, self._loop.time())
        heap = self._heap
        send = self._send
        receive = self._receive
        outgoing_batch: list[tuple[bytes, Addr]] = []
        incoming_batch: list[tuple[bytes, Addr]] = []
        while heap and heap[0][0] <= now:
            _, _, outgoing, data, addr = heapq.heappop(heap)
            direction = send if outgoing else receive
            direction.pending_bytes -= len(data) + PENDING_OVERHEAD
            direction.stats.pending -= 1
            if outgoing:
                outgoing_batch.append((data, addr))
            else:
                incoming_batch.append((data, addr))
        if heap:
            self._arm(heap[0][0])
        try:
            if outgoing_batch:
                send.stats.delivered += len(outgoing_batch)
                # Sending is only possible once attached, so an outgoing copy implies inner.
                assert self._inner is not None
                self._inner.send_batch(outgoing_batch)
        finally:
            if incoming_batch:
                if self._closed:  # closed from inside the send above
                    receive.stats.dropped_closed += len(incoming_batch)
                else:
                    receive.stats.delivered += len(incoming_batch)
                    self._receiver.datagrams_received(incoming_batch)

    def __repr__(self) -> str:
        return f"ImpairedIO({self._impairment!r}, pending={len(self._heap)}, closed={self._closed})"
