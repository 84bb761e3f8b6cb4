"""Unreliable datagrams in the engine: delivery, duplicates, bounds, and the cwnd charge."""

from __future__ import annotations

import pytest

from rudp.config import Config
from rudp.core.datagrams import DatagramChannel
from rudp.core.events import ConnectionTerminated, DatagramReceived
from rudp.errors import ConnectionReset, DatagramTooLarge, InvalidStateError
from rudp.wire.datagram import encode_datagram
from rudp.wire.packet import HEADER_SIZE, PacketType, ResetReason
from tests.core.harness import CLIENT_ADDR, SERVER_ADDR, Peer, connect, make_pair
from tests.sim import Impairment, TraceRecord

DELAY = 0.01
DATAGRAM = 0x10 | PacketType.DATAGRAM
DATA = 0x10 | PacketType.DATA


def received(peer: Peer, conn: object) -> list[bytes]:
    return [e.data for e in peer.log(conn).events if isinstance(e, DatagramReceived)]  # type: ignore[arg-type]


def test_datagrams_arrive_once_each_as_events() -> None:
    sim, client, server = make_pair(impairment=Impairment(delay=DELAY))
    conn = connect(sim, client, server)
    srv = server.accepted[0]
    for i in range(5):
        conn.send_datagram(b"d%d" % i)
    srv.send_datagram(b"back")
    sim.run_for(0.1)
    assert received(server, srv) == [b"d0", b"d1", b"d2", b"d3", b"d4"]
    assert received(client, conn) == [b"back"]
    assert conn.stats.unreliable_sent == 5 and srv.stats.unreliable_received == 5
    assert conn.stats.segments_retransmitted == 0


def test_network_duplicates_are_dropped_by_the_replay_window() -> None:
    sim, client, server = make_pair(impairment=Impairment(delay=DELAY, duplicate=1.0))
    conn = connect(sim, client, server)
    srv = server.accepted[0]
    for i in range(20):
        conn.send_datagram(bytes([i]) * 10)
    sim.run_for(0.2)
    assert received(server, srv) == [bytes([i]) * 10 for i in range(20)]
    assert srv.stats.dropped["datagram_duplicate"] == 20


def test_lost_datagrams_are_never_retransmitted() -> None:
    sim, client, server = make_pair(impairment=Impairment(delay=DELAY, loss=0.3), seed=3)
    conn = connect(sim, client, server)
    srv = server.accepted[0]
    for i in range(50):
        conn.send_datagram(i.to_bytes(2, "big"))
        sim.run_for(0.01)
    sim.run_for(2.0)
    got = received(server, srv)
    numbers = [int.from_bytes(d, "big") for d in got]
    assert 20 < len(numbers) < 50 and numbers == sorted(set(numbers))
    assert conn.stats.unreliable_sent == 50  # each sent exactly once


def test_size_limit_is_one_full_packet() -> None:
    trace: list[TraceRecord] = []
    sim, client, server = make_pair(trace=trace)
    conn = connect(sim, client, server)
    limit = conn.max_datagram_payload
    assert limit == conn.max_payload + 12
    with pytest.raises(DatagramTooLarge, match=f"limit is {limit} bytes") as info:
        conn.send_datagram(b"x" * (limit + 1))
    assert (info.value.size, info.value.limit) == (limit + 1, limit)
    conn.send_datagram(b"x" * limit)
    sim.run_for(0.01)
    sizes = [size for _, kind, src, _, size, first in trace if kind == "send" and first == DATAGRAM]
    assert sizes == [HEADER_SIZE + conn.max_payload]


def test_sending_needs_an_open_connection() -> None:
    sim, client, server = make_pair()
    conn = client.endpoint.connect(SERVER_ADDR, now=0.0)
    with pytest.raises(InvalidStateError):
        conn.send_datagram(b"early")
    sim.run_for(0.1)
    conn.close(now=sim.clock.now)
    with pytest.raises(InvalidStateError):
        conn.send_datagram(b"late")


def test_full_send_queue_drops_its_oldest() -> None:
    config = Config(datagram_send_queue=4)
    sim, client, server = make_pair(client_config=config, impairment=Impairment(delay=DELAY))
    conn = connect(sim, client, server)
    srv = server.accepted[0]
    for i in range(10):  # all queued before the next flush
        conn.send_datagram(bytes([i]))
    assert conn.stats.unreliable_send_dropped == 6
    sim.run_for(0.1)
    assert received(server, srv) == [bytes([i]) for i in range(6, 10)]


def test_datagrams_are_charged_against_cwnd_for_one_srtt() -> None:
    trace: list[TraceRecord] = []
    sim, client, server = make_pair(impairment=Impairment(delay=DELAY), trace=trace)
    conn = connect(sim, client, server)
    srtt = conn.srtt
    assert srtt is not None
    cwnd = conn.cwnd
    size = conn.max_datagram_payload
    per_packet = size + 12
    fit = cwnd // per_packet
    for _ in range(fit + 3):
        conn.send_datagram(b"z" * size)
    start = sim.clock.now
    sim.run_for(0.0)
    sent_now = [t for t, kind, src, _, _, first in trace if kind == "send" and first == DATAGRAM]
    assert len(sent_now) == fit
    # Stream data waits too: the window is used up by the datagrams' charge.
    conn.send(b"s" * 5000)
    sim.run_for(0.0)
    assert not [
        t for t, kind, src, _, _, f in trace if t >= start and f == DATA and src == CLIENT_ADDR
    ]
    # The connection's timer is the moment the charge expires, exactly one SRTT later.
    assert client.endpoint.get_timer() == pytest.approx(start + srtt)
    sim.run_until(lambda: conn.stats.unreliable_sent == fit + 3, start + 1.0)
    later = [t for t, kind, src, _, _, first in trace if kind == "send" and first == DATAGRAM]
    assert later[fit] == pytest.approx(start + srtt)
    sim.run_for(0.5)
    assert conn.stats.payload_bytes_sent == 5000


def test_receive_backlog_is_bounded_in_the_core() -> None:
    config = Config(datagram_recv_queue=3)
    sim, client, server = make_pair(server_config=config)
    conn = connect(sim, client, server)
    srv = server.accepted[0]
    now = sim.clock.now
    for i in range(5):  # nobody takes events in between
        srv.receive_unreliable(encode_datagram(srv.local_cid, 100 + i, b"%d" % i), now=now)
    assert srv.stats.dropped["datagram_queue_full"] == 2
    events = []
    while (event := srv.next_event()) is not None:
        events.append(event)
    assert [e.data for e in events if isinstance(e, DatagramReceived)] == [b"0", b"1", b"2"]
    srv.receive_unreliable(encode_datagram(srv.local_cid, 200, b"again"), now=now)
    assert srv.next_event() == DatagramReceived(b"again")  # taking events frees the bound
    srv.receive_unreliable(b"\x17\x00", now=now)
    assert srv.stats.dropped["decode"] == 1
    assert conn.stats.unreliable_sent == 0


def test_datagram_for_an_unknown_connection_is_dropped_without_reset() -> None:
    trace: list[TraceRecord] = []
    sim, client, server = make_pair(trace=trace)
    sim.inject(encode_datagram(0x1234, 0, b"who"), CLIENT_ADDR, SERVER_ADDR)
    sim.run_for(0.1)
    assert server.endpoint.stats.dropped["unknown_connection"] == 1
    assert not [r for r in trace if r[1] == "send" and r[2] == SERVER_ADDR]


def test_datagram_from_the_wrong_address_is_dropped() -> None:
    sim, client, server = make_pair()
    connect(sim, client, server)
    srv = server.accepted[0]
    server.endpoint.receive_datagram(
        encode_datagram(srv.local_cid, 0, b"spoof"), ("10.9.9.9", 1), now=sim.clock.now
    )
    assert server.endpoint.stats.dropped["wrong_address"] == 1
    assert received(server, srv) == []


def test_acked_and_written_byte_counts() -> None:
    sim, client, server = make_pair(impairment=Impairment(delay=DELAY))
    conn = connect(sim, client, server)
    assert (conn.bytes_written, conn.bytes_acked) == (0, 0)
    conn.send(b"a" * 3000)
    assert conn.bytes_written == 3000 and conn.bytes_acked == 0
    sim.run_for(0.1)
    assert conn.bytes_acked == 3000
    conn.send_eof()
    sim.run_for(0.1)
    assert conn.bytes_acked == 3000  # the FIN is not a byte of the stream


def test_abort_with_a_reason_tells_the_peer() -> None:
    sim, client, server = make_pair(impairment=Impairment(delay=DELAY))
    conn = connect(sim, client, server)
    srv = server.accepted[0]
    srv.abort(now=sim.clock.now, reason=ResetReason.MESSAGE_TOO_LARGE)
    sim.run_for(0.1)
    ended = client.log(conn).terminated
    assert isinstance(ended, ConnectionTerminated) and isinstance(ended.error, ConnectionReset)
    assert "message_too_large" in str(ended.error) and ended.by_peer
    mine = server.log(srv).terminated
    assert mine is not None and "message_too_large" in str(mine.error)


def test_channel_clear_forgets_everything() -> None:
    channel = DatagramChannel(send_queue=2, recv_queue=2)
    assert not channel.enqueue(b"a") and not channel.enqueue(b"b") and channel.enqueue(b"c")
    assert len(channel.take(1, 10_000, now=1.0)) == 2
    assert channel.recent_bytes == 26 and channel.next_expiry(0.5) == 1.5
    channel.expire(1.49, 0.5)
    assert channel.recent_bytes == 26
    channel.expire(1.5, 0.5)
    assert channel.recent_bytes == 0 and channel.next_expiry(0.5) is None
    channel.enqueue(b"d")
    channel.clear()
    assert channel.queued == 0 and channel.take(1, 10_000, now=2.0) == []
