"""``RudpTransport`` as an ``asyncio.Transport``, over real loopback sockets.

Every test runs on both I/O paths (``Config(io="batched")`` and ``Config(io="plain")``) and on
both loops (asyncio's default and uvloop). Protocols record their callbacks; tests wait on the
futures those callbacks resolve, never on sleeps. The one place where a condition has no
callback of its own (the sender seeing the peer's window close) is watched by wrapping the
client endpoint's ``flush``, reached through ``transport._endpoint`` (private, test-only).
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import functools
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

import rudp
from rudp import Config, RudpTransport
from tests.aio.helpers import HOST, TIMEOUT, Recorder, after_flush, on_both_loops


@dataclass
class Pair:
    """A server, one client connection to it, and the protocols at both ends."""

    server: rudp.Server
    port: int
    client: RudpTransport
    proto: Recorder  # the client's protocol
    peer: Recorder  # the server's protocol for this connection

    @property
    def peer_transport(self) -> RudpTransport:
        assert self.peer.transport is not None
        return self.peer.transport


@contextlib.asynccontextmanager
async def connected(
    config: Config,
    *,
    server_config: Config | None = None,
    client: Callable[[], Recorder] = Recorder,
    peer: Callable[[], Recorder] = Recorder,
) -> AsyncIterator[Pair]:
    """Serve on an ephemeral loopback port, connect once, and wait until the server accepted
    the connection. Everything is reset and closed on exit."""
    accepted: asyncio.Future[Recorder] = asyncio.get_running_loop().create_future()

    def factory() -> Recorder:
        protocol = peer()
        accepted.set_result(protocol)
        return protocol

    server = await rudp.create_server(factory, HOST, 0, config=server_config or config)
    transport: RudpTransport | None = None
    try:
        port = server.sockets[0].getsockname()[1]
        transport, proto = await rudp.create_connection(client, HOST, port, config=config)
        assert isinstance(proto, Recorder)
        # The server accepts when the client's COOKIE-ECHO arrives, after the client returned.
        accepted_protocol = await accepted
        yield Pair(server, port, transport, proto, accepted_protocol)
    finally:
        if transport is not None:
            transport.abort()
        server.abort_clients()
        server.close()
        async with asyncio.timeout(TIMEOUT):  # bounded even after the test itself timed out
            await server.wait_closed()
            if transport is not None:
                # A gracefully closed client lingers in TIME_WAIT; its socket closes then.
                await transport._endpoint.closed  # private: the client's EndpointProtocol


def watch(transport: RudpTransport, predicate: Callable[[], bool]) -> asyncio.Future[None]:
    """A future resolved after the first flush of the transport's endpoint (every datagram
    batch in, every timer) after which ``predicate()`` holds."""
    return after_flush(transport._endpoint, predicate)  # private: test-only access


# --- get_extra_info ------------------------------------------------------------------------


@on_both_loops
async def test_extra_info_names_the_socket_and_the_peer(config: Config) -> None:
    async with asyncio.timeout(TIMEOUT), connected(config) as pair:
        transport = pair.client
        assert transport.get_extra_info("peername") == (HOST, pair.port)
        sock = transport.get_extra_info("socket")
        sockname = transport.get_extra_info("sockname")
        assert sockname == sock.getsockname()
        assert sockname[0] == HOST and sockname[1] != pair.port and sockname[1] > 0
        # The server's transport sees the client's address as its peer.
        assert pair.peer_transport.get_extra_info("peername") == sockname
        sentinel = object()
        assert transport.get_extra_info("no such key") is None
        assert transport.get_extra_info("no such key", sentinel) is sentinel


@on_both_loops
async def test_extra_info_stats_is_a_snapshot_of_the_connection(config: Config) -> None:
    async with asyncio.timeout(TIMEOUT), connected(config) as pair:
        stats = pair.client.get_extra_info("stats")
        assert isinstance(stats, dict)
        assert stats == pair.client.stats()
        # Nothing was sent yet over a lossless loopback: the initial window, no retransmits.
        assert stats["cwnd"] == config.initial_window_segments * config.max_payload
        assert stats["segments_retransmitted"] == 0
        assert stats["bytes_in_flight"] == 0
        assert stats["send_buffer_size"] == 0
        assert stats["peer_window"] == config.recv_buffer_size
        assert stats["max_payload"] == config.max_payload
        # One handshake sample; uvloop's clock ticks in milliseconds, so it may read 0.
        assert isinstance(stats["srtt"], float) and 0 <= stats["srtt"] < 1.0
        # RTO = SRTT + the 200 ms variance floor (above min_rto on loopback).
        assert stats["rto"] == pytest.approx(stats["srtt"] + config.rto_variance_floor)
        # Counters move after a round trip; the old snapshot does not.
        pair.client.write(b"x" * 5000)
        await pair.peer.wait_data(5000)
        pair.peer_transport.write(b"y")
        await pair.proto.wait_data(1)
        after = pair.client.get_extra_info("stats")
        assert after["payload_bytes_sent"] == 5000
        assert after["payload_bytes_received"] == 1
        assert after["segments_retransmitted"] == 0
        assert stats["payload_bytes_sent"] == 0


# --- write() and write_eof() ---------------------------------------------------------------


@on_both_loops
async def test_write_rejects_non_bytes_and_writes_after_eof(config: Config) -> None:
    async with asyncio.timeout(TIMEOUT), connected(config) as pair:
        transport = pair.client
        assert transport.can_write_eof() is True
        for bad in ("text", 42, None, [b"a"]):
            with pytest.raises(TypeError, match="bytes-like"):
                transport.write(bad)  # type: ignore[arg-type]
        transport.write(bytearray(b"ab"))
        transport.write(memoryview(b"cd"))
        transport.write_eof()
        with pytest.raises(RuntimeError, match="write_eof"):
            transport.write(b"more")
        with pytest.raises(RuntimeError, match="write_eof"):
            transport.write(b"")
        transport.write_eof()  # a second half-close is a no-op
        await pair.peer.eof
        assert bytes(pair.peer.data) == b"abcd"
        assert pair.peer.names() == ["made", "data", "eof"]
        # Half-closed, not closed: the peer can still answer.
        assert not transport.is_closing()
        pair.peer_transport.write(b"answer")
        await pair.proto.wait_data(6)
        assert bytes(pair.proto.data) == b"answer"


@on_both_loops
async def test_write_copies_what_it_is_given(config: Config) -> None:
    async with asyncio.timeout(TIMEOUT), connected(config) as pair:
        small = bytearray(b"original")
        large = bytearray(b"a" * 5000)
        pair.client.write(small)
        pair.client.write(memoryview(large))
        small[:] = b"MUTATED!"  # after write() returned: must not change what is sent
        large[:] = b"b" * 5000
        pair.client.writelines([b"x", bytearray(b"y"), memoryview(b"z")])
        pair.client.write_eof()
        await pair.peer.eof
        assert bytes(pair.peer.data) == b"original" + b"a" * 5000 + b"xyz"


@pytest.mark.parametrize(
    "shape",
    [
        "wide-items",
        "2d",
    ],
)
@on_both_loops
async def test_write_sends_every_byte_of_a_memoryview(config: Config, shape: str) -> None:
    # len() of these views counts items or rows, not bytes; the stream must carry the bytes.
    if shape == "wide-items":
        view = memoryview(array.array("I", [1, 2]))
    else:
        view = memoryview(b"abcdef").cast("B", (2, 3))
    assert len(view) == 2 and view.nbytes in (6, 8)
    async with asyncio.timeout(TIMEOUT), connected(config) as pair:
        pair.client.write(view)
        pair.client.write(b"xyz")
        pair.client.write_eof()
        await pair.peer.eof
        assert bytes(pair.peer.data) == view.tobytes() + b"xyz"


class BufferedSink(asyncio.BufferedProtocol):
    """A BufferedProtocol with a deliberately small buffer: data comes in many pieces."""

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.buffer = bytearray(100)
        self.data = bytearray()
        self.updates = 0
        self.eof: asyncio.Future[None] = loop.create_future()
        self.lost: asyncio.Future[BaseException | None] = loop.create_future()

    def get_buffer(self, sizehint: int) -> bytearray:
        return self.buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.updates += 1
        self.data += self.buffer[:nbytes]

    def eof_received(self) -> bool:
        if not self.eof.done():
            self.eof.set_result(None)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(exc)


@on_both_loops
async def test_a_buffered_protocol_receives_through_get_buffer(config: Config) -> None:
    async with asyncio.timeout(TIMEOUT), connected(config) as pair:
        payload = os.urandom(5000)
        pair.peer_transport.write(payload)
        pair.peer_transport.write_eof()
        # Swap the client's protocol: the transport delivers to whichever is current.
        sink = BufferedSink()
        pair.client.set_protocol(sink)
        assert pair.client.get_protocol() is sink
        await sink.eof
        assert bytes(sink.data) == payload
        assert sink.updates >= 50  # at most 100 bytes per buffer_updated()
        assert await sink.lost is None  # eof_received() returned False: closed itself
        assert pair.proto.names() == ["made"]


# --- write buffer limits and pause_writing / resume_writing ------------------------------


@on_both_loops
async def test_write_buffer_limits_defaults_and_validation(config: Config) -> None:
    async with asyncio.timeout(TIMEOUT), connected(config) as pair:
        transport = pair.client
        # Initially the configured watermarks, as (low, high) like asyncio's transports.
        assert transport.get_write_buffer_limits() == (
            config.send_buffer_low,
            config.send_buffer_high,
        )
        transport.set_write_buffer_limits()
        assert transport.get_write_buffer_limits() == (16 * 1024, 64 * 1024)
        transport.set_write_buffer_limits(high=1000)
        assert transport.get_write_buffer_limits() == (250, 1000)
        transport.set_write_buffer_limits(low=300)
        assert transport.get_write_buffer_limits() == (300, 1200)
        transport.set_write_buffer_limits(high=500, low=500)
        assert transport.get_write_buffer_limits() == (500, 500)
        transport.set_write_buffer_limits(high=0, low=0)
        assert transport.get_write_buffer_limits() == (0, 0)
        with pytest.raises(ValueError, match="high"):
            transport.set_write_buffer_limits(high=100, low=200)
        with pytest.raises(ValueError, match="high"):
            transport.set_write_buffer_limits(high=-4)
        with pytest.raises(ValueError, match="high"):
            transport.set_write_buffer_limits(high=10, low=-1)
        assert transport.get_write_buffer_limits() == (0, 0)  # unchanged by the failures
        assert transport.get_write_buffer_size() == 0
        assert pair.proto.names() == ["made"]  # an empty buffer is not above high=0


@on_both_loops
async def test_pause_and_resume_writing_at_the_watermarks(config: Config) -> None:
    # The server does not read and its receive buffer is small, so the client's unacknowledged
    # bytes stay above the high-water mark until the server reads.
    small = config.replace(recv_buffer_size=32 * 1024)
    peer = functools.partial(Recorder, pause_on_connect=True)
    async with asyncio.timeout(TIMEOUT), connected(config, server_config=small, peer=peer) as pair:
        transport = pair.client
        transport.set_write_buffer_limits(high=64 * 1024, low=16 * 1024)
        first = bytes(range(256)) * 256  # exactly 64 KiB: at the mark, not above it
        transport.write(first)
        assert pair.proto.names() == ["made"]
        transport.write(b"!")
        assert pair.proto.events == [("made", None), ("pause_writing", 64 * 1024 + 1)]
        second = os.urandom(200_000)
        transport.write(second)  # already paused: no second pause_writing
        assert pair.proto.count("pause_writing") == 1
        total = len(first) + 1 + len(second)
        # The peer's window fills up and then nothing more drains: no resume_writing.
        await watch(transport, lambda: transport.stats()["peer_window"] == 0)
        await asyncio.sleep(0.05)  # several round trips in which nothing may change
        assert transport.get_write_buffer_size() == total - small.recv_buffer_size
        assert pair.proto.count("resume_writing") == 0
        assert pair.peer.names() == ["made"]
        # The server reads: everything arrives and the writer resumes at or below low.
        pair.peer_transport.resume_reading()
        await pair.proto.resumed
        await pair.peer.wait_data(total)
        assert bytes(pair.peer.data) == first + b"!" + second
        assert pair.proto.names() == ["made", "pause_writing", "resume_writing"]
        name, size_at_resume = pair.proto.events[-1]
        assert name == "resume_writing" and size_at_resume <= 16 * 1024


@on_both_loops
async def test_lowering_the_limits_pauses_and_raising_them_resumes(config: Config) -> None:
    peer = functools.partial(Recorder, pause_on_connect=True)
    small = config.replace(recv_buffer_size=32 * 1024)
    async with asyncio.timeout(TIMEOUT), connected(config, server_config=small, peer=peer) as pair:
        transport = pair.client
        transport.write(b"z" * 100_000)
        assert pair.proto.names() == ["made"]  # 100 kB is below the default 1 MiB mark
        await watch(transport, lambda: transport.stats()["peer_window"] == 0)
        held = transport.get_write_buffer_size()
        assert held == 100_000 - small.recv_buffer_size
        transport.set_write_buffer_limits(high=held - 1)
        assert pair.proto.events[-1] == ("pause_writing", held)
        transport.set_write_buffer_limits(high=4 * held, low=held)
        assert pair.proto.events[-1] == ("resume_writing", held)
        assert pair.proto.names() == ["made", "pause_writing", "resume_writing"]


# --- pause_reading / resume_reading --------------------------------------------------------


@on_both_loops
async def test_pause_reading_closes_the_window_and_resume_delivers_in_order(
    config: Config,
) -> None:
    window = 64 * 1024
    small = config.replace(recv_buffer_size=window)
    async with asyncio.timeout(TIMEOUT), connected(config, server_config=small) as pair:
        reader = pair.peer_transport
        assert reader.is_reading() is True
        reader.pause_reading()
        assert reader.is_reading() is False
        reader.pause_reading()  # idempotent
        assert reader.is_reading() is False
        payload = os.urandom(300_000)
        pair.client.write(payload)
        sender = pair.client
        await watch(sender, lambda: sender.stats()["peer_window"] == 0)
        assert sender.get_write_buffer_size() == len(payload) - window
        await asyncio.sleep(0.05)  # nothing may arrive and nothing may drain meanwhile
        assert pair.peer.names() == ["made"]
        assert sender.get_write_buffer_size() == len(payload) - window
        assert sender.stats()["peer_window"] == 0
        reader.resume_reading()
        assert reader.is_reading() is True
        await pair.peer.wait_data(len(payload))
        assert bytes(pair.peer.data) == payload
        await watch(sender, lambda: sender.get_write_buffer_size() == 0)
        reader.close()
        assert reader.is_reading() is False
        reader.resume_reading()  # no effect once closing
        assert reader.is_reading() is False


@on_both_loops
async def test_eof_waits_behind_data_held_by_pause_reading(config: Config) -> None:
    async with asyncio.timeout(TIMEOUT), connected(config) as pair:
        pair.peer_transport.pause_reading()
        pair.client.write(b"held data")
        pair.client.write_eof()
        await watch(pair.client, lambda: pair.client.stats()["state"] == "FIN_WAIT_2")
        await asyncio.sleep(0.02)  # a few loop iterations in which nothing may be delivered
        assert pair.peer.names() == ["made"]
        pair.peer_transport.resume_reading()
        await pair.peer.eof
        assert bytes(pair.peer.data) == b"held data"
        assert pair.peer.names() == ["made", "data", "eof"]


# --- close() --------------------------------------------------------------------------------


@on_both_loops
async def test_close_delivers_everything_then_loses_the_connection_once(config: Config) -> None:
    async with asyncio.timeout(TIMEOUT), connected(config) as pair:
        payload = os.urandom(400_000)
        at_lost: list[int] = []
        pair.proto.on_lost = lambda: at_lost.append(len(pair.peer.data))
        pair.client.write(payload)
        pair.client.close()
        assert pair.client.is_closing() is True
        pair.client.close()  # idempotent
        pair.client.write(b"dropped")  # after close(): silently discarded, as over TCP
        assert pair.proto.names() == ["made"]
        assert await pair.proto.lost is None
        # connection_lost came only after the peer had received (and acknowledged) it all.
        assert at_lost == [len(payload)]
        await pair.peer.eof
        assert bytes(pair.peer.data) == payload
        # The peer (which kept its side open) now closes; our FIN_WAIT_2 ends quietly.
        pair.peer_transport.close()
        assert await pair.peer.lost is None
        assert pair.peer.names() == ["made", *["data"] * pair.peer.count("data"), "eof", "lost"]
        assert pair.proto.events == [("made", None), ("lost", None)]


@on_both_loops
async def test_eof_received_returning_false_closes_the_transport(config: Config) -> None:
    client = functools.partial(Recorder, keep_open_on_eof=False)
    async with asyncio.timeout(TIMEOUT), connected(config, client=client) as pair:
        pair.peer_transport.write(b"bye")
        pair.peer_transport.write_eof()
        assert await pair.proto.lost is None
        assert pair.proto.names() == ["made", "data", "eof", "lost"]
        assert bytes(pair.proto.data) == b"bye"
        assert pair.client.is_closing() is True
        # Our side answered the half-close with its own FIN.
        await pair.peer.eof
        assert await pair.peer.lost is None
        assert pair.peer.names() == ["made", "eof", "lost"]


@on_both_loops
async def test_eof_received_returning_true_keeps_the_transport_open(config: Config) -> None:
    async with asyncio.timeout(TIMEOUT), connected(config) as pair:
        pair.peer_transport.write_eof()
        await pair.proto.eof
        await asyncio.sleep(0.02)  # a few loop iterations: the transport must stay open
        assert pair.client.is_closing() is False
        assert pair.proto.names() == ["made", "eof"]
        pair.client.write(b"still here")
        await pair.peer.wait_data(10)
        assert bytes(pair.peer.data) == b"still here"


class Exploding(Recorder):
    """A server protocol with a bug: data_received() raises."""

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        raise RuntimeError("protocol bug")


@on_both_loops
async def test_an_exception_in_data_received_aborts_that_connection(config: Config) -> None:
    loop = asyncio.get_running_loop()
    reported: asyncio.Future[dict[str, Any]] = loop.create_future()

    def handler(_: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if not reported.done():
            reported.set_result(context)

    loop.set_exception_handler(handler)
    async with asyncio.timeout(TIMEOUT), connected(config, peer=Exploding) as pair:
        pair.client.write(b"boom")
        context = await reported
        assert context["message"] == "Fatal error: protocol.data_received() call failed."
        assert str(context["exception"]) == "protocol bug"
        assert pair.peer_transport.is_closing()
        assert await pair.peer.lost is context["exception"]
        assert isinstance(await pair.proto.lost, rudp.ConnectionReset)


# --- abort() --------------------------------------------------------------------------------


@on_both_loops
async def test_abort_resets_the_peer_and_loses_the_connection_once(config: Config) -> None:
    async with asyncio.timeout(TIMEOUT), connected(config) as pair:
        pair.client.write(b"x" * 100_000)
        pair.client.abort()
        assert pair.client.is_closing() is True
        assert pair.client.is_reading() is False
        pair.client.abort()  # idempotent
        await pair.proto.lost
        peer_exc = await pair.peer.lost
        assert isinstance(peer_exc, ConnectionResetError)
        assert isinstance(peer_exc, rudp.ConnectionReset)
        assert pair.proto.names() == ["made", "lost"]
        assert pair.peer.count("lost") == 1


@on_both_loops
async def test_abort_reports_connection_lost_none_locally(config: Config) -> None:
    async with asyncio.timeout(TIMEOUT), connected(config) as pair:
        pair.client.abort()
        assert await pair.proto.lost is None
