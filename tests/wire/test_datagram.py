"""The DATAGRAM packet codec and its replay window."""

from __future__ import annotations

import pytest

from rudp.errors import DecodeError
from rudp.wire.datagram import (
    DATAGRAM_HEADER,
    DATAGRAM_HEADER_SIZE,
    ReplayWindow,
    encode_datagram,
    parse_datagram,
)
from rudp.wire.packet import MAX_DATAGRAM_SIZE, PacketType, peek_header


def test_golden_bytes() -> None:
    data = encode_datagram(0xDEADBEEF, 0x01020304, b"hi")
    assert data == b"\x17\x00\x00\x00\xde\xad\xbe\xef\x01\x02\x03\x04hi"
    assert DATAGRAM_HEADER.size == DATAGRAM_HEADER_SIZE == 12
    assert parse_datagram(data) == (0xDEADBEEF, 0x01020304, b"hi")
    assert peek_header(data) == (PacketType.DATAGRAM, 0xDEADBEEF)


def test_number_wraps_and_empty_payload() -> None:
    assert parse_datagram(encode_datagram(1, 2**32 + 5, b"")) == (1, 5, b"")


def test_encode_refuses_oversize() -> None:
    with pytest.raises(ValueError, match="exceeds"):
        encode_datagram(1, 0, b"x" * (MAX_DATAGRAM_SIZE - DATAGRAM_HEADER_SIZE + 1))


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"\x17\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00", "shorter"),
        (b"\x11\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00", "not a DATAGRAM"),
        (b"\x17\x01\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00", "must be 0"),
        (b"\x17\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00", "must be 0"),
        (b"\x17\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", "id 0"),
    ],
)
def test_parse_rejects(data: bytes, match: str) -> None:
    with pytest.raises(DecodeError, match=match):
        parse_datagram(data)


def test_replay_window_accepts_each_number_once() -> None:
    window = ReplayWindow(size=8)
    assert window.accept(10)
    assert not window.accept(10)
    assert window.accept(12) and window.accept(11)  # out of order, each once
    assert not window.accept(11) and not window.accept(12)
    assert window.accept(5)  # behind, but inside the window and unseen
    assert not window.accept(4)  # 8 behind the highest: too old to tell from a duplicate
    assert window.accept(20)
    assert not window.accept(12)  # now too old


def test_replay_window_wraps_and_ignores_huge_jumps() -> None:
    window = ReplayWindow(size=1024)
    assert window.accept(0xFFFFFFFE)
    assert window.accept(1)  # serially ahead across the wrap
    assert not window.accept(0xFFFFFFFE)
    assert window.accept(0x7FFFFFFF)  # a jump of ~2**31: accepted without a giant shift
    assert window._bits == 1
    assert not window.accept(1)  # now far behind


def test_replay_window_size_must_be_positive() -> None:
    with pytest.raises(ValueError):
        ReplayWindow(size=0)
