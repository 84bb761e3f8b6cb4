"""``check_decoders``: the property every decoder must have on any bytes, shared by the codec
tests, the fuzz tests and bench/fuzz.py (which must not import pytest or hypothesis)."""

from __future__ import annotations

from rudp.errors import DecodeError
from rudp.wire.packet import (
    Cookie,
    Init,
    decode_control,
    encode_cookie,
    encode_segment,
    parse_init,
    parse_segment,
    peek_header,
)

__all__ = ["check_decoders"]


def check_decoders(data: bytes) -> None:
    """Every decoder either raises DecodeError or returns what re-encodes to the same bytes."""
    try:
        ptype, cid = peek_header(data)
    except DecodeError:
        pass
    else:
        assert ptype == data[0] & 0x0F
        assert cid == int.from_bytes(data[4:8], "big")
    try:
        seg = parse_segment(data)
    except DecodeError:
        pass
    else:
        ptype, flags, window, cid, seq, ack, tsval, tsecr, sacks, offset = seg
        again = encode_segment(
            ptype, flags, window, cid, seq, ack, tsval, tsecr, sacks, data[offset:]
        )
        assert again == data
    try:
        packet = decode_control(data)
    except DecodeError:
        packet = None
    else:
        again = packet.encode()
        if isinstance(packet, Init):
            assert len(again) == len(data) and again[:28] == data[:28]
        else:
            assert again == data
        if isinstance(packet, Cookie):
            fields = (packet.client_cid, packet.server_cid, packet.server_isn, packet.client_isn)
            assert encode_cookie(*fields, *_cookie_tail(packet)) == data
    # The server's fast INIT path accepts exactly what Init.decode accepts.
    try:
        fast = parse_init(data)
    except DecodeError:
        assert not isinstance(packet, Init)
    else:
        assert isinstance(packet, Init)
        assert fast == (
            packet.client_cid,
            packet.client_isn,
            packet.max_payload,
            packet.window_scale,
            packet.window,
            packet.tsval,
        )


def _cookie_tail(c: Cookie) -> tuple[int, int, int, int, int, bytes]:
    return (c.max_payload, c.window_scale, c.window, c.tsval, c.tsecr, c.cookie)
