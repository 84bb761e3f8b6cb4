"""Tests of ``rudp.aio.impairment``: the seeded impairment in front of a real DatagramIO.

The statistical and structural properties (loss rates, bursts, duplication, queue drops,
reproducibility, the single timer) are checked against a fake inner I/O and a fake receiver;
the timing ones (delay, jitter, reordering, rate pacing) run on the real default event loop,
waiting on futures resolved by the fakes, never on sleeps. A manual clock drives the
property-based test and the early-timer case, which real time cannot produce on demand.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rudp.aio.dgram import Addr, DatagramIO, DatagramReceiver, IOStats
from rudp.aio.impairment import (
    MIN_DEFAULT_QUEUE_LIMIT,
    PENDING_OVERHEAD,
    DirectionStats,
    GilbertElliott,
    ImpairedIO,
    Impairment,
)

ADDR: Addr = ("127.0.0.1", 9999)
# Timers may fire up to the clock resolution early (asyncio); a microsecond covers it.
EARLY = 1e-6
# How late a timer may fire on a loaded test machine without failing the test.
LATE = 0.025

Batch = list[tuple[bytes, Addr]]


def dg(index: int, size: int = 8) -> tuple[bytes, Addr]:
    """A datagram whose first four bytes number it."""
    return index.to_bytes(4, "big") + bytes(max(0, size - 4)), ADDR


def index_of(datagram: tuple[bytes, Addr]) -> int:
    return int.from_bytes(datagram[0][:4], "big")


class Recorder:
    """Records batches with the loop time they arrived at, and wakes waiters by count."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.batches: list[tuple[float, Sequence[tuple[bytes, Addr]]]] = []
        self.count = 0
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    def record(self, datagrams: Sequence[tuple[bytes, Addr]]) -> None:
        self.batches.append((self.loop.time(), datagrams))
        self.count += len(datagrams)
        for target, fut in self._waiters:
            if self.count >= target and not fut.done():
                fut.set_result(None)

    async def wait_for(self, target: int) -> None:
        if self.count >= target:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((target, fut))
        await fut

    def arrivals(self) -> list[tuple[float, int]]:
        """(arrival time, datagram index) for every datagram, in delivery order."""
        return [(t, index_of(d)) for t, batch in self.batches for d in batch]

    def indices(self) -> list[int]:
        return [i for _, i in self.arrivals()]


class FakeIO(Recorder):
    """The inner DatagramIO: records each ``send_batch`` (the very object passed)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self.closed = False
        self._stats = IOStats()

    def send_batch(self, datagrams: Sequence[tuple[bytes, Addr]]) -> None:
        self._stats.send_calls += 1
        if self.closed:
            self._stats.send_drops += len(datagrams)
        else:
            self._stats.datagrams_sent += len(datagrams)
        self.record(datagrams)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return "fake-sock" if name == "socket" else default

    def close(self) -> None:
        self.closed = True

    @property
    def stats(self) -> IOStats:
        return self._stats


class FakeReceiver(Recorder):
    """The endpoint protocol's side: records delivered batches and errors."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self.errors: list[OSError] = []

    def datagrams_received(self, datagrams: list[tuple[bytes, Addr]]) -> None:
        self.record(datagrams)

    def error_received(self, exc: OSError) -> None:
        self.errors.append(exc)


class CountingLoop:
    """Delegates ``time`` and ``call_at`` to a real loop, counting the timer handles created
    and how many were live (neither cancelled nor run) at once."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.call_at_calls = 0
        self.max_live = 0
        self._handles: list[asyncio.TimerHandle] = []
        self._ran: set[int] = set()

    def time(self) -> float:
        return self._loop.time()

    def call_at(self, when: float, callback: Callable[..., object], *args: Any) -> Any:
        number = self.call_at_calls
        self.call_at_calls += 1

        def run(*call_args: Any) -> None:
            self._ran.add(number)
            callback(*call_args)

        self._handles.append(self._loop.call_at(when, run, *args))
        self.max_live = max(self.max_live, self.live)
        return self._handles[-1]

    @property
    def live(self) -> int:
        return sum(
            1 for n, h in enumerate(self._handles) if not h.cancelled() and n not in self._ran
        )


class ManualHandle:
    def __init__(self, when: float, callback: Callable[..., object], args: tuple[Any, ...]):
        self.when = when
        self.callback = callback
        self.args = args
        self._cancelled = False

    def cancel(self) -> None:
        self._cancelled = True

    def cancelled(self) -> bool:
        return self._cancelled


class ManualLoop:
    """A clock the test moves by hand, with just what ImpairedIO uses of a loop."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.handles: list[ManualHandle] = []

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[..., object], *args: Any) -> ManualHandle:
        handle = ManualHandle(when, callback, args)
        self.handles.append(handle)
        return handle

    def live(self) -> list[ManualHandle]:
        return [h for h in self.handles if not h.cancelled()]

    def fire(self, handle: ManualHandle) -> None:
        self.handles.remove(handle)
        handle.callback(*handle.args)

    def advance(self, to: float) -> None:
        """Move the clock to ``to``, running every due timer at its own time."""
        while True:
            due = [h for h in self.live() if h.when <= to]
            if not due:
                break
            handle = min(due, key=lambda h: h.when)
            self.now = max(self.now, handle.when)
            self.fire(handle)
        self.now = max(self.now, to)


def make(impairment: Impairment, loop: Any = None) -> tuple[ImpairedIO, FakeIO, FakeReceiver]:
    """An ImpairedIO wired the documented way: receiver first, then ``attach(inner)``."""
    real = asyncio.get_running_loop()
    clock = real if loop is None else loop
    receiver = FakeReceiver(real)
    impaired = ImpairedIO(cast(asyncio.AbstractEventLoop, clock), receiver, impairment)
    inner = FakeIO(real)
    impaired.attach(inner)
    return impaired, inner, receiver


def send_all(io: ImpairedIO, count: int, batch: int = 100, size: int = 8) -> None:
    for start in range(0, count, batch):
        io.send_batch([dg(i, size) for i in range(start, min(count, start + batch))])


def receive_all(io: ImpairedIO, count: int, batch: int = 100, size: int = 8) -> None:
    for start in range(0, count, batch):
        io.datagrams_received([dg(i, size) for i in range(start, min(count, start + batch))])


def check_balance(stats: DirectionStats) -> None:
    assert stats.sent + stats.duplicated == stats.delivered + stats.dropped + stats.pending


def runs(indices: set[int]) -> list[int]:
    """Lengths of the runs of consecutive integers in ``indices``."""
    lengths: list[int] = []
    previous = None
    for i in sorted(indices):
        if previous is not None and i == previous + 1:
            lengths[-1] += 1
        else:
            lengths.append(1)
        previous = i
    return lengths


# --- typing: ImpairedIO is both sides of the seam -----------------------------------------


def _static_conformance(io: ImpairedIO) -> tuple[DatagramIO, DatagramReceiver]:
    return io, io


# --- loss, bursts, duplication ------------------------------------------------------------

N = 20_000


async def dropped_send_indices(impairment: Impairment, batch: int = 100) -> set[int]:
    io, inner, _ = make(impairment)
    send_all(io, N, batch)
    assert io.pending == 0
    return set(range(N)) - set(inner.indices())


async def test_loss_rate_and_reproducibility() -> None:
    async with asyncio.timeout(10):
        imp = Impairment(loss=0.1, seed=1234, directions="send")
        io, inner, _ = make(imp)
        send_all(io, N)
        dropped = set(range(N)) - set(inner.indices())
        assert abs(len(dropped) / N - 0.1) < 0.012  # ~5.5 standard deviations
        stats = io.impairment_stats.send
        assert stats.sent == N
        assert stats.dropped_loss == len(dropped)
        assert stats.delivered == N - len(dropped)
        check_balance(stats)
        # Undelayed datagrams keep their order and their batching (one call per batch).
        assert inner.indices() == sorted(inner.indices())
        assert len(inner.batches) == N // 100

        # The same seed drops the same datagrams, whatever the batching; another seed does not.
        assert await dropped_send_indices(imp, batch=37) == dropped
        assert await dropped_send_indices(Impairment(loss=0.1, seed=1234)) == dropped
        other = await dropped_send_indices(Impairment(loss=0.1, seed=1235))
        assert other != dropped
        assert abs(len(other) / N - 0.1) < 0.012


async def test_receive_direction_is_reproducible_and_independent_of_send() -> None:
    async with asyncio.timeout(10):

        def dropped_received(seed: int) -> set[int]:
            io, _, receiver = make(Impairment(loss=0.2, seed=seed, directions="receive"))
            receive_all(io, 5000)
            return set(range(5000)) - set(receiver.indices())

        first = dropped_received(7)
        assert dropped_received(7) == first
        assert abs(len(first) / 5000 - 0.2) < 0.03
        # The receive stream is derived from the seed but is not the send stream.
        io, inner, _ = make(Impairment(loss=0.2, seed=7, directions="send"))
        send_all(io, 5000)
        assert set(range(5000)) - set(inner.indices()) != first


async def test_gilbert_elliott_loss_comes_in_bursts() -> None:
    async with asyncio.timeout(10):
        ge = GilbertElliott(p_good_to_bad=0.01, p_bad_to_good=0.2)
        io, inner, _ = make(Impairment(burst=ge, seed=99))
        send_all(io, N)
        dropped = set(range(N)) - set(inner.indices())
        expected_rate = 0.01 / (0.01 + 0.2)  # ~4.8 %
        assert abs(len(dropped) / N - expected_rate) < 0.02
        lengths = runs(dropped)
        assert 3.5 < sum(lengths) / len(lengths) < 7.0  # mean burst 1 / p_bad_to_good = 5
        stats = io.impairment_stats.send
        assert stats.dropped_burst == len(dropped)
        assert stats.dropped_loss == 0
        check_balance(stats)

        # Independent loss at the same rate is not bursty.
        independent = await dropped_send_indices(Impairment(loss=expected_rate, seed=99))
        lengths = runs(independent)
        assert sum(lengths) / len(lengths) < 1.2


async def test_duplication() -> None:
    async with asyncio.timeout(10):
        io, inner, _ = make(Impairment(duplicate=0.25, seed=3))
        send_all(io, N)
        stats = io.impairment_stats.send
        assert abs(stats.duplicated / N - 0.25) < 0.015
        delivered = inner.indices()
        assert len(delivered) == N + stats.duplicated == stats.delivered
        # Undelayed copies go out back to back, in order.
        assert delivered == sorted(delivered)
        assert set(delivered) == set(range(N))
        assert sum(1 for a, b in zip(delivered, delivered[1:], strict=False) if a == b) == (
            stats.duplicated
        )
        check_balance(stats)


# --- timing on the real loop ---------------------------------------------------------------


async def test_delay_in_both_directions() -> None:
    async with asyncio.timeout(5):
        loop = asyncio.get_running_loop()
        delay = 0.05
        io, inner, receiver = make(Impairment(delay=delay))
        t0 = loop.time()
        io.send_batch([dg(i) for i in range(10)])
        io.datagrams_received([dg(i) for i in range(10, 20)])
        assert inner.batches == [] and receiver.batches == []  # nothing passes at once
        assert io.pending == 20
        await inner.wait_for(10)
        await receiver.wait_for(10)
        # Datagrams due together are passed on together, in order.
        assert len(inner.batches) == 1 and inner.indices() == list(range(10))
        assert len(receiver.batches) == 1 and receiver.indices() == list(range(10, 20))
        for t, _ in inner.arrivals() + receiver.arrivals():
            assert t0 + delay - EARLY <= t <= t0 + delay + LATE
        for stats in (io.impairment_stats.send, io.impairment_stats.receive):
            assert stats.delayed == stats.delivered == 10
            assert stats.pending == 0
            check_balance(stats)
        assert io.pending == 0


async def test_jitter_stays_within_bounds_and_spreads_arrivals() -> None:
    async with asyncio.timeout(5):
        loop = asyncio.get_running_loop()
        delay, jitter = 0.01, 0.04
        io, inner, _ = make(Impairment(delay=delay, jitter=jitter, seed=11))
        t0 = loop.time()
        io.send_batch([dg(i) for i in range(200)])
        t1 = loop.time()
        await inner.wait_for(200)
        arrivals = inner.arrivals()
        for t, _ in arrivals:
            assert t0 + delay - EARLY <= t <= t1 + delay + jitter + LATE
        assert sorted(i for _, i in arrivals) == list(range(200))
        assert len(inner.batches) >= 2  # spread over several timer wake-ups
        assert inner.indices() != list(range(200))  # 40 ms of jitter reorders


async def test_reorder_holds_some_datagrams_back() -> None:
    async with asyncio.timeout(5):
        loop = asyncio.get_running_loop()
        reorder_delay = 0.02
        io, inner, _ = make(Impairment(reorder=0.3, reorder_delay=reorder_delay, seed=5))
        t0 = loop.time()
        io.send_batch([dg(i) for i in range(100)])
        immediate = [index_of(d) for d in inner.batches[0][1]]
        held = 100 - len(immediate)
        stats = io.impairment_stats.send
        assert stats.reordered == stats.delayed == held
        assert 15 <= held <= 45
        await inner.wait_for(100)
        delivered = inner.indices()
        assert sorted(delivered) == list(range(100))
        assert delivered != list(range(100))  # later datagrams overtook the held ones
        for t, i in inner.arrivals():
            if i not in immediate:
                assert t >= t0 + reorder_delay - EARLY
        check_balance(stats)


async def test_rate_paces_datagrams() -> None:
    async with asyncio.timeout(5):
        loop = asyncio.get_running_loop()
        rate, size = 100_000.0, 1000  # 10 ms per datagram
        io, inner, _ = make(Impairment(rate=rate, directions="send"))
        t0 = loop.time()
        io.send_batch([dg(i, size) for i in range(10)])
        t1 = loop.time()
        await inner.wait_for(10)
        arrivals = inner.arrivals()
        assert [i for _, i in arrivals] == list(range(10))
        for k, (t, _) in enumerate(arrivals):
            serialized = (k + 1) * size / rate
            assert t0 + serialized - EARLY <= t <= t1 + serialized + LATE
        span = arrivals[-1][0] - arrivals[0][0]
        assert span >= 9 * size / rate - LATE
        assert io.impairment_stats.send.dropped_queue == 0


async def test_rate_queue_drops_the_tail() -> None:
    async with asyncio.timeout(5):
        imp = Impairment(rate=1000.0, queue_limit=3000, seed=1)
        io, inner, _ = make(imp)
        io.send_batch([dg(i, 1000) for i in range(10)])
        stats = io.impairment_stats.send
        # 1000, 2000 and 3000 bytes queued fit; the fourth would make 4000.
        assert stats.dropped_queue == 7
        assert stats.pending == 3
        check_balance(stats)
        io.close()
        assert stats.dropped_closed == 3 and stats.pending == 0
        check_balance(stats)
        assert inner.batches == []


def test_default_queue_limit() -> None:
    assert Impairment(rate=10_000_000.0).effective_queue_limit == 10_000_000
    assert Impairment(rate=1000.0).effective_queue_limit == MIN_DEFAULT_QUEUE_LIMIT
    assert Impairment(rate=1000.0, queue_limit=0).effective_queue_limit == 0
    assert Impairment().effective_queue_limit is None


# --- directions and the perfect impairment -------------------------------------------------


async def test_send_only_leaves_receives_untouched() -> None:
    async with asyncio.timeout(5):
        io, inner, receiver = make(Impairment(loss=1.0, directions="send"))
        incoming: Batch = [dg(i) for i in range(5)]
        io.datagrams_received(incoming)
        assert len(receiver.batches) == 1 and receiver.batches[0][1] is incoming
        io.send_batch([dg(i) for i in range(5)])
        assert inner.batches == []
        assert io.impairment_stats.send.dropped_loss == 5
        assert io.impairment_stats.receive.delivered == 5


async def test_receive_only_leaves_sends_untouched() -> None:
    async with asyncio.timeout(5):
        io, inner, receiver = make(Impairment(loss=1.0, directions="receive"))
        outgoing: Batch = [dg(i) for i in range(5)]
        io.send_batch(outgoing)
        assert len(inner.batches) == 1 and inner.batches[0][1] is outgoing
        io.datagrams_received([dg(i) for i in range(5)])
        assert receiver.batches == []
        assert io.impairment_stats.receive.dropped_loss == 5
        assert io.impairment_stats.send.delivered == 5


async def test_zero_impairment_passes_batches_through_synchronously() -> None:
    async with asyncio.timeout(5):
        counting = CountingLoop(asyncio.get_running_loop())
        io, inner, receiver = make(Impairment(), loop=counting)
        sent = [[dg(i) for i in range(k, k + 3)] for k in (0, 3, 6)]
        received = [[dg(i) for i in range(k, k + 4)] for k in (0, 4)]
        for batch in sent:
            io.send_batch(batch)
        for batch in received:
            io.datagrams_received(batch)
        assert [b for _, b in inner.batches] == sent
        assert all(got is batch for (_, got), batch in zip(inner.batches, sent, strict=True))
        assert all(got is batch for (_, got), batch in zip(receiver.batches, received, strict=True))
        assert counting.call_at_calls == 0 and io.pending == 0
        assert io.impairment_stats.send.sent == io.impairment_stats.send.delivered == 9
        assert io.impairment_stats.receive.sent == io.impairment_stats.receive.delivered == 8


# --- the one timer -------------------------------------------------------------------------


async def test_a_single_timer_serves_every_held_datagram() -> None:
    async with asyncio.timeout(5):
        counting = CountingLoop(asyncio.get_running_loop())
        imp = Impairment(delay=0.01, jitter=0.02, reorder=0.2, duplicate=0.1, seed=21)
        io, inner, receiver = make(imp, loop=counting)
        for k in range(20):
            io.send_batch([dg(i) for i in range(k * 10, k * 10 + 10)])
            io.datagrams_received([dg(i) for i in range(k * 10, k * 10 + 10)])
            assert counting.live <= 1
            await asyncio.sleep(0)  # let time pass between batches (and timers run)
        send_stats = io.impairment_stats.send
        receive_stats = io.impairment_stats.receive
        await inner.wait_for(200 + send_stats.duplicated)
        await receiver.wait_for(200 + receive_stats.duplicated)
        assert counting.max_live <= 1
        assert counting.live == 0 and io.pending == 0
        # A timer is created at most once per impairing call and once per wake-up (each of
        # which delivers at least one batch), never per datagram.
        held = send_stats.delayed + receive_stats.delayed
        wakeup_batches = len(inner.batches) + len(receiver.batches)
        assert counting.call_at_calls <= 40 + wakeup_batches
        assert counting.call_at_calls < held
        check_balance(send_stats)
        check_balance(receive_stats)


async def test_timer_is_not_rearmed_when_the_earliest_deadline_stays() -> None:
    async with asyncio.timeout(5):
        counting = CountingLoop(asyncio.get_running_loop())
        io, inner, _ = make(Impairment(delay=0.03, directions="send"), loop=counting)
        for k in range(5):
            io.send_batch([dg(i) for i in range(k * 4, k * 4 + 4)])
        assert counting.call_at_calls == 1
        await inner.wait_for(20)
        assert inner.indices() == list(range(20))


def test_early_timer_delivers_what_is_due_at_its_deadline() -> None:
    loop = ManualLoop()
    receiver_loop = cast(asyncio.AbstractEventLoop, loop)
    receiver = FakeReceiver(receiver_loop)
    io = ImpairedIO(receiver_loop, receiver, Impairment(delay=0.1))
    inner = FakeIO(receiver_loop)
    io.attach(inner)
    io.send_batch([dg(1)])
    (handle,) = loop.live()
    assert handle.when == pytest.approx(1000.1)
    loop.now = 1000.099  # the loop runs the timer a millisecond early
    loop.fire(handle)
    assert inner.indices() == [1]
    assert loop.live() == []


# --- lifecycle -----------------------------------------------------------------------------


async def test_close_cancels_the_timer_and_drops_held_datagrams() -> None:
    async with asyncio.timeout(5):
        counting = CountingLoop(asyncio.get_running_loop())
        io, inner, receiver = make(Impairment(delay=1.0), loop=counting)
        io.send_batch([dg(i) for i in range(5)])
        io.datagrams_received([dg(i) for i in range(3)])
        assert io.pending == 8 and counting.live == 1
        io.close()
        assert counting.live == 0 and io.pending == 0 and io.closed
        assert inner.closed
        assert io.impairment_stats.send.dropped_closed == 5
        assert io.impairment_stats.receive.dropped_closed == 3
        check_balance(io.impairment_stats.send)
        check_balance(io.impairment_stats.receive)
        io.close()  # idempotent
        # After close, sends reach the (closed) inner I/O, which counts them as its drops.
        late: Batch = [dg(9)]
        io.send_batch(late)
        assert inner.batches[-1][1] is late and io.stats.send_drops == 1
        io.datagrams_received([dg(9)])
        io.error_received(OSError("late"))
        assert receiver.batches == [] and receiver.errors == []
        assert counting.live == 0


async def test_pending_limit_bounds_held_bytes() -> None:
    async with asyncio.timeout(5):
        limit = 3 * (100 + PENDING_OVERHEAD)
        io, inner, _ = make(Impairment(delay=1.0, pending_limit=limit))
        io.send_batch([dg(i, 100) for i in range(5)])
        stats = io.impairment_stats.send
        assert stats.pending == 3 and stats.dropped_pending == 2
        check_balance(stats)
        io.close()
        assert inner.batches == []


async def test_attach_lifecycle_and_delegation() -> None:
    async with asyncio.timeout(5):
        loop = asyncio.get_running_loop()
        receiver = FakeReceiver(loop)
        imp = Impairment(loss=0.5, seed=1)
        io = ImpairedIO(loop, receiver, imp)
        assert io.inner is None
        with pytest.raises(RuntimeError, match="attach"):
            io.send_batch([dg(0)])
        io.datagrams_received([dg(0)])  # receiving before attach is fine
        assert isinstance(io.stats, IOStats)
        assert io.get_extra_info("socket", "none") == "none"
        inner = FakeIO(loop)
        io.attach(inner)
        assert io.inner is inner
        with pytest.raises(RuntimeError, match="already attached"):
            io.attach(FakeIO(loop))
        assert io.stats is inner.stats
        assert io.get_extra_info("socket") == "fake-sock"
        assert io.get_extra_info("impairment") is imp
        assert io.impairment is imp
        error = OSError("port unreachable")
        io.error_received(error)
        assert receiver.errors == [error]

        # ``inner=`` wires an existing inner I/O at construction.
        other_inner = FakeIO(loop)
        wired = ImpairedIO(loop, receiver, Impairment(), inner=other_inner)
        assert wired.inner is other_inner

        # Attaching to a closed ImpairedIO closes the inner I/O instead of leaking it.
        closed = ImpairedIO(loop, receiver, Impairment())
        closed.close()
        late_inner = FakeIO(loop)
        closed.attach(late_inner)
        assert late_inner.closed

        with pytest.raises(TypeError):
            ImpairedIO(loop, receiver, cast(Impairment, object()))


async def test_receiver_sending_from_a_timer_callback_is_consistent() -> None:
    """The endpoint protocol sends ACKs from inside ``datagrams_received``; a delayed
    delivery must leave the heap and timer ready for that re-entrant send."""
    async with asyncio.timeout(5):
        counting = CountingLoop(asyncio.get_running_loop())
        io, inner, receiver = make(Impairment(delay=0.01), loop=counting)
        original = receiver.datagrams_received

        def echo(datagrams: list[tuple[bytes, Addr]]) -> None:
            original(datagrams)
            io.send_batch(datagrams)

        receiver.datagrams_received = echo  # type: ignore[method-assign]
        io.datagrams_received([dg(i) for i in range(4)])
        await inner.wait_for(4)
        assert inner.indices() == [0, 1, 2, 3]
        assert counting.max_live <= 1 and counting.live == 0


# --- the Impairment value ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"loss": -0.1}, "loss"),
        ({"loss": 1.5}, "loss"),
        ({"loss": math.nan}, "loss"),
        ({"loss": "0.1"}, "loss"),
        ({"loss": True}, "loss"),
        ({"burst": (0.1, 0.2)}, "burst"),
        ({"duplicate": 2.0}, "duplicate"),
        ({"duplicate": -1e-9}, "duplicate"),
        ({"reorder": 1.01}, "reorder"),
        ({"reorder_delay": -0.01}, "reorder_delay"),
        ({"reorder_delay": math.inf}, "reorder_delay"),
        ({"delay": -1.0}, "delay"),
        ({"delay": math.inf}, "delay"),
        ({"delay": math.nan}, "delay"),
        ({"jitter": -0.001}, "jitter"),
        ({"jitter": math.nan}, "jitter"),
        ({"rate": 0.0}, "rate"),
        ({"rate": -5.0}, "rate"),
        ({"rate": math.inf}, "rate"),
        ({"rate": math.nan}, "rate"),
        ({"rate": "fast"}, "rate"),
        ({"rate": 1000.0, "queue_limit": -1}, "queue_limit"),
        ({"rate": 1000.0, "queue_limit": 1.5}, "queue_limit"),
        ({"queue_limit": 1000}, "queue_limit"),
        ({"pending_limit": -1}, "pending_limit"),
        ({"pending_limit": 10.0}, "pending_limit"),
        ({"seed": "abc"}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"seed": True}, "seed"),
        ({"directions": "up"}, "directions"),
    ],
)
def test_impairment_validation_names_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        Impairment(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"p_good_to_bad": -0.1, "p_bad_to_good": 0.5}, "p_good_to_bad"),
        ({"p_good_to_bad": 0.1, "p_bad_to_good": 1.5}, "p_bad_to_good"),
        ({"p_good_to_bad": 0.1, "p_bad_to_good": 0.5, "loss_in_good": 2.0}, "loss_in_good"),
        ({"p_good_to_bad": 0.1, "p_bad_to_good": 0.5, "loss_in_bad": math.nan}, "loss_in_bad"),
    ],
)
def test_gilbert_elliott_validation_names_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        GilbertElliott(**kwargs)


def test_impairment_fields_are_keyword_only_and_frozen() -> None:
    with pytest.raises(TypeError):
        Impairment(0.1)  # type: ignore[call-arg]
    imp = Impairment(loss=0.1, seed=3)
    with pytest.raises(AttributeError):
        imp.loss = 0.2  # type: ignore[misc]
    assert Impairment(seed=3) == Impairment(seed=3)
    assert Impairment().is_perfect
    assert not Impairment(delay=0.001).is_perfect
    assert Impairment(directions="send").covers("send")
    assert not Impairment(directions="send").covers("receive")
    assert Impairment().covers("receive")


async def test_seed_none_picks_and_exposes_a_concrete_seed() -> None:
    async with asyncio.timeout(10):
        imp = Impairment(loss=0.3)
        assert isinstance(imp.seed, int)
        assert str(imp.seed) in repr(imp)  # so a log line is enough to repeat a run
        assert Impairment().seed != Impairment().seed  # 64 random bits each
        again = Impairment(loss=0.3, seed=imp.seed)
        assert await dropped_send_indices(again) == await dropped_send_indices(imp)


# --- property: accounting and timing under any settings ------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    loss=st.sampled_from([0.0, 0.1, 0.5]),
    burst=st.sampled_from([None, GilbertElliott(0.05, 0.3)]),
    duplicate=st.sampled_from([0.0, 0.3]),
    reorder=st.sampled_from([0.0, 0.3]),
    delay=st.sampled_from([0.0, 0.02]),
    jitter=st.sampled_from([0.0, 0.03]),
    rate=st.sampled_from([None, 50_000.0]),
    queue_limit=st.sampled_from([None, 2500]),
    directions=st.sampled_from(["both", "send", "receive"]),
    steps=st.lists(st.tuples(st.booleans(), st.integers(0, 8), st.floats(0.0, 0.02)), max_size=30),
)
def test_accounting_and_due_times_hold_for_any_settings(
    seed: int,
    loss: float,
    burst: GilbertElliott | None,
    duplicate: float,
    reorder: float,
    delay: float,
    jitter: float,
    rate: float | None,
    queue_limit: int | None,
    directions: str,
    steps: list[tuple[bool, int, float]],
) -> None:
    imp = Impairment(
        loss=loss,
        burst=burst,
        duplicate=duplicate,
        reorder=reorder,
        delay=delay,
        jitter=jitter,
        rate=rate,
        queue_limit=queue_limit if rate is not None else None,
        seed=seed,
        directions=cast(Any, directions),
    )
    loop = ManualLoop()
    as_loop = cast(asyncio.AbstractEventLoop, loop)
    receiver = FakeReceiver(as_loop)
    io = ImpairedIO(as_loop, receiver, imp)
    inner = FakeIO(as_loop)
    io.attach(inner)
    sent_at: dict[tuple[bool, int], float] = {}
    counter = 0
    for outgoing, size, pause in steps:
        batch = [dg(counter + i, 300) for i in range(size)]
        for i in range(size):
            sent_at[(outgoing, counter + i)] = loop.now
        counter += size
        if outgoing:
            io.send_batch(batch)
        else:
            io.datagrams_received(batch)
        assert len(loop.live()) <= 1
        check_balance(io.impairment_stats.send)
        check_balance(io.impairment_stats.receive)
        loop.advance(loop.now + pause)
    loop.advance(loop.now + 10.0)
    assert io.pending == 0 and loop.live() == []
    for direction, recorder in ((True, inner), (False, receiver)):
        stats = io.impairment_stats.send if direction else io.impairment_stats.receive
        check_balance(stats)
        assert stats.pending == 0
        assert recorder.count == stats.delivered
        for t, i in recorder.arrivals():
            assert t >= sent_at[(direction, i)] + (
                delay if imp.covers("send" if direction else "receive") else 0.0
            )
        if not imp.covers("send" if direction else "receive"):
            assert stats.dropped == stats.duplicated == stats.delayed == 0
