"""``EndpointProtocol``: send coalescing, the single timer, ICMP errors and shutdown.

Real loopback sockets on both I/O paths and both loops. The endpoint protocol has no public
handle, so these tests reach it through ``transport._endpoint`` (a client's) or
``server._endpoints`` (a server's), and spy on it by wrapping what it calls: its ``io`` (through
the public ``attach_io``), its ``loop`` and its engine's ``handle_timer``. Waits are on futures
resolved by those spies or by protocol callbacks, never on sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import socket
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

import rudp
from rudp import Config, RudpTransport
from rudp.aio.dgram import Addr, DatagramIO, IOStats
from rudp.aio.loop import open_endpoint
from rudp.aio.protocol import EndpointProtocol
from tests.aio.helpers import HOST, TIMEOUT, Recorder, after_flush, on_both_loops


@dataclass
class Pair:
    server: rudp.Server
    client: RudpTransport
    proto: Recorder
    peer: Recorder

    @property
    def peer_transport(self) -> RudpTransport:
        assert self.peer.transport is not None
        return self.peer.transport

    @property
    def client_endpoint(self) -> EndpointProtocol:
        return self.client._endpoint  # private: the client's EndpointProtocol

    @property
    def server_endpoint(self) -> EndpointProtocol:
        return self.server._endpoints[0]  # private: the server's only EndpointProtocol


@contextlib.asynccontextmanager
async def connected(
    config: Config, *, before_connect: Callable[[rudp.Server], None] | None = None
) -> AsyncIterator[Pair]:
    """A server and one connection to it, accepted; everything reset and closed on exit."""
    accepted: asyncio.Future[Recorder] = asyncio.get_running_loop().create_future()

    def factory() -> Recorder:
        protocol = Recorder()
        accepted.set_result(protocol)
        return protocol

    server = await rudp.create_server(factory, HOST, 0, config=config)
    transport: RudpTransport | None = None
    try:
        if before_connect is not None:
            before_connect(server)
        port = server.sockets[0].getsockname()[1]
        transport, proto = await rudp.create_connection(Recorder, HOST, port, config=config)
        assert isinstance(proto, Recorder)
        peer = await accepted
        yield Pair(server, transport, proto, peer)
    finally:
        if transport is not None:
            transport.abort()
        server.abort_clients()
        server.close()
        async with asyncio.timeout(TIMEOUT):  # bounded even after the test itself timed out
            await server.wait_closed()
            if transport is not None:
                await transport._endpoint.closed  # after TIME_WAIT, if it closed gracefully


class SpyIO:
    """A ``DatagramIO`` that records every ``send_batch`` call and forwards it."""

    def __init__(self, inner: DatagramIO) -> None:
        self.inner = inner
        self.batches: list[list[tuple[bytes, Addr]]] = []

    def send_batch(self, datagrams: Sequence[tuple[bytes, Addr]]) -> None:
        self.batches.append(list(datagrams))
        self.inner.send_batch(datagrams)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.inner.get_extra_info(name, default)

    def close(self) -> None:
        self.inner.close()

    @property
    def stats(self) -> IOStats:
        return self.inner.stats


# --- send coalescing ------------------------------------------------------------------------


@on_both_loops
async def test_writes_in_one_iteration_leave_in_one_send_batch(config: Config) -> None:
    async with asyncio.timeout(TIMEOUT), connected(config) as pair:
        endpoint = pair.client_endpoint
        assert endpoint.io is not None
        # Quiet first: the server has confirmed the handshake, nothing is outstanding.
        await after_flush(endpoint, lambda: pair.client.stats()["state"] == "ESTABLISHED")
        spy = SpyIO(endpoint.io)
        endpoint.attach_io(spy)
        flushes = 0
        original = endpoint.flush

        def flush(now: float | None = None) -> None:
            nonlocal flushes
            flushes += 1
            original(now)

        endpoint.flush = flush  # type: ignore[method-assign]
        pieces = [bytes([i]) * 500 for i in range(20)]  # 10 000 B: within the initial window
        for piece in pieces:
            pair.client.write(piece)
        assert spy.batches == [] and flushes == 0  # writes only mark the endpoint dirty
        await asyncio.sleep(0)  # one loop iteration: the call_soon flush runs
        assert flushes == 1
        assert len(spy.batches) == 1
        (batch,) = spy.batches
        assert len(batch) == math.ceil(10_000 / config.max_payload)
        assert {addr for _, addr in batch} == {pair.client.get_extra_info("peername")}
        await pair.peer.wait_data(10_000)
        assert bytes(pair.peer.data) == b"".join(pieces)


@on_both_loops
async def test_a_write_after_the_flush_goes_in_the_next_batch(config: Config) -> None:
    async with asyncio.timeout(TIMEOUT), connected(config) as pair:
        endpoint = pair.client_endpoint
        assert endpoint.io is not None
        await after_flush(endpoint, lambda: pair.client.stats()["state"] == "ESTABLISHED")
        spy = SpyIO(endpoint.io)
        endpoint.attach_io(spy)
        pair.client.write(b"one")
        pair.client.write(b"two")
        await asyncio.sleep(0)
        pair.client.write(b"three")
        await asyncio.sleep(0)
        assert [len(batch) for batch in spy.batches[:2]] == [1, 1]
        await pair.peer.wait_data(11)
        assert bytes(pair.peer.data) == b"onetwothree"


# --- the single timer ----------------------------------------------------------------------


@dataclass
class Armed:
    when: float
    handle: asyncio.TimerHandle | None = None
    fired: bool = False
    live_before: int = 0  # handles of this endpoint still live when this one was armed


@dataclass
class TimerSpy:
    """Stands in for the endpoint's ``loop``: forwards everything, records ``call_at``."""

    loop: asyncio.AbstractEventLoop
    armed: list[Armed] = field(default_factory=list)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loop, name)

    def live(self) -> list[Armed]:
        return [a for a in self.armed if not a.fired and a.handle and not a.handle.cancelled()]

    def call_at(self, when: float, callback: Callable[..., object], *args: Any) -> Any:
        record = Armed(when, live_before=len(self.live()))

        def fire() -> None:
            record.fired = True
            callback(*args)

        record.handle = self.loop.call_at(when, fire)
        self.armed.append(record)
        return record.handle


def spy_on_timer(server: rudp.Server) -> TimerSpy:
    endpoint = server._endpoints[0]  # private: the server's EndpointProtocol
    assert endpoint._timer is None  # no connection yet, so no deadline yet
    spy = TimerSpy(endpoint.loop)
    endpoint.loop = spy  # type: ignore[assignment]
    return spy


@on_both_loops
async def test_one_timer_per_endpoint_rearmed_only_when_the_deadline_moves(
    config: Config,
) -> None:
    spies: list[TimerSpy] = []
    flushes: list[tuple[float | None, float | None, int]] = []

    def install(server: rudp.Server) -> None:
        spy = spy_on_timer(server)
        spies.append(spy)
        endpoint = server._endpoints[0]
        original = endpoint.flush

        def flush(now: float | None = None) -> None:
            before = (endpoint._timer_deadline, len(spy.armed))
            original(now)
            flushes.append((before[0], endpoint._timer_deadline, len(spy.armed) - before[1]))

        endpoint.flush = flush  # type: ignore[method-assign]

    async with asyncio.timeout(TIMEOUT), connected(config, before_connect=install) as pair:
        (spy,) = spies
        up, down = os.urandom(1 << 20), os.urandom(1 << 20)
        pair.client.write(up)
        pair.peer_transport.write(down)
        await asyncio.gather(pair.peer.wait_data(len(up)), pair.proto.wait_data(len(down)))
        assert bytes(pair.peer.data) == up and bytes(pair.proto.data) == down
        endpoint = pair.server_endpoint
        # Both directions ran timers (delayed ACKs, RTO) on the server's endpoint ...
        assert len(spy.armed) >= 2
        # ... but never two at once: each call_at came after the previous one was cancelled
        # or had fired, and the endpoint's handle is the one live handle.
        assert [a.live_before for a in spy.armed] == [0] * len(spy.armed)
        live = spy.live()
        assert len(live) <= 1
        assert [a.handle for a in live] == ([endpoint._timer] if endpoint._timer else [])
        # Re-armed only when the deadline moved: no flush that kept its deadline armed anew,
        # and no flush armed more than one handle.
        assert all(n <= 1 for _, _, n in flushes)
        assert [f for f in flushes if f[0] == f[1] and f[2] != 0] == []
        # Connections closed: no deadline left, no live handle.
        pair.client.close()
        pair.peer_transport.close()
        await asyncio.gather(pair.proto.lost, pair.peer.lost)
        await after_flush(endpoint, lambda: endpoint.endpoint.get_timer() is None)
        assert endpoint._timer is None
        assert spy.live() == []


@on_both_loops
async def test_a_flush_that_keeps_the_deadline_keeps_the_handle(config: Config) -> None:
    keepalive = config.replace(keepalive_idle=30.0)
    async with asyncio.timeout(TIMEOUT), connected(keepalive) as pair:
        endpoint = pair.client_endpoint
        loop = endpoint.loop
        # Once the handshake is confirmed and acknowledged, only the keepalive is pending.
        await after_flush(
            endpoint,
            lambda: (d := endpoint._timer_deadline) is not None and d - loop.time() > 20.0,
        )
        handle, deadline = endpoint._timer, endpoint._timer_deadline
        assert handle is not None and deadline is not None
        assert deadline == endpoint.endpoint.get_timer()
        assert deadline - loop.time() <= 30.0 + 1e-6
        endpoint.flush()
        endpoint.flush()
        assert endpoint._timer is handle and not handle.cancelled()
        assert endpoint._timer_deadline == deadline
        # A write moves the deadline (retransmission timer): a new handle, the old cancelled.
        pair.client.write(b"ping")
        endpoint.flush()
        assert endpoint._timer is not handle and handle.cancelled()
        moved = endpoint._timer_deadline
        assert moved is not None and moved == endpoint.endpoint.get_timer()
        assert moved < deadline


def record_handle_timer(endpoint: EndpointProtocol) -> list[tuple[float, float | None, float]]:
    """Wrap the engine's ``handle_timer``: each call appends (now passed, the engine's earliest
    deadline just before, the loop's time)."""
    engine = endpoint.endpoint
    loop = endpoint.loop
    calls: list[tuple[float, float | None, float]] = []
    original = engine.handle_timer

    def handle_timer(*, now: float) -> None:
        calls.append((now, engine.get_timer(), loop.time()))
        original(now=now)

    engine.handle_timer = handle_timer  # type: ignore[method-assign]
    return calls


@on_both_loops
async def test_timer_callbacks_pass_a_time_at_or_after_the_deadline(config: Config) -> None:
    async with asyncio.timeout(TIMEOUT), connected(config) as pair:
        endpoint = pair.client_endpoint
        calls = record_handle_timer(endpoint)
        # Closing both ends at once leaves our side in TIME_WAIT, which only a timer ends.
        pair.client.close()
        pair.peer_transport.close()
        await endpoint.closed
        assert len(calls) >= 1
        assert [c for c in calls if c[1] is None or c[0] < c[1]] == []
        assert endpoint.endpoint.get_timer() is None
        assert endpoint._timer is None


@on_both_loops
async def test_a_timer_fired_early_acts_as_at_its_deadline(config: Config) -> None:
    async with asyncio.timeout(TIMEOUT):
        with silent_port() as port:
            addr = (HOST, port)
            endpoint = await open_endpoint(config, remote_addr=addr)
            try:
                conn, waiter = endpoint.connect(addr)
                calls = record_handle_timer(endpoint)
                handle, deadline = endpoint._timer, endpoint._timer_deadline
                assert handle is not None and deadline is not None
                assert deadline == endpoint.endpoint.get_timer()  # the INIT retransmission
                # asyncio runs a timer up to its clock resolution early; here, much earlier.
                handle.cancel()
                endpoint._on_timer()
                ((now, pending, loop_time),) = calls
                assert now == deadline == pending
                assert loop_time < deadline
                assert conn.stats.handshake_retransmits == 1  # acted on as at the deadline
                # Re-armed from the deadline, with the backed-off handshake RTO.
                assert endpoint._timer is not None and endpoint._timer is not handle
                assert endpoint._timer_deadline == deadline + 2 * config.initial_rto
                # What the engine is told next is not earlier than the deadline it acted at
                # (the loop's clock still is): its timestamps never go back.
                assert endpoint.loop.time() < deadline
                assert endpoint.now() == deadline
                assert not waiter.done()
            finally:
                endpoint.close()
            with pytest.raises(ConnectionAbortedError):
                await waiter


# --- ICMP errors ----------------------------------------------------------------------------


@contextlib.contextmanager
def silent_port() -> Iterator[int]:
    """A bound UDP socket that never answers (so no ICMP comes back either)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        yield sock.getsockname()[1]


@on_both_loops
async def test_port_unreachable_during_the_handshake_refuses_the_connect(config: Config) -> None:
    async with asyncio.timeout(TIMEOUT):
        with silent_port() as port:
            addr = (HOST, port)
            endpoint = await open_endpoint(config, remote_addr=addr)
            try:
                conn, waiter = endpoint.connect(addr)
                await asyncio.sleep(0.01)  # the INIT is out; no answer comes
                assert not waiter.done()
                # Other socket errors are ignored.
                endpoint.error_received(OSError(90, "Message too long"))
                assert not waiter.done()
                endpoint.error_received(ConnectionRefusedError())
                with pytest.raises(ConnectionRefusedError) as info:
                    await waiter
                assert isinstance(info.value, rudp.ConnectionRefused)
                assert conn.is_terminated
                assert endpoint._connect_waiters == {}
            finally:
                endpoint.close()
            assert endpoint.closed.done()


@on_both_loops
async def test_port_unreachable_after_the_handshake_is_a_soft_error(config: Config) -> None:
    async with asyncio.timeout(TIMEOUT), connected(config) as pair:
        endpoint = pair.client_endpoint
        await after_flush(endpoint, lambda: pair.client.stats()["state"] == "ESTABLISHED")
        endpoint.error_received(ConnectionRefusedError())
        await asyncio.sleep(0.01)  # a few loop iterations: nothing may happen
        assert pair.proto.names() == ["made"]
        pair.client.write(b"still up")
        await pair.peer.wait_data(8)
        assert bytes(pair.peer.data) == b"still up"


# --- shutdown -------------------------------------------------------------------------------


@on_both_loops
async def test_close_resets_the_connections_and_resolves_closed(config: Config) -> None:
    async with asyncio.timeout(TIMEOUT), connected(config) as pair:
        endpoint = pair.client_endpoint
        (conn,) = endpoint.endpoint.connections.values()
        sock = pair.client.get_extra_info("socket")
        assert not endpoint.closed.done()
        endpoint.close()
        assert endpoint.closed.done() and endpoint.closed.result() is None
        assert conn.is_terminated
        assert endpoint.endpoint.connections == {}
        assert endpoint.transports == []
        assert endpoint._timer is None
        assert pair.proto.events == [("made", None), ("lost", None)]
        assert pair.client.is_closing()
        peer_exc = await pair.peer.lost
        assert isinstance(peer_exc, rudp.ConnectionReset)
        # The loop's datagram transport closes its socket one iteration after close();
        # the reset has crossed to the peer since.
        assert sock.fileno() == -1
        endpoint.close()  # idempotent
        endpoint.flush()  # harmless once closed
        assert pair.proto.names() == ["made", "lost"]


@on_both_loops
async def test_a_client_endpoint_closes_its_socket_with_its_connection(config: Config) -> None:
    async with asyncio.timeout(TIMEOUT), connected(config) as pair:
        endpoint = pair.client_endpoint
        sock = pair.client.get_extra_info("socket")
        pair.client.close()
        pair.peer_transport.close()
        assert await pair.proto.lost is None
        await endpoint.closed  # after TIME_WAIT, the socket goes with the last connection
        assert endpoint.endpoint.connections == {}
        assert endpoint._io_closed
        assert sock.family == socket.AF_INET
        # The peer's FIN came after our close(): not delivered (asyncio drops reads too).
        assert pair.proto.events == [("made", None), ("lost", None)]
