"""The asyncio adapter: an endpoint protocol per UDP socket and a transport per connection."""

from __future__ import annotations

from .impairment import GilbertElliott, Impairment
from .loop import create_connection, create_server
from .server import Server
from .transport import RudpTransport

__all__ = [
    "GilbertElliott",
    "Impairment",
    "RudpTransport",
    "Server",
    "create_connection",
    "create_server",
]
