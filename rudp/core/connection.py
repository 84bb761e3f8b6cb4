"""One reliable connection, sans-I/O: the coordinator of the send and receive sides.

Inputs come from the owning ``Endpoint`` (datagrams, timers) and from the application
(``send``, ``send_eof``, ``close``, ``abort``, ``consume``); every input that depends on time
takes ``now``. Output is pulled: the endpoint drains datagrams with ``flush`` and events with
``next_event``; ``get_timer`` folds every deadline (handshake, RTO, delayed ACK, persist,
keepalive, idle, FIN_WAIT_2, TIME_WAIT) into one.
"""

from __future__ import annotations

from ..errors import (
    ConnectionRefused,
    ConnectionReset,
    DatagramTooLarge,
    InvalidStateError,
    SendBufferFull,
)
from ..wire.packet import (
    ResetReason,
)
from .conn_base import DATA_MARK, Addr, reason_name
from .conn_transmit import TransmitLayer
from .events import (
    DatagramReceived,
    DataReceived,
    Event,
)
from .state import SENDABLE, SYNCHRONIZED, ConnState, Trigger

__all__ = ["Addr", "Connection"]

# Lingering after our FIN was acknowledged: the peer may be gone, send nothing new.
_NO_DATAGRAMS = frozenset({ConnState.FIN_WAIT_2, ConnState.TIME_WAIT, ConnState.CLOSED})


class Connection(TransmitLayer):
    """The sans-I/O engine of one connection. Created by ``Endpoint``, never directly."""

    # --- application calls -------------------------------------------------------------
    def send(self, data: bytes | bytearray | memoryview) -> None:
        """Queue bytes for the peer. Raises ``InvalidStateError`` once the sending side is
        closed, ``SendBufferFull`` past ``Config.send_buffer_max``."""
        if self._sm.state not in SENDABLE or self._sb.fin_queued:
            raise InvalidStateError(f"cannot send in state {self._sm.state.value}")
        if isinstance(data, memoryview) and (data.itemsize != 1 or data.ndim != 1):
            # Sequence numbers count bytes: view wide items as the bytes they are.
            data = data.cast("B") if data.c_contiguous else data.tobytes()
        if not data:
            return
        sb = self._sb
        if sb.size + len(data) > self.config.send_buffer_max:
            raise SendBufferFull(
                f"send buffer holds {sb.size} bytes; {len(data)} more exceed "
                f"send_buffer_max={self.config.send_buffer_max}"
            )
        sb.write(data)
        if sb.size > self.config.send_buffer_high:
            self._write_paused = True
        self._owner._mark_dirty(self)

    def send_datagram(self, data: bytes | bytearray | memoryview) -> None:
        """Queue one unreliable datagram: sent once, when the congestion window has room, never
        retransmitted. Raises ``DatagramTooLarge`` past ``max_datagram_payload`` and
        ``InvalidStateError`` before the handshake completes or after close/abort."""
        if self._terminated or self._app_closed or not self._synchronized:
            raise InvalidStateError(f"cannot send a datagram in state {self._sm.state.value}")
        if self._sm.state in _NO_DATAGRAMS:
            raise InvalidStateError(f"cannot send a datagram in state {self._sm.state.value}")
        limit = self.max_datagram_payload
        if len(data) > limit:
            raise DatagramTooLarge(len(data), limit)
        if self._dg.enqueue(bytes(data)):
            self.stats.unreliable_send_dropped += 1
        self._owner._mark_dirty(self)

    def send_eof(self) -> None:
        """Half-close: send FIN after the queued data; data from the peer still arrives."""
        state = self._sm.state
        if self._sb.fin_queued:
            return
        if state not in SENDABLE:
            raise InvalidStateError(f"cannot send EOF in state {state.value}")
        self._sb.queue_fin()
        self._transition(Trigger.SEND_FIN)
        self._owner._mark_dirty(self)

    def close(self, *, now: float) -> None:
        """Graceful close: FIN after the queued data; later incoming data is discarded."""
        if self._app_closed or self._terminated:
            self._app_closed = True
            return
        self._app_closed = True
        state = self._sm.state
        if state is ConnState.INIT_SENT:
            self._fail(
                ConnectionReset("connection closed before it was established"), "closed", now
            )
            return
        if self._rb is not None:
            pending = self._rb.take_ready()
            if pending:
                self._rb.consume(len(pending))
        if not self._sb.fin_queued and state in SENDABLE:
            self.send_eof()
        if self._sm.state is ConnState.FIN_WAIT_2:
            self._close_deadline = now + self.config.fin_wait2_timeout
        self._owner._mark_dirty(self)

    def abort(self, *, now: float, reason: ResetReason = ResetReason.ABORT) -> None:
        """Abortive close: send RESET and drop everything (``SO_LINGER`` 0). ``reason`` tells
        the peer why (a layer above that found the peer's stream unusable passes its own)."""
        if self._terminated:
            return
        if self._sm.state in SYNCHRONIZED:
            self._queue_reset(reason)
        detail = "" if reason is ResetReason.ABORT else f" ({reason_name(reason)})"
        self._fail(ConnectionReset(f"connection aborted{detail}"), "aborted", now)

    def peer_unreachable(self, *, now: float) -> None:
        """The network reported the peer unreachable (ICMP port unreachable). Fatal only while
        the handshake is unconfirmed; afterwards it is a soft error that retransmission rides
        out (RFC 1122 §4.2.3.9)."""
        if self._terminated:
            return
        if self._sm.state is ConnState.INIT_SENT or self._awaiting_confirm:
            self._fail(ConnectionRefused("connection refused (port unreachable)"), "refused", now)

    def consume(self, nbytes: int) -> None:
        """The application took ``nbytes`` of received data: reopen the window by that much."""
        rb = self._rb
        if rb is None:
            raise InvalidStateError("nothing was received yet")
        rb.consume(nbytes)
        if rb.window_update_due() and not self._terminated:
            self._ack_now = True  # tell the peer the window reopened
            self._owner._mark_dirty(self)

    def next_event(self) -> Event | None:
        """The next event, or None when there is none."""
        events = self._events
        while events:
            event = events.popleft()
            if event is DATA_MARK:
                self._data_marked = False
                rb = self._rb
                data = rb.take_ready() if rb is not None else b""
                if data:
                    return DataReceived(data)
                continue
            if isinstance(event, Event):
                if isinstance(event, DatagramReceived):
                    self._dg.pending_events -= 1
                return event
        return None
