"""The sending side of a file transfer: check the files, announce each, stream it, and
collect the receiver's verdict (see ``protocol`` for the exchange).

Every file is hashed before the connection opens, so a missing or unreadable file fails at
once and costs the receiver nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .channel import Channel
from .exits import EXIT_CHECKSUM, EXIT_FAILURE, EXIT_INPUT, EXIT_REJECTED, CliError
from .progress import FileProgress
from .protocol import CHUNK_SIZE, ProtocolViolation, Reply, file_header, parse_reply

__all__ = ["LocalFile", "SentFile", "inspect_files", "send_file", "send_files"]

_HASH_BLOCK = 1 << 20
_PROGRESS_PERIOD = 0.25


@dataclass(frozen=True, slots=True)
class LocalFile:
    """A file to send, as it was when hashed."""

    path: Path
    name: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class SentFile:
    """One file the receiver stored and verified."""

    name: str
    size: int
    sha256: str
    seconds: float
    retransmitted: int

    @property
    def goodput(self) -> float:
        """File bytes per second, from header sent to verified result received."""
        return self.size / self.seconds if self.seconds > 0 else 0.0


def _hash_file(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while block := handle.read(_HASH_BLOCK):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()


async def inspect_files(paths: list[str]) -> list[LocalFile]:
    """Size and SHA-256 of each file (in a thread: hashing a large file takes a while);
    ``CliError`` (input) for one that is missing, not a regular file, or unreadable."""
    files = []
    for text in paths:
        path = Path(text)
        if not path.exists():
            raise CliError(f"cannot send {text}: no such file", EXIT_INPUT)
        if not path.is_file():
            raise CliError(f"cannot send {text}: not a regular file", EXIT_INPUT)
        try:
            size, digest = await asyncio.to_thread(_hash_file, path)
        except OSError as exc:
            raise CliError(f"cannot read {text}: {exc.strerror or exc}", EXIT_INPUT) from exc
        files.append(LocalFile(path, path.name, size, digest))
    return files


def _refused(name: str, reply: Reply) -> CliError:
    if reply.code == "checksum":
        return CliError(f"{name}: checksum mismatch: {reply.error}", EXIT_CHECKSUM)
    if reply.code == "protocol":
        return CliError(f"{name}: receiver reports a protocol error: {reply.error}", EXIT_FAILURE)
    return CliError(f"receiver could not take {name}: {reply.error}", EXIT_REJECTED)


def _retransmitted(channel: Channel) -> int:
    value = channel.stats.get("segments_retransmitted", 0)
    return value if isinstance(value, int) else 0


class _Handed:
    """File bytes handed to the connection so far (shared by the streamer and the display)."""

    __slots__ = ("bytes",)

    def __init__(self) -> None:
        self.bytes = 0


async def _stream(channel: Channel, file: LocalFile, handed: _Handed) -> None:
    """Send the file's bytes."""
    with file.path.open("rb") as handle:
        # Reads of 256 KiB from the page cache take microseconds: no thread needed.
        while handed.bytes < file.size:
            chunk = handle.read(min(CHUNK_SIZE, file.size - handed.bytes))
            if not chunk:
                raise CliError(f"{file.path} shrank while it was being sent", EXIT_INPUT)
            await channel.send_bytes(chunk)
            handed.bytes += len(chunk)


async def _show_progress(
    channel: Channel, file: LocalFile, progress: FileProgress, handed: _Handed
) -> None:
    """Report the bytes the receiver acknowledged (handed over minus what the send buffer
    still holds), on a clock rather than per chunk: a send can wait seconds for the window
    on a slow link, and the display must not freeze meanwhile."""
    while True:
        await asyncio.sleep(_PROGRESS_PERIOD)
        stats = channel.stats
        unacked = stats.get("send_buffer_size", 0)
        acked = handed.bytes - (unacked if isinstance(unacked, int) else 0)
        progress.update(min(max(acked, 0), file.size), stats)


async def send_file(channel: Channel, file: LocalFile, progress: FileProgress) -> SentFile:
    """Send one file; returns once the receiver verified and stored it, else ``CliError``."""
    started = time.monotonic()
    retx_before = _retransmitted(channel)
    try:
        await channel.send(file_header(file.name, file.size, file.sha256))
        reply = parse_reply(await channel.recv(), expect=("accept", "reject"))
        if not reply.ok:
            raise _refused(file.name, reply)
        progress.start_file(file.name, file.size, channel.stats)
        reply_task: asyncio.Future[Any] = asyncio.ensure_future(channel.recv())
        handed = _Handed()
        streaming: asyncio.Future[Any] = asyncio.ensure_future(_stream(channel, file, handed))
        ticker = asyncio.ensure_future(_show_progress(channel, file, progress, handed))
        try:
            await asyncio.wait({streaming, reply_task}, return_when=asyncio.FIRST_COMPLETED)
            if streaming.done():
                streaming.result()  # its error, if sending failed
            else:
                # The receiver answered before it had every byte: it failed (out of space, a
                # write error) and discards the rest. Reset rather than push the send buffer
                # through a slow link only to close gracefully.
                channel.abort()
            message = await reply_task
        finally:
            ticker.cancel()
            for task in (streaming, reply_task):
                if not task.done():
                    task.cancel()
                elif not task.cancelled():
                    task.exception()  # retrieved: the error that matters is already propagating
        reply = parse_reply(message, expect=("result",))
    except ProtocolViolation as exc:
        raise CliError(f"receiver broke the protocol: {exc}", EXIT_FAILURE) from exc
    if reply.ok:
        progress.update(file.size, channel.stats)
    progress.finish_file()
    if not reply.ok:
        raise _refused(file.name, reply)
    if reply.sha256 != file.sha256:
        raise CliError(
            f"{file.name}: checksum mismatch: receiver has {reply.sha256}, sent {file.sha256}",
            EXIT_CHECKSUM,
        )
    return SentFile(
        file.name,
        file.size,
        file.sha256,
        time.monotonic() - started,
        _retransmitted(channel) - retx_before,
    )


async def send_files(
    channel: Channel, files: list[LocalFile], progress: FileProgress
) -> list[SentFile]:
    """Send ``files`` in order over one connection; the first failure stops the rest."""
    return [await send_file(channel, file, progress) for file in files]
