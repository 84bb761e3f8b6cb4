"""rudp: a reliable transport over UDP for Python asyncio."""

from __future__ import annotations

from . import messages
from .aio import GilbertElliott, Impairment, RudpTransport, Server, create_connection, create_server
from .config import Config
from .errors import (
    ConcurrencyError,
    ConnectionClosed,
    ConnectionRefused,
    ConnectionReset,
    ConnectionTimeout,
    DatagramTooLarge,
    DecodeError,
    HandshakeTimeout,
    InvalidStateError,
    LocalProtocolError,
    MessageDecodeError,
    MessageTooLarge,
    RemoteProtocolError,
    RudpError,
    SendBufferFull,
    TooManyConnections,
)
from .streams import open_connection, start_server

__all__ = [
    "ConcurrencyError",
    "Config",
    "GilbertElliott",
    "Impairment",
    "RudpTransport",
    "Server",
    "create_connection",
    "create_server",
    "open_connection",
    "start_server",
    "messages",
    "ConnectionClosed",
    "ConnectionRefused",
    "ConnectionReset",
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
__version__ = "0.1.0"
