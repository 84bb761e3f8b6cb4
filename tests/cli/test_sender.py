"""The sending side against an in-memory receiver: what it does with each kind of reply."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from rudp.cli import exits, protocol
from rudp.cli.exits import CliError
from rudp.cli.progress import NullProgress
from rudp.cli.sender import inspect_files, send_file
from rudp.errors import ConnectionClosed

from .helpers import write_random


class StuckLink:
    """A channel whose sends never complete once the first data message is in (a full
    send buffer on a slow link), and whose receiver answers with ``replies``."""

    def __init__(self, replies: list[dict[str, Any]]) -> None:
        self.replies: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        for reply in replies:
            self.replies.put_nowait(reply)
        self.data_messages = 0
        self.aborted = asyncio.Event()
        self.closed = False

    async def send(self, obj: Any) -> None:
        return None

    async def send_bytes(self, data: bytes) -> None:
        self.data_messages += 1
        if self.data_messages > 1:
            await self.aborted.wait()  # waits for room that only an abort ends
            raise ConnectionClosed("the connection was aborted", clean=False)

    async def recv(self) -> Any:
        return await self.replies.get()

    async def recv_bytes(self) -> bytes:
        raise AssertionError("the sender receives no raw messages")

    def __aiter__(self) -> AsyncIterator[Any]:
        raise AssertionError("the sender does not iterate")

    async def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted.set()

    @property
    def stats(self) -> dict[str, Any]:
        return {"send_buffer_size": 0, "segments_retransmitted": 0}


async def test_a_failure_reply_mid_file_stops_the_sender_at_once(tmp_path: Path) -> None:
    (file,) = await inspect_files([str(write_random(tmp_path / "a.bin", 3 * 2**20))])
    failure = protocol.result(ok=False, code="no-space", error="receiver ran out of disk space")
    link = StuckLink([protocol.accept(), failure])
    with pytest.raises(CliError) as info:
        await asyncio.wait_for(send_file(link, file, NullProgress()), 5.0)
    assert info.value.code == exits.EXIT_REJECTED
    assert info.value.message == "receiver could not take a.bin: receiver ran out of disk space"
    assert link.aborted.is_set()  # reset: nothing more is pushed through the send buffer
    assert link.data_messages == 2


async def test_a_verified_file(tmp_path: Path) -> None:
    (file,) = await inspect_files([str(write_random(tmp_path / "b.bin", 1000))])

    class Instant(StuckLink):
        async def send_bytes(self, data: bytes) -> None:
            self.data_messages += 1
            await self.replies.put(protocol.result(ok=True, sha256=file.sha256))

    link = Instant([protocol.accept()])
    sent = await asyncio.wait_for(send_file(link, file, NullProgress()), 5.0)
    assert (sent.name, sent.size, sent.sha256) == ("b.bin", 1000, file.sha256)
    assert not link.aborted.is_set() and link.data_messages == 1
