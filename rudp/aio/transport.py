"""``RudpTransport``: one rudp connection as a faithful ``asyncio.Transport``.

The real ``asyncio.StreamReader``/``StreamWriter`` sit on top of it unchanged, so their
behaviour (``drain()``, ``readexactly``, half-close, ``wait_closed``) comes from asyncio itself.
Flow control maps onto the protocol: the write watermarks measure bytes not yet acknowledged by
the peer (so ``drain()`` waits for the network, not just for the kernel), and
``pause_reading()`` stops consuming, which closes the advertised window.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING, Any

from ..config import Config
from ..core.connection import Connection
from ..core.state import ConnState
from ..errors import InvalidStateError
from ..wire.packet import ResetReason

if TYPE_CHECKING:
    from .protocol import EndpointProtocol

__all__ = ["RudpTransport"]

logger = logging.getLogger("rudp.aio.transport")

# asyncio's defaults for a transport's write buffer (selector_events: 64 KiB high, high/4 low).
_DEFAULT_HIGH = 64 * 1024
# Data held while reading is paused is merged into chunks of about this size, so that a peer
# sending tiny segments costs bytes, not a Python object per segment.
_HELD_CHUNK = 64 * 1024
# States in which everything we sent, FIN included, is acknowledged.
_SEND_DONE = frozenset({ConnState.FIN_WAIT_2, ConnState.TIME_WAIT, ConnState.CLOSED})


class RudpTransport(asyncio.Transport):
    """A stream transport over one rudp connection. Created by rudp, never directly."""

    def __init__(
        self,
        endpoint: EndpointProtocol,
        conn: Connection,
        protocol: asyncio.BaseProtocol,
        *,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(extra)
        self._endpoint = endpoint
        self._loop = endpoint.loop
        self._conn = conn
        self._protocol = protocol
        self._closing = False  # close() or abort() was called
        self._aborted = False  # abort() was called, or a protocol callback raised
        self._abort_exc: Exception | None = None  # what connection_lost() reports then
        self._lost = False  # connection_lost() was called
        self._eof_written = False
        self._reading = True
        self._held: deque[bytes | bytearray] = deque()  # data received while reading is paused
        self._eof_pending = False  # EOF arrived while data is held
        self._writing_paused = False
        self._high = conn.config.send_buffer_high
        self._low = conn.config.send_buffer_low
        # Futures waiting for the peer to acknowledge the stream up to an offset, in offset
        # order (writes only append, so the offsets only grow).
        self._ack_waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    # --- asyncio.BaseTransport -----------------------------------------------------------
    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            return self._conn.peer_addr
        if name == "stats":
            return self.stats()
        if name in ("sockname", "socket"):
            return self._endpoint.io_extra(name, default)
        return super().get_extra_info(name, default)

    def stats(self) -> dict[str, Any]:
        """A snapshot of the connection's counters and its RTT and window estimates."""
        conn = self._conn
        snapshot = conn.stats.as_dict()
        snapshot.update(
            state=conn.state.value,
            srtt=conn.srtt,
            rto=conn.rtt.rto,
            cwnd=conn.cwnd,
            bytes_in_flight=conn.bytes_in_flight,
            send_buffer_size=conn.send_buffer_size,
            peer_window=conn.peer_window,
            max_payload=conn.max_payload,
        )
        return snapshot

    def is_closing(self) -> bool:
        return self._closing or self._lost

    def close(self) -> None:
        """Graceful close: queued data is delivered, then FIN; ``connection_lost(None)`` follows
        once the peer has acknowledged everything. Data received from now on is discarded."""
        if self._closing or self._lost:
            return
        self._closing = True
        self._held.clear()
        self._conn.close(now=self._endpoint.now())
        self._endpoint.transport_closing(self)
        self._endpoint.schedule_flush()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol

    # --- asyncio.ReadTransport -----------------------------------------------------------
    def is_reading(self) -> bool:
        return self._reading and not self._closing and not self._lost

    def pause_reading(self) -> None:
        """Stop delivering data; unconsumed data fills the receive buffer and the peer sees the
        window close."""
        if self._closing or self._lost:
            return
        self._reading = False

    def resume_reading(self) -> None:
        if self._closing or self._lost or self._reading:
            return
        self._reading = True
        if self._held or self._eof_pending:
            self._loop.call_soon(self._deliver_held)

    def _deliver_held(self) -> None:
        while self._held and self._reading and not self._lost:
            data = self._held.popleft()
            self._deliver(bytes(data) if isinstance(data, bytearray) else data)
        if self._reading and not self._held and self._eof_pending and not self._lost:
            self._eof_pending = False
            self._deliver_eof()

    # --- asyncio.WriteTransport ------------------------------------------------------------
    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(
                f"data argument must be a bytes-like object, not {type(data).__name__!r}"
            )
        if self._eof_written:
            raise RuntimeError("Cannot call write() after write_eof()")
        if not data:
            return
        if self._closing or self._lost:
            return  # asyncio's socket transports also drop writes after close
        self._conn.send(data)  # raises SendBufferFull past Config.send_buffer_max
        self._endpoint.schedule_flush()
        self._maybe_pause_writing()

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(list_of_data))

    def write_eof(self) -> None:
        """Half-close: FIN after the queued data; the peer can still send to us."""
        if self._eof_written or self._closing or self._lost:
            return
        self._eof_written = True
        self._conn.send_eof()
        self._endpoint.schedule_flush()

    def can_write_eof(self) -> bool:
        return True

    def abort(self) -> None:
        """Abortive close: a reset goes to the peer, buffered data is dropped, and
        ``connection_lost(None)`` is called soon."""
        self._abort(None)

    def _abort(self, exc: Exception | None, reason: ResetReason = ResetReason.ABORT) -> None:
        if self._lost:
            return
        self._closing = True
        self._aborted = True
        self._abort_exc = exc
        self._held.clear()
        self._conn.abort(now=self._endpoint.now(), reason=reason)
        self._endpoint.schedule_flush()
        self._loop.call_soon(self._connection_lost, exc)

    def _fatal_error(self, exc: Exception, message: str) -> None:
        """A protocol callback raised: report it and abort, as asyncio's transports do."""
        self._loop.call_exception_handler(
            {"message": message, "exception": exc, "transport": self, "protocol": self._protocol}
        )
        self._abort(exc)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        if high is None:
            high = _DEFAULT_HIGH if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        self._high = high
        self._low = low
        self._maybe_pause_writing()
        self.maybe_resume_writing()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._low, self._high

    def get_write_buffer_size(self) -> int:
        """Bytes written and not yet acknowledged by the peer."""
        return self._conn.send_buffer_size

    # --- beyond asyncio: unreliable datagrams, delivery confirmation, reset reasons ---------
    def send_datagram(self, data: bytes | bytearray | memoryview) -> None:
        """Send one unreliable datagram beside the stream: never retransmitted, paced by the
        congestion window. Raises ``DatagramTooLarge`` past ``max_datagram_size``,
        ``InvalidStateError`` once the transport is closing."""
        if self._closing or self._lost:
            raise InvalidStateError("cannot send a datagram on a closing transport")
        self._conn.send_datagram(data)
        self._endpoint.schedule_flush()

    @property
    def config(self) -> Config:
        """The settings of the endpoint this connection runs on."""
        return self._conn.config

    @property
    def max_datagram_size(self) -> int:
        """The largest payload ``send_datagram`` takes (one full-sized packet)."""
        return self._conn.max_datagram_payload

    @property
    def bytes_written(self) -> int:
        """Stream bytes written since the connection began (an offset for ``wait_acked``)."""
        return self._conn.bytes_written

    @property
    def bytes_acked(self) -> int:
        """Stream bytes the peer's transport has acknowledged."""
        return self._conn.bytes_acked

    def wait_acked(self, offset: int | None = None) -> asyncio.Future[None]:
        """A future that completes once the peer has acknowledged the stream up to ``offset``
        (default: everything written so far); it fails if the connection ends first."""
        if offset is None:
            offset = self._conn.bytes_written
        future: asyncio.Future[None] = self._loop.create_future()
        if self._conn.bytes_acked >= offset:
            future.set_result(None)
        elif self._lost:
            future.set_exception(ConnectionResetError("connection lost before acknowledgment"))
        else:
            if self._ack_waiters and self._ack_waiters[-1][0] > offset:
                waiters = sorted([*self._ack_waiters, (offset, future)], key=lambda w: w[0])
                self._ack_waiters = deque(waiters)
            else:
                self._ack_waiters.append((offset, future))
            self._endpoint.transport_awaits_ack(self)
        return future

    def check_acked(self) -> None:
        """Called by the endpoint after ACKs: complete the waiters whose bytes arrived."""
        acked = self._conn.bytes_acked
        waiters = self._ack_waiters
        while waiters and waiters[0][0] <= acked:
            _, future = waiters.popleft()
            if not future.done():
                future.set_result(None)
        if not waiters:
            self._endpoint.transport_acked_all(self)

    def reset(self, reason: ResetReason) -> None:
        """Abort, telling the peer ``reason`` in the RESET (``abort()`` sends ABORT)."""
        if self._lost:
            return
        self._abort(None, reason)

    def unreliable_received(self, data: bytes) -> None:
        """An unreliable datagram arrived: hand it to a protocol that takes them."""
        if self._closing or self._lost:
            return
        handler = getattr(self._protocol, "unreliable_received", None)
        if handler is None:
            self._conn.stats.dropped["datagram_not_taken"] += 1
            return
        try:
            handler(data)
        except Exception as exc:
            self._fatal_error(exc, "Fatal error: protocol.unreliable_received() call failed.")

    # --- flow control ----------------------------------------------------------------------
    def _maybe_pause_writing(self) -> None:
        if self._writing_paused or self._conn.send_buffer_size <= self._high:
            return
        self._writing_paused = True
        self._endpoint.transport_paused(self)
        try:
            self._protocol.pause_writing()
        except Exception:
            logger.exception("protocol.pause_writing() failed")

    def maybe_resume_writing(self) -> None:
        """Called by the endpoint after ACKs: resume the writer at the low-water mark."""
        if not self._writing_paused or self._conn.send_buffer_size > self._low:
            return
        self._writing_paused = False
        self._endpoint.transport_resumed(self)
        try:
            self._protocol.resume_writing()
        except Exception:
            logger.exception("protocol.resume_writing() failed")

    @property
    def writing_paused(self) -> bool:
        return self._writing_paused

    # --- called by the endpoint protocol ---------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self._closing or self._lost:
            self._conn.consume(len(data))
            return
        if not self._reading or self._held:
            held = self._held
            if held and len(held[-1]) + len(data) <= _HELD_CHUNK:
                last = held[-1]
                if isinstance(last, bytes):
                    last = held[-1] = bytearray(last)
                last += data
            else:
                held.append(data)
            return
        self._deliver(data)

    def _deliver(self, data: bytes) -> None:
        protocol = self._protocol
        try:
            if isinstance(protocol, asyncio.Protocol):
                protocol.data_received(data)
            else:
                self._deliver_buffered(data)
        except Exception as exc:
            self._fatal_error(exc, "Fatal error: protocol.data_received() call failed.")
            return
        if not self._lost:
            self._conn.consume(len(data))
            self._endpoint.schedule_flush()

    def _deliver_buffered(self, data: bytes) -> None:
        protocol = self._protocol
        if not isinstance(protocol, asyncio.BufferedProtocol):  # pragma: no cover - base only
            return
        view = memoryview(data)
        while view:
            buf = memoryview(protocol.get_buffer(len(view)))
            n = min(len(buf), len(view))
            buf[:n] = view[:n]
            protocol.buffer_updated(n)
            view = view[n:]

    def eof_received(self) -> None:
        if self._closing or self._lost:
            return
        if self._held or not self._reading:
            self._eof_pending = True
            return
        self._deliver_eof()

    def _deliver_eof(self) -> None:
        protocol = self._protocol
        keep_open = False
        if isinstance(protocol, asyncio.Protocol | asyncio.BufferedProtocol):
            try:
                keep_open = bool(protocol.eof_received())
            except Exception as exc:
                self._fatal_error(exc, "Fatal error: protocol.eof_received() call failed.")
                return
        if not keep_open and not self._eof_written:
            # asyncio semantics: a protocol that returns a false value from eof_received()
            # lets the transport close itself (our side sends FIN too).
            self.close()

    def send_side_done(self) -> bool:
        """True once, after close(), the peer has acknowledged all our data and the FIN."""
        return self._conn.state in _SEND_DONE or self._conn.is_terminated

    def _connection_lost(self, exc: Exception | None) -> None:
        if self._lost:
            return
        self._lost = True
        self._closing = True
        self._held.clear()
        self._endpoint.transport_gone(self)
        if self._ack_waiters:
            self.check_acked()  # the final ACK may have come with the close
            error = exc if exc is not None else ConnectionResetError("connection closed")
            for _, future in self._ack_waiters:
                if not future.done():
                    future.set_exception(error)
            self._ack_waiters.clear()
        try:
            self._protocol.connection_lost(exc)
        finally:
            self._protocol = asyncio.Protocol()

    def connection_terminated(self, exc: Exception | None) -> None:
        """The engine ended the connection (clean close, reset, timeout)."""
        self._connection_lost(self._abort_exc if self._aborted else exc)

    def __repr__(self) -> str:
        state = "closed" if self._lost else ("closing" if self._closing else "open")
        return f"<RudpTransport {state} peer={self._conn.peer_addr!r} {self._conn.state.value}>"
