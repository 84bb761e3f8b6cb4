"""The receiving side of a file transfer: check each announced file, write it under a
temporary name, verify its SHA-256, then rename it into place.

A file only ever appears under its final name complete and verified: the bytes go to a
hidden ``.NAME.<random>.part`` file in the output directory (the same file system, so the rename
is atomic) which is removed on any failure, disconnect or cancellation.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .channel import Channel
from .failures import CONNECTION_FAILURES
from .protocol import FileHeader, ProtocolViolation, accept, parse_header, reject, result
from .units import format_bytes

__all__ = ["Outcome", "Receiver", "safe_name"]

logger = logging.getLogger("rudp.cli.receiver")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one announced file (``code`` is a ``protocol.CODES`` entry, or
    ``"lost"`` when the sender went away mid-file)."""

    name: str
    size: int
    ok: bool
    peer: str
    seconds: float = 0.0
    sha256: str = ""
    code: str = ""
    error: str = ""
    path: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "event": "received" if self.ok else "failed",
            "name": self.name,
            "size": self.size,
            "ok": self.ok,
            "peer": self.peer,
            "seconds": round(self.seconds, 6),
            "sha256": self.sha256,
            "code": self.code,
            "error": self.error,
            "path": self.path,
        }


# A file name is at most 255 bytes on Linux, macOS and Windows file systems alike.
_NAME_MAX = 255
# The temporary name embeds at most this many bytes of the file's name, so that
# ".NAME.<8 random>.part" stays within _NAME_MAX however long NAME is.
_TEMP_STEM_MAX = 200


def safe_name(name: str) -> bool:
    """A plain file name: no directory part, nothing hidden, no control characters, and short
    enough for the file system (255 bytes once encoded)."""
    if not (
        0 < len(name) <= _NAME_MAX
        and name not in (".", "..")
        and not name.startswith(".")
        and "/" not in name
        and "\\" not in name
        and name.isprintable()
    ):
        return False
    try:
        return len(os.fsencode(name)) <= _NAME_MAX
    except UnicodeEncodeError:  # not representable in the file system's encoding
        return False


def _temp_stem(name: str) -> str:
    """The start of ``name`` that fits a temporary name (whole characters only)."""
    encoded = os.fsencode(name)[:_TEMP_STEM_MAX]
    return os.fsdecode(encoded.decode("utf-8", errors="ignore").encode("utf-8"))


def _write_failure(exc: OSError, doing: str) -> tuple[str, str]:
    """The protocol code and the sentence for a failed file-system call."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "no-space", "receiver ran out of disk space"
    return "write-error", f"receiver cannot {doing}: {exc.strerror or exc}"


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


class _Failed(Exception):
    """A file failed after it was accepted; the result was sent (or the sender is gone)."""

    def __init__(self, code: str, error: str) -> None:
        super().__init__(error)
        self.code = code
        self.error = error


class Receiver:
    """The ``messages.serve`` handler: one instance serves every connection.

    ``report`` is called with each file's :class:`Outcome`; ``min_free`` bytes of the output
    file system are kept free (a file that would eat into them is refused up front).
    """

    def __init__(
        self, out_dir: Path, *, report: Callable[[Outcome], None], min_free: int = 0
    ) -> None:
        self._out = out_dir
        self._report = report
        self._min_free = min_free
        umask = os.umask(0o022)  # reading the umask means setting it; put it back at once
        os.umask(umask)
        self._mode = 0o666 & ~umask  # mkstemp makes 0600; a received file gets the usual mode

    async def handle(self, channel: Channel, peer: str) -> None:
        """Serve files until the sender closes, or until a file fails after its bytes began."""
        try:
            async for message in channel:
                try:
                    header = parse_header(message)
                except ProtocolViolation as exc:
                    await channel.send(result(ok=False, code="protocol", error=str(exc)))
                    return
                if not await self._receive(channel, header, peer):
                    await self._discard(channel)
                    return
        except CONNECTION_FAILURES as exc:
            logger.info("connection from %s ended: %s", peer, exc)

    async def _receive(self, channel: Channel, header: FileHeader, peer: str) -> bool:
        """One file; False if the connection should only be drained from now on."""
        name, size = header.name, header.size
        refusal = self._refusal(header)
        if refusal is None:
            try:
                fd, temp = tempfile.mkstemp(
                    dir=self._out, prefix=f".{_temp_stem(name)}.", suffix=".part"
                )
            except OSError as exc:
                refusal = _write_failure(exc, "create a file in its output directory")
        if refusal is not None:
            code, error = refusal
            await channel.send(reject(code, error))
            self._report(Outcome(name, size, False, peer, code=code, error=error))
            return True
        started = time.monotonic()
        try:
            try:
                try:
                    os.fchmod(fd, self._mode)
                except OSError as exc:  # some file systems keep modes of their own: fine
                    logger.info("cannot set the mode of %s: %s", temp, exc.strerror)
                await channel.send(accept())
                digest = await self._write(channel, fd, size)
            finally:
                os.close(fd)
            if digest != header.sha256:
                raise _Failed(
                    "checksum",
                    f"receiver computed sha256 {digest}, sender announced {header.sha256}",
                )
            final = self._out / name
            try:
                os.replace(temp, final)
            except OSError as exc:  # e.g. a directory of that name is in the way
                raise _Failed(*_write_failure(exc, f"store {name}")) from exc
        except _Failed as failure:
            _remove(temp)  # before anything is reported: a reported failure leaves no trace
            await channel.send(result(ok=False, code=failure.code, error=failure.error))
            self._report(Outcome(name, size, False, peer, code=failure.code, error=failure.error))
            return failure.code == "checksum"  # the stream is still in step after a mismatch
        except CONNECTION_FAILURES as exc:
            _remove(temp)
            self._report(Outcome(name, size, False, peer, code="lost", error=str(exc) or "lost"))
            raise
        finally:
            _remove(temp)  # cancelled (Ctrl-C), or anything unexpected
        seconds = time.monotonic() - started
        await channel.send(result(ok=True, sha256=digest))
        self._report(Outcome(name, size, True, peer, seconds, digest, path=str(final)))
        return True

    def _refusal(self, header: FileHeader) -> tuple[str, str] | None:
        if not safe_name(header.name):
            return "bad-name", f"not a plain file name: {header.name!r}"
        try:
            free = shutil.disk_usage(self._out).free
        except OSError as exc:
            return "write-error", f"receiver cannot use its output directory: {exc.strerror}"
        if header.size + self._min_free > free:
            keep = f" and keeps {format_bytes(self._min_free)} free" if self._min_free else ""
            return "no-space", (
                f"not enough disk space on the receiver: {header.name} needs "
                f"{format_bytes(header.size)}, {format_bytes(free)} free{keep}"
            )
        return None

    async def _write(self, channel: Channel, fd: int, size: int) -> str:
        """Write ``size`` bytes of data messages to ``fd``; returns their SHA-256."""
        digest = hashlib.sha256()
        got = 0
        while got < size:
            chunk = await channel.recv_bytes()
            got += len(chunk)
            if got > size:
                raise _Failed("protocol", f"sender sent more than the announced {size} bytes")
            digest.update(chunk)
            try:
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view) :]
            except OSError as exc:
                raise _Failed(*_write_failure(exc, "write")) from exc
        try:
            await asyncio.to_thread(os.fsync, fd)  # durable before it gets its final name
        except OSError as exc:
            raise _Failed(*_write_failure(exc, "write")) from exc
        return digest.hexdigest()

    async def _discard(self, channel: Channel) -> None:
        """Read and drop what the sender still has in flight, until it closes."""
        try:
            while True:
                await channel.recv_bytes()
        except CONNECTION_FAILURES:
            return
