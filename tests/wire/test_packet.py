"""The datagram codec: golden bytes, round trips, fuzzing, and one test per decode error."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rudp.errors import DecodeError
from rudp.wire import packet as P
from rudp.wire.packet import (
    FLAG_DSACK,
    FLAG_FIN,
    FLAG_PING,
    HEADER_SIZE,
    MAX_DATAGRAM_SIZE,
    MAX_SACK_BLOCKS,
    SACK_BLOCK,
    SEGMENT,
    TYPE_ACK,
    TYPE_DATA,
    Cookie,
    CookieEcho,
    Flags,
    Init,
    PacketType,
    PathChallenge,
    PathResponse,
    Reset,
    ResetReason,
    decode_control,
    encode_cookie,
    encode_segment,
    pack_segment,
    parse_init,
    parse_segment,
    peek_header,
)
from rudp.wire.seqnum import MASK32
from tests.wire.decoders import check_decoders

HALF = 2**31
VT_DATA = 0x11
VT_ACK = 0x12

u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, MASK32)
cids = st.integers(1, MASK32)
cookie_bytes = st.binary(min_size=1, max_size=256)


# --- strategies -------------------------------------------------------------------------------


@st.composite
def sack_blocks(draw: st.DrawFn, ack: int, dsack: bool) -> list[tuple[int, int]]:
    """0-4 blocks that satisfy the rules: above ack, non-empty, disjoint; optional D-SACK first."""
    k = draw(st.integers(0, MAX_SACK_BLOCKS - (1 if dsack else 0)))
    edges = sorted(draw(st.sets(st.integers(0, HALF - 1), min_size=2 * k, max_size=2 * k)))
    blocks = [((ack + edges[2 * i]) & MASK32, (ack + edges[2 * i + 1]) & MASK32) for i in range(k)]
    blocks = list(draw(st.permutations(blocks)))
    if dsack:
        left = draw(u32)
        blocks.insert(0, (left, (left + draw(st.integers(1, HALF - 1))) & MASK32))
    return blocks


@st.composite
def segment_fields(draw: st.DrawFn) -> dict[str, Any]:
    ptype = draw(st.sampled_from([TYPE_DATA, TYPE_ACK]))
    ack = draw(u32)
    dsack = draw(st.booleans())
    sacks = draw(sack_blocks(ack, dsack))
    flags = (FLAG_DSACK if dsack else 0) | draw(st.sampled_from([0, FLAG_PING]))
    payload = b""
    if ptype == TYPE_DATA:
        fin = draw(st.booleans())
        flags |= FLAG_FIN if fin else 0
        payload = draw(st.binary(min_size=0 if fin else 1, max_size=300))
    return {
        "ptype": ptype,
        "flags": flags,
        "window": draw(u16),
        "cid": draw(cids),
        "seq": draw(u32),
        "ack": ack,
        "tsval": draw(u32),
        "tsecr": draw(u32),
        "sacks": tuple(sacks),
        "payload": payload,
    }


inits = st.builds(
    Init,
    client_cid=cids,
    client_isn=u32,
    max_payload=st.integers(16, 65000),
    window_scale=st.integers(0, 14),
    window=u32,
    tsval=u32,
    pad_to=st.one_of(st.just(0), st.integers(0, 1500)),
)
cookies = st.builds(
    Cookie,
    client_cid=cids,
    server_cid=cids,
    server_isn=u32,
    client_isn=u32,
    max_payload=st.integers(16, 65000),
    window_scale=st.integers(0, 14),
    window=u32,
    tsval=u32,
    tsecr=u32,
    cookie=cookie_bytes,
)
echoes = st.builds(
    CookieEcho, server_cid=cids, client_cid=cids, tsval=u32, tsecr=u32, cookie=cookie_bytes
)
resets = st.builds(
    Reset, cid=cids, seq=u32, reason=st.one_of(st.sampled_from(list(ResetReason)), u16)
)
tokens = st.binary(min_size=8, max_size=8)
paths = st.one_of(
    st.builds(PathChallenge, cid=cids, token=tokens),
    st.builds(PathResponse, cid=cids, token=tokens),
)
controls = st.one_of(inits, cookies, echoes, resets, paths)

valid_datagrams = st.one_of(
    segment_fields().map(lambda f: encode_segment(**f)),
    controls.map(lambda c: c.encode()),
)


@st.composite
def raw_segments(draw: st.DrawFn) -> bytes:
    """Header-shaped bytes with random fields, so decoding reaches the deeper checks."""
    vt = draw(st.one_of(st.sampled_from([VT_DATA, VT_ACK]), st.integers(0, 255)))
    flags = draw(st.integers(0, 255))
    ack = draw(u32)
    head = SEGMENT.pack(
        vt, flags, draw(u16), draw(st.integers(0, 3)), draw(u32), ack, draw(u32), draw(u32)
    )
    near = st.integers(-50, 50).map(lambda d: (ack + d) & MASK32)
    edges = draw(st.lists(st.one_of(near, u32), max_size=2 * 5))
    body = b"".join(struct.pack("!I", e) for e in edges)
    return head + body + draw(st.binary(max_size=8))


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(valid_datagrams))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "set", "truncate", "extend"]))
        if kind in ("flip", "set") and data:
            i = draw(st.integers(0, len(data) - 1))
            if kind == "flip":
                data[i] ^= 1 << draw(st.integers(0, 7))
            else:
                data[i] = draw(st.integers(0, 255))
        elif kind == "truncate":
            del data[draw(st.integers(0, len(data))) :]
        else:
            data += draw(st.binary(min_size=1, max_size=16))
    return bytes(data)


# --- helpers ------------------------------------------------------------------------------------


def raw(
    vt: int = VT_DATA,
    flags: int | None = None,
    window: int = 0,
    cid: int = 1,
    seq: int = 0,
    ack: int = 1000,
    tsval: int = 0,
    tsecr: int = 0,
    blocks: tuple[tuple[int, int], ...] = (),
    payload: bytes = b"x",
) -> bytes:
    """Pack a DATA/ACK datagram without any of pack_segment's checks."""
    if flags is None:
        flags = len(blocks)
    head = SEGMENT.pack(vt, flags, window, cid, seq, ack, tsval, tsecr)
    return head + b"".join(SACK_BLOCK.pack(left, right) for left, right in blocks) + payload


def patched(data: bytes, fmt: str, offset: int, *values: int) -> bytes:
    buf = bytearray(data)
    struct.pack_into(fmt, buf, offset, *values)
    return bytes(buf)


# --- constants and enums ----------------------------------------------------------------------


def test_layout_constants() -> None:
    assert SEGMENT.size == HEADER_SIZE == 24
    assert SACK_BLOCK.size == P.SACK_BLOCK_SIZE == 8
    assert P.PREFIX.size == P.PREFIX_SIZE == 8
    assert P.INIT_SIZE == 28 and P.COOKIE_SIZE == 36 and P.COOKIE_ECHO_SIZE == 20
    assert P.RESET_SIZE == 12
    assert MAX_SACK_BLOCKS == 4 and MAX_DATAGRAM_SIZE == 65507


def test_enums_match_int_constants() -> None:
    assert [int(t) for t in PacketType] == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert (P.TYPE_DATA, P.TYPE_ACK, P.TYPE_INIT) == (1, 2, 3)
    assert (P.TYPE_COOKIE, P.TYPE_COOKIE_ECHO, P.TYPE_RESET, P.TYPE_DATAGRAM) == (4, 5, 6, 7)
    assert (P.TYPE_PATH_CHALLENGE, P.TYPE_PATH_RESPONSE) == (8, 9)
    assert (Flags.DSACK, Flags.FIN, Flags.PING) == (FLAG_DSACK, FLAG_FIN, FLAG_PING)
    assert (FLAG_DSACK, FLAG_FIN, FLAG_PING, P.FLAGS_RESERVED) == (0x08, 0x10, 0x20, 0xC0)
    assert P.SACK_COUNT_MASK == 0x07
    assert Flags(0x3B) & Flags.FIN and Flags(0x3B) & 0x07 == 3
    assert [int(r) for r in ResetReason] == [1, 2, 3, 4, 5, 6, 7]


# --- golden bytes (these pin the diagrams in docs/protocol.md) ------------------------------


def test_segment_golden_bytes() -> None:
    data = encode_segment(
        TYPE_DATA,
        FLAG_PING,
        0x1234,
        0x01020304,
        0x05060708,
        0x090A0B0C,
        0x0D0E0F10,
        0x11121314,
        [(0x090A0B10, 0x090A0B20)],
        b"hi",
    )
    assert data == bytes.fromhex(
        "11 21 1234 01020304 05060708 090a0b0c 0d0e0f10 11121314 090a0b10 090a0b20 6869"
    )
    ack = encode_segment(TYPE_ACK, 0, 1, 2, 3, 4, 5, 6)
    assert ack == bytes.fromhex("12 00 0001 00000002 00000003 00000004 00000005 00000006")


def test_control_golden_bytes() -> None:
    init = Init(0x0A0B0C0D, 0x01020304, 1200, 7, 0x00100000, 0x11223344)
    assert init.encode() == bytes.fromhex(
        "13 00 0000 00000000 0a0b0c0d 01020304 04b0 07 00 00100000 11223344"
    )
    cookie = Cookie(0x0A, 0x0B, 0x0C, 0x0D, 1200, 3, 0x0E, 0x0F, 0x10, b"\xca\xfe")
    assert cookie.encode() == bytes.fromhex(
        "14 00 0002 0000000a 0000000b 0000000c 0000000d 04b0 03 00 0000000e 0000000f 00000010 cafe"
    )
    echo = CookieEcho(0x0B, 0x0A, 0x0F, 0x10, b"\xca\xfe")
    assert echo.encode() == bytes.fromhex("15 00 0002 0000000b 0000000a 0000000f 00000010 cafe")
    reset = Reset(0x0A, 0x01020304, ResetReason.REFUSED)
    assert reset.encode() == bytes.fromhex("16 00 0003 0000000a 01020304")
    challenge = PathChallenge(0x0A, bytes.fromhex("0102030405060708"))
    assert challenge.encode() == bytes.fromhex("18 00 0000 0000000a 0102030405060708")
    response = PathResponse(0x0B, bytes.fromhex("0102030405060708"))
    assert response.encode() == bytes.fromhex("19 00 0000 0000000b 0102030405060708")


# --- DATA/ACK round trips -----------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(segment_fields())
def test_segment_round_trip(f: dict[str, Any]) -> None:
    data = encode_segment(**f)
    assert len(data) == HEADER_SIZE + 8 * len(f["sacks"]) + len(f["payload"])
    expected_flags = f["flags"] | len(f["sacks"])
    for view in (data, bytearray(data), memoryview(data)):
        seg = parse_segment(view)
        assert seg[:8] == (
            f["ptype"],
            expected_flags,
            f["window"],
            f["cid"],
            f["seq"],
            f["ack"],
            f["tsval"],
            f["tsecr"],
        )
        assert seg[8] == f["sacks"]
        assert bytes(view[seg[9] :]) == f["payload"]
        assert peek_header(view) == (f["ptype"], f["cid"])


def test_parse_returns_shared_empty_sacks() -> None:
    seg = parse_segment(encode_segment(TYPE_ACK, 0, 0, 1, 0, 0, 0, 0))
    assert seg[8] == () and seg[9] == HEADER_SIZE


def test_data_with_only_fin() -> None:
    data = encode_segment(TYPE_DATA, FLAG_FIN, 0, 1, 0, 0, 0, 0)
    seg = parse_segment(data)
    assert seg[1] == FLAG_FIN and seg[9] == len(data) == HEADER_SIZE


def test_largest_datagram() -> None:
    payload = b"z" * (MAX_DATAGRAM_SIZE - HEADER_SIZE)
    data = encode_segment(TYPE_DATA, 0, 0, 1, 0, 0, 0, 0, payload=payload)
    assert len(data) == MAX_DATAGRAM_SIZE
    assert parse_segment(data)[9] == HEADER_SIZE
    with pytest.raises(ValueError, match="exceeds"):
        encode_segment(TYPE_DATA, 0, 0, 1, 0, 0, 0, 0, payload=payload + b"z")


# --- pack_segment -------------------------------------------------------------------------------


def test_pack_segment_at_offset_inside_larger_buffer() -> None:
    buf = bytearray(b"\xaa" * 300)
    sacks = [(5000, 6000), (7000, 7100)]
    end = pack_segment(buf, 17, TYPE_DATA, FLAG_PING, 77, 9, 1234, 4000, 11, 12, sacks)
    assert end == 17 + HEADER_SIZE + 2 * 8
    assert buf[:17] == b"\xaa" * 17
    assert buf[end:] == b"\xaa" * (300 - end)
    buf[end : end + 4] = b"data"
    view = memoryview(buf)[17 : end + 4]
    assert parse_segment(view) == (
        TYPE_DATA,
        FLAG_PING | 2,
        77,
        9,
        1234,
        4000,
        11,
        12,
        ((5000, 6000), (7000, 7100)),
        end - 17,
    )
    expected = encode_segment(TYPE_DATA, FLAG_PING, 77, 9, 1234, 4000, 11, 12, sacks, b"data")
    assert bytes(view) == expected


def test_pack_segment_into_memoryview() -> None:
    backing = bytearray(64)
    end = pack_segment(memoryview(backing)[8:], 0, TYPE_ACK, 0, 1, 2, 3, 4, 5, 6)
    assert end == HEADER_SIZE
    assert parse_segment(backing[8 : 8 + end])[:8] == (TYPE_ACK, 0, 1, 2, 3, 4, 5, 6)


def test_pack_segment_sets_count_and_keeps_other_flags() -> None:
    buf = bytearray(64)
    pack_segment(buf, 0, TYPE_ACK, FLAG_PING | FLAG_DSACK | 0x07, 0, 1, 0, 100, 0, 0, [(5, 9)])
    assert buf[1] == FLAG_PING | FLAG_DSACK | 1
    pack_segment(buf, 0, TYPE_ACK, 0x03, 0, 1, 0, 100, 0, 0)
    assert buf[1] == 0


def test_pack_segment_masks_32_bit_fields() -> None:
    buf = bytearray(64)
    big = 2**32
    pack_segment(
        buf, 0, TYPE_ACK, 0, 0, 1, big + 1, big + 2, big + 3, big + 4, [(big + 5, 3 * big + 9)]
    )
    assert parse_segment(buf[:32])[4:9] == (1, 2, 3, 4, ((5, 9),))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"sacks": [(1, 2)] * 5}, "at most 4 SACK blocks"),
        ({"window": 0x10000}, "cannot pack"),
        ({"window": -1}, "cannot pack"),
        ({"cid": 0}, "connection id 0"),
        ({"cid": 2**32}, "cannot pack"),
        ({"ptype": PacketType.INIT}, "DATA or ACK"),
        ({"ptype": 0}, "DATA or ACK"),
        ({"flags": 0x40}, "reserved flag bits"),
        ({"flags": 0x80}, "reserved flag bits"),
        ({"flags": 0x100}, "reserved flag bits"),
        ({"ptype": TYPE_ACK, "flags": FLAG_FIN}, "FIN is not allowed"),
        ({"flags": FLAG_DSACK}, "DSACK flag without"),
        ({"buf": bytearray(23)}, "cannot pack"),
        ({"offset": 10, "buf": bytearray(40), "sacks": [(1, 2)]}, "cannot pack"),
    ],
)
def test_pack_segment_rejects_misuse(kwargs: dict[str, Any], match: str) -> None:
    args: dict[str, Any] = {
        "buf": bytearray(100),
        "offset": 0,
        "ptype": TYPE_DATA,
        "flags": 0,
        "window": 0,
        "cid": 1,
        "seq": 0,
        "ack": 0,
        "tsval": 0,
        "tsecr": 0,
        "sacks": (),
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=match) as info:
        pack_segment(**args)
    assert not isinstance(info.value, DecodeError)


def test_encode_segment_rejects_payload_on_ack() -> None:
    with pytest.raises(ValueError, match="no payload"):
        encode_segment(TYPE_ACK, 0, 0, 1, 0, 0, 0, 0, payload=b"x")


# --- parse_segment: one test per decode error ------------------------------------------------


def test_raw_baselines_are_valid() -> None:
    # Each error case below changes one thing in one of these.
    parse_segment(raw())
    parse_segment(raw(vt=VT_ACK, payload=b""))
    parse_segment(raw(blocks=((1010, 1020), (1030, 1040))))
    parse_segment(raw(flags=FLAG_DSACK | 1, blocks=((10, 20),)))


def test_too_short() -> None:
    with pytest.raises(DecodeError, match="shorter than the 24-byte header"):
        parse_segment(raw()[:23])


def test_too_long() -> None:
    with pytest.raises(DecodeError, match="exceeds 65507"):
        parse_segment(raw(payload=b"x" * (MAX_DATAGRAM_SIZE - HEADER_SIZE + 1)))


@pytest.mark.parametrize("vt", [0x01, 0x21, 0xF1, 0x02])
def test_bad_version(vt: int) -> None:
    with pytest.raises(DecodeError, match="unsupported version"):
        parse_segment(raw(vt=vt))


@pytest.mark.parametrize("ptype", [0, 3, 4, 5, 6, 7, 15])
def test_not_data_or_ack(ptype: int) -> None:
    with pytest.raises(DecodeError, match=f"packet type {ptype} is not DATA or ACK"):
        parse_segment(raw(vt=0x10 | ptype))


@pytest.mark.parametrize("bit", [0x40, 0x80])
def test_reserved_flag_bits(bit: int) -> None:
    with pytest.raises(DecodeError, match="reserved flag bits"):
        parse_segment(raw(flags=bit))


@pytest.mark.parametrize("count", [5, 6, 7])
def test_sack_count_above_four(count: int) -> None:
    with pytest.raises(DecodeError, match=f"SACK block count {count} exceeds 4"):
        parse_segment(raw(flags=count, payload=b"x" * 100))


def test_dsack_flag_without_block() -> None:
    with pytest.raises(DecodeError, match="DSACK flag without a SACK block"):
        parse_segment(raw(flags=FLAG_DSACK))


def test_fin_on_ack() -> None:
    with pytest.raises(DecodeError, match="FIN flag on an ACK"):
        parse_segment(raw(vt=VT_ACK, flags=FLAG_FIN, payload=b""))


def test_truncated_sack_blocks() -> None:
    with pytest.raises(DecodeError, match="too short for 2 SACK blocks"):
        parse_segment(raw(flags=2, blocks=((1010, 1020),), payload=b""))


def test_ack_with_trailing_bytes() -> None:
    with pytest.raises(DecodeError, match="ACK has 1 trailing bytes"):
        parse_segment(raw(vt=VT_ACK, payload=b"\x00"))


def test_data_without_payload_or_fin() -> None:
    with pytest.raises(DecodeError, match="neither payload nor FIN"):
        parse_segment(raw(payload=b""))


def test_zero_connection_id() -> None:
    with pytest.raises(DecodeError, match="connection id 0"):
        parse_segment(raw(cid=0))


@pytest.mark.parametrize(
    ("flags", "blocks"),
    [
        (None, ((1005, 1005),)),  # left == right
        (FLAG_DSACK | 1, ((5, 5),)),  # also for a D-SACK block
        (None, ((1010, 1005),)),  # inverted
        (None, ((1000, 1000 + HALF),)),  # serial length 2**31: undefined, so inverted
        (None, ((1010, 1020), (1030, 1030))),  # the second block
    ],
)
def test_empty_or_inverted_sack_block(
    flags: int | None, blocks: tuple[tuple[int, int], ...]
) -> None:
    with pytest.raises(DecodeError, match="empty or inverted"):
        parse_segment(raw(flags=flags, blocks=blocks))


@pytest.mark.parametrize(
    ("flags", "ack", "blocks"),
    [
        (None, 1000, ((999, 1010),)),
        (None, 1000, ((1010, 1020), (10, 20))),
        (None, 5, ((0xFFFFFFF0, 3),)),  # below ack across the wrap
        (None, 1000, ((1000 + HALF, 1001 + HALF),)),  # 2**31 above ack counts as below
        (FLAG_DSACK | 2, 1000, ((10, 20), (30, 40))),  # only the first block is exempt
    ],
)
def test_sack_block_below_ack(
    flags: int | None, ack: int, blocks: tuple[tuple[int, int], ...]
) -> None:
    with pytest.raises(DecodeError, match="lies below ack"):
        parse_segment(raw(flags=flags, ack=ack, blocks=blocks))


@pytest.mark.parametrize(
    ("flags", "ack", "blocks"),
    [
        (None, 1000, ((1010, 1020), (1015, 1030))),
        (None, 1000, ((1015, 1030), (1010, 1016))),  # one sequence number in common
        (None, 1000, ((1010, 1040), (1015, 1020))),  # contained
        (None, 1000, ((1050, 1060), (1010, 1020), (1015, 1016))),  # third hits the second
        (None, 0xFFFFFFF0, ((0xFFFFFFF8, 8), (4, 20))),  # across the wrap
        (FLAG_DSACK | 3, 1000, ((1012, 1014), (1010, 1020), (1019, 1030))),  # after a D-SACK
    ],
)
def test_overlapping_sack_blocks(
    flags: int | None, ack: int, blocks: tuple[tuple[int, int], ...]
) -> None:
    with pytest.raises(DecodeError, match="overlaps another block"):
        parse_segment(raw(flags=flags, ack=ack, blocks=blocks))


@pytest.mark.parametrize(
    ("flags", "ack", "blocks"),
    [
        (FLAG_DSACK | 2, 1000, ((900, 910), (1010, 1020))),  # D-SACK below ack (RFC 2883 §4.1)
        (FLAG_DSACK | 2, 1000, ((1012, 1014), (1010, 1020))),  # D-SACK inside the next block
        (FLAG_DSACK | 1, 1000, ((0xFFFFFFF0, 0x10),)),  # D-SACK anywhere, across the wrap
        (None, 1000, ((1010, 1020), (1020, 1030))),  # adjacent blocks do not overlap
        (None, 1000, ((1000, 1001),)),  # starting right at ack
        (None, 0xFFFFFFF0, ((0xFFFFFFF8, 0x10),)),  # across the wrap
        (None, 1000, ((1000, 999 + HALF),)),  # longest allowed block
        (None, 1000, tuple((1000 + 10 * i, 1005 + 10 * i) for i in range(4))),
    ],
)
def test_accepted_sack_layouts(
    flags: int | None, ack: int, blocks: tuple[tuple[int, int], ...]
) -> None:
    seg = parse_segment(raw(flags=flags, ack=ack, blocks=blocks))
    assert seg[8] == blocks


# --- peek_header --------------------------------------------------------------------------------


@pytest.mark.parametrize("ptype", list(PacketType))
def test_peek_header_known_types(ptype: PacketType) -> None:
    data = bytes([0x10 | ptype, 0]) + b"\x00\x00" + (0xDEADBEEF).to_bytes(4, "big")
    assert peek_header(data) == (ptype, 0xDEADBEEF)


def test_peek_header_errors() -> None:
    with pytest.raises(DecodeError, match="shorter than the prefix"):
        peek_header(b"\x11" * 7)
    with pytest.raises(DecodeError, match="unsupported version 2"):
        peek_header(b"\x21" + b"\x00" * 7)
    for ptype in (0, 10, 15):
        with pytest.raises(DecodeError, match=f"unknown packet type {ptype}"):
            peek_header(bytes([0x10 | ptype]) + b"\x00" * 7)


# --- control packets ----------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(controls)
def test_control_round_trip(packet: P.ControlPacket) -> None:
    data = packet.encode()
    for view in (data, bytearray(data), memoryview(data)):
        decoded = decode_control(view)
        assert type(decoded) is type(packet)
        assert decoded == packet
        assert type(packet).decode(view) == packet
    dst = 0 if isinstance(packet, Init) else int.from_bytes(data[4:8], "big")
    assert peek_header(data)[1] == dst


@given(inits)
def test_init_padding(init: Init) -> None:
    data = init.encode()
    assert len(data) == max(P.INIT_SIZE, init.pad_to)
    assert data[P.INIT_SIZE :] == bytes(len(data) - P.INIT_SIZE)
    assert Init.decode(data).pad_to == len(data)


def test_init_accepts_any_padding_content() -> None:
    data = Init(1, 2, 1200, 0, 3, 4).encode() + b"\xff" * 100
    init = Init.decode(data)
    assert init == Init(1, 2, 1200, 0, 3, 4) and init.pad_to == 128


def test_reset_reasons() -> None:
    known = Reset.decode(Reset(1, 2, 4).encode())
    assert known.reason is ResetReason.TIMEOUT
    for value in (0, 8, 0xFFFF):
        unknown = Reset.decode(Reset(1, 2, value).encode())
        assert unknown.reason == value and type(unknown.reason) is int


INIT = Init(7, 8, 1200, 7, 65536, 9).encode()
COOKIE = Cookie(7, 11, 12, 8, 1200, 7, 65536, 13, 9, b"secret").encode()
ECHO = CookieEcho(11, 7, 14, 13, b"secret").encode()
RESET = Reset(7, 99, ResetReason.ABORT).encode()
CHALLENGE = PathChallenge(7, b"12345678").encode()
RESPONSE = PathResponse(7, b"12345678").encode()


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "empty datagram"),
        (raw(), "packet type 1 is not a control packet"),
        (raw(vt=VT_ACK, payload=b""), "packet type 2 is not a control packet"),
        (b"\x27" + INIT[1:], "unsupported version 2"),
        (b"\x17" + INIT[1:], "packet type 7 is not a control packet"),
        (b"\x1a" + INIT[1:], "packet type 10 is not a control packet"),
        # INIT
        (INIT[:27], "INIT of 27 bytes is shorter than 28"),
        (INIT + bytes(MAX_DATAGRAM_SIZE - 27), "exceeds"),
        (patched(INIT, "!B", 1, 1), "INIT flags must be 0"),
        (patched(INIT, "!H", 2, 1), "u16 and destination cid must be 0"),
        (patched(INIT, "!I", 4, 1), "u16 and destination cid must be 0"),
        (patched(INIT, "!B", 19, 1), "INIT reserved byte"),
        (patched(INIT, "!I", 8, 0), "client_cid must be in"),
        (patched(INIT, "!H", 16, 15), "max_payload must be in"),
        (patched(INIT, "!H", 16, 65001), "max_payload must be in"),
        (patched(INIT, "!B", 18, 15), "window_scale must be in"),
        # COOKIE
        (COOKIE[:-1], "does not match cookie length"),
        (COOKIE + b"\x00", "does not match cookie length"),
        (COOKIE[:35], "shorter than 36"),
        (patched(COOKIE[:36], "!H", 2, 0), "cookie length must be in"),
        (patched(COOKIE[:36], "!H", 2, 257) + bytes(257), "cookie length must be in"),
        (patched(COOKIE, "!B", 1, 0x10), "COOKIE flags must be 0"),
        (patched(COOKIE, "!I", 4, 0), "client_cid must be in"),
        (patched(COOKIE, "!I", 8, 0), "server_cid must be in"),
        (patched(COOKIE, "!H", 20, 65001), "max_payload must be in"),
        (patched(COOKIE, "!B", 22, 15), "window_scale must be in"),
        (patched(COOKIE, "!B", 23, 1), "COOKIE reserved byte"),
        # COOKIE-ECHO
        (ECHO[:-1], "does not match cookie length"),
        (ECHO + b"\x00", "does not match cookie length"),
        (ECHO[:19], "shorter than 20"),
        (patched(ECHO[:20], "!H", 2, 0), "cookie length must be in"),
        (patched(ECHO[:20], "!H", 2, 257) + bytes(257), "cookie length must be in"),
        (patched(ECHO, "!B", 1, 0x20), "COOKIE-ECHO flags must be 0"),
        (patched(ECHO, "!I", 4, 0), "server_cid must be in"),
        (patched(ECHO, "!I", 8, 0), "client_cid must be in"),
        # RESET
        (RESET[:11], "shorter than 12"),
        (RESET + b"\x00", "RESET of 13 bytes, expected 12"),
        (patched(RESET, "!B", 1, 1), "RESET flags must be 0"),
        (patched(RESET, "!I", 4, 0), "cid must be in"),
        # PATH_CHALLENGE / PATH_RESPONSE
        (CHALLENGE[:15], "PATH_CHALLENGE of 15 bytes is shorter than 16"),
        (CHALLENGE + b"\x00", "PATH_CHALLENGE of 17 bytes, expected 16"),
        (patched(CHALLENGE, "!B", 1, 1), "PATH_CHALLENGE flags must be 0"),
        (patched(CHALLENGE, "!H", 2, 1), "PATH_CHALLENGE reserved u16 must be 0"),
        (patched(CHALLENGE, "!I", 4, 0), "cid must be in"),
        (RESPONSE[:8], "PATH_RESPONSE of 8 bytes is shorter than 16"),
        (patched(RESPONSE, "!I", 4, 0), "cid must be in"),
    ],
)
def test_decode_control_errors(data: bytes, match: str) -> None:
    with pytest.raises(DecodeError, match=match):
        decode_control(data)


@pytest.mark.parametrize(
    ("cls", "data"),
    [(Init, COOKIE), (Cookie, INIT), (CookieEcho, RESET), (Reset, ECHO), (Init, raw())],
)
def test_decode_checks_the_type(cls: Any, data: bytes) -> None:
    with pytest.raises(DecodeError, match="not a"):
        cls.decode(data)


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: Init(0, 0, 1200, 0, 0, 0), "client_cid"),
        (lambda: Init(True, 0, 1200, 0, 0, 0), "client_cid must be an int"),
        (lambda: Init(1, 2**32, 1200, 0, 0, 0), "client_isn"),
        (lambda: Init(1, 0, 15, 0, 0, 0), "max_payload"),
        (lambda: Init(1, 0, 1200, 15, 0, 0), "window_scale"),
        (lambda: Init(1, 0, 1200, 0, -1, 0), "window"),
        (lambda: Init(1, 0, 1200, 0, 0, 0, pad_to=MAX_DATAGRAM_SIZE + 1), "pad_to"),
        (lambda: Init(1, 0, 1200.0, 0, 0, 0), "max_payload must be an int"),  # type: ignore[arg-type]
        (lambda: Cookie(1, 0, 0, 0, 1200, 0, 0, 0, 0, b"c"), "server_cid"),
        (lambda: Cookie(1, 1, 0, 0, 1200, 0, 0, 0, 0, b""), "cookie length"),
        (lambda: Cookie(1, 1, 0, 0, 1200, 0, 0, 0, 0, b"c" * 257), "cookie length"),
        (lambda: Cookie(1, 1, 0, 0, 1200, 0, 0, 0, 0, bytearray(b"c")), "cookie must be bytes"),  # type: ignore[arg-type]
        (lambda: CookieEcho(1, 0, 0, 0, b"c"), "client_cid"),
        (lambda: CookieEcho(1, 1, 0, 2**32, b"c"), "tsecr"),
        (lambda: Reset(0, 0, 1), "cid"),
        (lambda: Reset(1, 0, 0x10000), "reason"),
        (lambda: PathChallenge(0, b"12345678"), "cid"),
        (lambda: PathChallenge(1, b"1234567"), "token must be 8 bytes"),
        (lambda: PathResponse(1, bytearray(8)), "token must be 8 bytes"),  # type: ignore[arg-type]
    ],
)
def test_control_constructor_rejects_bad_fields(factory: Callable[[], object], match: str) -> None:
    with pytest.raises(ValueError, match=match) as info:
        factory()
    assert not isinstance(info.value, DecodeError)


def test_control_packets_are_frozen_and_hashable() -> None:
    reset = Reset(1, 2, ResetReason.ABORT)
    with pytest.raises(AttributeError):
        reset.cid = 5  # type: ignore[misc]
    assert hash(Init(1, 2, 1200, 0, 3, 4, pad_to=9)) == hash(Init(1, 2, 1200, 0, 3, 4))


# --- fuzzing: every decoder raises only DecodeError ------------------------------------------


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes(data: bytes) -> None:
    check_decoders(data)


@settings(max_examples=400, deadline=None)
@given(raw_segments())
def test_header_shaped_bytes(data: bytes) -> None:
    check_decoders(data)


@settings(max_examples=600, deadline=None)
@given(mutated())
def test_mutated_valid_datagrams(data: bytes) -> None:
    check_decoders(data)


@settings(max_examples=100, deadline=None)
@given(valid_datagrams)
def test_decoders_accept_views(data: bytes) -> None:
    check_decoders(data)
    for view in (bytearray(data), memoryview(data)):
        ptype, _ = peek_header(view)
        if ptype in (TYPE_DATA, TYPE_ACK):
            assert parse_segment(view) == parse_segment(data)
        else:
            assert decode_control(view) == decode_control(data)


def test_encode_cookie_refuses_what_does_not_fit() -> None:
    with pytest.raises(ValueError, match="cookie length"):
        encode_cookie(1, 2, 3, 4, 1200, 7, 65536, 5, 6, b"")
    with pytest.raises(ValueError, match="cannot pack COOKIE"):
        encode_cookie(1, 2**32, 3, 4, 1200, 7, 65536, 5, 6, b"c")


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (INIT[:7], "shorter than the prefix"),
        (COOKIE, "not a INIT"),
        (INIT[:27], "shorter than 28"),
        (INIT + bytes(MAX_DATAGRAM_SIZE - 27), "exceeds"),
    ],
)
def test_parse_init_errors(data: bytes, match: str) -> None:
    with pytest.raises(DecodeError, match=match):
        parse_init(data)
