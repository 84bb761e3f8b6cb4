"""The same stream-API tests against asyncio TCP and rudp, on the default loop and on uvloop.

rudp runs on both I/O paths (batched Linux I/O and the loop's plain datagram transport). Where
TCP and rudp must differ, the test says why.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import struct
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

import rudp
from rudp.config import Config

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a dependency where it builds
    uvloop = None  # type: ignore[assignment]

HOST = "127.0.0.1"
LOOPS = ["asyncio"] + (["uvloop"] if uvloop is not None else [])


@dataclass
class Backend:
    """One stream implementation under test."""

    name: str
    open_connection: Callable[..., Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]
    start_server: Callable[..., Awaitable[Any]]

    @property
    def is_tcp(self) -> bool:
        return self.name == "tcp"


def _rudp(io: str) -> Backend:
    config = Config(io=io, time_wait=0.2)  # type: ignore[arg-type]

    async def open_connection(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("config", config)
        return await rudp.open_connection(*args, **kwargs)

    async def start_server(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("config", config)
        return await rudp.start_server(*args, **kwargs)

    return Backend(f"rudp-{io}", open_connection, start_server)


BACKENDS = {
    "tcp": Backend("tcp", asyncio.open_connection, asyncio.start_server),
    "rudp-batched": _rudp("batched"),
    "rudp-plain": _rudp("plain"),
}


@pytest.fixture(params=LOOPS)
def event_loop_policy(request: pytest.FixtureRequest) -> asyncio.AbstractEventLoopPolicy:
    if request.param == "uvloop":
        return uvloop.EventLoopPolicy()
    return asyncio.DefaultEventLoopPolicy()


@pytest.fixture(params=list(BACKENDS))
def backend(request: pytest.FixtureRequest) -> Backend:
    return BACKENDS[request.param]


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Running:
    """A server started for one test, with its port; closed at the end."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.port: int = server.sockets[0].getsockname()[1]


async def serve(backend: Backend, handler: Handler, **kwargs: Any) -> Running:
    server = await backend.start_server(handler, HOST, 0, **kwargs)
    return Running(server)


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()
    await writer.wait_closed()


def chunks(data: bytes, size: int) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def test_echo(backend: Backend) -> None:
    async with asyncio.timeout(20):
        running = await serve(backend, echo)
        reader, writer = await backend.open_connection(HOST, running.port)
        payload = os.urandom(300_000)
        writer.write(payload)
        await writer.drain()
        assert await reader.readexactly(len(payload)) == payload
        writer.close()
        await writer.wait_closed()
        running.server.close()
        await running.server.wait_closed()


async def test_reader_methods(backend: Backend) -> None:
    async def talker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"line one\nline two\nfield;rest of it")
        writer.write(b"0123456789" * 1000)
        await writer.drain()
        writer.write_eof()
        await reader.read()  # until the client closes
        writer.close()

    async with asyncio.timeout(20):
        running = await serve(backend, talker)
        reader, writer = await backend.open_connection(HOST, running.port)
        assert await reader.readline() == b"line one\n"
        assert await reader.readline() == b"line two\n"
        assert await reader.readuntil(b";") == b"field;"
        assert await reader.readexactly(10) == b"rest of it"
        rest = await reader.read(-1)
        assert rest == b"0123456789" * 1000
        assert reader.at_eof()
        assert await reader.read(100) == b""
        assert await reader.readline() == b""
        writer.close()
        await writer.wait_closed()
        running.server.close()
        await running.server.wait_closed()


async def test_incomplete_read_and_limit_overrun(backend: Backend) -> None:
    async def talker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"x" * 200 + b"\n")
        writer.write(b"short")
        await writer.drain()
        writer.write_eof()
        await reader.read()
        writer.close()

    async with asyncio.timeout(20):
        running = await serve(backend, talker)
        reader, writer = await backend.open_connection(HOST, running.port, limit=100)
        with pytest.raises(asyncio.LimitOverrunError):
            await reader.readuntil(b"\n")
        assert await reader.readexactly(201) == b"x" * 200 + b"\n"
        with pytest.raises(asyncio.IncompleteReadError) as info:
            await reader.readexactly(10)
        assert info.value.partial == b"short" and info.value.expected == 10
        writer.close()
        await writer.wait_closed()
        running.server.close()
        await running.server.wait_closed()


async def test_half_close_lets_the_other_side_answer(backend: Backend) -> None:
    async def summer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.read()  # to EOF: the client half-closed
        writer.write(hashlib.sha256(data).digest())
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    async with asyncio.timeout(20):
        running = await serve(backend, summer)
        reader, writer = await backend.open_connection(HOST, running.port)
        payload = os.urandom(1_000_000)
        assert writer.can_write_eof()
        for piece in chunks(payload, 70_000):
            writer.write(piece)
        await writer.drain()
        writer.write_eof()
        assert await reader.read() == hashlib.sha256(payload).digest()
        writer.close()
        await writer.wait_closed()
        running.server.close()
        await running.server.wait_closed()


async def test_drain_backpressure_bounds_sender_memory(backend: Backend) -> None:
    release = asyncio.Event()
    got = bytearray()

    finished = asyncio.Event()

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await release.wait()
        while data := await reader.read(65536):
            got.extend(data)
        finished.set()  # EOF: everything the client wrote has been read
        writer.close()

    async with asyncio.timeout(30):
        running = await serve(backend, slow)
        reader, writer = await backend.open_connection(HOST, running.port)
        writer.transport.set_write_buffer_limits(high=256 * 1024)
        written = 0
        stalled = False
        for _ in range(400):  # up to 400 * 64 KiB = 25 MiB if nothing pushed back
            writer.write(b"b" * 65536)
            written += 65536
            try:
                async with asyncio.timeout(0.5):
                    await writer.drain()
            except TimeoutError:
                stalled = True
                break
            # Memory held by the sender never goes past the high-water mark plus one write.
            assert writer.transport.get_write_buffer_size() <= 256 * 1024 + 65536
        # The reader is stalled, so drain() must block before everything is written: what
        # was accepted is bounded by the windows and buffers in between, not by the 25 MiB.
        assert stalled
        assert written < 20 * 1024 * 1024
        release.set()
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        await finished.wait()
        assert len(got) == written
        running.server.close()
        await running.server.wait_closed()


async def test_abort_resets_the_peer(backend: Backend) -> None:
    done: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
    greeted = asyncio.Event()

    async def victim(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.read(100)
            greeted.set()
            await reader.read(100)  # the client aborts while we wait
            writer.write(b"x" * 100)
            await writer.drain()
            await writer.wait_closed()
            done.set_result(None)
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            done.set_result(exc)

    async with asyncio.timeout(20):
        running = await serve(backend, victim)
        reader, writer = await backend.open_connection(HOST, running.port)
        writer.write(b"hello")
        await writer.drain()
        await greeted.wait()
        if backend.is_tcp:
            # asyncio's abort() just closes the socket, which sends FIN unless unread data is
            # left; TCP sends RST on close only with SO_LINGER 0. rudp's abort always resets.
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
        exc = await done
        assert isinstance(exc, ConnectionResetError), exc
        running.server.close()
        await running.server.wait_closed()


async def test_connect_to_nothing_is_refused(backend: Backend) -> None:
    # rudp learns of it from ICMP port unreachable on its connected UDP socket; where no ICMP
    # comes back the handshake times out instead (a TimeoutError subclass).
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind((HOST, 0))
    port = probe.getsockname()[1]
    probe.close()
    async with asyncio.timeout(20):
        with pytest.raises(ConnectionRefusedError):
            await backend.open_connection(HOST, port)


async def test_server_close_and_wait_closed(backend: Backend) -> None:
    async with asyncio.timeout(20):
        running = await serve(backend, echo)
        reader, writer = await backend.open_connection(HOST, running.port)
        writer.write(b"ping")
        assert await reader.readexactly(4) == b"ping"
        running.server.close()
        assert not running.server.is_serving()
        assert not running.server.sockets
        # The open connection still works after close() (asyncio semantics) ...
        writer.write(b"pong")
        assert await reader.readexactly(4) == b"pong"
        waiting = asyncio.ensure_future(running.server.wait_closed())
        await asyncio.sleep(0.05)
        if not backend.is_tcp:
            assert not waiting.done()  # ... and wait_closed() waits for it (3.12.1+ semantics)
        writer.close()
        await writer.wait_closed()
        await waiting


async def test_many_concurrent_clients_each_echo_a_mebibyte(backend: Backend) -> None:
    async def client(port: int, seed: int) -> None:
        reader, writer = await backend.open_connection(HOST, port)
        payload = seed.to_bytes(4, "big") * (1 << 18)
        received = bytearray()

        async def read_all() -> None:
            while len(received) < len(payload):
                received.extend(await reader.read(1 << 16))

        reading = asyncio.ensure_future(read_all())
        for piece in chunks(payload, 1 << 16):
            writer.write(piece)
            await writer.drain()
        await reading
        assert bytes(received) == payload
        writer.close()
        await writer.wait_closed()

    async with asyncio.timeout(120):
        running = await serve(backend, echo)
        await asyncio.gather(*(client(running.port, i) for i in range(100)))
        running.server.close()
        await running.server.wait_closed()
