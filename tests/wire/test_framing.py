"""Varint length-prefix framing: golden bytes, any chunking, and every way a stream goes bad."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rudp.errors import DecodeError
from rudp.wire.framing import (
    MAX_PREFIX_SIZE,
    FrameDecoder,
    FramingError,
    MessageTooLargeError,
    TruncatedFrameError,
    encode_prefix,
    prefix_size,
)


@pytest.mark.parametrize(
    ("size", "golden"),
    [
        (0, b"\x00"),
        (1, b"\x01"),
        (127, b"\x7f"),
        (128, b"\x80\x01"),
        (300, b"\xac\x02"),
        (16383, b"\xff\x7f"),
        (16384, b"\x80\x80\x01"),
        (16 * 1024 * 1024, b"\x80\x80\x80\x08"),
        (2**63 - 1, b"\xff" * 8 + b"\x7f"),
    ],
)
def test_prefix_golden_bytes(size: int, golden: bytes) -> None:
    assert encode_prefix(size) == golden
    assert prefix_size(size) == len(golden)
    decoder = FrameDecoder(2**63)
    assert decoder.feed(golden) == ([] if size else [b""])
    assert decoder.error is None


def test_prefix_rejects_local_misuse() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        encode_prefix(-1)
    with pytest.raises(ValueError, match="does not fit"):
        encode_prefix(2**63)
    with pytest.raises(ValueError):
        FrameDecoder(-1)


def frames(messages: list[bytes]) -> bytes:
    return b"".join(encode_prefix(len(m)) + m for m in messages)


@settings(max_examples=200)
@given(
    messages=st.lists(st.binary(max_size=600), max_size=20),
    cuts=st.lists(st.integers(min_value=0, max_value=20_000), max_size=30),
)
def test_any_chunking_gives_back_the_same_messages(messages: list[bytes], cuts: list[int]) -> None:
    stream = frames(messages)
    bounds = sorted({0, len(stream), *(c % (len(stream) + 1) for c in cuts)})
    decoder = FrameDecoder(1000)
    out: list[bytes] = []
    for start, end in zip(bounds, bounds[1:], strict=False):
        out.extend(decoder.feed(stream[start:end]))
    assert out == messages
    assert decoder.error is None and not decoder.in_frame and decoder.eof() is None


def test_one_byte_at_a_time_through_a_large_message() -> None:
    message = bytes(range(256)) * 400  # 102,400 bytes: a 3-byte prefix
    stream = frames([message, b"tail"])
    decoder = FrameDecoder(1 << 20)
    out: list[bytes] = []
    for i in range(len(stream)):
        out.extend(decoder.feed(stream[i : i + 1]))
        if i == 1:
            assert decoder.in_frame and decoder.buffered == 2
    assert out == [message, b"tail"]


def test_oversize_announcement_fails_at_once_and_keeps_earlier_messages() -> None:
    decoder = FrameDecoder(100)
    # Two good messages, then a prefix announcing 2**40 bytes, then junk that never matters.
    data = frames([b"a", b"bb"]) + encode_prefix(2**40) + b"x" * 10
    assert decoder.feed(data) == [b"a", b"bb"]
    error = decoder.error
    assert isinstance(error, MessageTooLargeError)
    assert (error.size, error.limit) == (2**40, 100)
    assert decoder.buffered == 0  # nothing of the announced size is held
    assert decoder.feed(frames([b"later"])) == []  # a bad stream takes nothing more
    assert decoder.eof() is error


def test_limit_is_inclusive() -> None:
    decoder = FrameDecoder(5)
    assert decoder.feed(frames([b"12345"])) == [b"12345"]
    assert decoder.feed(encode_prefix(6)) == []
    assert isinstance(decoder.error, MessageTooLargeError)


def test_oversize_prefix_split_across_feeds() -> None:
    decoder = FrameDecoder(1000)
    prefix = encode_prefix(10**9)
    assert decoder.feed(prefix[:2]) == [] and decoder.error is None
    assert decoder.feed(prefix[2:]) == []
    assert isinstance(decoder.error, MessageTooLargeError)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"\x80\x00", "not minimal"),
        (b"\x81\x80\x00", "not minimal"),
        (b"\xff" * MAX_PREFIX_SIZE, "longer than 9"),
        (b"\x80" * 12, "longer than 9"),
    ],
)
def test_malformed_prefixes(data: bytes, match: str) -> None:
    decoder = FrameDecoder(2**63)
    assert decoder.feed(frames([b"ok"]) + data) == [b"ok"]
    error = decoder.error
    assert isinstance(error, FramingError) and not isinstance(error, MessageTooLargeError)
    assert isinstance(error, DecodeError) and match in str(error)


@pytest.mark.parametrize(
    ("tail", "detail"),
    [(b"\x85", "1 bytes of a length prefix"), (b"\x05abc", "3 of the 5 bytes of a message")],
)
def test_eof_inside_a_frame_is_truncation(tail: bytes, detail: str) -> None:
    decoder = FrameDecoder(100)
    assert decoder.feed(frames([b"whole"]) + tail) == [b"whole"]
    error = decoder.eof()
    assert isinstance(error, TruncatedFrameError) and detail in str(error)
    assert decoder.eof() is error


def test_clean_eof_and_empty_messages() -> None:
    decoder = FrameDecoder(10)
    assert decoder.feed(b"\x00\x00\x01z\x00") == [b"", b"", b"z", b""]
    assert decoder.eof() is None


def test_buffer_is_compacted_while_messages_stream_through() -> None:
    decoder = FrameDecoder(1 << 20)
    message = b"m" * 1000
    stream = frames([message] * 200)
    got = 0
    # Feed so that every call leaves a partial message behind: the consumed front is dropped.
    for start in range(0, len(stream), 1500):
        got += len(decoder.feed(stream[start : start + 1500]))
        assert decoder.buffered < 2000
    assert got == 200
