"""``rudp.open_connection`` / ``rudp.start_server``: what is rudp's own in them.

``tests/test_streams_compat.py`` runs the stream behaviour itself against TCP; this file checks
the types handed out, the callback forms, the limit, the arguments passed through and the
errors ``wait_closed()`` reports. Both I/O paths, default loop; waits are on futures.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

import rudp
from rudp import Config, RudpTransport

HOST = "127.0.0.1"
TIMEOUT = 10.0


@pytest.fixture(params=["batched", "plain"])
def config(request: pytest.FixtureRequest) -> Config:
    return Config(io=request.param, time_wait=0.05)


Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class Accepted:
    """What the server's callback received, one future per connection in order."""

    def __init__(self) -> None:
        self.streams: asyncio.Queue[Streams] = asyncio.Queue()

    def cb(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.streams.put_nowait((reader, writer))


@contextlib.asynccontextmanager
async def served(cb: Any, config: Config, **kwargs: Any) -> AsyncIterator[tuple[rudp.Server, int]]:
    server = await rudp.start_server(cb, HOST, 0, config=config, **kwargs)
    try:
        yield server, server.sockets[0].getsockname()[1]
    finally:
        server.abort_clients()
        server.close()
        async with asyncio.timeout(TIMEOUT):  # bounded even after the test itself timed out
            await server.wait_closed()


async def test_the_real_asyncio_stream_classes_are_returned(config: Config) -> None:
    accepted = Accepted()
    async with asyncio.timeout(TIMEOUT), served(accepted.cb, config) as (server, port):
        assert type(server) is rudp.Server
        assert isinstance(server, asyncio.AbstractServer)
        reader, writer = await rudp.open_connection(HOST, port, config=config)
        assert type(reader) is asyncio.StreamReader
        assert type(writer) is asyncio.StreamWriter
        assert isinstance(writer.transport, RudpTransport)
        assert type(writer.transport.get_protocol()) is asyncio.StreamReaderProtocol
        server_reader, server_writer = await accepted.streams.get()
        assert type(server_reader) is asyncio.StreamReader
        assert type(server_writer) is asyncio.StreamWriter
        assert isinstance(server_writer.transport, RudpTransport)
        assert writer.get_extra_info("peername") == (HOST, port)
        assert server_writer.get_extra_info("peername") == writer.get_extra_info("sockname")
        writer.write(b"ping\n")
        assert await server_reader.readline() == b"ping\n"
        server_writer.write(b"pong\n")
        assert await reader.readline() == b"pong\n"
        writer.close()
        await writer.wait_closed()
        assert await server_reader.read() == b""


async def test_a_plain_function_callback_works(config: Config) -> None:
    calls: list[str] = []

    def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        calls.append(type(writer).__name__)
        writer.write(b"hello from a plain function")
        writer.write_eof()

    async with asyncio.timeout(TIMEOUT), served(greet, config) as (_, port):
        reader, writer = await rudp.open_connection(HOST, port, config=config)
        assert await reader.read() == b"hello from a plain function"
        assert calls == ["StreamWriter"]
        writer.close()
        await writer.wait_closed()


async def test_a_coroutine_callback_runs_as_a_task(config: Config) -> None:
    done: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    async def upper(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.read()
        writer.write(data.upper())
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        done.set_result(data)

    async with asyncio.timeout(TIMEOUT), served(upper, config) as (_, port):
        reader, writer = await rudp.open_connection(HOST, port, config=config)
        writer.write(b"shout this")
        writer.write_eof()
        assert await reader.read() == b"SHOUT THIS"
        assert await done == b"shout this"
        writer.close()
        await writer.wait_closed()


async def test_wait_closed_raises_the_reset_after_the_peer_aborted(config: Config) -> None:
    accepted = Accepted()
    async with asyncio.timeout(TIMEOUT), served(accepted.cb, config) as (_, port):
        reader, writer = await rudp.open_connection(HOST, port, config=config)
        _, server_writer = await accepted.streams.get()
        server_writer.transport.abort()
        with pytest.raises(ConnectionResetError) as info:
            await writer.wait_closed()
        assert isinstance(info.value, rudp.ConnectionReset)
        assert writer.is_closing()
        with pytest.raises(ConnectionResetError):
            await reader.read()
        assert reader.exception() is info.value


async def test_wait_closed_after_a_local_abort_returns(config: Config) -> None:
    accepted = Accepted()
    async with asyncio.timeout(TIMEOUT), served(accepted.cb, config) as (_, port):
        _, writer = await rudp.open_connection(HOST, port, config=config)
        writer.transport.abort()
        await writer.wait_closed()


async def test_client_limit_is_honoured(config: Config) -> None:
    def send_long_line(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"x" * 20 + b"\nok\n")

    async with asyncio.timeout(TIMEOUT), served(send_long_line, config) as (_, port):
        reader, writer = await rudp.open_connection(HOST, port, config=config, limit=10)
        # The line arrives in one segment, so asyncio finds the separator past the limit.
        with pytest.raises(
            ValueError, match="^Separator is found, but chunk is longer than limit$"
        ):
            await reader.readline()
        # readline() dropped the oversized line; the rest still reads.
        assert await reader.readline() == b"ok\n"
        writer.close()
        await writer.wait_closed()


async def test_server_limit_is_honoured(config: Config) -> None:
    outcome: asyncio.Future[BaseException | bytes] = asyncio.get_running_loop().create_future()

    async def read_line(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            outcome.set_result(await reader.readline())
        except ValueError as exc:
            outcome.set_result(exc)
        writer.close()

    async with asyncio.timeout(TIMEOUT), served(read_line, config, limit=8) as (_, port):
        reader, writer = await rudp.open_connection(HOST, port, config=config)
        writer.write(b"0123456789abcdef\n")
        result = await outcome
        assert isinstance(result, ValueError)
        assert str(result) == "Separator is found, but chunk is longer than limit"
        assert await reader.read() == b""
        writer.close()
        await writer.wait_closed()


async def test_start_serving_false_is_passed_through(config: Config) -> None:
    accepted = Accepted()
    async with (
        asyncio.timeout(TIMEOUT),
        served(accepted.cb, config, start_serving=False) as (
            server,
            port,
        ),
    ):
        assert server.is_serving() is False
        reader, writer = await rudp.open_connection(HOST, port, config=config)
        await asyncio.sleep(0.02)  # a few loop iterations: the callback must not run
        assert accepted.streams.empty()
        await server.start_serving()
        _, server_writer = await accepted.streams.get()
        server_writer.write(b"served")
        assert await reader.readexactly(6) == b"served"
        writer.close()
        await writer.wait_closed()


@pytest.mark.parametrize("name", ["ssl", "server_hostname"])
async def test_tls_arguments_are_refused(config: Config, name: str) -> None:
    kwargs: dict[str, Any] = {name: "x"}
    with pytest.raises(ValueError, match=f"{name}= is not supported"):
        await rudp.open_connection(HOST, 9, config=config, **kwargs)
    with pytest.raises(ValueError, match=f"{name}= is not supported"):
        await rudp.start_server(Accepted().cb, HOST, 0, config=config, **kwargs)


async def test_handshake_timeout_is_passed_through(config: Config) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind((HOST, 0))
        port = silent.getsockname()[1]
        async with asyncio.timeout(TIMEOUT):
            with pytest.raises(rudp.HandshakeTimeout):
                await rudp.open_connection(HOST, port, config=config, handshake_timeout=0.1)
