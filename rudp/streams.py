"""``open_connection`` and ``start_server`` over rudp: drop-ins for asyncio's.

These are CPython's own bodies (``Lib/asyncio/streams.py``) with rudp's ``create_connection`` /
``create_server`` in place of the loop's: the reader, the writer and their protocol are the real
``asyncio.StreamReader``, ``asyncio.StreamWriter`` and ``asyncio.StreamReaderProtocol``, so every
method behaves exactly as it does over TCP.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from .aio.impairment import Impairment
from .aio.loop import create_connection, create_server
from .aio.server import Server
from .config import Config

__all__ = ["open_connection", "start_server"]

_DEFAULT_LIMIT = 2**16  # asyncio.streams._DEFAULT_LIMIT

ClientConnectedCallback = Callable[
    [asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None] | None
]


async def open_connection(
    host: str | None = None,
    port: int | None = None,
    *,
    limit: int = _DEFAULT_LIMIT,
    config: Config | None = None,
    profile: str | None = None,
    local_addr: tuple[Any, ...] | None = None,
    family: int = 0,
    handshake_timeout: float | None = None,
    impairment: Impairment | None = None,
    **kwds: Any,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect to ``host:port`` over rudp; returns ``(reader, writer)`` like
    ``asyncio.open_connection``."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=limit, loop=loop)
    protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
    transport, _ = await create_connection(
        lambda: protocol,
        host,
        port,
        config=config,
        profile=profile,
        local_addr=local_addr,
        family=family,
        handshake_timeout=handshake_timeout,
        impairment=impairment,
        **kwds,
    )
    writer = asyncio.StreamWriter(transport, protocol, reader, loop)
    return reader, writer


async def start_server(
    client_connected_cb: ClientConnectedCallback,
    host: str | None = None,
    port: int | None = None,
    *,
    limit: int = _DEFAULT_LIMIT,
    config: Config | None = None,
    profile: str | None = None,
    family: int = 0,
    backlog: int | None = None,
    reuse_port: bool = False,
    start_serving: bool = True,
    impairment: Impairment | None = None,
    **kwds: Any,
) -> Server:
    """Serve rudp connections on ``host:port``; ``client_connected_cb(reader, writer)`` runs for
    each (a coroutine function runs as a task), like ``asyncio.start_server``."""
    loop = asyncio.get_running_loop()

    def factory() -> asyncio.StreamReaderProtocol:
        reader = asyncio.StreamReader(limit=limit, loop=loop)
        return asyncio.StreamReaderProtocol(reader, client_connected_cb, loop=loop)

    return await create_server(
        factory,
        host,
        port,
        config=config,
        profile=profile,
        family=family,
        backlog=backlog,
        reuse_port=reuse_port,
        start_serving=start_serving,
        impairment=impairment,
        **kwds,
    )
