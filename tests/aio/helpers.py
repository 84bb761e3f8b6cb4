"""Shared pieces of the asyncio adapter tests: loops, a recording protocol, constants."""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from rudp import RudpTransport
from rudp.aio.protocol import EndpointProtocol

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop builds wherever CPython runs on Linux
    uvloop = None  # type: ignore[assignment]

HOST = "127.0.0.1"
TIMEOUT = 10.0

LOOPS = [pytest.param(asyncio.new_event_loop, id="asyncio")]
if uvloop is not None:
    LOOPS.append(pytest.param(uvloop.new_event_loop, id="uvloop"))


def on_both_loops(
    test: Callable[..., Coroutine[Any, Any, None]],
) -> Callable[..., None]:
    """Run the coroutine function ``test`` on a fresh loop of each kind.

    pytest-asyncio picks the loop per test only through a conftest hook; a plain test that
    runs its own ``asyncio.Runner`` gets the same effect within this file.
    """

    def run(*args: Any, loop_factory: Callable[[], asyncio.AbstractEventLoop], **kw: Any) -> None:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(test(*args, **kw))

    signature = inspect.signature(test)
    extra = inspect.Parameter("loop_factory", inspect.Parameter.KEYWORD_ONLY)
    functools.update_wrapper(run, test)
    del run.__wrapped__  # type: ignore[attr-defined]  # pytest must see ``run``'s own signature
    run.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*signature.parameters.values(), extra]
    )
    marked: Callable[..., None] = pytest.mark.parametrize("loop_factory", LOOPS)(run)
    return marked


class Recorder(asyncio.Protocol):
    """Records every callback in order and resolves a future for each one tests wait on."""

    def __init__(self, *, keep_open_on_eof: bool = True, pause_on_connect: bool = False) -> None:
        loop = asyncio.get_running_loop()
        self.keep_open_on_eof = keep_open_on_eof
        self.pause_on_connect = pause_on_connect
        self.events: list[tuple[str, Any]] = []
        self.data = bytearray()
        self.transport: RudpTransport | None = None
        self.made: asyncio.Future[None] = loop.create_future()
        self.eof: asyncio.Future[None] = loop.create_future()
        self.resumed: asyncio.Future[None] = loop.create_future()
        self.lost: asyncio.Future[BaseException | None] = loop.create_future()
        self.on_lost: Callable[[], None] | None = None
        self._data_waiters: list[tuple[int, asyncio.Future[None]]] = []

    def names(self) -> list[str]:
        return [name for name, _ in self.events]

    def count(self, name: str) -> int:
        return self.names().count(name)

    def wait_data(self, nbytes: int) -> asyncio.Future[None]:
        """A future resolved once at least ``nbytes`` have arrived."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._data_waiters.append((nbytes, future))
        self._wake()
        return future

    def _wake(self) -> None:
        waiting = []
        for nbytes, future in self._data_waiters:
            if len(self.data) >= nbytes:
                if not future.done():
                    future.set_result(None)
            else:
                waiting.append((nbytes, future))
        self._data_waiters = waiting

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, RudpTransport)
        self.transport = transport
        self.events.append(("made", None))
        if self.pause_on_connect:
            transport.pause_reading()
        if not self.made.done():
            self.made.set_result(None)

    def data_received(self, data: bytes) -> None:
        self.events.append(("data", len(data)))
        self.data += data
        self._wake()

    def eof_received(self) -> bool:
        self.events.append(("eof", None))
        if not self.eof.done():
            self.eof.set_result(None)
        return self.keep_open_on_eof

    def pause_writing(self) -> None:
        assert self.transport is not None
        self.events.append(("pause_writing", self.transport.get_write_buffer_size()))

    def resume_writing(self) -> None:
        assert self.transport is not None
        self.events.append(("resume_writing", self.transport.get_write_buffer_size()))
        if not self.resumed.done():
            self.resumed.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.events.append(("lost", exc))
        if self.on_lost is not None:
            self.on_lost()
        if not self.lost.done():
            self.lost.set_result(exc)


def after_flush(endpoint: EndpointProtocol, predicate: Callable[[], bool]) -> asyncio.Future[None]:
    """A future resolved after the first flush of ``endpoint`` after which ``predicate()``
    holds (or at once if it already does)."""
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    original = endpoint.flush

    def flush(now: float | None = None) -> None:
        original(now)
        if not future.done() and predicate():
            future.set_result(None)

    endpoint.flush = flush  # type: ignore[method-assign]
    if predicate():
        future.set_result(None)
    return future
