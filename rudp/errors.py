"""The rudp exception tree.

Local misuse raises a ``LocalProtocolError``; what a peer does wrong never raises out of the
engine, it arrives as a ``ConnectionTerminated`` event carrying a ``RemoteProtocolError`` or one
of the connection errors below. The connection errors also derive from the builtin exceptions
that asyncio TCP code already catches (``ConnectionResetError``, ``TimeoutError`` ...); on
Python 3.11+ ``asyncio.TimeoutError`` is the builtin ``TimeoutError``.

    RudpError
    ├── LocalProtocolError          API misuse
    │   ├── InvalidStateError       call not allowed in the connection's current state
    │   ├── SendBufferFull          a write past the send buffer's hard bound
    │   └── TooManyConnections      a connect past the endpoint's max_connections
    ├── RemoteProtocolError         the peer broke the protocol
    ├── DecodeError (ValueError)    a datagram could not be decoded (internal to wire/)
    ├── ConnectionReset (ConnectionResetError)       peer sent a reset, or we aborted
    ├── ConnectionRefused (ConnectionRefusedError)   the server refused the handshake
    ├── ConnectionTimeout (TimeoutError)             retransmission limit, keepalive, idle
    │   └── HandshakeTimeout                         the handshake did not complete in time
    ├── MessageTooLarge (ValueError)   a message above max_message_size (rudp.messages)
    ├── DatagramTooLarge (ValueError)  an unreliable datagram that does not fit one packet
    ├── MessageDecodeError (ValueError)  a received message is not valid msgpack
    ├── ConnectionClosed (ConnectionError)  receiving on a connection the peer closed
    └── ConcurrencyError (RuntimeError)
"""

from __future__ import annotations

__all__ = [
    "ConcurrencyError",
    "ConnectionRefused",
    "ConnectionReset",
    "ConnectionClosed",
    "ConnectionTimeout",
    "DatagramTooLarge",
    "DecodeError",
    "HandshakeTimeout",
    "InvalidStateError",
    "LocalProtocolError",
    "MessageDecodeError",
    "MessageTooLarge",
    "RemoteProtocolError",
    "RudpError",
    "SendBufferFull",
    "TooManyConnections",
]


class RudpError(Exception):
    """Base class of every exception rudp raises."""


class LocalProtocolError(RudpError):
    """The API was used in a way the protocol does not allow."""


class InvalidStateError(LocalProtocolError):
    """The call is not allowed in the connection's current state."""


class RemoteProtocolError(RudpError):
    """The peer broke the protocol; carried in ``ConnectionTerminated.error``."""


class DecodeError(RudpError, ValueError):
    """A datagram could not be decoded. Never escapes ``receive_datagram``."""


class ConnectionReset(RudpError, ConnectionResetError):
    """The connection was reset (by the peer, or aborted locally)."""


class ConnectionRefused(RudpError, ConnectionRefusedError):
    """The server refused the handshake (reset, or ICMP port unreachable)."""


class ConnectionTimeout(RudpError, TimeoutError):
    """The peer stopped answering: retransmission limit, keepalive or idle timeout."""


class HandshakeTimeout(ConnectionTimeout):
    """The handshake did not complete within the configured retries or time."""


class MessageTooLarge(RudpError, ValueError):
    """A message exceeds the configured maximum size."""


class DatagramTooLarge(RudpError, ValueError):
    """An unreliable datagram larger than one packet can carry."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"datagram of {size} bytes does not fit one packet: the limit is {limit} bytes"
        )
        self.size = size
        self.limit = limit


class MessageDecodeError(RudpError, ValueError):
    """A received message could not be decoded (not msgpack, or over a msgpack limit). The
    stream stays in step: the next message can still be received."""


class ConnectionClosed(RudpError, ConnectionError):
    """The connection is closed: nothing more will be received. ``clean`` is True when the
    peer closed it gracefully after its last message, False for a reset, a timeout, a
    protocol error or a stream that ended inside a message (``__cause__`` says which)."""

    def __init__(self, message: str, *, clean: bool) -> None:
        super().__init__(message)
        self.clean = clean


class ConcurrencyError(RudpError, RuntimeError):
    """Two coroutines tried to receive on the same connection at once."""


class SendBufferFull(LocalProtocolError):
    """A write would take the send buffer past its hard bound (``Config.send_buffer_max``)."""


class TooManyConnections(LocalProtocolError):
    """The endpoint already holds ``Config.max_connections`` connections."""
