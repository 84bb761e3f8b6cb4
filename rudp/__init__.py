"""rudp: a reliable transport over UDP for Python asyncio."""

from __future__ import annotations

from .config import Config
from .errors import (
    ConcurrencyError,
    ConnectionRefused,
    ConnectionReset,
    ConnectionTimeout,
    DecodeError,
    HandshakeTimeout,
    InvalidStateError,
    LocalProtocolError,
    MessageTooLarge,
    RemoteProtocolError,
    RudpError,
    SendBufferFull,
)

__all__ = [
    "ConcurrencyError",
    "Config",
    "ConnectionRefused",
    "ConnectionReset",
    "ConnectionTimeout",
    "DecodeError",
    "HandshakeTimeout",
    "InvalidStateError",
    "LocalProtocolError",
    "MessageTooLarge",
    "RemoteProtocolError",
    "RudpError",
    "SendBufferFull",
]
__version__ = "0.1.0"
