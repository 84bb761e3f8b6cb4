"""Real peer processes killed with SIGKILL mid-transfer, and restarted on the same address.

The peers are ``tests/peer_process.py`` subprocesses; the side under test runs here. A killed
peer sends nothing more (no FIN, no RESET), so the survivor must find out by its own timers:
the idle timeout when it was receiving, the retransmission limit when it was sending. Either
way it ends with a ``TimeoutError`` subclass, and ``wait_closed()`` returns.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from rudp import Config, ConnectionReset, ConnectionTimeout, open_connection, start_server

ROOT = Path(__file__).resolve().parent.parent.parent
HOST = "127.0.0.1"
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")


async def _peer(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.peer_process",
        *args,
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )


async def _kill(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGKILL)
        await process.wait()


@dataclass
class Served:
    """What the server saw of one connection: bytes, how it ended, and when."""

    received: int = 0
    started: asyncio.Future[None] = field(default_factory=asyncio.Future)
    ended: asyncio.Future[tuple[BaseException | None, float]] = field(
        default_factory=asyncio.Future
    )
    closed: asyncio.Future[None] = field(default_factory=asyncio.Future)


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def _reader_server(served: asyncio.Queue[Served], *, after: int) -> Handler:
    loop = asyncio.get_running_loop()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        record = Served()
        served.put_nowait(record)
        error: BaseException | None = None
        try:
            while chunk := await reader.read(1 << 16):
                record.received += len(chunk)
                if record.received >= after and not record.started.done():
                    record.started.set_result(None)
        except Exception as exc:  # what the test asserts on
            error = exc
        record.ended.set_result((error, loop.time()))
        try:
            await asyncio.wait_for(writer.wait_closed(), 5.0)
        except Exception:
            pass  # wait_closed() raises the connection's error; returning is what matters
        record.closed.set_result(None)

    return handle


async def test_receiver_of_a_killed_sender_fails_at_the_idle_timeout() -> None:
    loop = asyncio.get_running_loop()
    config = Config(idle_timeout=2.0, time_wait=0.05)
    served: asyncio.Queue[Served] = asyncio.Queue()
    server = await start_server(_reader_server(served, after=1_000_000), HOST, 0, config=config)
    port = server.sockets[0].getsockname()[1]
    peer = await _peer("send", HOST, str(port))
    try:
        record = await asyncio.wait_for(served.get(), 20.0)
        await asyncio.wait_for(record.started, 20.0)
        await _kill(peer)
        killed = loop.time()
        error, ended = await asyncio.wait_for(record.ended, 10.0)
    finally:
        await _kill(peer)
    assert isinstance(error, ConnectionTimeout) and isinstance(error, TimeoutError)
    assert "idle timeout" in str(error)
    # The last datagram arrived just before the kill: the timeout fires idle_timeout later.
    assert 2.0 - 0.1 <= ended - killed <= 2.0 + 0.5
    await asyncio.wait_for(record.closed, 5.0)
    server.close()
    await asyncio.wait_for(server.wait_closed(), 5.0)


async def test_sender_to_a_killed_receiver_fails_at_the_retransmission_limit() -> None:
    loop = asyncio.get_running_loop()
    peer = await _peer("sink", "0")
    try:
        assert peer.stdout is not None
        port = int(await asyncio.wait_for(peer.stdout.readline(), 20.0))
        config = Config(min_rto=0.2, initial_rto=0.2, max_rto=0.8, max_retransmits=3)
        reader, writer = await open_connection(HOST, port, config=config)
        chunk = bytes(1 << 16)
        for _ in range(16):  # 1 MiB through, so the path and the RTO are warm
            writer.write(chunk)
            await writer.drain()
        await _kill(peer)
        killed = loop.time()
        with pytest.raises(ConnectionTimeout) as info:
            async with asyncio.timeout(15.0):
                while True:
                    writer.write(chunk)
                    await writer.drain()
        failed = loop.time()
    finally:
        await _kill(peer)
    assert isinstance(info.value, TimeoutError)
    assert "retransmissions" in str(info.value)
    # At most max_retransmits + 1 backed-off timeouts, each at most max_rto.
    assert failed - killed <= 4 * 0.8 + 1.0
    with pytest.raises(ConnectionTimeout):
        await asyncio.wait_for(writer.wait_closed(), 5.0)
    with pytest.raises(ConnectionTimeout):
        await reader.read()


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


async def test_a_peer_restarted_on_the_same_port_resets_the_stale_connection() -> None:
    loop = asyncio.get_running_loop()
    config = Config(idle_timeout=30.0, time_wait=0.05)  # the reset must come long before
    served: asyncio.Queue[Served] = asyncio.Queue()
    server = await start_server(_reader_server(served, after=100_000), HOST, 0, config=config)
    port = server.sockets[0].getsockname()[1]
    local = _free_udp_port()
    first = await _peer("send", HOST, str(port), "--local-port", str(local))
    second: asyncio.subprocess.Process | None = None
    try:
        stale = await asyncio.wait_for(served.get(), 20.0)
        await asyncio.wait_for(stale.started, 20.0)
        await _kill(first)  # the old connection is now half-open on the server
        killed = loop.time()
        second = await _peer("send", HOST, str(port), "--local-port", str(local))
        error, ended = await asyncio.wait_for(stale.ended, 20.0)
        fresh = await asyncio.wait_for(served.get(), 20.0)
        await asyncio.wait_for(fresh.started, 20.0)
    finally:
        await _kill(first)
        if second is not None:
            await _kill(second)
    assert isinstance(error, ConnectionReset)
    assert ended - killed < 10.0  # the restarted peer's INIT, not the 30 s idle timeout
    assert fresh.received >= 100_000 and not fresh.ended.done()
    server.abort_clients()  # the second peer is dead too: do not wait out its idle timeout
    server.close()
    await asyncio.wait_for(server.wait_closed(), 10.0)
