"""Events the engine reports, pulled with ``next_event()``: small frozen values, one fact each."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Connected",
    "ConnectionTerminated",
    "DataReceived",
    "DatagramReceived",
    "EndOfStream",
    "Event",
    "SendBufferLow",
]


class Event:
    """Base class of every engine event. Do not subclass outside rudp."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Connected(Event):
    """The handshake completed; data may flow."""


@dataclass(frozen=True, slots=True)
class DataReceived(Event):
    """In-order bytes from the peer. Call ``consume(len(data))`` once the application has
    taken them, so the receive window reopens."""

    data: bytes


@dataclass(frozen=True, slots=True)
class DatagramReceived(Event):
    """One unreliable datagram from the peer (never retransmitted, possibly out of order
    with other datagrams and with the stream)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class EndOfStream(Event):
    """The peer sent FIN after its last byte: no more data will arrive (half-close)."""


@dataclass(frozen=True, slots=True)
class SendBufferLow(Event):
    """The send buffer drained to ``Config.send_buffer_low`` after passing the high mark."""


@dataclass(frozen=True, slots=True)
class ConnectionTerminated(Event):
    """The connection ended. ``error`` is None for a clean close, else the exception that
    describes why (``ConnectionReset``, ``ConnectionTimeout``, ``RemoteProtocolError`` ...)."""

    reason: str
    error: Exception | None
    by_peer: bool
