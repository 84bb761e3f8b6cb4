"""``rudp.Server``: the ``asyncio.Server`` surface, over real loopback sockets.

Each test runs on both I/O paths on the default loop. Protocols record their callbacks and
resolve futures that the tests await. Where a test must know that the server has queued a
handshake it has not accepted yet, it watches the server's endpoint through the private
``server._endpoints`` (test-only access).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

import rudp
from rudp import Config, RudpTransport
from rudp.aio.protocol import EndpointProtocol
from rudp.wire.packet import TYPE_COOKIE_ECHO
from tests.aio.helpers import HOST, TIMEOUT, Recorder, after_flush


class Harness:
    """A server whose accepted protocols are kept in order, and the clients of one test."""

    def __init__(self, config: Config, *, peer: Callable[[], Recorder] = Recorder) -> None:
        self.config = config
        self.peer = peer
        self.server: rudp.Server | None = None
        self.port = 0
        self.accepted: list[Recorder] = []
        self.clients: list[tuple[RudpTransport, Recorder]] = []
        self._accept_waiters: list[tuple[int, asyncio.Future[None]]] = []

    def factory(self) -> Recorder:
        protocol = self.peer()
        self.accepted.append(protocol)
        for count, future in self._accept_waiters:
            if len(self.accepted) >= count and not future.done():
                future.set_result(None)
        return protocol

    def wait_accepted(self, count: int) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if len(self.accepted) >= count:
            future.set_result(None)
        else:
            self._accept_waiters.append((count, future))
        return future

    async def serve(self, **kwargs: Any) -> rudp.Server:
        kwargs.setdefault("config", self.config)
        self.server = await rudp.create_server(self.factory, HOST, 0, **kwargs)
        self.port = self.server.sockets[0].getsockname()[1]
        return self.server

    async def connect(
        self, protocol: Callable[[], Recorder] = Recorder
    ) -> tuple[RudpTransport, Recorder]:
        transport, proto = await rudp.create_connection(
            protocol, HOST, self.port, config=self.config
        )
        assert isinstance(proto, Recorder)
        self.clients.append((transport, proto))
        return transport, proto

    @property
    def endpoint(self) -> EndpointProtocol:
        assert self.server is not None
        (endpoint,) = self.server._endpoints  # private: the server's EndpointProtocol
        return endpoint

    def queued(self, count: int) -> asyncio.Future[None]:
        """Resolved once ``count`` completed handshakes wait in the server's accept queue."""
        engine = self.endpoint.endpoint
        return after_flush(self.endpoint, lambda: engine.accept_queue_length >= count)

    async def aclose(self) -> None:
        for transport, _ in self.clients:
            transport.abort()
        if self.server is not None:
            self.server.abort_clients()
            self.server.close()
        async with asyncio.timeout(TIMEOUT):  # bounded even after the test itself timed out
            if self.server is not None:
                await self.server.wait_closed()
            for transport, _ in self.clients:
                await transport._endpoint.closed  # private: the client's socket is closed


@contextlib.asynccontextmanager
async def harness(config: Config, **kwargs: Any) -> AsyncIterator[Harness]:
    h = Harness(config, **kwargs)
    try:
        yield h
    finally:
        await h.aclose()


# --- start_serving / is_serving ------------------------------------------------------------


async def test_handshakes_complete_before_serving_and_are_accepted_when_it_starts(
    config: Config,
) -> None:
    async with asyncio.timeout(TIMEOUT), harness(config) as h:
        server = await h.serve(start_serving=False)
        assert server.is_serving() is False
        assert len(server.sockets) == 1
        clients = [await h.connect() for _ in range(3)]
        await h.queued(3)  # every handshake completed into the accept queue
        await asyncio.sleep(0.02)  # a few loop iterations: nothing may be accepted meanwhile
        assert h.accepted == []
        await server.start_serving()
        assert server.is_serving() is True
        # Accepted at once, oldest first.
        assert len(h.accepted) == 3
        assert [p.names() for p in h.accepted] == [["made"]] * 3
        peers = [p.transport.get_extra_info("peername") for p in h.accepted if p.transport]
        assert peers == [t.get_extra_info("sockname") for t, _ in clients]
        await server.start_serving()  # idempotent
        assert len(h.accepted) == 3
        # Every accepted connection works both ways.
        for i, ((transport, proto), peer) in enumerate(zip(clients, h.accepted, strict=True)):
            transport.write(b"hello %d" % i)
            await peer.wait_data(7)
            assert bytes(peer.data) == b"hello %d" % i
            assert peer.transport is not None
            peer.transport.write(b"back %d" % i)
            await proto.wait_data(6)
            assert bytes(proto.data) == b"back %d" % i
        # Later connections are accepted as they complete.
        await h.connect()
        await h.wait_accepted(4)


async def test_a_burst_of_handshakes_in_one_read_is_accepted_past_the_backlog(
    config: Config,
) -> None:
    """Six COOKIE-ECHOs read in one wake-up of a server with backlog 2: the server accepts
    between slices of the batch, so none is dropped as backlog_full."""
    burst = 6
    async with asyncio.timeout(TIMEOUT), harness(config) as h:
        await h.serve(backlog=2)
        endpoint = h.endpoint
        deliver = endpoint.datagrams_received
        held: list[tuple[bytes, Any]] = []
        released = False

        def hold_echoes(datagrams: list[tuple[bytes, Any]]) -> None:
            nonlocal released
            rest = []
            for data, addr in datagrams:
                if not released and data[0] & 0x0F == TYPE_COOKIE_ECHO:
                    held.append((data, addr))
                else:
                    rest.append((data, addr))
            if not released and len(held) == burst:
                released = True  # later echoes (retransmissions) pass
                deliver(held)
            if rest:
                deliver(rest)

        def one(data: bytes, addr: Any) -> None:
            hold_echoes([(data, addr)])

        endpoint.datagrams_received = hold_echoes  # type: ignore[method-assign]
        endpoint.datagram_received = one  # type: ignore[method-assign]
        for _ in range(burst):
            await h.connect()  # returns at the COOKIE: its echo is held
        await h.wait_accepted(burst)
        assert endpoint.endpoint.stats.dropped.get("backlog_full", 0) == 0
        assert endpoint.endpoint.stats.echoes_accepted == burst
        assert all(proto.names() == ["made"] for _, proto in h.clients)


async def test_data_sent_before_serving_starts_is_delivered_on_accept(config: Config) -> None:
    async with asyncio.timeout(TIMEOUT), harness(config) as h:
        server = await h.serve(start_serving=False)
        transport, _ = await h.connect()
        transport.write(b"early bytes")
        transport.write_eof()
        # Our FIN acknowledged: the unaccepted server connection holds the data and the FIN.
        await after_flush(transport._endpoint, lambda: transport.stats()["state"] == "FIN_WAIT_2")
        await server.start_serving()
        (peer,) = h.accepted
        assert peer.names() == ["made", "data", "eof"]
        assert bytes(peer.data) == b"early bytes"


async def test_close_resets_connections_never_accepted(config: Config) -> None:
    async with asyncio.timeout(TIMEOUT), harness(config) as h:
        server = await h.serve(start_serving=False)
        _, proto = await h.connect()
        await h.queued(1)
        server.close()
        assert server.sockets == ()
        exc = await proto.lost
        assert isinstance(exc, rudp.ConnectionReset)
        await server.wait_closed()
        assert h.accepted == []
        with pytest.raises(RuntimeError, match="is closed"):
            await server.start_serving()


async def test_protocol_factory_failure_resets_only_that_connection(
    config: Config, caplog: pytest.LogCaptureFixture
) -> None:
    failures = [True]

    def peer() -> Recorder:
        if failures:
            failures.pop()
            raise RuntimeError("factory failed")
        return Recorder()

    async with asyncio.timeout(TIMEOUT), harness(config, peer=peer) as h:
        await h.serve()
        with caplog.at_level(logging.ERROR, logger="rudp.aio.server"):
            _, first = await h.connect()
            exc = await first.lost
        assert isinstance(exc, rudp.ConnectionReset)
        assert [r.getMessage() for r in caplog.records] == [
            "protocol factory failed; aborting the connection"
        ]
        transport, second = await h.connect()
        await h.wait_accepted(1)
        transport.write(b"ok")
        await h.accepted[0].wait_data(2)
        assert bytes(h.accepted[0].data) == b"ok"
        assert first.names() == ["made", "lost"]


# --- serve_forever ----------------------------------------------------------------------


async def test_serve_forever_cancelled_closes_and_reraises(config: Config) -> None:
    async with asyncio.timeout(TIMEOUT), harness(config) as h:
        server = await h.serve(start_serving=False)
        task = asyncio.ensure_future(server.serve_forever())
        await asyncio.sleep(0)  # serve_forever starts serving
        assert server.is_serving() is True
        # A second serve_forever() while the first runs is refused.
        with pytest.raises(RuntimeError, match="already being awaited"):
            await server.serve_forever()
        assert server.is_serving() is True
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert task.cancelled()
        assert server.is_serving() is False
        assert server.sockets == ()
        await server.wait_closed()  # already done
        with pytest.raises(RuntimeError, match="is closed"):
            await server.serve_forever()


async def test_serve_forever_cancelled_waits_for_open_connections(config: Config) -> None:
    peer = lambda: Recorder(keep_open_on_eof=False)  # noqa: E731 - closes back on EOF
    async with asyncio.timeout(TIMEOUT), harness(config, peer=peer) as h:
        server = await h.serve()
        task = asyncio.ensure_future(server.serve_forever())
        transport, proto = await h.connect()
        await h.wait_accepted(1)
        task.cancel()
        await asyncio.sleep(0.02)  # several iterations: still waiting for the connection
        assert not task.done()
        assert server.is_serving() is False
        transport.write(b"still works")
        await h.accepted[0].wait_data(11)
        transport.close()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await h.accepted[0].lost is None
        assert h.accepted[0].names() == ["made", "data", "eof", "lost"]


async def test_server_close_cancels_serve_forever(config: Config) -> None:
    async with asyncio.timeout(TIMEOUT), harness(config) as h:
        server = await h.serve()
        task = asyncio.ensure_future(server.serve_forever())
        await asyncio.sleep(0)
        server.close()
        with pytest.raises(asyncio.CancelledError):
            await task
        await server.wait_closed()


# --- async with, close, wait_closed -----------------------------------------------------------


async def test_async_with_closes_on_exit_and_waits_for_connections(config: Config) -> None:
    order: list[str] = []
    peer = lambda: Recorder(keep_open_on_eof=False)  # noqa: E731 - closes back on EOF
    async with asyncio.timeout(TIMEOUT), harness(config, peer=peer) as h:
        server = await h.serve()
        sock = server.sockets[0]
        async with server as entered:
            assert entered is server
            transport, _ = await h.connect()
            await h.wait_accepted(1)
            h.accepted[0].lost.add_done_callback(lambda _: order.append("connection lost"))
            # Closed by the time __aexit__ waits: the client goes away then.
            asyncio.get_running_loop().call_soon(transport.close)
        order.append("exited")
        assert order == ["connection lost", "exited"]
        assert server.is_serving() is False
        assert server.sockets == ()
        assert sock.fileno() == -1  # the server's socket is closed


async def test_wait_closed_before_close_waits_for_close_and_connections(config: Config) -> None:
    peer = lambda: Recorder(keep_open_on_eof=False)  # noqa: E731 - closes back on EOF
    async with asyncio.timeout(TIMEOUT), harness(config, peer=peer) as h:
        server = await h.serve()
        transport, proto = await h.connect()
        await h.wait_accepted(1)
        waiting = asyncio.ensure_future(server.wait_closed())
        await asyncio.sleep(0.02)  # nothing closes by itself
        assert not waiting.done()
        server.close()
        await asyncio.sleep(0.02)  # closed, but a connection is still open
        assert not waiting.done()
        transport.close()
        await waiting
        assert await proto.lost is None
        assert h.accepted[0].lost.done()


async def test_a_timed_out_wait_closed_does_not_break_the_next_one(config: Config) -> None:
    async with asyncio.timeout(TIMEOUT), harness(config) as h:
        server = await h.serve()
        transport, proto = await h.connect()
        await h.wait_accepted(1)
        server.close()
        with pytest.raises(TimeoutError):  # a connection is still open
            await asyncio.wait_for(server.wait_closed(), 0.01)
        transport.close()
        await proto.lost
        server.abort_clients()
        await server.wait_closed()  # used to raise CancelledError at once
        assert server.sockets == ()


# --- close_clients / abort_clients ------------------------------------------------------------


async def test_close_clients_sends_eof_then_the_clients_lose_the_connection(
    config: Config,
) -> None:
    async with asyncio.timeout(TIMEOUT), harness(config) as h:
        server = await h.serve()
        clients = [await h.connect(lambda: Recorder(keep_open_on_eof=False)) for _ in range(2)]
        await h.wait_accepted(2)
        server.close_clients()
        assert all(p.transport is not None and p.transport.is_closing() for p in h.accepted)
        for _, proto in clients:
            assert await proto.lost is None
            assert proto.names() == ["made", "eof", "lost"]
        for peer in h.accepted:
            assert await peer.lost is None
        assert server.is_serving() is True  # the server itself still serves
        await h.connect()
        await h.wait_accepted(3)


async def test_abort_clients_resets_every_client(config: Config) -> None:
    async with asyncio.timeout(TIMEOUT), harness(config) as h:
        server = await h.serve()
        clients = [await h.connect() for _ in range(2)]
        await h.wait_accepted(2)
        server.abort_clients()
        for _, proto in clients:
            exc = await proto.lost
            assert isinstance(exc, ConnectionResetError)
            assert isinstance(exc, rudp.ConnectionReset)
            assert proto.names() == ["made", "lost"]
        for peer in h.accepted:
            await peer.lost
            assert peer.names() == ["made", "lost"]


# --- get_loop, sockets ------------------------------------------------------------------------


async def test_get_loop_and_sockets(config: Config) -> None:
    async with asyncio.timeout(TIMEOUT), harness(config) as h:
        server = await h.serve()
        assert server.get_loop() is asyncio.get_running_loop()
        sockets = server.sockets
        assert isinstance(sockets, tuple) and len(sockets) == 1
        assert sockets[0].getsockname() == (HOST, h.port)
        assert h.port > 0
        assert str((HOST, h.port)) in repr(server)
        server.close()
        assert server.sockets == ()
        server.close()  # idempotent
        await server.wait_closed()
        assert sockets[0].fileno() == -1
