"""Kernel TCP through asyncio streams, with the congestion control set per socket.

This machine's default is BBR and a namespace cannot switch its default to CUBIC, so the
controller is set with ``TCP_CONGESTION`` on every socket (the listening socket passes it to the
accepted ones) and read back: :func:`tcp_info` reports what actually ran.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Any

from bench.peers import SOCKET_BUFFER, PeerSpec
from bench.peers.streams import AsyncioStream
from rudp.aio.udpio import set_buffer_sizes

__all__ = ["connect", "settings", "start_server", "tcp_info"]

# struct tcp_info (linux/tcp.h) offsets of the fields reported; the struct only grows.
_TCP_INFO_LEN = 232
TCP_NOTSENT_LOWAT = getattr(socket, "TCP_NOTSENT_LOWAT", 25)  # linux/tcp.h
NOTSENT_LOWAT = 256 * 1024
"""Unsent bytes above which the socket stops being writable, so ``drain()`` waits: without it
the 8 MiB send buffer would hold many seconds of data on a slow path, and a time-capped run
would go on long after its cap (rudp and aioquic bound their send buffers likewise)."""
_U32 = struct.Struct("=I")
_U64 = struct.Struct("=Q")
_FIELDS_U32 = {"rtt_us": 68, "snd_cwnd": 80, "total_retrans": 100}
_FIELDS_U64 = {"bytes_acked": 120, "bytes_received": 128, "bytes_sent": 200, "bytes_retrans": 208}


def tcp_info(sock: socket.socket) -> dict[str, Any]:
    """The congestion control in use and a few TCP_INFO counters of ``sock``."""
    raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_LEN)
    out: dict[str, Any] = {
        "congestion_control": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16)
        .rstrip(b"\0")
        .decode()
    }
    for name, offset in _FIELDS_U32.items():
        if len(raw) >= offset + 4:
            out[name] = _U32.unpack_from(raw, offset)[0]
    for name, offset in _FIELDS_U64.items():
        if len(raw) >= offset + 8:
            out[name] = _U64.unpack_from(raw, offset)[0]
    return out


def _socket(spec: PeerSpec) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, spec.variant.encode())
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.IPPROTO_TCP, TCP_NOTSENT_LOWAT, NOTSENT_LOWAT)
    set_buffer_sizes(sock, SOCKET_BUFFER)
    return sock


def _stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> AsyncioStream:
    sock: socket.socket = writer.get_extra_info("socket")
    return AsyncioStream(reader, writer, stats_fn=lambda: tcp_info(sock))


class _Server:
    def __init__(self, server: asyncio.Server) -> None:
        self._server = server
        self.port: int = server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        self._server.close()
        await asyncio.wait_for(self._server.wait_closed(), 10.0)


async def start_server(spec: PeerSpec, host: str, port: int, handler: Any) -> _Server:
    sock = _socket(spec)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(4096)
    sock.setblocking(False)

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await handler(_stream(reader, writer))

    server = await asyncio.start_server(on_connection, sock=sock, limit=1 << 20)
    return _Server(server)


async def connect(spec: PeerSpec, host: str, port: int) -> AsyncioStream:
    sock = _socket(spec)
    sock.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(sock, (host, port))
    except BaseException:
        sock.close()
        raise
    reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 20)
    return _stream(reader, writer)


def settings(spec: PeerSpec) -> dict[str, Any]:
    return {
        "transport": "kernel TCP, asyncio streams",
        "congestion_control": spec.variant + " (TCP_CONGESTION per socket)",
        "TCP_NODELAY": True,
        "TCP_NOTSENT_LOWAT": NOTSENT_LOWAT,
    }
