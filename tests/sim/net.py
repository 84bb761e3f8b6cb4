"""A deterministic discrete-event network of sans-I/O nodes. It never sleeps.

Events live in one heap of ``(time, seq, kind, src, dst, data)`` tuples: datagram deliveries
and node timers (taken from ``get_timer()``). ``seq`` is a global counter, so events at the same
time run in the order they were scheduled and runs are exactly reproducible.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from heapq import heappop, heappush
from typing import Protocol, runtime_checkable

from .clock import FakeClock
from .link import Impairment, LossyLink

__all__ = [
    "PERFECT",
    "STUCK_TIMER_LIMIT",
    "Addr",
    "Node",
    "Simulator",
    "TraceRecord",
    "UndeliverableCallback",
]

Addr = tuple[str, int]

TraceRecord = tuple[float, str, Addr, Addr, int, int]
"""``(time, "send" | "deliver" | "drop", src, dst, length, first byte or -1 if empty)``."""

UndeliverableCallback = Callable[[bytes, Addr, Addr], None]
"""``callback(data, src, dst)`` for a datagram sent to an address with no node."""

PERFECT = Impairment()
"""The impairment of a pair that was never configured."""

STUCK_TIMER_LIMIT = 1000
"""Consecutive non-advancing timer firings of one node before the simulator gives up."""

_DELIVER = 0
_TIMER = 1
_Event = tuple[float, int, int, Addr, Addr, bytes]


@runtime_checkable
class Node(Protocol):
    """What the simulator drives: the sans-I/O contract of ``rudp.core``."""

    def receive_datagram(self, data: bytes, addr: Addr, *, now: float) -> None: ...

    def datagrams_to_send(self, *, now: float) -> list[tuple[bytes, Addr]]: ...

    def get_timer(self) -> float | None: ...

    def handle_timer(self, *, now: float) -> None: ...


class _Slot:
    """Bookkeeping for one node."""

    __slots__ = ("addr", "node", "timer", "timer_seq", "stuck")

    def __init__(self, addr: Addr, node: Node) -> None:
        self.addr = addr
        self.node = node
        self.timer: float | None = math.nan  # the deadline armed in the heap (nan: none yet)
        self.timer_seq = -1  # seq of the live heap entry for that deadline, -1 if none
        self.stuck = 0  # consecutive timer firings that did not move the deadline


class _LinkTable(dict[tuple[Addr, Addr], LossyLink]):
    """``links[(src, dst)]``: creates a perfect link on first use."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        self._seed = seed

    def __missing__(self, key: tuple[Addr, Addr]) -> LossyLink:
        link = LossyLink(PERFECT, self.rng_for(*key))
        self[key] = link
        return link

    def rng_for(self, src: Addr, dst: Addr) -> random.Random:
        # str seeds are hashed with SHA-512: stable across processes and PYTHONHASHSEED.
        return random.Random(f"rudp-sim/{self._seed}/{src[0]}:{src[1]}>{dst[0]}:{dst[1]}")


class Simulator:
    """A discrete-event runner for :class:`Node` objects joined by :class:`LossyLink` paths.

    Driving rules:

    * :meth:`step` runs exactly one event: it moves the clock to the event's time (never
      backwards: an event already due runs at the current time), calls
      ``receive_datagram(data, src, now=...)`` or ``handle_timer(now=...)``, then
      :meth:`flush`\\ es every node.
    * :meth:`flush` drains ``datagrams_to_send(now=clock.now)`` of every node (in the order
      they were added) into the links, and re-reads every node's ``get_timer()``. Call it after
      driving a node's API directly (``client.connect(now=sim.now)``); :meth:`run_until` and
      :meth:`run_for` call it on entry, :meth:`step` does not.
    * ``trace``: when a list, gets a :data:`TraceRecord` per send, delivery and drop.
    """

    def __init__(
        self,
        clock: FakeClock | None = None,
        *,
        seed: int = 0,
        max_steps: int = 10_000_000,
        trace: list[TraceRecord] | None = None,
    ) -> None:
        if max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_steps!r}")
        self.clock = clock if clock is not None else FakeClock()
        self.max_steps = max_steps
        self.trace = trace
        self.undeliverable = 0
        self.on_undeliverable: UndeliverableCallback | None = None
        self.steps = 0
        self._seed = seed
        self.links = _LinkTable(seed)
        self._nodes: dict[Addr, _Slot] = {}
        self._slots: tuple[_Slot, ...] = ()
        self._heap: list[_Event] = []
        self._seq = 0

    # -- setup ------------------------------------------------------------------------------

    @property
    def seed(self) -> int:
        return self._seed

    @property
    def now(self) -> float:
        return self.clock.now

    @property
    def nodes(self) -> Mapping[Addr, Node]:
        """A snapshot of the nodes by address."""
        return {addr: slot.node for addr, slot in self._nodes.items()}

    def add_node(self, node: Node, addr: Addr) -> None:
        """Attach ``node`` at ``addr``; its datagrams go out with ``addr`` as the source."""
        if not isinstance(node, Node):
            raise TypeError(f"{node!r} does not implement the Node protocol")
        if addr in self._nodes:
            raise ValueError(f"address {addr!r} already has a node")
        slot = _Slot(addr, node)
        self._nodes[addr] = slot
        self._slots = (*self._slots, slot)
        self._refresh_timer(slot)

    def remove_node(self, addr: Addr) -> Node:
        """Detach the node at ``addr`` (a crash). Datagrams still in flight to it become
        undeliverable; its timer is forgotten."""
        slot = self._nodes.pop(addr)
        self._slots = tuple(s for s in self._slots if s is not slot)
        return slot.node

    def link(
        self,
        src: Addr,
        dst: Addr,
        impairment: Impairment = PERFECT,
        *,
        both_ways: bool = True,
    ) -> LossyLink:
        """Set the impairment of ``src -> dst`` (and ``dst -> src`` if ``both_ways``).

        An existing link keeps its counters, scripted drops and queue; only its impairment
        changes. Returns the ``src -> dst`` link.
        """
        forward = self.links[(src, dst)]
        forward.impairment = impairment
        if both_ways:
            self.links[(dst, src)].impairment = impairment
        return forward

    # -- sending ----------------------------------------------------------------------------

    def inject(self, data: bytes, src: Addr, dst: Addr) -> None:
        """Send ``data`` from ``src`` (which need not be a node, e.g. a spoofed peer) to
        ``dst`` at the current time, through the ``src -> dst`` link."""
        self._send(src, dst, data, self.clock.now)

    def _send(self, src: Addr, dst: Addr, data: bytes, now: float) -> None:
        trace = self.trace
        if trace is not None:
            trace.append((now, "send", src, dst, len(data), data[0] if data else -1))
        if dst not in self._nodes:
            self._undeliverable(data, src, dst, now)
            return
        deliveries = self.links[(src, dst)].transmit(data, now)
        if not deliveries:
            if trace is not None:
                trace.append((now, "drop", src, dst, len(data), data[0] if data else -1))
            return
        heap = self._heap
        for arrival, payload in deliveries:
            self._seq += 1
            heappush(heap, (arrival, self._seq, _DELIVER, src, dst, payload))

    def _undeliverable(self, data: bytes, src: Addr, dst: Addr, now: float) -> None:
        self.undeliverable += 1
        if self.trace is not None:
            self.trace.append((now, "drop", src, dst, len(data), data[0] if data else -1))
        if self.on_undeliverable is not None:
            self.on_undeliverable(data, src, dst)

    def _refresh_timer(self, slot: _Slot) -> None:
        deadline = slot.node.get_timer()
        if deadline != slot.timer:
            slot.timer = deadline
            if deadline is None:
                slot.timer_seq = -1
            else:
                if deadline != deadline:
                    raise RuntimeError(f"node {slot.addr!r} returned a NaN timer")
                self._seq += 1
                slot.timer_seq = self._seq
                heappush(self._heap, (deadline, self._seq, _TIMER, slot.addr, slot.addr, b""))

    def flush(self) -> None:
        """Drain every node's datagrams into the links at ``clock.now`` and re-read every
        node's timer."""
        now = self.clock.now
        send = self._send
        refresh = self._refresh_timer
        for slot in self._slots:
            out = slot.node.datagrams_to_send(now=now)
            if out:
                src = slot.addr
                for data, dst in out:
                    send(src, dst, data, now)
            refresh(slot)

    # -- running ----------------------------------------------------------------------------

    def next_event_time(self) -> float | None:
        """Time of the next pending event (stale timer entries are discarded), or None."""
        heap = self._heap
        nodes = self._nodes
        while heap:
            top = heap[0]
            if top[2] == _TIMER:
                slot = nodes.get(top[3])
                if slot is None or slot.timer_seq != top[1]:
                    heappop(heap)
                    continue
            return top[0]
        return None

    def step(self) -> bool:
        """Run the next event and flush. Returns False if there was nothing to do."""
        heap = self._heap
        nodes = self._nodes
        while heap:
            when, seq, kind, src, dst, data = heappop(heap)
            if kind == _TIMER:
                slot = nodes.get(src)
                if slot is None or slot.timer_seq != seq:
                    continue  # stale: the node re-armed or dropped this deadline
                now = self._begin_step(when)
                slot.timer = math.nan  # consumed: re-arm even if get_timer() is unchanged
                slot.timer_seq = -1
                slot.node.handle_timer(now=now)
                self.flush()
                if slot.addr in nodes:
                    self._check_timer_advanced(slot, now)
                return True
            now = self._begin_step(when)
            target = nodes.get(dst)
            if target is None:
                self._undeliverable(data, src, dst, now)
            else:
                if self.trace is not None:
                    self.trace.append(
                        (now, "deliver", src, dst, len(data), data[0] if data else -1)
                    )
                target.node.receive_datagram(data, src, now=now)
            self.flush()
            return True
        return False

    def _begin_step(self, when: float) -> float:
        self.steps += 1
        clock = self.clock
        if self.steps > self.max_steps:
            raise RuntimeError(
                f"simulator exceeded max_steps={self.max_steps} at t={clock.now!r} (livelock?)"
            )
        now = clock.now
        return clock.advance_to(when) if when > now else now

    def _check_timer_advanced(self, slot: _Slot, fired_at: float) -> None:
        deadline = slot.timer
        if deadline is not None and deadline <= fired_at:
            slot.stuck += 1
            if slot.stuck >= STUCK_TIMER_LIMIT:
                raise RuntimeError(
                    f"node {slot.addr!r} ({slot.node!r}): handle_timer(now={fired_at!r}) left "
                    f"get_timer()={deadline!r} not in the future {slot.stuck} times in a row; "
                    "handle_timer must consume what is due"
                )
        else:
            slot.stuck = 0

    def run_until(self, predicate: Callable[[], bool], max_time: float) -> bool:
        """Flush, then step until ``predicate()`` is true, or the next event is later than
        ``max_time`` (absolute; the clock is then set to ``max_time``), or no event is left
        (the clock stays at the last event). Events at exactly ``max_time`` run. Returns
        ``predicate()``."""
        if not max_time >= self.clock.now:
            raise ValueError(f"max_time {max_time!r} is before now ({self.clock.now!r})")
        self.flush()
        while True:
            if predicate():
                return True
            when = self.next_event_time()
            if when is None:
                return False
            if when > max_time:
                if max_time > self.clock.now:
                    self.clock.advance_to(max_time)
                return predicate()
            self.step()

    def run_for(self, duration: float) -> None:
        """Run every event up to ``clock.now + duration``; the clock ends there."""
        if not (duration >= 0.0 and math.isfinite(duration)):
            raise ValueError(f"duration must be finite and >= 0, got {duration!r}")
        end = self.clock.now + duration
        self.run_until(_never, end)
        if end > self.clock.now:
            self.clock.advance_to(end)

    def __repr__(self) -> str:
        return (
            f"Simulator(now={self.clock.now!r}, nodes={list(self._nodes)!r}, "
            f"pending={len(self._heap)}, steps={self.steps})"
        )


def _never() -> bool:
    return False
