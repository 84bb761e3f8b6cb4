"""The part of ``rudp.messages.MessageConnection`` the file transfer uses, as a Protocol.

Typing against this instead of the class keeps the transfer code testable with an in-memory
pair and states exactly which calls it relies on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

__all__ = ["Channel"]


class Channel(Protocol):
    """A message connection: ordered, reliable, whole messages."""

    async def send(self, obj: Any) -> None: ...

    async def send_bytes(self, data: bytes) -> None: ...

    async def recv(self) -> Any: ...

    async def recv_bytes(self) -> bytes: ...

    def __aiter__(self) -> AsyncIterator[Any]: ...

    async def close(self) -> None: ...

    def abort(self) -> None: ...

    @property
    def stats(self) -> Mapping[str, Any]: ...
