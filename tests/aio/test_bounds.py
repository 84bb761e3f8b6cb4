"""Every bound reached over real loopback sockets, with its documented behaviour: refusal
(connections per endpoint, accept backlog), backpressure and a typed error (send buffer), a
closed window (receive buffer), and bounded memory for data held while reading is paused.
The engine's own bounds (reassembly pieces, reply queue, timer heap) are in
tests/core/test_bounds.py and tests/core/test_spoofing.py; datagram queues, message size and
the socket send backlog in tests/core/test_datagrams.py, tests/test_messages.py and
tests/aio/test_udpio.py (docs/security.md lists them all)."""

from __future__ import annotations

import asyncio
from typing import cast

import pytest

from rudp import (
    Config,
    ConnectionRefused,
    RudpTransport,
    SendBufferFull,
    open_connection,
    start_server,
)

HOST = "127.0.0.1"


async def _hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        await reader.read()  # until the peer's EOF or reset
    except ConnectionError:
        pass
    writer.close()


async def test_max_connections_refuses_the_next_client(config: Config) -> None:
    server = await start_server(_hold, HOST, 0, config=config.replace(max_connections=2))
    port = server.sockets[0].getsockname()[1]
    writers = []
    try:
        for _ in range(2):
            _, writer = await open_connection(HOST, port, config=config)
            writers.append(writer)
        with pytest.raises(ConnectionRefused):
            reader, writer = await open_connection(HOST, port, config=config)
            writers.append(writer)
            await asyncio.wait_for(reader.read(), 10.0)  # refused once its echo arrives
    finally:
        for writer in writers:
            writer.close()
        server.close()
        await asyncio.wait_for(server.wait_closed(), 10.0)


async def test_a_full_accept_queue_refuses_with_the_reset_policy(config: Config) -> None:
    bounded = config.replace(backlog=2, backlog_overflow="reset")
    server = await start_server(_hold, HOST, 0, config=bounded, start_serving=False)
    port = server.sockets[0].getsockname()[1]
    endpoint = server._endpoints[0].endpoint
    writers = []
    try:
        for _ in range(2):
            _, writer = await open_connection(HOST, port, config=config)
            writers.append(writer)
            writer.write(b"queued")
        reader, writer = await open_connection(HOST, port, config=config)
        writers.append(writer)
        with pytest.raises(ConnectionRefused):
            await asyncio.wait_for(reader.read(), 10.0)
        assert endpoint.accept_queue_length == 2
        assert endpoint.stats.dropped["backlog_full"] == 1
        await server.start_serving()  # the two queued connections are now served
        assert endpoint.accept_queue_length == 0 and len(endpoint.connections) == 2
    finally:
        for writer in writers:
            writer.close()
        server.close()
        await asyncio.wait_for(server.wait_closed(), 10.0)


async def test_send_buffer_backpressure_then_a_typed_error_at_its_hard_bound(
    config: Config,
) -> None:
    paused: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.transport.pause_reading()  # never read: the window closes
        paused.set_result(None)
        await _hold(reader, writer)

    small = config.replace(
        recv_buffer_size=64 * 1024,
        send_buffer_high=128 * 1024,
        send_buffer_low=32 * 1024,
        send_buffer_max=512 * 1024,
    )
    server = await start_server(stall, HOST, 0, config=small)
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await open_connection(HOST, port, config=small)
        transport = cast(RudpTransport, writer.transport)
        transport.set_write_buffer_limits(high=small.send_buffer_high)
        writer.write(b"x")
        await asyncio.wait_for(paused, 10.0)
        writer.write(bytes(256 * 1024))  # past the high-water mark
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(writer.drain(), 0.3)  # drain() waits: backpressure
        with pytest.raises(SendBufferFull):
            writer.write(bytes(400 * 1024))  # past send_buffer_max: refused, not buffered
        assert transport.get_write_buffer_size() <= small.send_buffer_max
        stats = transport.stats()
        assert stats["peer_window"] == 0  # the stalled reader's window is closed
        writer.transport.abort()
    finally:
        server.abort_clients()
        server.close()
        await asyncio.wait_for(server.wait_closed(), 10.0)


async def test_tiny_segments_held_by_a_paused_reader_cost_bytes_not_objects() -> None:
    """1-byte segments, one per loop iteration, into a reader that paused: the window closes at
    recv_buffer_size bytes, and what the transport holds is a few chunks, not one per segment.
    Plain I/O: one datagram per wake-up, the worst case for the number of deliveries."""
    config = Config(io="plain", recv_buffer_size=16 * 1024, time_wait=0.05)
    ready: asyncio.Future[RudpTransport] = asyncio.get_running_loop().create_future()

    async def pause(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        transport = cast(RudpTransport, writer.transport)
        transport.pause_reading()
        ready.set_result(transport)
        await _hold(reader, writer)

    server = await start_server(pause, HOST, 0, config=config)
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await open_connection(HOST, port, config=config)
        writer.write(b"!")
        transport = await asyncio.wait_for(ready, 10.0)
        for _ in range(20_000):
            writer.write(b"x")
            await asyncio.sleep(0)  # one flush, so one 1-byte segment, per iteration
        held = transport._held
        assert sum(len(chunk) for chunk in held) <= config.recv_buffer_size
        assert sum(len(chunk) for chunk in held) >= config.recv_buffer_size // 2
        assert len(held) <= 2
        writer.transport.abort()
    finally:
        server.abort_clients()
        server.close()
        await asyncio.wait_for(server.wait_closed(), 10.0)
