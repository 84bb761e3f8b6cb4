"""The message API: whole messages in, whole messages out, over one rudp connection.

A byte stream has no boundaries; here every message carries a varint length prefix
(``rudp.wire.framing``), so one ``send`` is one ``recv`` however the network split or merged
the bytes. Python objects travel as msgpack with explicit limits; raw ``bytes`` messages and
unreliable datagrams (``send_datagram``) share the same connection.

    conn = await rudp.messages.connect("127.0.0.1", port)
    await conn.send({"op": "hello", "blob": b"\\x00\\x01"})
    reply = await conn.recv()

Memory is bounded on both sides: ``send`` waits while the send buffer is above its high-water
mark, and a receiver that stops calling ``recv`` stops reading, so the peer's window closes.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgpack

from .aio.impairment import Impairment
from .aio.loop import create_connection, create_server
from .aio.server import Server
from .aio.transport import RudpTransport
from .config import Config
from .errors import (
    ConcurrencyError,
    ConnectionClosed,
    MessageDecodeError,
    MessageTooLarge,
    RemoteProtocolError,
)
from .wire.framing import MAX_PREFIX_SIZE, FrameDecoder, MessageTooLargeError, encode_prefix
from .wire.packet import ResetReason

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "MessageConnection",
    "MessageHandler",
    "connect",
    "serve",
]

logger = logging.getLogger("rudp.messages")

DEFAULT_MAX_MESSAGE_SIZE = 16 * 1024 * 1024
# Large messages are written in pieces, waiting for the send buffer in between.
_WRITE_CHUNK = 256 * 1024
# Messages up to this size are joined to their prefix and written at once; larger ones are
# written after it, uncopied.
_JOIN_BELOW = 4096

MessageHandler = Callable[["MessageConnection"], Awaitable[None]]


def _packb(obj: Any) -> bytes:
    try:
        packed: bytes = msgpack.packb(obj, use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as exc:
        raise TypeError(f"cannot encode {type(obj).__name__} as msgpack: {exc}") from exc
    return packed


class MessageConnection:
    """One connection carrying messages. Made by ``connect`` and ``serve``, never directly."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        datagram_queue: int | None = None,
    ) -> None:
        if max_message_size < 0:
            raise ValueError(f"max_message_size must be >= 0, not {max_message_size}")
        if datagram_queue is not None and datagram_queue < 1:
            raise ValueError(f"datagram_queue must be >= 1, not {datagram_queue}")
        self._loop = loop
        self._max = max_message_size
        self._transport: RudpTransport | None = None
        self._decoder = FrameDecoder(max_message_size)
        self._inbox: deque[bytes] = deque()
        self._inbox_bytes = 0
        self._inbox_high = 1 << 20  # set from the config once connected
        self._buffer_max = 1 << 26  # the send buffer's hard bound, likewise
        # A small message written while writing is not paused cannot pass the hard bound
        # (the buffer is then at most the high-water mark), unless the two nearly meet.
        self._small_fits = True
        self._reading_paused = False
        # The one coroutine waiting in recv*/recv_datagram, per queue.
        self._waiters: dict[str, asyncio.Future[None] | None] = {"message": None, "datagram": None}
        self._read_closed: ConnectionClosed | None = None  # why nothing more will arrive
        self._datagrams: deque[bytes] = deque()
        self._datagram_limit = datagram_queue
        self._writable = asyncio.Event()
        self._writable.set()
        self._send_lock = asyncio.Lock()
        self._senders_waiting = 0  # sends in the slow path: later sends queue behind them
        self._closing = False  # close() or abort() was called: new sends are refused
        self._close_sent = False  # the transport was told to close
        self._aborted = False  # abort() was called: the end is not a clean one
        self._lost: Exception | None = None
        self._lost_clean = False
        self._closed: asyncio.Future[None] = loop.create_future()
        self.messages_sent = 0
        self.messages_received = 0
        self.datagrams_sent = 0
        self.datagrams_received = 0
        self.datagrams_dropped = 0  # pushed out of the full receive queue

    # --- the protocol side (called by _MessageProtocol) ---------------------------------------
    def _attach(self, transport: RudpTransport) -> None:
        self._transport = transport
        config = transport.config
        self._inbox_high = config.recv_buffer_size
        self._buffer_max = config.send_buffer_max
        self._small_fits = (
            config.send_buffer_high + _JOIN_BELOW + MAX_PREFIX_SIZE <= config.send_buffer_max
        )
        if self._datagram_limit is None:
            self._datagram_limit = config.datagram_recv_queue

    def _on_data(self, data: bytes) -> None:
        decoder = self._decoder
        frames = decoder.feed(data)
        if frames:
            self._inbox.extend(frames)
            for frame in frames:
                self._inbox_bytes += len(frame)
            self._wake(self._waiters["message"])
            if self._inbox_bytes > self._inbox_high and not self._reading_paused:
                self._reading_paused = True
                if self._transport is not None:
                    self._transport.pause_reading()
        error = decoder.error
        if error is not None and self._read_closed is None:
            reason = (
                ResetReason.MESSAGE_TOO_LARGE
                if isinstance(error, MessageTooLargeError)
                else ResetReason.MALFORMED_FRAME
            )
            self._close_reading(
                f"connection ended: the peer broke the message framing ({error})",
                clean=False,
                cause=RemoteProtocolError(str(error)),
            )
            if self._transport is not None:
                self._transport.reset(reason)

    def _on_eof(self) -> None:
        error = self._decoder.eof()
        if error is not None:
            self._close_reading(
                f"connection ended inside a message ({error})",
                clean=False,
                cause=RemoteProtocolError(str(error)),
            )
        else:
            self._close_reading("the peer closed the connection", clean=True)

    def _on_datagram(self, data: bytes) -> None:
        if len(self._datagrams) >= (self._datagram_limit or 1):
            self._datagrams.popleft()
            self.datagrams_dropped += 1
        self._datagrams.append(data)
        self.datagrams_received += 1
        self._wake(self._waiters["datagram"])

    def _on_lost(self, exc: Exception | None) -> None:
        self._lost = exc
        # A local abort, or a reset we sent for a framing error, reports exc=None, yet the
        # end was not clean: messages may have been dropped on either side.
        self._lost_clean = (
            exc is None
            and not self._aborted
            and (self._read_closed is None or self._read_closed.clean)
        )
        if exc is None and self._aborted:
            self._close_reading("the connection was aborted", clean=False)
        elif exc is None:
            self._close_reading("the connection is closed", clean=True)
        else:
            self._close_reading(f"connection lost: {exc}", clean=False, cause=exc)
        self._writable.set()  # wake blocked senders: they will see the connection closed
        self._wake(self._waiters["datagram"])
        if not self._closed.done():
            self._closed.set_result(None)

    def _on_writing(self, paused: bool) -> None:
        if paused:
            self._writable.clear()
        else:
            self._writable.set()

    def _close_reading(
        self, message: str, *, clean: bool, cause: BaseException | None = None
    ) -> None:
        if self._read_closed is not None:
            return
        closed = ConnectionClosed(message, clean=clean)
        closed.__cause__ = cause
        self._read_closed = closed
        self._wake(self._waiters["message"])
        self._wake(self._waiters["datagram"])

    @staticmethod
    def _wake(waiter: asyncio.Future[None] | None) -> None:
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # --- receiving ------------------------------------------------------------------------------
    async def _wait_for_item(self, queue: deque[bytes], kind: str) -> None:
        """Return once ``queue`` holds an item; ``ConnectionClosed`` once none will come,
        ``ConcurrencyError`` if another coroutine already waits on it."""
        if self._waiters[kind] is not None:
            raise ConcurrencyError(f"another coroutine is already waiting for a {kind}")
        while not queue:
            if self._read_closed is not None:
                raise self._closed_error(self._read_closed)
            waiter = self._loop.create_future()
            self._waiters[kind] = waiter
            try:
                await waiter
            finally:
                self._waiters[kind] = None

    async def recv_bytes(self) -> bytes:
        """The next message as bytes. Raises ``ConnectionClosed`` once the peer closed and
        every message before the close was received; ``ConcurrencyError`` if another
        coroutine is already waiting in ``recv``/``recv_bytes``."""
        await self._wait_for_item(self._inbox, "message")
        frame = self._inbox.popleft()
        self._inbox_bytes -= len(frame)
        self.messages_received += 1
        if self._reading_paused and self._inbox_bytes <= self._inbox_high // 2:
            self._reading_paused = False
            if self._transport is not None:
                self._transport.resume_reading()
        return frame

    async def recv(self) -> Any:
        """The next message, decoded from msgpack (``bytes`` stay bytes, ``str`` stay str;
        tuples arrive as lists). ``MessageDecodeError`` if it is not valid msgpack or breaks
        a limit; the connection stays usable."""
        frame = await self.recv_bytes()
        limit = len(frame)
        try:
            return msgpack.unpackb(
                frame,
                raw=False,
                strict_map_key=False,
                max_str_len=limit,
                max_bin_len=limit,
                max_array_len=limit,
                max_map_len=limit // 2,
                max_ext_len=limit,
            )
        except (ValueError, TypeError, msgpack.UnpackException) as exc:
            raise MessageDecodeError(
                f"message of {len(frame)} bytes is not valid msgpack: {exc}"
            ) from exc

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        """Messages until the peer closes cleanly; an unclean end raises."""
        try:
            return await self.recv()
        except ConnectionClosed as exc:
            if exc.clean:
                raise StopAsyncIteration from None
            raise

    @staticmethod
    def _closed_error(template: ConnectionClosed) -> ConnectionClosed:
        error = ConnectionClosed(str(template), clean=template.clean)
        error.__cause__ = template.__cause__
        return error

    # --- sending --------------------------------------------------------------------------------
    async def send(self, obj: Any, *, wait_acked: bool = False) -> None:
        """Send ``obj`` as one msgpack message. ``TypeError`` (before anything is sent) if
        msgpack cannot encode it; with ``wait_acked`` return once the peer's transport has
        acknowledged every byte of it."""
        await self.send_bytes(_packb(obj), wait_acked=wait_acked)

    async def send_bytes(
        self, data: bytes | bytearray | memoryview, *, wait_acked: bool = False
    ) -> None:
        """Send ``data`` as one message. Waits while the send buffer is above its high-water
        mark; ``MessageTooLarge`` (nothing sent) above ``max_message_size``."""
        if type(data) is bytes:
            size = len(data)
        elif isinstance(data, bytes | bytearray | memoryview):
            size = memoryview(data).nbytes
        else:
            raise TypeError(f"data must be bytes-like, not {type(data).__name__}")
        if size > self._max:
            raise MessageTooLarge(f"message of {size} bytes exceeds max_message_size={self._max}")
        transport = self._writable_transport()
        if self._closing:
            raise ConnectionClosed("the connection is closing", clean=True)
        prefix = encode_prefix(size)
        if (
            not self._senders_waiting
            and self._writable.is_set()
            and size <= _WRITE_CHUNK
            and (
                self._small_fits
                if size <= _JOIN_BELOW
                else transport.get_write_buffer_size() + size + len(prefix) <= self._buffer_max
            )
        ):
            # The common case: no send queued ahead and room in the buffer, one step.
            if size <= _JOIN_BELOW:
                transport.write(prefix + bytes(data))
            else:
                transport.write(prefix)
                transport.write(data)
        else:
            # Sends leave in call order: the lock queues them first come, first served. A
            # send that got this far is delivered even if close() is called meanwhile (close
            # queues behind it); only a lost connection stops it.
            self._senders_waiting += 1
            try:
                async with self._send_lock:
                    await self._wait_writable()
                    transport = self._writable_transport()
                    await self._write_framed(transport, prefix, memoryview(data).cast("B"))
            finally:
                self._senders_waiting -= 1
        self.messages_sent += 1
        if wait_acked:
            await self._wait_acked(transport, transport.bytes_written)

    async def _wait_acked(self, transport: RudpTransport, offset: int) -> None:
        """Wait until the peer acknowledged the stream up to ``offset``; a connection that
        ends first raises ``ConnectionClosed``."""
        try:
            await transport.wait_acked(offset)
        except (ConnectionError, TimeoutError) as exc:
            closed = ConnectionClosed(
                f"connection lost before the peer acknowledged the message: {exc}", clean=False
            )
            raise closed from exc

    async def _write_framed(
        self, transport: RudpTransport, prefix: bytes, view: memoryview
    ) -> None:
        """Write ``prefix`` and ``view`` a piece at a time, waiting between pieces for the
        buffer to drain below its high-water mark, and before each for room under its hard
        bound (``send_buffer_max``). Interrupted after the prefix (cancelled, or the connection
        failed), the stream would hold half a message, so the connection is reset."""
        step = min(_WRITE_CHUNK, max(1, (self._buffer_max - len(prefix)) // 2))
        started = False
        try:
            for start in range(0, len(view) or 1, step):
                piece = view[start : start + step]
                if start:
                    await self._wait_writable()
                    transport = self._writable_transport()
                head = b"" if started else prefix
                over = transport.get_write_buffer_size() + len(head) + len(piece)
                over -= self._buffer_max
                if over > 0:  # wait for the acknowledgements that make room
                    await self._wait_acked(transport, transport.bytes_acked + over)
                    transport = self._writable_transport()
                if not started:
                    transport.write(prefix)
                    started = True
                transport.write(piece)
        except BaseException:
            if started:
                self.abort()
            raise

    async def _wait_writable(self) -> None:
        while not self._writable.is_set():
            await self._writable.wait()

    def _writable_transport(self) -> RudpTransport:
        """The transport while it takes writes; ``ConnectionClosed`` once it does not."""
        transport = self._transport
        if self._lost is not None or self._closed.done():
            closed = ConnectionClosed("the connection is closed", clean=self._lost_clean)
            closed.__cause__ = self._lost
            raise closed
        if transport is None or transport.is_closing():
            raise ConnectionClosed("the connection is closing", clean=not self._aborted)
        return transport

    # --- unreliable datagrams -------------------------------------------------------------------
    def send_datagram(self, data: bytes | bytearray | memoryview) -> None:
        """Send one unreliable datagram: at most once, never retransmitted, within the
        congestion window. ``DatagramTooLarge`` if it does not fit one packet."""
        transport = self._writable_transport()
        if self._closing:
            raise ConnectionClosed("the connection is closing", clean=True)
        transport.send_datagram(data)
        self.datagrams_sent += 1

    async def recv_datagram(self) -> bytes:
        """The next unreliable datagram. When the application falls behind, the queue keeps
        the newest ``datagram_queue`` and counts the rest in ``datagrams_dropped``."""
        await self._wait_for_item(self._datagrams, "datagram")
        return self._datagrams.popleft()

    @property
    def max_datagram_size(self) -> int:
        """The largest payload ``send_datagram`` accepts."""
        if self._transport is None:
            raise ConnectionClosed("not connected", clean=False)
        return self._transport.max_datagram_size

    # --- closing and introspection --------------------------------------------------------------
    async def close(self) -> None:
        """Graceful close: messages already sent (including those still waiting for room in
        the send buffer) are delivered, then FIN; returns once the peer has acknowledged
        everything (or the connection failed). Sends made after ``close()`` raise
        ``ConnectionClosed``. Cancelled, it leaves the connection open; call ``abort()``."""
        self._closing = True
        transport = self._transport
        if transport is not None and not self._close_sent:
            async with self._send_lock:  # sends queued before close() go first
                if not self._close_sent:
                    self._close_sent = True
                    transport.close()
        await self.wait_closed()

    def abort(self) -> None:
        """Reset the connection now; unsent and undelivered messages are dropped, and a
        ``recv`` waiting here raises ``ConnectionClosed(clean=False)``."""
        self._closing = True
        if self._transport is not None and self._lost is None and not self._closed.done():
            self._aborted = True
            self._transport.abort()

    async def wait_closed(self) -> None:
        """Wait until the connection is closed (by either side, cleanly or not)."""
        await asyncio.shield(self._closed)

    @property
    def is_closing(self) -> bool:
        return self._closing or self._closed.done()

    @property
    def peername(self) -> Any:
        return self._transport.get_extra_info("peername") if self._transport else None

    @property
    def sockname(self) -> Any:
        return self._transport.get_extra_info("sockname") if self._transport else None

    @property
    def transport(self) -> RudpTransport | None:
        return self._transport

    @property
    def stats(self) -> dict[str, Any]:
        """The transport's counters (RTT, cwnd, retransmissions ...) and the message counts."""
        snapshot = self._transport.stats() if self._transport is not None else {}
        snapshot.update(
            messages_sent=self.messages_sent,
            messages_received=self.messages_received,
            messages_queued=len(self._inbox),
            unreliable_queue_dropped=self.datagrams_dropped,
        )
        return snapshot

    def __repr__(self) -> str:
        state = "closed" if self._closed.done() else ("closing" if self._closing else "open")
        return f"<MessageConnection {state} peer={self.peername!r}>"


class _MessageProtocol(asyncio.Protocol):
    """Feeds a ``RudpTransport``'s callbacks into a ``MessageConnection``."""

    def __init__(
        self,
        conn: MessageConnection,
        on_connected: Callable[[MessageConnection], None] | None = None,
    ) -> None:
        self.conn = conn
        self._on_connected = on_connected

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, RudpTransport)
        self.conn._attach(transport)
        if self._on_connected is not None:
            self._on_connected(self.conn)

    def data_received(self, data: bytes) -> None:
        self.conn._on_data(data)

    def eof_received(self) -> bool:
        self.conn._on_eof()
        return True  # half-close: we may still send; close() sends our FIN

    def unreliable_received(self, data: bytes) -> None:
        self.conn._on_datagram(data)

    def pause_writing(self) -> None:
        self.conn._on_writing(True)

    def resume_writing(self) -> None:
        self.conn._on_writing(False)

    def connection_lost(self, exc: Exception | None) -> None:
        self.conn._on_lost(exc)


async def connect(
    host: str | None = None,
    port: int | None = None,
    *,
    config: Config | None = None,
    impairment: Impairment | None = None,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    datagram_queue: int | None = None,
    handshake_timeout: float | None = None,
    local_addr: tuple[Any, ...] | None = None,
    family: int = 0,
) -> MessageConnection:
    """Connect to a ``serve`` server; returns the connected ``MessageConnection``."""
    loop = asyncio.get_running_loop()
    conn = MessageConnection(loop, max_message_size=max_message_size, datagram_queue=datagram_queue)
    await create_connection(
        lambda: _MessageProtocol(conn),
        host,
        port,
        config=config,
        impairment=impairment,
        handshake_timeout=handshake_timeout,
        local_addr=local_addr,
        family=family,
    )
    return conn


async def serve(
    handler: MessageHandler,
    host: str | None = None,
    port: int | None = None,
    *,
    config: Config | None = None,
    impairment: Impairment | None = None,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    datagram_queue: int | None = None,
    family: int = 0,
    backlog: int | None = None,
    reuse_port: bool = False,
    start_serving: bool = True,
) -> Server:
    """Serve message connections on ``host:port``. ``handler(conn)`` runs as a task per
    connection; when it returns the connection is closed gracefully, and when it raises the
    error is logged (the loop's exception handler) and the connection reset."""
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[None]] = set()

    async def run(conn: MessageConnection) -> None:
        try:
            await handler(conn)
        except asyncio.CancelledError:
            conn.abort()
            raise
        except Exception as exc:
            loop.call_exception_handler(
                {"message": "rudp.messages handler failed", "exception": exc, "conn": conn}
            )
            conn.abort()
            return
        await conn.close()

    def start(conn: MessageConnection) -> None:
        task = loop.create_task(run(conn))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def factory() -> _MessageProtocol:
        conn = MessageConnection(
            loop, max_message_size=max_message_size, datagram_queue=datagram_queue
        )
        return _MessageProtocol(conn, start)

    return await create_server(
        factory,
        host,
        port,
        config=config,
        impairment=impairment,
        family=family,
        backlog=backlog,
        reuse_port=reuse_port,
        start_serving=start_serving,
    )
