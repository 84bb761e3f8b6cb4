"""The datagram codec: bytes <-> values, no state, no I/O.

Every datagram starts with the same 8-byte prefix (version|type, flags, a type-specific u16,
destination connection id). DATA and ACK, the hot path, are packed into and parsed out of
caller-owned buffers through precompiled ``struct.Struct`` objects and return plain tuples, so
that the codec allocates nothing per packet beyond the tuples ``unpack_from`` returns. The rare
handshake and reset packets are frozen dataclasses.

Errors: what a peer sent wrong raises :class:`~rudp.errors.DecodeError` (and nothing else);
what the local caller got wrong raises ``ValueError``. The byte layout is drawn in
``docs/protocol.md`` ("Wire format").
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final, Self

from rudp.errors import DecodeError

from .seqnum import MASK32

__all__ = [
    "COOKIE_ECHO_SIZE",
    "COOKIE_SIZE",
    "FLAG_DSACK",
    "FLAG_FIN",
    "FLAG_PING",
    "FLAGS_RESERVED",
    "HEADER_SIZE",
    "INIT_SIZE",
    "MAX_COOKIE_SIZE",
    "MAX_DATAGRAM_SIZE",
    "MAX_PAYLOAD_MAX",
    "MAX_PAYLOAD_MIN",
    "MAX_SACK_BLOCKS",
    "MAX_WINDOW_SCALE",
    "PATH_SIZE",
    "PATH_TOKEN_SIZE",
    "PREFIX",
    "PREFIX_SIZE",
    "RESET_SIZE",
    "SACK_BLOCK",
    "SACK_BLOCK_SIZE",
    "SACK_COUNT_MASK",
    "SEGMENT",
    "TYPE_ACK",
    "TYPE_COOKIE",
    "TYPE_COOKIE_ECHO",
    "TYPE_DATA",
    "TYPE_INIT",
    "TYPE_DATAGRAM",
    "TYPE_PATH_CHALLENGE",
    "TYPE_PATH_RESPONSE",
    "TYPE_RESET",
    "VERSION",
    "ControlPacket",
    "Cookie",
    "CookieEcho",
    "Flags",
    "Init",
    "PacketType",
    "PathChallenge",
    "PathResponse",
    "Reset",
    "ResetReason",
    "Segment",
    "decode_control",
    "encode_cookie",
    "encode_segment",
    "pack_segment",
    "parse_init",
    "parse_segment",
    "peek_header",
]

VERSION: Final = 1


class PacketType(enum.IntEnum):
    """The low 4 bits of byte 0."""

    DATA = 1
    ACK = 2
    INIT = 3
    COOKIE = 4
    COOKIE_ECHO = 5
    RESET = 6
    DATAGRAM = 7
    PATH_CHALLENGE = 8
    PATH_RESPONSE = 9


class Flags(enum.IntFlag):
    """Byte 1 of DATA and ACK. Bits 0-2 hold the SACK block count (see ``SACK_COUNT_MASK``)."""

    DSACK = 0x08  # the first SACK block is a D-SACK block (RFC 2883 §4)
    FIN = 0x10  # DATA only: FIN takes one sequence number after the payload
    PING = 0x20  # ask the peer for an immediate ACK (keepalive, zero-window probe)


class ResetReason(enum.IntEnum):
    """The u16 of a RESET. Decoding keeps values not listed here as plain ints."""

    ABORT = 1  # the application aborted the connection
    PROTOCOL_ERROR = 2
    REFUSED = 3  # handshake refused, or the accept queue is full
    TIMEOUT = 4
    UNKNOWN_CONNECTION = 5  # datagram for a connection the receiver does not have
    # Reasons of the message layer (rudp.messages), which ends a connection whose stream it
    # cannot frame; the core only carries them.
    MESSAGE_TOO_LARGE = 6  # a length prefix announced more than the receiver's limit
    MALFORMED_FRAME = 7  # a length prefix that is not a valid varint


# Plain-int twins of the enums, for the hot path (module globals beat enum attribute lookups).
TYPE_DATA: Final = 1
TYPE_ACK: Final = 2
TYPE_INIT: Final = 3
TYPE_COOKIE: Final = 4
TYPE_COOKIE_ECHO: Final = 5
TYPE_RESET: Final = 6
TYPE_DATAGRAM: Final = 7
TYPE_PATH_CHALLENGE: Final = 8
TYPE_PATH_RESPONSE: Final = 9
SACK_COUNT_MASK: Final = 0x07
FLAG_DSACK: Final = 0x08
FLAG_FIN: Final = 0x10
FLAG_PING: Final = 0x20
FLAGS_RESERVED: Final = 0xC0
_FLAGS_INVALID: Final = ~0x3F  # reserved bits, and anything outside the byte

_VT_DATA: Final = (VERSION << 4) | TYPE_DATA
_VT_ACK: Final = (VERSION << 4) | TYPE_ACK
_VT_INIT: Final = (VERSION << 4) | TYPE_INIT
_VT_COOKIE: Final = (VERSION << 4) | TYPE_COOKIE
_VT_COOKIE_ECHO: Final = (VERSION << 4) | TYPE_COOKIE_ECHO
_VT_RESET: Final = (VERSION << 4) | TYPE_RESET
_VT_PATH_CHALLENGE: Final = (VERSION << 4) | TYPE_PATH_CHALLENGE
_VT_PATH_RESPONSE: Final = (VERSION << 4) | TYPE_PATH_RESPONSE

PREFIX: Final = struct.Struct("!BBHI")  # ver|type, flags, u16, destination cid
PREFIX_SIZE: Final = 8
# ver|type, flags, window, dst cid, seq, ack, tsval, tsecr
SEGMENT: Final = struct.Struct("!BBHIIIII")
HEADER_SIZE: Final = 24
SACK_BLOCK: Final = struct.Struct("!II")  # left edge, right edge (RFC 2018 §3)
SACK_BLOCK_SIZE: Final = 8
MAX_SACK_BLOCKS: Final = 4
MAX_DATAGRAM_SIZE: Final = 65507  # largest UDP payload over IPv4: 65535 - 20 - 8

# Control packet bodies (after the prefix).
_INIT_BODY: Final = struct.Struct("!IIHBBII")
_COOKIE_BODY: Final = struct.Struct("!IIIHBBIII")
_COOKIE_ECHO_BODY: Final = struct.Struct("!III")
_RESET_BODY: Final = struct.Struct("!I")
# A whole INIT header and a whole COOKIE header in one struct each: the handshake fast path of
# a server under a flood unpacks and packs them without building a dataclass.
_INIT_HEADER: Final = struct.Struct("!BBHIIIHBBII")
_COOKIE_HEADER: Final = struct.Struct("!BBHIIIIHBBIII")
INIT_SIZE: Final = 28
COOKIE_SIZE: Final = 36  # without the cookie bytes
COOKIE_ECHO_SIZE: Final = 20  # without the cookie bytes
RESET_SIZE: Final = 12
PATH_TOKEN_SIZE: Final = 8
PATH_SIZE: Final = 16  # PATH_CHALLENGE and PATH_RESPONSE: prefix + 8-byte token
MAX_COOKIE_SIZE: Final = 256
MAX_PAYLOAD_MIN: Final = 16
MAX_PAYLOAD_MAX: Final = 65000
MAX_WINDOW_SCALE: Final = 14  # RFC 7323 §2.3

_HALF: Final = 0x80000000
_U32: Final = struct.Struct("!I")

Segment = tuple[int, int, int, int, int, int, int, int, tuple[tuple[int, int], ...], int]
"""(ptype, flags, window, cid, seq, ack, tsval, tsecr, sacks, payload_offset)."""

_seg_pack_into = SEGMENT.pack_into
_seg_unpack_from = SEGMENT.unpack_from
_sack_pack_into = SACK_BLOCK.pack_into
_sack_unpack_from = SACK_BLOCK.unpack_from


# --- DATA / ACK: the hot path -----------------------------------------------------------------


def pack_segment(
    buf: bytearray | memoryview,
    offset: int,
    ptype: int,
    flags: int,
    window: int,
    cid: int,
    seq: int,
    ack: int,
    tsval: int,
    tsecr: int,
    sacks: Sequence[tuple[int, int]] = (),
) -> int:
    """Write a DATA/ACK header and its SACK blocks into ``buf`` at ``offset``.

    Returns the offset just past them, where the caller copies the payload. The SACK count bits
    of ``flags`` are set from ``len(sacks)``; the other bits are kept. ``seq``, ``ack``, the
    timestamps and SACK edges are masked to 32 bits. The SACK blocks' meaning (ordering, not
    below ``ack``, no overlap) is not checked here: the receiver's ``parse_segment`` enforces it.
    Raises ValueError on local misuse (bad type or flags, > 4 blocks, a field out of range,
    ``buf`` too small).
    """
    n = len(sacks)
    if n > MAX_SACK_BLOCKS:
        raise ValueError(f"at most {MAX_SACK_BLOCKS} SACK blocks, got {n}")
    if ptype == TYPE_DATA:
        vt = _VT_DATA
    elif ptype == TYPE_ACK:
        vt = _VT_ACK
        if flags & FLAG_FIN:
            raise ValueError("FIN is not allowed on an ACK")
    else:
        raise ValueError(f"pack_segment packs DATA or ACK, not type {ptype}")
    if flags & _FLAGS_INVALID:
        raise ValueError(f"reserved flag bits set in {flags:#x}")
    if flags & FLAG_DSACK and not n:
        raise ValueError("DSACK flag without a SACK block")
    if cid == 0:
        raise ValueError("destination connection id 0 is reserved for INIT")
    try:
        _seg_pack_into(
            buf,
            offset,
            vt,
            (flags & ~SACK_COUNT_MASK) | n,
            window,
            cid,
            seq & MASK32,
            ack & MASK32,
            tsval & MASK32,
            tsecr & MASK32,
        )
        offset += HEADER_SIZE
        for left, right in sacks:
            _sack_pack_into(buf, offset, left & MASK32, right & MASK32)
            offset += SACK_BLOCK_SIZE
    except struct.error as exc:
        raise ValueError(f"cannot pack segment: {exc}") from None
    return offset


def encode_segment(
    ptype: int,
    flags: int,
    window: int,
    cid: int,
    seq: int,
    ack: int,
    tsval: int,
    tsecr: int,
    sacks: Sequence[tuple[int, int]] = (),
    payload: bytes | bytearray | memoryview = b"",
) -> bytes:
    """Return a whole DATA/ACK datagram (convenience for tests and rare paths)."""
    size = HEADER_SIZE + SACK_BLOCK_SIZE * len(sacks) + len(payload)
    if ptype == TYPE_ACK and payload:
        raise ValueError("an ACK carries no payload")
    if size > MAX_DATAGRAM_SIZE:
        raise ValueError(f"datagram of {size} bytes exceeds {MAX_DATAGRAM_SIZE}")
    buf = bytearray(size)
    offset = pack_segment(buf, 0, ptype, flags, window, cid, seq, ack, tsval, tsecr, sacks)
    buf[offset:] = payload
    return bytes(buf)


def parse_segment(data: bytes | bytearray | memoryview) -> Segment:
    """Decode and validate a DATA/ACK datagram (``data`` must be a byte buffer).

    Returns ``(ptype, flags, window, cid, seq, ack, tsval, tsecr, sacks, payload_offset)``;
    ``flags`` still holds the SACK count bits, ``sacks`` is ``()`` when there are none, and the
    payload is ``data[payload_offset:]``. Raises DecodeError naming the first problem found.
    """
    size = len(data)
    if size < HEADER_SIZE:
        raise DecodeError(f"segment of {size} bytes is shorter than the {HEADER_SIZE}-byte header")
    if size > MAX_DATAGRAM_SIZE:
        raise DecodeError(f"datagram of {size} bytes exceeds {MAX_DATAGRAM_SIZE}")
    vt, flags, window, cid, seq, ack, tsval, tsecr = _seg_unpack_from(data)
    if vt == _VT_DATA:
        ptype = TYPE_DATA
    elif vt == _VT_ACK:
        ptype = TYPE_ACK
        if flags & FLAG_FIN:
            raise DecodeError("FIN flag on an ACK")
    elif vt >> 4 != VERSION:
        raise DecodeError(f"unsupported version {vt >> 4}")
    else:
        raise DecodeError(f"packet type {vt & 0x0F} is not DATA or ACK")
    if flags & FLAGS_RESERVED:
        raise DecodeError(f"reserved flag bits set in {flags:#04x}")
    count = flags & SACK_COUNT_MASK
    if count > MAX_SACK_BLOCKS:
        raise DecodeError(f"SACK block count {count} exceeds {MAX_SACK_BLOCKS}")
    if cid == 0:
        raise DecodeError("destination connection id 0 on DATA/ACK")
    end = HEADER_SIZE + SACK_BLOCK_SIZE * count
    if size < end:
        raise DecodeError(f"segment of {size} bytes is too short for {count} SACK blocks")
    if ptype == TYPE_ACK:
        if size != end:
            raise DecodeError(f"ACK has {size - end} trailing bytes")
    elif size == end and not flags & FLAG_FIN:
        raise DecodeError("DATA with neither payload nor FIN")
    if not count:
        if flags & FLAG_DSACK:
            raise DecodeError("DSACK flag without a SACK block")
        return (ptype, flags, window, cid, seq, ack, tsval, tsecr, (), end)
    return (
        ptype,
        flags,
        window,
        cid,
        seq,
        ack,
        tsval,
        tsecr,
        _parse_sacks(data, count, ack, flags & FLAG_DSACK),
        end,
    )


def _parse_sacks(
    data: bytes | bytearray | memoryview, count: int, ack: int, dsack: int
) -> tuple[tuple[int, int], ...]:
    """Unpack and check ``count`` SACK blocks (the caller checked the length)."""
    if count == 1:
        sacks: tuple[tuple[int, int], ...] = (_sack_unpack_from(data, HEADER_SIZE),)
    else:
        sacks = tuple([_sack_unpack_from(data, off) for off in _SACK_OFFSETS[count]])
    # Blocks that must lie above ack, as (lo, hi) offsets from ack: below 2**32, so no wrap.
    spans: list[tuple[int, int]] = []
    skip = dsack  # a D-SACK block reports a duplicate and may lie anywhere (RFC 2883 §4)
    for left, right in sacks:
        length = (right - left) & MASK32
        if not 0 < length < _HALF:
            raise DecodeError(f"SACK block [{left}, {right}) is empty or inverted")
        if skip:
            skip = 0
            continue
        lo = (left - ack) & MASK32
        if lo >= _HALF:
            # RFC 2018 §3: a SACK block reports data received above the cumulative ACK.
            raise DecodeError(f"SACK block [{left}, {right}) lies below ack {ack}")
        hi = lo + length
        for other_lo, other_hi in spans:
            if lo < other_hi and other_lo < hi:
                raise DecodeError(f"SACK block [{left}, {right}) overlaps another block")
        spans.append((lo, hi))
    return sacks


_SACK_OFFSETS: Final = tuple(
    tuple(range(HEADER_SIZE, HEADER_SIZE + SACK_BLOCK_SIZE * n, SACK_BLOCK_SIZE))
    for n in range(MAX_SACK_BLOCKS + 1)
)


def peek_header(data: bytes | bytearray | memoryview) -> tuple[int, int]:
    """Return ``(ptype, destination cid)`` after checking length, version and type.

    Enough for the endpoint to route a datagram; the full decode happens in the connection.
    """
    if len(data) < PREFIX_SIZE:
        raise DecodeError(f"datagram of {len(data)} bytes is shorter than the prefix")
    vt = data[0]
    if vt >> 4 != VERSION:
        raise DecodeError(f"unsupported version {vt >> 4}")
    ptype = vt & 0x0F
    if not TYPE_DATA <= ptype <= TYPE_PATH_RESPONSE:
        raise DecodeError(f"unknown packet type {ptype}")
    cid: int = _U32.unpack_from(data, 4)[0]
    return (ptype, cid)


# --- handshake and reset packets ----------------------------------------------------------------


def _check_int(name: str, value: object, lo: int, hi: int) -> None:
    """Raise ValueError unless ``value`` is an int (not a bool) in ``[lo, hi]``."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name} must be an int, got {type(value).__name__}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be in [{lo}, {hi}], got {value}")


def _check_cookie(cookie: object) -> None:
    if type(cookie) is not bytes:
        raise ValueError(f"cookie must be bytes, got {type(cookie).__name__}")
    if not 1 <= len(cookie) <= MAX_COOKIE_SIZE:
        raise ValueError(f"cookie length must be in [1, {MAX_COOKIE_SIZE}], got {len(cookie)}")


def _check_prefix(
    data: bytes | bytearray | memoryview, vt_expected: int, min_size: int, name: str
) -> tuple[int, int]:
    """Check a control packet's prefix and minimum length; return ``(u16, dst cid)``."""
    size = len(data)
    if size < PREFIX_SIZE:
        raise DecodeError(f"datagram of {size} bytes is shorter than the prefix")
    vt, flags, u16, cid = PREFIX.unpack_from(data)
    if vt != vt_expected:
        raise DecodeError(f"not a {name} packet (byte 0 is {vt:#04x})")
    if size < min_size:
        raise DecodeError(f"{name} of {size} bytes is shorter than {min_size}")
    if size > MAX_DATAGRAM_SIZE:
        raise DecodeError(f"datagram of {size} bytes exceeds {MAX_DATAGRAM_SIZE}")
    if flags:
        raise DecodeError(f"{name} flags must be 0, got {flags:#04x}")
    return u16, cid


@dataclass(frozen=True, slots=True)
class Init:
    """Client -> server, first handshake packet. Carries no state the server must keep.

    ``window`` is in bytes, unscaled; ``tsval`` in microsecond ticks (RFC 7323 §3).
    ``pad_to`` pads the datagram with zeros so the server's 3x anti-amplification budget
    (RFC 9000 §8.1, §14.1) covers its COOKIE reply; it is not part of equality.
    """

    client_cid: int
    client_isn: int
    max_payload: int
    window_scale: int
    window: int
    tsval: int
    pad_to: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        _check_int("client_cid", self.client_cid, 1, MASK32)
        _check_int("client_isn", self.client_isn, 0, MASK32)
        _check_int("max_payload", self.max_payload, MAX_PAYLOAD_MIN, MAX_PAYLOAD_MAX)
        _check_int("window_scale", self.window_scale, 0, MAX_WINDOW_SCALE)
        _check_int("window", self.window, 0, MASK32)
        _check_int("tsval", self.tsval, 0, MASK32)
        _check_int("pad_to", self.pad_to, 0, MAX_DATAGRAM_SIZE)

    def encode(self) -> bytes:
        buf = bytearray(max(INIT_SIZE, self.pad_to))
        PREFIX.pack_into(buf, 0, _VT_INIT, 0, 0, 0)
        _INIT_BODY.pack_into(
            buf,
            PREFIX_SIZE,
            self.client_cid,
            self.client_isn,
            self.max_payload,
            self.window_scale,
            0,
            self.window,
            self.tsval,
        )
        return bytes(buf)

    @classmethod
    def decode(cls, data: bytes | bytearray | memoryview) -> Self:
        """Decode an INIT of at least 28 bytes; padding may hold anything."""
        client_cid, isn, max_payload, wscale, window, tsval = parse_init(data)
        return cls(client_cid, isn, max_payload, wscale, window, tsval, len(data))


def parse_init(data: bytes | bytearray | memoryview) -> tuple[int, int, int, int, int, int]:
    """Check an INIT and return ``(client_cid, client_isn, max_payload, window_scale, window,
    tsval)``, or raise DecodeError. The tuple form of ``Init.decode`` for the server's hot path
    under a flood: the same checks, no dataclass."""
    size = len(data)
    if size < PREFIX_SIZE:
        raise DecodeError(f"datagram of {size} bytes is shorter than the prefix")
    if data[0] != _VT_INIT:
        raise DecodeError(f"not a INIT packet (byte 0 is {data[0]:#04x})")
    if size < INIT_SIZE:
        raise DecodeError(f"INIT of {size} bytes is shorter than {INIT_SIZE}")
    if size > MAX_DATAGRAM_SIZE:
        raise DecodeError(f"datagram of {size} bytes exceeds {MAX_DATAGRAM_SIZE}")
    _, flags, u16, cid, client_cid, isn, max_payload, wscale, reserved, window, tsval = (
        _INIT_HEADER.unpack_from(data)
    )
    if flags:
        raise DecodeError(f"INIT flags must be 0, got {flags:#04x}")
    if u16 or cid:
        raise DecodeError("INIT prefix u16 and destination cid must be 0")
    if reserved:
        raise DecodeError("INIT reserved byte must be 0")
    if not client_cid:
        raise DecodeError(f"INIT: client_cid must be in [1, {MASK32}], got 0")
    if not MAX_PAYLOAD_MIN <= max_payload <= MAX_PAYLOAD_MAX:
        bounds = f"[{MAX_PAYLOAD_MIN}, {MAX_PAYLOAD_MAX}]"
        raise DecodeError(f"INIT: max_payload must be in {bounds}, got {max_payload}")
    if wscale > MAX_WINDOW_SCALE:
        raise DecodeError(f"INIT: window_scale must be in [0, {MAX_WINDOW_SCALE}], got {wscale}")
    return client_cid, isn, max_payload, wscale, window, tsval


@dataclass(frozen=True, slots=True)
class Cookie:
    """Server -> client, answer to INIT; the server keeps no state until the echo comes back.

    ``client_isn`` echoes the INIT's so the client can drop blind spoofs. ``cookie`` is opaque
    to the client (its contents are described in docs/protocol.md, handshake section).
    """

    client_cid: int
    server_cid: int
    server_isn: int
    client_isn: int
    max_payload: int
    window_scale: int
    window: int
    tsval: int
    tsecr: int
    cookie: bytes

    def __post_init__(self) -> None:
        _check_int("client_cid", self.client_cid, 1, MASK32)
        _check_int("server_cid", self.server_cid, 1, MASK32)
        _check_int("server_isn", self.server_isn, 0, MASK32)
        _check_int("client_isn", self.client_isn, 0, MASK32)
        _check_int("max_payload", self.max_payload, MAX_PAYLOAD_MIN, MAX_PAYLOAD_MAX)
        _check_int("window_scale", self.window_scale, 0, MAX_WINDOW_SCALE)
        _check_int("window", self.window, 0, MASK32)
        _check_int("tsval", self.tsval, 0, MASK32)
        _check_int("tsecr", self.tsecr, 0, MASK32)
        _check_cookie(self.cookie)

    def encode(self) -> bytes:
        return encode_cookie(
            self.client_cid,
            self.server_cid,
            self.server_isn,
            self.client_isn,
            self.max_payload,
            self.window_scale,
            self.window,
            self.tsval,
            self.tsecr,
            self.cookie,
        )

    @classmethod
    def decode(cls, data: bytes | bytearray | memoryview) -> Self:
        """Decode a COOKIE whose length is exactly 36 + the cookie length in the prefix."""
        cookie_len, client_cid = _check_prefix(data, _VT_COOKIE, COOKIE_SIZE, "COOKIE")
        if len(data) != COOKIE_SIZE + cookie_len:
            raise DecodeError(
                f"COOKIE of {len(data)} bytes does not match cookie length {cookie_len}"
            )
        (
            server_cid,
            server_isn,
            client_isn,
            max_payload,
            wscale,
            reserved,
            window,
            tsval,
            tsecr,
        ) = _COOKIE_BODY.unpack_from(data, PREFIX_SIZE)
        if reserved:
            raise DecodeError("COOKIE reserved byte must be 0")
        cookie = bytes(data[COOKIE_SIZE:])
        try:
            return cls(
                client_cid,
                server_cid,
                server_isn,
                client_isn,
                max_payload,
                wscale,
                window,
                tsval,
                tsecr,
                cookie,
            )
        except ValueError as exc:
            raise DecodeError(f"COOKIE: {exc}") from None


def encode_cookie(
    client_cid: int,
    server_cid: int,
    server_isn: int,
    client_isn: int,
    max_payload: int,
    window_scale: int,
    window: int,
    tsval: int,
    tsecr: int,
    cookie: bytes,
) -> bytes:
    """A whole COOKIE datagram from its fields: ``Cookie(...).encode()`` without the dataclass
    and its per-field checks, for the server's reply path. The caller passes values in range
    (the endpoint takes them from a parsed INIT and its own config); ``struct`` still refuses
    any that do not fit their field (``ValueError``)."""
    if not 1 <= len(cookie) <= MAX_COOKIE_SIZE:
        raise ValueError(f"cookie length must be in [1, {MAX_COOKIE_SIZE}], got {len(cookie)}")
    try:
        header = _COOKIE_HEADER.pack(
            _VT_COOKIE,
            0,
            len(cookie),
            client_cid,
            server_cid,
            server_isn,
            client_isn,
            max_payload,
            window_scale,
            0,
            window,
            tsval,
            tsecr,
        )
    except struct.error as exc:
        raise ValueError(f"cannot pack COOKIE: {exc}") from None
    return header + cookie


@dataclass(frozen=True, slots=True)
class CookieEcho:
    """Client -> server, returns the cookie verbatim; the server creates the connection on it."""

    server_cid: int
    client_cid: int
    tsval: int
    tsecr: int
    cookie: bytes

    def __post_init__(self) -> None:
        _check_int("server_cid", self.server_cid, 1, MASK32)
        _check_int("client_cid", self.client_cid, 1, MASK32)
        _check_int("tsval", self.tsval, 0, MASK32)
        _check_int("tsecr", self.tsecr, 0, MASK32)
        _check_cookie(self.cookie)

    def encode(self) -> bytes:
        buf = bytearray(COOKIE_ECHO_SIZE + len(self.cookie))
        PREFIX.pack_into(buf, 0, _VT_COOKIE_ECHO, 0, len(self.cookie), self.server_cid)
        _COOKIE_ECHO_BODY.pack_into(buf, PREFIX_SIZE, self.client_cid, self.tsval, self.tsecr)
        buf[COOKIE_ECHO_SIZE:] = self.cookie
        return bytes(buf)

    @classmethod
    def decode(cls, data: bytes | bytearray | memoryview) -> Self:
        """Decode a COOKIE-ECHO whose length is exactly 20 + the cookie length in the prefix."""
        cookie_len, server_cid = _check_prefix(
            data, _VT_COOKIE_ECHO, COOKIE_ECHO_SIZE, "COOKIE-ECHO"
        )
        if len(data) != COOKIE_ECHO_SIZE + cookie_len:
            raise DecodeError(
                f"COOKIE-ECHO of {len(data)} bytes does not match cookie length {cookie_len}"
            )
        client_cid, tsval, tsecr = _COOKIE_ECHO_BODY.unpack_from(data, PREFIX_SIZE)
        try:
            return cls(server_cid, client_cid, tsval, tsecr, bytes(data[COOKIE_ECHO_SIZE:]))
        except ValueError as exc:
            raise DecodeError(f"COOKIE-ECHO: {exc}") from None


@dataclass(frozen=True, slots=True)
class Reset:
    """Either side: the connection ``cid`` (the receiver's id) is gone, for ``reason``.

    ``seq`` is the sender's next sequence number (32-bit wire value); a receiver may demand it
    be in window before acting, against blind resets (RFC 5961 §3 spirit). ``reason`` is a
    :class:`ResetReason` or any other u16 (decoding keeps unknown values as ints).
    """

    cid: int
    seq: int
    reason: int

    def __post_init__(self) -> None:
        _check_int("cid", self.cid, 1, MASK32)
        _check_int("seq", self.seq, 0, MASK32)
        _check_int("reason", self.reason, 0, 0xFFFF)

    def encode(self) -> bytes:
        buf = bytearray(RESET_SIZE)
        PREFIX.pack_into(buf, 0, _VT_RESET, 0, self.reason, self.cid)
        _RESET_BODY.pack_into(buf, PREFIX_SIZE, self.seq)
        return bytes(buf)

    @classmethod
    def decode(cls, data: bytes | bytearray | memoryview) -> Self:
        """Decode a RESET of exactly 12 bytes; a known reason comes back as ResetReason."""
        reason, cid = _check_prefix(data, _VT_RESET, RESET_SIZE, "RESET")
        if len(data) != RESET_SIZE:
            raise DecodeError(f"RESET of {len(data)} bytes, expected {RESET_SIZE}")
        (seq,) = _RESET_BODY.unpack_from(data, PREFIX_SIZE)
        if reason in _RESET_REASONS:
            reason = ResetReason(reason)
        try:
            return cls(cid, seq, reason)
        except ValueError as exc:
            raise DecodeError(f"RESET: {exc}") from None


_RESET_REASONS: Final = frozenset(ResetReason)


def _check_token(token: object) -> None:
    if type(token) is not bytes or len(token) != PATH_TOKEN_SIZE:
        raise ValueError(f"token must be {PATH_TOKEN_SIZE} bytes, got {token!r}")


def _decode_path(data: bytes | bytearray | memoryview, vt: int, name: str) -> tuple[int, bytes]:
    u16, cid = _check_prefix(data, vt, PATH_SIZE, name)
    if len(data) != PATH_SIZE:
        raise DecodeError(f"{name} of {len(data)} bytes, expected {PATH_SIZE}")
    if u16:
        raise DecodeError(f"{name} reserved u16 must be 0")
    if not cid:
        raise DecodeError(f"{name}: cid must be in [1, {MASK32}], got 0")
    return cid, bytes(data[PREFIX_SIZE:PATH_SIZE])


def _encode_path(vt: int, cid: int, token: bytes) -> bytes:
    return PREFIX.pack(vt, 0, 0, cid) + token


@dataclass(frozen=True, slots=True)
class PathChallenge:
    """Either side, to a peer address not yet validated: echo ``token`` back from there.

    A connection answers only a challenge that comes from its peer's current address, and
    moves to a new peer address only when a PATH_RESPONSE with its token comes from that
    address (RFC 9000 §8.2 path validation; docs/protocol.md, "Path validation").
    """

    cid: int
    token: bytes

    def __post_init__(self) -> None:
        _check_int("cid", self.cid, 1, MASK32)
        _check_token(self.token)

    def encode(self) -> bytes:
        return _encode_path(_VT_PATH_CHALLENGE, self.cid, self.token)

    @classmethod
    def decode(cls, data: bytes | bytearray | memoryview) -> Self:
        """Decode a PATH_CHALLENGE of exactly 16 bytes."""
        return cls(*_decode_path(data, _VT_PATH_CHALLENGE, "PATH_CHALLENGE"))


@dataclass(frozen=True, slots=True)
class PathResponse:
    """The answer to a PATH_CHALLENGE: the same ``token``, to the challenge's source."""

    cid: int
    token: bytes

    def __post_init__(self) -> None:
        _check_int("cid", self.cid, 1, MASK32)
        _check_token(self.token)

    def encode(self) -> bytes:
        return _encode_path(_VT_PATH_RESPONSE, self.cid, self.token)

    @classmethod
    def decode(cls, data: bytes | bytearray | memoryview) -> Self:
        """Decode a PATH_RESPONSE of exactly 16 bytes."""
        return cls(*_decode_path(data, _VT_PATH_RESPONSE, "PATH_RESPONSE"))


ControlPacket = Init | Cookie | CookieEcho | Reset | PathChallenge | PathResponse
"""What :func:`decode_control` returns."""

_CONTROL_DECODERS: Final[dict[int, Callable[[bytes | bytearray | memoryview], ControlPacket]]] = {
    _VT_INIT: Init.decode,
    _VT_COOKIE: Cookie.decode,
    _VT_COOKIE_ECHO: CookieEcho.decode,
    _VT_RESET: Reset.decode,
    _VT_PATH_CHALLENGE: PathChallenge.decode,
    _VT_PATH_RESPONSE: PathResponse.decode,
}


def decode_control(data: bytes | bytearray | memoryview) -> ControlPacket:
    """Decode an INIT, COOKIE, COOKIE-ECHO, RESET, PATH_CHALLENGE or PATH_RESPONSE;
    DecodeError for anything else."""
    if not data:
        raise DecodeError("empty datagram")
    vt = data[0]
    decoder = _CONTROL_DECODERS.get(vt)
    if decoder is None:
        if vt >> 4 != VERSION:
            raise DecodeError(f"unsupported version {vt >> 4}")
        raise DecodeError(f"packet type {vt & 0x0F} is not a control packet")
    return decoder(data)
