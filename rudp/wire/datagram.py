"""The DATAGRAM packet: one unreliable message inside a connection.

Layout (12-byte header, then the payload to the end of the UDP datagram)::

    byte 0   version (4 bits) | type 7 (4 bits)
    byte 1   flags, must be 0
    2-3      reserved, must be 0
    4-7      destination connection id (the receiver's)
    8-11     datagram number: counts this connection's DATAGRAM packets from 0, mod 2**32

The number lets the receiver discard duplicates the network made (a replay window, as in
RFC 4303 §3.4.3) without acknowledging anything: a DATAGRAM is never retransmitted.
"""

from __future__ import annotations

import struct
from typing import Final

from rudp.errors import DecodeError

from .packet import MAX_DATAGRAM_SIZE, TYPE_DATAGRAM, VERSION

__all__ = [
    "DATAGRAM_HEADER",
    "DATAGRAM_HEADER_SIZE",
    "ReplayWindow",
    "encode_datagram",
    "parse_datagram",
]

DATAGRAM_HEADER: Final = struct.Struct("!BBHII")
DATAGRAM_HEADER_SIZE: Final = 12
_VT_DATAGRAM: Final = (VERSION << 4) | TYPE_DATAGRAM
_MASK32: Final = 0xFFFFFFFF


def encode_datagram(cid: int, number: int, payload: bytes | bytearray | memoryview) -> bytes:
    """A DATAGRAM packet for the peer's connection ``cid``."""
    size = DATAGRAM_HEADER_SIZE + len(payload)
    if size > MAX_DATAGRAM_SIZE:
        raise ValueError(f"datagram of {size} bytes exceeds {MAX_DATAGRAM_SIZE}")
    return DATAGRAM_HEADER.pack(_VT_DATAGRAM, 0, 0, cid, number & _MASK32) + payload


def parse_datagram(data: bytes) -> tuple[int, int, bytes]:
    """``(destination cid, number, payload)``; ``DecodeError`` if the header is invalid."""
    if len(data) < DATAGRAM_HEADER_SIZE:
        raise DecodeError(f"DATAGRAM of {len(data)} bytes is shorter than its header")
    vt, flags, reserved, cid, number = DATAGRAM_HEADER.unpack_from(data)
    if vt != _VT_DATAGRAM:
        raise DecodeError(f"not a DATAGRAM packet (byte 0 is {vt:#04x})")
    if flags or reserved:
        raise DecodeError("DATAGRAM flags and reserved bits must be 0")
    if cid == 0:
        raise DecodeError("DATAGRAM for connection id 0")
    return cid, number, data[DATAGRAM_HEADER_SIZE:]


class ReplayWindow:
    """Accepts each 32-bit datagram number at most once, within ``size`` of the highest seen.

    A number more than ``size`` behind the highest is too old to tell from a duplicate and is
    refused too; so is one more than 2**31 ahead, which serial arithmetic reads as behind."""

    __slots__ = ("_top", "_bits", "_size", "_started")

    def __init__(self, size: int = 1024) -> None:
        if size < 1:
            raise ValueError(f"size must be >= 1, not {size}")
        self._size = size
        self._top = 0  # highest number accepted
        self._bits = 0  # bit i set: number top - i was accepted
        self._started = False

    def accept(self, number: int) -> bool:
        """True (and remember it) if ``number`` was not seen and is not too old."""
        if not self._started:
            self._started = True
            self._top = number
            self._bits = 1
            return True
        ahead = (number - self._top) & _MASK32
        if 0 < ahead < 0x80000000:
            if ahead >= self._size:  # never shift by a peer-chosen amount
                self._bits = 1
            else:
                self._bits = ((self._bits << ahead) | 1) & ((1 << self._size) - 1)
            self._top = number
            return True
        behind = (self._top - number) & _MASK32
        if behind >= self._size:
            return False
        mask = 1 << behind
        if self._bits & mask:
            return False
        self._bits |= mask
        return True
