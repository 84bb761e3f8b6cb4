"""KCP (the PyPI ``kcp`` binding of ikcp.c) driven from an asyncio ``DatagramProtocol``.

KCP has no connection set-up, no end of stream and no flow control towards the application, so
this adapter adds the least a byte stream needs, in the way KCP applications usually do:

* message mode (KCP's default): each write becomes messages of at most :data:`CHUNK` bytes, each
  starting with a type byte, ``0`` for data or ``1`` for end of stream (``write_eof``);
* the timer is KCP's own: ``ikcp_update`` at the time ``ikcp_check`` asks for; in ``fast``
  mode the adapter also calls ``ikcp_flush`` after each write and each received datagram, so new
  data and ACKs leave at once instead of at the next interval (KCP's own advice for low latency;
  kcp-go does the same with its no-delay settings), while ``normal`` mode waits for the interval;
* ``drain()`` waits while more than twice the send window of segments are queued;
* a server makes one KCP session (conversation id 1) per client address.

KCP's retransmissions are not exposed by the binding, so the output callback parses each
datagram's segment headers and counts the payload bytes of PUSH segments: minus the bytes the
application queued, that is what KCP retransmitted. The binding swallows exceptions raised in
the output callback, so the callback only sends and counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Callable
from typing import Any

from kcp import KCP

from bench.peers import SOCKET_BUFFER, PeerSpec
from rudp.aio.udpio import set_buffer_sizes

__all__ = ["KcpStream", "connect", "settings", "start_server"]

CONV = 1
CHUNK = 32 * 1024  # payload bytes per KCP message (< 128 fragments of the MSS)
MTU = 1400  # KCP's default
DATA, END = b"\x00", b"\x01"
LINGER = 5.0  # seconds a closed session keeps running to deliver what is queued
_HEADER = struct.Struct("<IBBHIIII")  # conv cmd frg wnd ts sn una len (ikcp.c)
_CMD_PUSH = 81

# name: (nodelay, interval ms, fast resend, no congestion window, send window, receive window)
PRESETS: dict[str, tuple[bool, int, int, bool, int, int]] = {
    # KCP's README "turbo" mode, with large windows.
    "fast": (True, 10, 2, True, 1024, 1024),
    # KCP's README "normal" mode, with the binding's default windows.
    "normal": (False, 40, 0, False, 32, 128),
}


class KcpStream:
    """One KCP session as a ``bench.peers.Stream``."""

    def __init__(
        self,
        spec: PeerSpec,
        send: Callable[[bytes], None],
        on_close: Callable[[], None] | None = None,
    ) -> None:
        nodelay, interval, resend, nocwnd, snd_wnd, rcv_wnd = PRESETS[spec.variant]
        self._kcp = KCP(
            CONV,
            max_transmission=MTU,
            no_delay=nodelay,
            update_interval=interval,
            resend_count=resend,
            no_congestion_control=nocwnd,
            send_window_size=snd_wnd,
            receive_window_size=rcv_wnd,
        )
        self._send = send
        self._on_close = on_close
        self._eager = spec.variant == "fast"
        self._kcp.include_outbound_handler(self._output)
        self._queue_limit = 2 * snd_wnd
        self._loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = None
        self._buffer = bytearray()
        self._eof = False
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()
        self._closed = False
        self._eof_sent = False
        self.counters = {
            "datagrams_sent": 0,
            "bytes_sent": 0,
            "datagrams_received": 0,
            "push_payload_bytes_sent": 0,
            "app_bytes_queued": 0,
        }
        self._schedule(0.0)

    # --- KCP plumbing ---------------------------------------------------------------------

    def _output(self, _kcp: Any, data: bytes) -> None:
        counters = self.counters
        counters["datagrams_sent"] += 1
        counters["bytes_sent"] += len(data)
        offset = 0
        size = len(data)
        while offset + 24 <= size:
            _conv, cmd, _frg, _wnd, _ts, _sn, _una, length = _HEADER.unpack_from(data, offset)
            if cmd == _CMD_PUSH:
                counters["push_payload_bytes_sent"] += length
            offset += 24 + length
        self._send(data)

    def _schedule(self, delay_s: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_later(delay_s, self._tick)

    def _tick(self) -> None:
        self._timer = None
        self._kcp.update()
        self._after_io()
        self._schedule(max(self._kcp.update_check(), 1) / 1000)

    def _after_io(self) -> None:
        if self._kcp.get_outbound_packets() <= self._queue_limit:
            self._writable.set()

    def datagram(self, data: bytes) -> None:
        self.counters["datagrams_received"] += 1
        try:
            self._kcp.receive(data)
        except Exception:  # a stray or truncated datagram: KCP refuses it
            return
        for message in self._kcp.get_all_received():
            if message[:1] == END:
                self._eof = True
            else:
                self._buffer += memoryview(message)[1:]
            self._readable.set()
        if self._eager:
            self._kcp.flush()
        self._after_io()

    def _enqueue(self, message: bytes) -> None:
        self._kcp.enqueue(message)
        self.counters["app_bytes_queued"] += len(message)
        if self._timer is None:
            self._schedule(0.0)

    # --- Stream -------------------------------------------------------------------------------

    async def read(self, n: int) -> bytes:
        while not self._buffer and not self._eof:
            self._readable.clear()
            await self._readable.wait()
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data

    async def readexactly(self, n: int) -> bytes:
        while len(self._buffer) < n:
            if self._eof:
                raise asyncio.IncompleteReadError(bytes(self._buffer), n)
            self._readable.clear()
            await self._readable.wait()
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        for start in range(0, len(view), CHUNK):
            self._enqueue(DATA + view[start : start + CHUNK].tobytes())
        if self._eager:
            self._kcp.flush()

    async def drain(self) -> None:
        while self._kcp.get_outbound_packets() > self._queue_limit:
            self._writable.clear()
            await self._writable.wait()

    def write_eof(self) -> None:
        if not self._eof_sent:
            self._eof_sent = True
            self._enqueue(END)
            if self._eager:
                self._kcp.flush()

    async def close(self) -> None:
        """Keep KCP running until what is queued was acknowledged (at most ``LINGER`` s)."""
        if self._closed:
            return
        self._closed = True
        self.write_eof()  # a close ends the stream, as a FIN does
        deadline = self._loop.time() + LINGER
        while self._kcp.get_outbound_packets() > 0 and self._loop.time() < deadline:
            self._writable.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._writable.wait(), 0.05)
        # A little longer, so that our last ACKs reach the peer.
        await asyncio.sleep(0.1)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._on_close is not None:
            self._on_close()

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.counters)
        out["bytes_retransmitted"] = max(
            0, out["push_payload_bytes_sent"] - out["app_bytes_queued"]
        )
        return out


class _ClientProtocol(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.stream: KcpStream | None = None

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if self.stream is not None:
            self.stream.datagram(data)


class _ServerProtocol(asyncio.DatagramProtocol):
    def __init__(self, spec: PeerSpec, handler: Any) -> None:
        self._spec = spec
        self._handler = handler
        self._transport: asyncio.DatagramTransport | None = None
        self.sessions: dict[Any, KcpStream] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        stream = self.sessions.get(addr)
        if stream is None:
            transport = self._transport
            assert transport is not None
            stream = KcpStream(self._spec, lambda d, a=addr: transport.sendto(d, a))
            self.sessions[addr] = stream
            task = asyncio.ensure_future(self._handler(stream))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        stream.datagram(data)


class _Server:
    def __init__(self, transport: asyncio.DatagramTransport) -> None:
        self._transport = transport
        self.port: int = transport.get_extra_info("sockname")[1]

    async def close(self) -> None:
        self._transport.close()


async def start_server(spec: PeerSpec, host: str, port: int, handler: Any) -> _Server:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _ServerProtocol(spec, handler), local_addr=(host, port)
    )
    set_buffer_sizes(transport.get_extra_info("socket"), SOCKET_BUFFER)
    return _Server(transport)


async def connect(spec: PeerSpec, host: str, port: int) -> KcpStream:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        _ClientProtocol, remote_addr=(host, port)
    )
    set_buffer_sizes(transport.get_extra_info("socket"), SOCKET_BUFFER)
    stream = KcpStream(spec, transport.sendto, on_close=transport.close)
    protocol.stream = stream
    return stream


def settings(spec: PeerSpec) -> dict[str, Any]:
    nodelay, interval, resend, nocwnd, snd_wnd, rcv_wnd = PRESETS[spec.variant]
    return {
        "transport": "KCP (PyPI kcp 0.1.6, ikcp.c), message mode, asyncio DatagramProtocol",
        "nodelay": nodelay,
        "interval_ms": interval,
        "flush_after_write_and_input": spec.variant == "fast",
        "fast_resend": resend,
        "no_congestion_window": nocwnd,
        "send_window": snd_wnd,
        "receive_window": rcv_wnd,
        "mtu": MTU,
    }
