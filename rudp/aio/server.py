"""``Server``: the ``asyncio.Server`` surface over one or more listening rudp endpoints.

Closing a UDP server cannot close its sockets at once: they carry the connections still open.
``close()`` stops accepting (new INITs are refused); each socket closes when its last
connection is gone, and ``wait_closed()`` returns then (asyncio 3.12.1+ semantics).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from ..core.connection import Connection
from .protocol import EndpointProtocol
from .transport import RudpTransport

__all__ = ["Server"]

logger = logging.getLogger("rudp.aio.server")


class Server(asyncio.AbstractServer):
    """Returned by ``create_server`` / ``start_server``."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, protocol_factory: Callable[[], asyncio.BaseProtocol]
    ) -> None:
        self._loop = loop
        self._protocol_factory = protocol_factory
        self._endpoints: list[EndpointProtocol] = []
        self._serving = False
        self._closed = False
        self._serving_forever: asyncio.Future[None] | None = None
        self._close_waiters: list[asyncio.Future[None]] = []  # wait_closed() before close()

    # --- wiring -------------------------------------------------------------------------------
    def add_endpoint(self, endpoint: EndpointProtocol) -> None:
        self._endpoints.append(endpoint)

    def connection_handler(self) -> Callable[[Connection], None]:
        """The callback an endpoint calls when a connection completes its handshake."""

        def on_connected(conn: Connection) -> None:
            if self._serving:
                self._accept_all()

        return on_connected

    def _accept_all(self) -> None:
        for endpoint in self._endpoints:
            while True:
                conn = endpoint.accept()
                if conn is None:
                    break
                if conn.is_terminated:
                    endpoint.forget(conn)
                    continue
                try:
                    protocol = self._protocol_factory()
                except Exception:
                    logger.exception("protocol factory failed; aborting the connection")
                    conn.abort(now=endpoint.now())
                    endpoint.schedule_flush()
                    continue
                endpoint.attach(conn, protocol)

    # --- asyncio.AbstractServer ---------------------------------------------------------------
    def close(self) -> None:
        """Stop accepting; open connections stay open."""
        if self._closed:
            return
        self._closed = True
        self._serving = False
        for endpoint in self._endpoints:
            endpoint.endpoint.listening = False
            endpoint.close_when_idle = True
            while endpoint.accept() is not None:
                pass  # never accepted: they are reset as the endpoint shuts down
            endpoint.flush()
            if not endpoint.transports:
                endpoint.close()
        if self._serving_forever is not None and not self._serving_forever.done():
            self._serving_forever.cancel()
        self._serving_forever = None
        for waiter in self._close_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._close_waiters.clear()

    def close_clients(self) -> None:
        """Close every connection gracefully."""
        for transport in self._all_transports():
            transport.close()

    def abort_clients(self) -> None:
        """Abort every connection (resets to the peers)."""
        for transport in self._all_transports():
            transport.abort()

    def _all_transports(self) -> list[RudpTransport]:
        return [t for endpoint in self._endpoints for t in endpoint.transports]

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def is_serving(self) -> bool:
        return self._serving

    async def start_serving(self) -> None:
        if self._closed:
            raise RuntimeError(f"server {self!r} is closed")
        if self._serving:
            return
        self._serving = True
        self._accept_all()

    async def serve_forever(self) -> None:
        if self._serving_forever is not None:
            raise RuntimeError(f"server {self!r} is already being awaited on serve_forever()")
        if self._closed:
            raise RuntimeError(f"server {self!r} is closed")
        await self.start_serving()
        self._serving_forever = self._loop.create_future()
        try:
            await self._serving_forever
        except asyncio.CancelledError:
            try:
                self.close()
                await self.wait_closed()
            finally:
                raise
        finally:
            self._serving_forever = None

    async def wait_closed(self) -> None:
        """Return once the server is closed and every one of its connections is gone."""
        if not self._closed:
            waiter: asyncio.Future[None] = self._loop.create_future()
            self._close_waiters.append(waiter)
            await waiter
        # Shielded: a caller's timeout must not cancel the endpoints' own futures (the next
        # wait_closed() would then raise CancelledError at once).
        await asyncio.shield(asyncio.gather(*(endpoint.closed for endpoint in self._endpoints)))

    @property
    def sockets(self) -> tuple[Any, ...]:
        if self._closed:
            return ()
        return tuple(
            sock
            for endpoint in self._endpoints
            if (sock := endpoint.io_extra("socket")) is not None
        )

    async def __aenter__(self) -> Server:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
        await self.wait_closed()

    def __repr__(self) -> str:
        names = [endpoint.io_extra("sockname") for endpoint in self._endpoints]
        return f"<rudp.Server sockets={names!r} serving={self._serving}>"
