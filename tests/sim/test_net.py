from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Iterable

import pytest

from tests.sim import (
    PERFECT,
    STUCK_TIMER_LIMIT,
    Addr,
    FakeClock,
    GilbertElliott,
    Impairment,
    Node,
    Simulator,
    TraceRecord,
)

A: Addr = ("10.0.0.1", 1000)
B: Addr = ("10.0.0.2", 2000)
C: Addr = ("10.0.0.3", 3000)


class Host:
    """A fake node: sends scheduled datagrams from its timer, records what it receives, and
    optionally echoes it back."""

    def __init__(self, schedule: Iterable[tuple[float, bytes, Addr]] = (), *, echo: bool = False):
        self.schedule = deque(sorted(schedule, key=lambda item: item[0]))
        self.echo = echo
        self.outbox: list[tuple[bytes, Addr]] = []
        self.received: list[tuple[float, bytes, Addr]] = []
        self.timer_calls: list[float] = []

    def send(self, data: bytes, dst: Addr) -> None:
        self.outbox.append((data, dst))

    def receive_datagram(self, data: bytes, addr: Addr, *, now: float) -> None:
        self.received.append((now, data, addr))
        if self.echo:
            self.outbox.append((data, addr))

    def datagrams_to_send(self, *, now: float) -> list[tuple[bytes, Addr]]:
        out, self.outbox = self.outbox, []
        return out

    def get_timer(self) -> float | None:
        return self.schedule[0][0] if self.schedule else None

    def handle_timer(self, *, now: float) -> None:
        self.timer_calls.append(now)
        while self.schedule and self.schedule[0][0] <= now:
            _, data, dst = self.schedule.popleft()
            self.outbox.append((data, dst))


class StuckTimer:
    """A buggy node whose timer stays at 1.0 for ``stuck_for`` firings."""

    def __init__(self, stuck_for: float) -> None:
        self.stuck_for = stuck_for
        self.calls = 0

    def receive_datagram(self, data: bytes, addr: Addr, *, now: float) -> None:
        pass

    def datagrams_to_send(self, *, now: float) -> list[tuple[bytes, Addr]]:
        return []

    def get_timer(self) -> float | None:
        return 1.0 if self.calls < self.stuck_for else None

    def handle_timer(self, *, now: float) -> None:
        self.calls += 1

    def __repr__(self) -> str:
        return "StuckTimer()"


class IdleTimeout:
    """Its timer is one second after the last datagram received (re-armed each time)."""

    def __init__(self) -> None:
        self.deadline: float | None = None
        self.calls: list[float] = []
        self.fired: list[float] = []

    def receive_datagram(self, data: bytes, addr: Addr, *, now: float) -> None:
        self.deadline = now + 1.0

    def datagrams_to_send(self, *, now: float) -> list[tuple[bytes, Addr]]:
        return []

    def get_timer(self) -> float | None:
        return self.deadline

    def handle_timer(self, *, now: float) -> None:
        self.calls.append(now)
        if self.deadline is not None and now >= self.deadline:
            self.fired.append(now)
            self.deadline = None


def pair(
    impairment: Impairment = PERFECT, *, seed: int = 0, trace: list[TraceRecord] | None = None
) -> tuple[Simulator, Host, Host]:
    sim = Simulator(seed=seed, trace=trace)
    a, b = Host(), Host(echo=True)
    sim.add_node(a, A)
    sim.add_node(b, B)
    sim.link(A, B, impairment)
    return sim, a, b


# -- basic delivery ------------------------------------------------------------------------


def test_fake_nodes_satisfy_the_protocol() -> None:
    assert isinstance(Host(), Node)
    assert isinstance(StuckTimer(1), Node)
    assert not isinstance(object(), Node)


def test_echo_roundtrip_trace_and_times() -> None:
    trace: list[TraceRecord] = []
    sim, a, b = pair(Impairment(delay=0.125), trace=trace)
    a.schedule.append((0.25, b"\x01ping", B))
    assert sim.run_until(lambda: len(a.received) == 1, max_time=10.0)
    assert sim.now == 0.5
    assert a.timer_calls == [0.25]
    assert b.received == [(0.375, b"\x01ping", A)]
    assert a.received == [(0.5, b"\x01ping", B)]
    assert trace == [
        (0.25, "send", A, B, 5, 1),
        (0.375, "deliver", A, B, 5, 1),
        (0.375, "send", B, A, 5, 1),
        (0.5, "deliver", B, A, 5, 1),
    ]
    assert sim.links[(A, B)].stats.delivered == 1
    assert sim.links[(B, A)].stats.delivered == 1


def test_same_time_events_run_in_scheduling_order() -> None:
    sim, a, b = pair()
    a.schedule.extend((1.0, bytes([i]), B) for i in range(5))
    sim.run_for(2.0)
    assert [data for _, data, _ in b.received] == [bytes([i]) for i in range(5)]
    assert [t for t, _, _ in b.received] == [1.0] * 5


def test_flush_after_driving_a_node_directly() -> None:
    trace: list[TraceRecord] = []
    sim, a, b = pair(Impairment(delay=0.5), trace=trace)
    sim.clock.advance_to(2.0)
    a.send(b"\x07", B)
    sim.flush()
    assert trace == [(2.0, "send", A, B, 1, 7)]
    assert b.received == []
    assert sim.next_event_time() == 2.5
    assert sim.step()
    assert b.received == [(2.5, b"\x07", A)]


def test_step_returns_false_when_idle() -> None:
    sim, _, _ = pair()
    assert not sim.step()
    assert sim.next_event_time() is None
    assert sim.steps == 0


def test_rate_limit_through_simulator() -> None:
    sim, a, b = pair(Impairment(rate=1000.0, delay=0.125), seed=3)
    a.schedule.extend((0.0, bytes(250), B) for _ in range(4))
    sim.run_until(lambda: len(b.received) == 4, max_time=5.0)
    assert [t for t, _, _ in b.received] == [0.375, 0.625, 0.875, 1.125]


def test_scripted_drop_through_simulator() -> None:
    trace: list[TraceRecord] = []
    sim, a, b = pair(trace=trace)
    sim.links[(A, B)].drop_where(lambda index, data: data[0] == 2, times=1)
    a.schedule.extend((float(i), bytes([1 + i % 2]), B) for i in range(4))
    sim.run_for(10.0)
    assert [data for _, data, _ in b.received] == [b"\x01", b"\x01", b"\x02"]
    assert [(rec[0], rec[1]) for rec in trace if rec[1] == "drop"] == [(1.0, "drop")]


# -- links -----------------------------------------------------------------------------------


def test_link_configuration() -> None:
    sim = Simulator()
    slow = Impairment(delay=0.5)
    forward = sim.link(A, B, slow)
    assert forward is sim.links[(A, B)]
    assert sim.links[(B, A)].impairment is slow
    lossy = Impairment(loss=0.5)
    sim.link(A, C, lossy, both_ways=False)
    assert sim.links[(A, C)].impairment is lossy
    assert sim.links[(C, A)].impairment is PERFECT
    assert sim.links[(B, C)].impairment.is_perfect  # never configured
    forward.stats.sent = 7
    sim.link(A, B, lossy)
    assert sim.links[(A, B)] is forward and forward.stats.sent == 7
    assert forward.impairment is lossy


def test_each_pair_has_its_own_derived_rng() -> None:
    def draws(seed: int, src: Addr, dst: Addr) -> list[float]:
        rng = Simulator(seed=seed).links[(src, dst)].rng
        return [rng.random() for _ in range(3)]

    assert draws(1, A, B) == draws(1, A, B)
    assert draws(1, A, B) != draws(1, B, A)
    assert draws(1, A, B) != draws(2, A, B)


# -- determinism -----------------------------------------------------------------------------

NOISY = Impairment(
    loss=0.05,
    burst=GilbertElliott(0.02, 0.3),
    duplicate=0.05,
    reorder=0.1,
    corrupt=0.02,
    delay=0.02,
    jitter=0.005,
)


def noisy_trace(seed: int) -> list[TraceRecord]:
    trace: list[TraceRecord] = []
    sim, a, _ = pair(NOISY, seed=seed, trace=trace)
    a.schedule.extend((i * 0.001, i.to_bytes(2, "big") * 10, B) for i in range(500))
    sim.run_for(5.0)
    return trace


def test_same_seed_identical_trace_different_seed_different_trace() -> None:
    first = noisy_trace(1)
    assert len(first) > 1000
    assert {rec[1] for rec in first} == {"send", "deliver", "drop"}
    assert noisy_trace(1) == first
    assert noisy_trace(2) != first


# -- undeliverable ---------------------------------------------------------------------------


def test_undeliverable_is_counted_traced_and_reported() -> None:
    trace: list[TraceRecord] = []
    sim, a, _ = pair(trace=trace)
    reported: list[tuple[bytes, Addr, Addr]] = []
    sim.on_undeliverable = lambda data, src, dst: reported.append((data, src, dst))
    a.schedule.append((1.0, b"\x09lost", C))
    a.schedule.append((2.0, b"", C))
    sim.run_for(3.0)
    assert sim.undeliverable == 2
    assert reported == [(b"\x09lost", A, C), (b"", A, C)]
    assert trace == [
        (1.0, "send", A, C, 5, 9),
        (1.0, "drop", A, C, 5, 9),
        (2.0, "send", A, C, 0, -1),
        (2.0, "drop", A, C, 0, -1),
    ]
    assert (A, C) not in sim.links  # never reached a link


def test_datagram_in_flight_to_a_removed_node_is_undeliverable() -> None:
    sim, a, b = pair(Impairment(delay=1.0))
    a.schedule.append((0.0, b"x", B))
    sim.run_for(0.5)
    assert sim.remove_node(B) is b
    assert B not in sim.nodes
    sim.run_for(1.0)
    assert b.received == []
    assert sim.undeliverable == 1


# -- run_until / run_for ---------------------------------------------------------------------


def test_run_until_stops_at_max_time() -> None:
    sim, a, _ = pair()
    a.schedule.append((10.0, b"x", B))
    assert sim.run_until(lambda: False, max_time=5.0) is False
    assert sim.now == 5.0
    assert a.timer_calls == []
    assert sim.run_until(lambda: bool(a.timer_calls), max_time=20.0) is True
    assert sim.now == 10.0
    assert a.timer_calls == [10.0]


def test_run_until_runs_events_at_exactly_max_time() -> None:
    sim, a, b = pair()
    a.schedule.append((4.0, b"x", B))
    assert sim.run_until(lambda: False, max_time=4.0) is False
    assert len(b.received) == 1
    assert sim.now == 4.0


def test_run_until_checks_predicate_before_stepping() -> None:
    sim, a, _ = pair()
    a.schedule.append((1.0, b"x", B))
    assert sim.run_until(lambda: True, max_time=5.0) is True
    assert sim.steps == 0
    assert sim.now == 0.0


def test_run_until_returns_when_no_events_remain() -> None:
    sim, a, b = pair(Impairment(delay=0.25))
    a.schedule.append((1.0, b"x", B))
    assert sim.run_until(lambda: False, max_time=100.0) is False
    assert len(a.received) == 1
    assert sim.now == 1.5  # left at the last event, not moved to max_time


def test_run_until_rejects_max_time_in_the_past() -> None:
    sim = Simulator(FakeClock(10.0))
    with pytest.raises(ValueError):
        sim.run_until(lambda: True, max_time=9.0)


def test_run_until_predicate_may_depend_on_the_clock() -> None:
    sim, a, _ = pair()
    a.schedule.append((10.0, b"x", B))
    # The predicate is checked again after the clock is moved to max_time.
    assert sim.run_until(lambda: sim.now >= 3.0, max_time=3.0) is True
    assert sim.now == 3.0
    assert a.timer_calls == []


def test_run_for() -> None:
    sim, a, _ = pair()
    a.schedule.extend((t, b"x", B) for t in (1.0, 2.0, 3.0))
    sim.run_for(2.0)
    assert a.timer_calls == [1.0, 2.0]
    assert sim.now == 2.0
    sim.run_for(10.0)
    assert a.timer_calls == [1.0, 2.0, 3.0]
    assert sim.now == 12.0
    with pytest.raises(ValueError):
        sim.run_for(-1.0)


# -- timers ----------------------------------------------------------------------------------


def test_past_deadline_runs_at_current_time() -> None:
    sim, a, b = pair()
    a.schedule.append((1.0, b"x", B))
    sim.clock.advance_to(5.0)
    sim.run_until(lambda: bool(b.received), max_time=10.0)
    assert a.timer_calls == [5.0]
    assert b.received == [(5.0, b"x", A)]


@pytest.mark.parametrize("drive", ["run_for", "step"])
def test_stale_timer_entries_are_ignored(drive: str) -> None:
    sim = Simulator()
    sender, idle = Host([(0.0, b"a", B), (0.5, b"b", B)]), IdleTimeout()
    sim.add_node(sender, A)
    sim.add_node(idle, B)
    if drive == "run_for":
        sim.run_for(10.0)
    else:
        while sim.step():
            pass
    assert sim.steps == 5  # two sender timers, two deliveries, one idle timeout
    # The deadline 1.0 armed by the first datagram was replaced by 1.5.
    assert idle.fired == [1.5]
    assert idle.calls == [1.5]  # the stale entry at 1.0 never reached handle_timer


def test_non_advancing_timer_guard_fires() -> None:
    sim = Simulator()
    node = StuckTimer(stuck_for=math.inf)
    sim.add_node(node, C)
    with pytest.raises(RuntimeError, match=re.escape(repr(C))):
        sim.run_until(lambda: False, max_time=100.0)
    assert node.calls == STUCK_TIMER_LIMIT


def test_non_advancing_timer_guard_allows_fewer_firings() -> None:
    sim = Simulator()
    node = StuckTimer(stuck_for=STUCK_TIMER_LIMIT)
    sim.add_node(node, C)
    assert sim.run_until(lambda: False, max_time=100.0) is False
    assert node.calls == STUCK_TIMER_LIMIT


def test_nan_timer_is_rejected() -> None:
    sim = Simulator()
    node = Host()
    node.schedule.append((math.nan, b"", B))
    with pytest.raises(RuntimeError, match="NaN"):
        sim.add_node(node, A)


def test_max_steps_guard_stops_a_livelock() -> None:
    sim = Simulator(max_steps=500)
    a, b = Host(echo=True), Host(echo=True)
    sim.add_node(a, A)
    sim.add_node(b, B)
    a.send(b"ping", B)  # echoed back and forth forever with zero delay
    with pytest.raises(RuntimeError, match="max_steps"):
        sim.run_until(lambda: False, max_time=1.0)
    assert sim.steps == 501
    assert sim.now == 0.0


# -- setup errors ----------------------------------------------------------------------------


def test_add_node_errors() -> None:
    sim = Simulator()
    sim.add_node(Host(), A)
    with pytest.raises(ValueError):
        sim.add_node(Host(), A)
    with pytest.raises(TypeError):
        sim.add_node(object(), B)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Simulator(max_steps=0)


# -- volume ----------------------------------------------------------------------------------


def test_bulk_transfer_through_an_impaired_link() -> None:
    """~24 MB through a lossy, jittery, rate-limited path: everything accounted for."""
    count, size = 20_000, 1200
    sim = Simulator(seed=5)
    sender, sink = Host(), Host()
    sender.schedule.extend((i * 1e-4, i.to_bytes(4, "big") * (size // 4), B) for i in range(count))
    sim.add_node(sender, A)
    sim.add_node(sink, B)
    sim.link(A, B, Impairment(loss=0.01, duplicate=0.01, jitter=0.001, delay=0.01, rate=1.5e7))
    sim.run_for(60.0)
    stats = sim.links[(A, B)].stats
    assert stats.sent == count
    assert len(sink.received) == stats.delivered
    assert sum(len(data) for _, data, _ in sink.received) == stats.bytes_delivered
    assert stats.dropped_loss > 0 and stats.duplicated > 0
