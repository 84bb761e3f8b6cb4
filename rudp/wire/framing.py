"""Message framing on the reliable byte stream: a varint length prefix before every message.

The prefix is an unsigned LEB128 varint (7 bits per byte, least significant group first, high
bit set on every byte but the last), the encoding of protobuf and QUIC-less varint users alike:
1 byte up to 127, 2 up to 16383, 4 up to 2**28 - 1. A prefix must be minimal (no trailing
zero groups) and at most ``MAX_PREFIX_SIZE`` bytes; anything else is a framing error, since a
peer that sends it is either broken or probing for a decoder that over-reads.

``FrameDecoder`` is incremental and pure: feed it whatever the stream delivered, take the
complete messages out. It never allocates the size a prefix announces: a message's bytes are
held only as they arrive, and an announced size above the limit fails as soon as the prefix is
read.
"""

from __future__ import annotations

from typing import Final

from rudp.errors import DecodeError

__all__ = [
    "MAX_PREFIX_SIZE",
    "FrameDecoder",
    "FramingError",
    "MessageTooLargeError",
    "TruncatedFrameError",
    "encode_prefix",
    "prefix_size",
]

# 2**63 - 1 fits in 9 groups of 7 bits; nothing near that is a sane message size.
MAX_PREFIX_SIZE: Final = 9
# Compact the buffer once this many consumed bytes sit at its front (amortised O(1) per byte).
_COMPACT_AT: Final = 1 << 16


class FramingError(DecodeError):
    """The byte stream does not hold valid frames (bad or non-minimal length prefix)."""


class MessageTooLargeError(FramingError):
    """A prefix announced a message larger than the decoder's limit."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"peer announced a message of {size} bytes; the limit is {limit}")
        self.size = size
        self.limit = limit


class TruncatedFrameError(FramingError):
    """The stream ended in the middle of a frame."""


def encode_prefix(size: int) -> bytes:
    """The varint prefix for a message of ``size`` bytes."""
    if size < 0:
        raise ValueError(f"message size must be >= 0, not {size}")
    if size < 0x80:
        return bytes((size,))
    out = bytearray()
    while size >= 0x80:
        out.append((size & 0x7F) | 0x80)
        size >>= 7
    out.append(size)
    if len(out) > MAX_PREFIX_SIZE:
        raise ValueError("message size does not fit a length prefix")
    return bytes(out)


def prefix_size(size: int) -> int:
    """How many bytes ``encode_prefix(size)`` takes."""
    return max(1, (size.bit_length() + 6) // 7)


class FrameDecoder:
    """Bytes in, complete messages out. ``max_message_size`` bounds every message."""

    __slots__ = ("_buf", "_pos", "_need", "_limit", "_failed")

    def __init__(self, max_message_size: int) -> None:
        if max_message_size < 0:
            raise ValueError(f"max_message_size must be >= 0, not {max_message_size}")
        self._buf = bytearray()
        self._pos = 0  # start of the first undecoded byte in _buf
        self._need = -1  # size of the message being collected, -1 while reading a prefix
        self._limit = max_message_size
        self._failed: FramingError | None = None

    @property
    def buffered(self) -> int:
        """Bytes held that do not form a complete message yet."""
        return len(self._buf) - self._pos

    @property
    def in_frame(self) -> bool:
        """True when a partial prefix or message is held (an EOF now would truncate it)."""
        return len(self._buf) > self._pos

    @property
    def error(self) -> FramingError | None:
        """Why the stream is bad, once it is; the decoder takes nothing more after that."""
        return self._failed

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Take ``data`` from the stream; return the messages it completed, in order.

        Never raises for what the peer sent: on a bad prefix (``MessageTooLargeError`` for an
        oversize announcement) it returns the messages completed before it and sets ``error``;
        every later call returns nothing."""
        if self._failed is not None:
            return []
        buf = self._buf
        buf += data
        out: list[bytes] = []
        pos = self._pos
        end = len(buf)
        need = self._need
        limit = self._limit
        try:
            while True:
                if need < 0:
                    if pos >= end:
                        break
                    first = buf[pos]
                    if first < 0x80:  # one-byte prefix: the common small-message case
                        need = first
                        pos += 1
                    else:
                        size, used = _read_varint(buf, pos, end)
                        if used == 0:
                            break  # the prefix is incomplete
                        need = size
                        pos += used
                    if need > limit:
                        raise MessageTooLargeError(need, limit)
                if end - pos < need:
                    break
                out.append(bytes(buf[pos : pos + need]))
                pos += need
                need = -1
        except FramingError as exc:
            self._failed = exc
            self._buf = bytearray()
            self._pos = 0
            self._need = -1
            return out
        self._need = need
        if pos == end:
            buf.clear()
            pos = 0
        elif pos >= _COMPACT_AT:
            del buf[:pos]
            pos = 0
        self._pos = pos
        return out

    def eof(self) -> FramingError | None:
        """The stream ended: the error if it stopped inside a frame (``TruncatedFrameError``)
        or was already bad, else None."""
        if self._failed is None and self.in_frame:
            held = self.buffered
            if self._need >= 0:
                detail = f"{held} of the {self._need} bytes of a message"
            else:
                detail = f"{held} bytes of a length prefix"
            self._failed = TruncatedFrameError(f"stream ended after {detail}")
        return self._failed


def _read_varint(buf: bytearray, pos: int, end: int) -> tuple[int, int]:
    """Decode a varint at ``pos``: (value, bytes used), or (0, 0) if it is incomplete."""
    value = 0
    shift = 0
    i = pos
    while i < end:
        byte = buf[i]
        value |= (byte & 0x7F) << shift
        i += 1
        if byte < 0x80:
            if byte == 0 and i - pos > 1:
                raise FramingError("length prefix is not minimal")
            return value, i - pos
        shift += 7
        if i - pos >= MAX_PREFIX_SIZE:
            raise FramingError(f"length prefix longer than {MAX_PREFIX_SIZE} bytes")
    return 0, 0
