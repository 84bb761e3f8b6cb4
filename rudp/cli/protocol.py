"""The file-transfer protocol, on top of the message API (one connection, any number of files).

For each file, in order::

    sender   -> {"type": "file", "name": str, "size": int, "sha256": hex}
    receiver -> {"type": "accept"}  or  {"type": "reject", "code": str, "error": str}
    sender   -> ceil(size / CHUNK_SIZE) raw messages (send_bytes) of the file's bytes
    receiver -> {"type": "result", "ok": True, "sha256": hex}
             or {"type": "result", "ok": False, "code": str, "error": str, "sha256": hex?}

The sender closes the connection after its last file. The accept step costs one round trip
per file but means a file the receiver cannot take (no space, bad name) is refused before any
byte is sent. A receiver that fails mid-file (a write error) sends its failed result at once
and then reads and discards what is still in flight until the sender, which watches for an
early result while it sends, stops and closes.

``code`` is one of :data:`CODES`, so the sender can pick its exit code; ``error`` is the
human sentence it prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "CHUNK_SIZE",
    "CODES",
    "MAX_MESSAGE_SIZE",
    "FileHeader",
    "ProtocolViolation",
    "Reply",
    "accept",
    "file_header",
    "parse_header",
    "parse_reply",
    "reject",
    "result",
]

CHUNK_SIZE = 256 * 1024
"""Bytes per data message: large enough that framing costs nothing, small enough that
progress moves smoothly and a message never waits long behind another."""
MAX_MESSAGE_SIZE = 2 * CHUNK_SIZE
"""Both ends refuse larger messages (``max_message_size``): a peer cannot make us buffer more."""
CODES = frozenset({"no-space", "write-error", "bad-name", "checksum", "protocol"})


class ProtocolViolation(Exception):
    """The peer sent a message this protocol does not allow at this point."""


@dataclass(frozen=True, slots=True)
class FileHeader:
    """What the sender announces before a file's bytes."""

    name: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class Reply:
    """The receiver's answer to a header (accept/reject) or to a file's bytes (result)."""

    kind: str
    ok: bool
    code: str = ""
    error: str = ""
    sha256: str = ""


def file_header(name: str, size: int, sha256: str) -> dict[str, Any]:
    return {"type": "file", "name": name, "size": size, "sha256": sha256}


def accept() -> dict[str, Any]:
    return {"type": "accept"}


def reject(code: str, error: str) -> dict[str, Any]:
    return {"type": "reject", "code": code, "error": error}


def result(*, ok: bool, sha256: str = "", code: str = "", error: str = "") -> dict[str, Any]:
    message: dict[str, Any] = {"type": "result", "ok": ok, "sha256": sha256}
    if not ok:
        message.update(code=code, error=error)
    return message


def _is_hex_digest(value: str) -> bool:
    return len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def parse_header(message: object) -> FileHeader:
    """Validate a header's shape (not its name: the receiver judges names itself)."""
    if not isinstance(message, dict) or message.get("type") != "file":
        raise ProtocolViolation(f"expected a file header, got {message!r:.80}")
    name, size, digest = message.get("name"), message.get("size"), message.get("sha256")
    if not isinstance(name, str):
        raise ProtocolViolation("file header without a name")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ProtocolViolation(f"file header with a bad size: {size!r:.40}")
    if not isinstance(digest, str) or not _is_hex_digest(digest):
        raise ProtocolViolation("file header without a SHA-256")
    return FileHeader(name, size, digest)


def parse_reply(message: object, *, expect: tuple[str, ...]) -> Reply:
    """Validate a reply whose ``type`` is one of ``expect``."""
    if not isinstance(message, dict) or message.get("type") not in expect:
        raise ProtocolViolation(f"expected {' or '.join(expect)}, got {message!r:.80}")
    kind = str(message["type"])
    ok = kind == "accept" or (kind == "result" and message.get("ok") is True)
    code = message.get("code", "")
    error = message.get("error", "")
    digest = message.get("sha256", "")
    if not ok and (code not in CODES or not isinstance(error, str)):
        raise ProtocolViolation(f"malformed failure reply: {message!r:.80}")
    if not isinstance(digest, str):
        raise ProtocolViolation("reply with a malformed SHA-256")
    return Reply(kind, ok, str(code), str(error), digest)
