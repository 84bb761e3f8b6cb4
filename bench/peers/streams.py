"""An asyncio ``StreamReader``/``StreamWriter`` pair as a ``bench.peers.Stream``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["AsyncioStream", "CLOSE_TIMEOUT"]

CLOSE_TIMEOUT = 10.0


class AsyncioStream:
    """Delegates to the pair; ``stats_fn`` gives the transport's counters."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        stats_fn: Callable[[], dict[str, Any]] | None = None,
        drain_fn: Callable[[], Awaitable[None]] | None = None,
        on_close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self._stats_fn = stats_fn
        self._drain_fn = drain_fn
        self._on_close = on_close
        self._last_stats: dict[str, Any] = {}

    async def read(self, n: int) -> bytes:
        return await self.reader.read(n)

    async def readexactly(self, n: int) -> bytes:
        return await self.reader.readexactly(n)

    def write(self, data: bytes) -> None:
        self.writer.write(data)

    async def drain(self) -> None:
        await self.writer.drain()
        if self._drain_fn is not None:
            await self._drain_fn()

    def write_eof(self) -> None:
        self.writer.write_eof()

    async def close(self) -> None:
        self._last_stats = self.stats()
        self.writer.close()
        with contextlib.suppress(TimeoutError, OSError, ConnectionError):
            await asyncio.wait_for(self.writer.wait_closed(), CLOSE_TIMEOUT)
        if self._on_close is not None:
            await self._on_close()

    def stats(self) -> dict[str, Any]:
        if self._stats_fn is None:
            return {}
        try:
            return self._stats_fn()
        except (OSError, AttributeError, KeyError):
            return self._last_stats
