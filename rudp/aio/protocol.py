"""``EndpointProtocol``: the asyncio driver of one ``core.Endpoint`` (one UDP socket).

Every input follows the same three steps (STYLE.md part b, rule 3): feed the engine, drain its
events into the transports, send what it wants sent and re-arm the single timer. Writes from
the application only mark the endpoint dirty: one ``call_soon`` flush per loop iteration sends
everything they queued as one batch. Timer callbacks pass ``now = max(deadline, loop.time())``
so a callback that fires a little early never looks earlier than its deadline, and every
``now`` handed to the engine comes from ``EndpointProtocol.now``, which never goes back (after
acting at a deadline ahead of uvloop's millisecond clock, the next ``loop.time()`` is earlier).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from typing import Any, cast

from ..config import Config
from ..core.connection import Connection
from ..core.endpoint import Endpoint
from ..core.events import (
    Connected,
    ConnectionTerminated,
    DatagramReceived,
    DataReceived,
    EndOfStream,
)
from .dgram import Addr, DatagramIO, PlainDatagramIO
from .transport import RudpTransport

__all__ = ["EndpointProtocol"]

logger = logging.getLogger("rudp.aio.protocol")

ConnectionHandler = Callable[[Connection], None]


class EndpointProtocol(asyncio.DatagramProtocol):
    """Drives a ``core.Endpoint`` from the event loop; one per UDP socket."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        config: Config,
        *,
        listening: bool = False,
        on_connected: ConnectionHandler | None = None,
    ) -> None:
        self.loop = loop
        self.config = config
        self.endpoint = Endpoint(config, token_bytes=secrets.token_bytes, listening=listening)
        self.io: DatagramIO | None = None
        self.closed: asyncio.Future[None] = loop.create_future()
        self._on_connected = on_connected
        self._transports: dict[Connection, RudpTransport] = {}
        self._connect_waiters: dict[Connection, asyncio.Future[None]] = {}
        # Client connections whose handshake finished but whose transport is not attached
        # yet (the connecting coroutine has not resumed): their events wait here.
        self._unattached: dict[Connection, list[Any]] = {}
        self._paused: set[RudpTransport] = set()
        self._awaiting_ack: set[RudpTransport] = set()
        self._closing: set[RudpTransport] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_deadline: float | None = None
        self._flush_scheduled = False
        self._io_closed = False
        self.close_when_idle = False  # a client endpoint closes its socket with its connection
        self._now = float("-inf")  # the latest time handed to the engine

    def now(self) -> float:
        """The loop's time, but never earlier than a time already handed to the engine."""
        now = self.loop.time()
        if now < self._now:
            return self._now
        self._now = now
        return now

    # --- datagram protocol (plain path) ----------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # CPython 3.11's selector datagram transport is not a DatagramTransport subclass.
        if self.io is None:
            self.io = PlainDatagramIO(cast(asyncio.DatagramTransport, transport))

    def attach_io(self, io: DatagramIO) -> None:
        """Use ``io`` to send (the batched and impaired paths)."""
        self.io = io

    def datagram_received(self, data: bytes, addr: Addr) -> None:
        self.endpoint.receive_datagram(data, addr, now=self.now())
        self.schedule_flush()

    def datagrams_received(self, datagrams: list[tuple[bytes, Addr]]) -> None:
        """A batch from one wake-up of the batched I/O: feed all, then flush once.

        A server's batch goes in slices of ``Config.backlog`` datagrams with its accept
        handler run between them: each datagram completes at most one handshake, so a burst
        of COOKIE-ECHOs read in one wake-up cannot overflow the accept queue by itself (the
        application accepts between slices, as asyncio accepts up to ``backlog`` connections
        per wake-up of a listening TCP socket)."""
        endpoint = self.endpoint
        receive = endpoint.receive_datagram
        now = self.now()
        step = endpoint.config.backlog
        if self._on_connected is None or len(datagrams) <= step:
            for data, addr in datagrams:
                receive(data, addr, now=now)
        else:
            for start in range(0, len(datagrams), step):
                for data, addr in datagrams[start : start + step]:
                    receive(data, addr, now=now)
                if endpoint.accept_queue_length:
                    self.flush(now)
                    if self._io_closed:
                        return
        self.flush()

    def error_received(self, exc: Exception) -> None:
        """ICMP errors. A client endpoint's socket is connected to its server, so a port
        unreachable fails a handshake in progress (``ConnectionRefusedError``)."""
        if isinstance(exc, ConnectionRefusedError):
            now = self.now()
            for conn in list(self._connect_waiters):
                conn.peer_unreachable(now=now)
            self.flush()
        elif logger.isEnabledFor(logging.DEBUG):
            logger.debug("socket error ignored: %r", exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self._io_closed = True
        self._shutdown(exc)

    # --- driving the engine -------------------------------------------------------------------
    def schedule_flush(self) -> None:
        """Flush at the end of this loop iteration (merges many writes into one burst)."""
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._scheduled_flush)

    def _scheduled_flush(self) -> None:
        self._flush_scheduled = False
        self.flush()

    def flush(self, now: float | None = None) -> None:
        """Drain events into transports, send datagrams, re-arm the timer."""
        if now is None:
            now = self.now()
        endpoint = self.endpoint
        while True:
            item = endpoint.next_event()
            if item is None:
                break
            self._dispatch(*item)
        out = endpoint.datagrams_to_send(now=now)
        if out and self.io is not None and not self._io_closed:
            self.io.send_batch(out)
        # Events raised while sending (none today), and writers that ACKs unblocked.
        if self._paused:
            for transport in list(self._paused):
                transport.maybe_resume_writing()
        if self._awaiting_ack:
            for transport in list(self._awaiting_ack):
                transport.check_acked()
        if self._closing:
            for transport in list(self._closing):
                if transport.send_side_done():
                    self._closing.discard(transport)
                    transport.connection_terminated(None)
        self._rearm_timer()
        if self.close_when_idle and not endpoint.connections and not self._connect_waiters:
            self.close()

    def _rearm_timer(self) -> None:
        deadline = self.endpoint.get_timer()
        if deadline == self._timer_deadline:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_deadline = deadline
        if deadline is not None:
            self._timer = self.loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        deadline = self._timer_deadline
        self._timer = None
        self._timer_deadline = None
        now = self.now()
        if deadline is not None and deadline > now:
            now = self._now = deadline  # fired a little early: act as at the deadline
        self.endpoint.handle_timer(now=now)
        self.flush(now)

    def _dispatch(self, conn: Connection, event: Any) -> None:
        transport = self._transports.get(conn)
        if transport is None:
            pending = self._unattached.get(conn)
            if isinstance(event, DatagramReceived):
                # Nothing takes datagrams yet, and nothing bounds a stash of them: drop.
                conn.stats.dropped["datagram_not_taken"] += 1
                return
            if not conn.is_client and not isinstance(event, Connected):
                # A server connection not accepted yet: keep its data for the protocol it will
                # get (unconsumed, so the receive window bounds it); forget it if it ends first.
                if isinstance(event, ConnectionTerminated):
                    self._unattached.pop(conn, None)
                else:
                    self._unattached.setdefault(conn, []).append(event)
                return
            if pending is not None:
                pending.append(event)
                return
        if isinstance(event, DataReceived):
            if transport is not None:
                transport.data_received(event.data)
            else:
                conn.consume(len(event.data))
        elif isinstance(event, DatagramReceived):
            if transport is not None:
                transport.unreliable_received(event.data)
        elif isinstance(event, EndOfStream):
            if transport is not None:
                transport.eof_received()
        elif isinstance(event, ConnectionTerminated):
            waiter = self._connect_waiters.pop(conn, None)
            if waiter is not None and not waiter.done():
                waiter.set_exception(event.error or ConnectionError(event.reason))
            if transport is not None:
                self._closing.discard(transport)
                transport.connection_terminated(event.error)
        elif isinstance(event, Connected):
            waiter = self._connect_waiters.pop(conn, None)
            if waiter is not None:
                if not waiter.done():
                    self._unattached[conn] = []
                    waiter.set_result(None)
            elif not conn.is_client and self._on_connected is not None:
                self._on_connected(conn)

    # --- connections ----------------------------------------------------------------------------
    def connect(self, addr: Addr) -> tuple[Connection, asyncio.Future[None]]:
        """Start a handshake to ``addr``; the future completes when it is connected."""
        conn = self.endpoint.connect(addr, now=self.now())
        waiter: asyncio.Future[None] = self.loop.create_future()
        self._connect_waiters[conn] = waiter
        self.flush()
        return conn, waiter

    def cancel_connect(self, conn: Connection) -> None:
        """Give up a handshake (timeout or cancellation)."""
        self._connect_waiters.pop(conn, None)
        self._unattached.pop(conn, None)
        conn.close(now=self.now())
        self.flush()

    def attach(self, conn: Connection, protocol: asyncio.BaseProtocol) -> RudpTransport:
        """Wrap a connected ``conn`` in a transport for ``protocol`` and announce it."""
        transport = RudpTransport(self, conn, protocol)
        self._transports[conn] = transport
        protocol.connection_made(transport)
        for event in self._unattached.pop(conn, ()):
            self._dispatch(conn, event)
        self.schedule_flush()
        return transport

    def forget(self, conn: Connection) -> None:
        """Drop what was kept for a connection that will never get a transport."""
        self._unattached.pop(conn, None)

    def accept(self) -> Connection | None:
        return self.endpoint.accept()

    @property
    def transports(self) -> list[RudpTransport]:
        return list(self._transports.values())

    # --- transport bookkeeping ----------------------------------------------------------------
    def transport_paused(self, transport: RudpTransport) -> None:
        self._paused.add(transport)

    def transport_resumed(self, transport: RudpTransport) -> None:
        self._paused.discard(transport)

    def transport_awaits_ack(self, transport: RudpTransport) -> None:
        self._awaiting_ack.add(transport)

    def transport_acked_all(self, transport: RudpTransport) -> None:
        self._awaiting_ack.discard(transport)

    def transport_closing(self, transport: RudpTransport) -> None:
        self._closing.add(transport)

    def transport_gone(self, transport: RudpTransport) -> None:
        self._paused.discard(transport)
        self._awaiting_ack.discard(transport)
        self._closing.discard(transport)
        for conn, known in list(self._transports.items()):
            if known is transport:
                del self._transports[conn]

    def io_extra(self, name: str, default: Any = None) -> Any:
        if self.io is None:
            return default
        return self.io.get_extra_info(name, default)

    # --- shutdown -------------------------------------------------------------------------------
    def close(self) -> None:
        """Close the socket now (connections still open are reset first)."""
        if self._io_closed:
            return
        now = self.now()
        for conn in list(self.endpoint.connections.values()):
            if not conn.is_terminated:
                conn.abort(now=now)
        out = self.endpoint.datagrams_to_send(now=now)
        if out and self.io is not None:
            self.io.send_batch(out)
        self._io_closed = True
        if self.io is not None:
            self.io.close()
        self._shutdown(None)

    def _shutdown(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_deadline = None
        error = exc if exc is not None else ConnectionAbortedError("endpoint closed")
        for waiter in self._connect_waiters.values():
            if not waiter.done():
                waiter.set_exception(error)
        self._connect_waiters.clear()
        for transport in list(self._transports.values()):
            transport.connection_terminated(exc)
        self._transports.clear()
        if not self.closed.done():
            self.closed.set_result(None)

    def __repr__(self) -> str:
        return f"<EndpointProtocol {self.endpoint!r} transports={len(self._transports)}>"
