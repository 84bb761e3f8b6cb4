"""Connection: reliable delivery, timers with exact deadlines, flow control, close and reset."""

from __future__ import annotations

import random

import pytest

from rudp.config import Config
from rudp.core.events import ConnectionTerminated, DataReceived, EndOfStream, SendBufferLow
from rudp.core.state import ConnState
from rudp.errors import (
    ConnectionReset,
    ConnectionTimeout,
    InvalidStateError,
    SendBufferFull,
)
from rudp.wire.packet import (
    HEADER_SIZE,
    PacketType,
    Reset,
    ResetReason,
    parse_segment,
)
from rudp.wire.seqnum import MASK32
from tests.core.harness import CLIENT_ADDR, SERVER_ADDR, Peer, connect, make_pair
from tests.sim import Impairment, Simulator, TraceRecord

DATA = 0x10 | PacketType.DATA
ACK = 0x10 | PacketType.ACK
RESET = 0x10 | PacketType.RESET
DELAY = 0.01
# The RTO then sits at its 1 s floor after a 20 ms RTT sample. No pacing and no tail-loss
# probe: these tests pin RFC 6298 / RFC 5681 timings (tests/core/test_conn_recovery.py has
# RACK-TLP's and the pacer's).
EXACT = Config(min_rto=1.0, pacing=False, tail_loss_probe=False)
UNPACED = Config(pacing=False)  # one flush sends the whole initial window


def payload(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


def data_sends(trace: list[TraceRecord], src: object) -> list[float]:
    return [t for t, kind, s, _, _, first in trace if kind == "send" and s == src and first == DATA]


def test_bulk_transfer_both_ways_is_exact_and_eof_follows_the_last_byte() -> None:
    sim, client, server = make_pair(impairment=Impairment(delay=DELAY))
    conn = connect(sim, client, server)
    srv = server.accepted[0]
    up, down = payload(3_000_000, 1), payload(2_000_000, 2)
    client.write(conn, up, eof=True)
    server.write(srv, down, eof=True)
    assert sim.run_until(lambda: client.log(conn).eof and server.log(srv).eof, 60)
    assert bytes(server.log(srv).received) == up
    assert bytes(client.log(conn).received) == down
    for log in (client.log(conn), server.log(srv)):
        kinds = [type(e) for e in log.events]
        assert kinds.index(EndOfStream) > max(i for i, k in enumerate(kinds) if k is DataReceived)
    assert client.invariant_checks > 100  # bytes_in_flight <= cwnd checked after every send
    assert conn.stats.segments_retransmitted == 0


def test_rto_backs_off_exactly_and_gives_up_at_the_retransmission_limit() -> None:
    config = EXACT.replace(max_retransmits=4)
    trace: list[TraceRecord] = []
    sim, client, server = make_pair(
        client_config=config, impairment=Impairment(delay=DELAY), trace=trace
    )
    conn = connect(sim, client, server)
    start = sim.clock.now
    sim.links[(CLIENT_ADDR, SERVER_ADDR)].blackhole(start, 1e9)
    client.write(conn, b"x" * 100, eof=False)
    sim.run_until(lambda: client.log(conn).terminated is not None, start + 100)
    sent = [round(t - start, 6) for t in data_sends(trace, CLIENT_ADDR)]
    assert sent == [0.0, 1.0, 3.0, 7.0, 15.0]  # RFC 6298 §5.5: 1 s, 2 s, 4 s, 8 s
    assert sim.clock.now - start == pytest.approx(31.0)  # the 5th timeout ends it
    event = client.log(conn).terminated
    assert event is not None and isinstance(event.error, ConnectionTimeout)
    assert conn.stats.rto_timeouts == 4


def test_rto_restarts_on_new_ack_and_stops_when_all_is_acknowledged() -> None:
    sim, client, server = make_pair(client_config=EXACT, impairment=Impairment(delay=DELAY))
    conn = connect(sim, client, server)
    start = sim.clock.now
    client.write(conn, b"y" * 100, eof=False)
    sim.flush()
    assert conn.get_timer() == pytest.approx(start + 1.0)
    sim.run_until(lambda: conn.bytes_in_flight == 0, start + 5)
    assert sim.clock.now == pytest.approx(start + 0.02 + 0.025)  # delayed ACK of one segment
    assert conn.get_timer() is None


def test_fast_retransmit_when_three_segments_above_the_hole_are_sacked() -> None:
    trace: list[TraceRecord] = []
    sim, client, server = make_pair(
        client_config=EXACT, impairment=Impairment(delay=DELAY), trace=trace
    )
    conn = connect(sim, client, server)
    srv = server.accepted[0]
    start = sim.clock.now
    dropped = {"n": 0}

    def second_data(_i: int, d: bytes) -> bool:
        if d[0] == DATA:
            dropped["n"] += 1
            return dropped["n"] == 2
        return False

    sim.links[(CLIENT_ADDR, SERVER_ADDR)].drop_where(second_data)
    data = payload(8 * 1200, 3)
    client.write(conn, data, eof=False)
    assert sim.run_until(lambda: len(server.log(srv).received) == len(data), start + 5)
    assert bytes(server.log(srv).received) == data
    sends = data_sends(trace, CLIENT_ADDR)
    assert len(sends) == 9 and sends[-1] - start == pytest.approx(0.02)  # one RTT, no RTO
    retransmit_at = max(
        i
        for i, (_, kind, src, _, _, first) in enumerate(trace)
        if kind == "send" and src == CLIENT_ADDR and first == DATA
    )
    acks_before = [
        i
        for i, (t, kind, src, _, _, first) in enumerate(trace[:retransmit_at])
        if kind == "deliver" and src == SERVER_ADDR and first == ACK and t > start
    ]
    # The ACK of segment 3 advanced past segment 1 and SACKed 3 at once (a new hole); 4 and 5
    # only extend that block, so they are ACKed together, as in-order data is (SACK
    # compression); with three segments SACKed above it segment 2 is lost (RFC 6675 §4
    # IsLost, DupThresh = 3) and is retransmitted at once.
    assert len(acks_before) == 2
    assert conn.stats.fast_retransmits == 1
    assert conn.stats.rto_timeouts == 0
    assert conn.stats.dup_acks_received == 2  # segments 4+5 and 6+7, two by two
    # FlightSize at entry was 7 segments: ssthresh = 8400 // 2 (RFC 5681 §3.1 eq. 4), and PRR
    # (RFC 6937) left cwnd there when recovery ended.
    assert conn.cc is not None and conn.cc.ssthresh == 4200
    assert conn.cwnd >= 4200


def test_duplicated_segment_is_reported_with_a_dsack_block() -> None:
    sim, client, server = make_pair(impairment=Impairment(delay=DELAY))
    conn = connect(sim, client, server)
    srv = server.accepted[0]
    client.write(conn, b"d" * 500, eof=False)
    out = client.endpoint.datagrams_to_send(now=sim.clock.now)
    assert len(out) == 1
    datagram = out[0][0]
    seq = parse_segment(datagram)[4]
    server.endpoint.receive_datagram(datagram, CLIENT_ADDR, now=sim.clock.now)
    server.endpoint.datagrams_to_send(now=sim.clock.now)
    server.endpoint.receive_datagram(datagram, CLIENT_ADDR, now=sim.clock.now)
    server.drain()
    (reply, _), *_ = server.endpoint.datagrams_to_send(now=sim.clock.now)
    ptype, flags, _, _, _, ack, _, _, sacks, _ = parse_segment(reply)
    assert ptype == PacketType.ACK and flags & 0x08
    assert sacks[0] == (seq, (seq + 500) & MASK32)
    assert ack == (seq + 500) & MASK32
    assert srv.stats.dsack_sent == 1 and srv.stats.duplicate_segments == 1
    client.endpoint.receive_datagram(reply, SERVER_ADDR, now=sim.clock.now)
    assert conn.stats.dsack_received == 1
    assert bytes(server.log(srv).received) == b"d" * 500


def test_zero_window_is_held_for_a_long_time_then_reopened() -> None:
    small = Config(recv_buffer_size=64 * 1024)
    trace: list[TraceRecord] = []
    sim, client, server = make_pair(
        client_config=Config(persist_max=8.0),
        server_config=small,
        impairment=Impairment(delay=DELAY),
        trace=trace,
        auto_consume=False,
    )
    conn = connect(sim, client, server)
    srv = server.accepted[0]
    data = payload(400_000, 4)
    client.write(conn, data, eof=True)
    sim.run_for(300.0)  # five minutes with the reader stalled
    assert len(server.log(srv).received) == 64 * 1024
    assert conn.peer_window == 0
    assert conn.state is ConnState.FIN_WAIT_1 and client.log(conn).terminated is None
    probes = [
        t
        for t, kind, src, _, _, first in trace
        if kind == "send" and src == CLIENT_ADDR and first == ACK
    ]
    gaps = [round(b - a, 3) for a, b in zip(probes, probes[1:], strict=False)]
    # From max(RTO, min_rto) = SRTT + 200 ms, doubling up to persist_max.
    assert gaps[:3] == [0.446, 0.892, 1.785] and set(gaps[5:]) == {8.0}
    assert conn.stats.window_probes_sent == len(probes)
    server.consume_all(srv)
    server.auto_consume = True
    assert sim.run_until(lambda: server.log(srv).eof, sim.clock.now + 60)
    assert bytes(server.log(srv).received) == data


def _fixed_isn(value: int) -> object:
    rng = random.Random(5)

    def token_bytes(n: int) -> bytes:
        return value.to_bytes(4, "big") if n == 4 else rng.randbytes(n)

    return token_bytes


def test_sequence_numbers_wrap_around_2_to_the_32() -> None:
    sim = Simulator()
    client = Peer(token_bytes=_fixed_isn(2**32 - 5000))
    server = Peer(token_bytes=_fixed_isn(2**32 - 7), listening=True)
    sim.add_node(client, CLIENT_ADDR)
    sim.add_node(server, SERVER_ADDR)
    sim.link(CLIENT_ADDR, SERVER_ADDR, Impairment(delay=DELAY, loss=0.05, reorder=0.05))
    conn = connect(sim, client, server)
    srv = server.accepted[0]
    up, down = payload(500_000, 6), payload(300_000, 7)
    client.write(conn, up, eof=True)
    server.write(srv, down, eof=True)
    assert sim.run_until(lambda: client.log(conn).eof and server.log(srv).eof, 300)
    assert bytes(server.log(srv).received) == up and bytes(client.log(conn).received) == down
    assert conn._sb.snd_nxt > 2**32 and srv._sb.snd_nxt > 2**32


@pytest.mark.parametrize("nth", [1, 2, 3, 4])
def test_each_close_datagram_lost_once_still_closes_cleanly(nth: int) -> None:
    config = Config(time_wait=1.0)
    sim, client, server = make_pair(
        client_config=config, server_config=config, impairment=Impairment(delay=DELAY)
    )
    conn = connect(sim, client, server)
    srv = server.accepted[0]
    sim.run_for(0.1)
    # Close datagrams in order: client FIN, server ACK of it, server FIN, client ACK of that.
    seen = {"n": 0}

    def nth_close_datagram(_i: int, d: bytes) -> bool:
        seen["n"] += 1
        return seen["n"] == nth

    for path in ((CLIENT_ADDR, SERVER_ADDR), (SERVER_ADDR, CLIENT_ADDR)):
        sim.links[path].drop_where(nth_close_datagram)
    conn.close(now=sim.clock.now)
    sim.run_until(lambda: server.log(srv).eof, sim.clock.now + 30)
    srv.close(now=sim.clock.now)
    assert sim.run_until(
        lambda: conn.state is ConnState.CLOSED and srv.state is ConnState.CLOSED,
        sim.clock.now + 30,
    )
    for log in (client.log(conn), server.log(srv)):
        assert log.terminated is not None and log.terminated.error is None
    assert client.endpoint.connections == {} and server.endpoint.connections == {}


def test_simultaneous_close_goes_through_closing_and_time_wait() -> None:
    config = Config(time_wait=2.0)
    sim, client, server = make_pair(
        client_config=config, server_config=config, impairment=Impairment(delay=DELAY)
    )
    conn = connect(sim, client, server)
    srv = server.accepted[0]
    conn.send_eof()
    srv.send_eof()
    sim.flush()
    sim.run_until(
        lambda: conn.state is ConnState.TIME_WAIT and srv.state is ConnState.TIME_WAIT,
        sim.clock.now + 5,
    )
    entered = sim.clock.now
    assert conn.get_timer() == pytest.approx(entered + 2.0)
    sim.run_until(lambda: conn.state is ConnState.CLOSED, entered + 10)
    assert sim.clock.now == pytest.approx(entered + 2.0)
    assert client.log(conn).terminated == ConnectionTerminated("closed", None, False)


def test_half_close_keeps_receiving_after_sending_fin() -> None:
    sim, client, server = make_pair(impairment=Impairment(delay=DELAY, loss=0.02))
    conn = connect(sim, client, server)
    srv = server.accepted[0]
    conn.send_eof()
    sim.run_until(lambda: conn.state is ConnState.FIN_WAIT_2, 10)
    assert server.log(srv).eof
    with pytest.raises(InvalidStateError):
        conn.send(b"late")
    down = payload(1_000_000, 8)
    server.write(srv, down, eof=True)
    assert sim.run_until(lambda: client.log(conn).eof, 120)
    assert bytes(client.log(conn).received) == down
    assert server.log(srv).terminated is not None or srv.state is ConnState.LAST_ACK


def test_fin_that_overtakes_data_waits_for_it() -> None:
    sim, client, server = make_pair(client_config=UNPACED, impairment=Impairment(delay=DELAY))
    conn = connect(sim, client, server)
    srv = server.accepted[0]
    data = payload(3 * 1200, 9)
    client.write(conn, data, eof=True)
    out = client.endpoint.datagrams_to_send(now=sim.clock.now)
    assert len(out) == 3 and parse_segment(out[-1][0])[1] & 0x10  # FIN rides the last one
    for datagram, _ in (out[2], out[0]):  # segment 2 is late
        server.endpoint.receive_datagram(datagram, CLIENT_ADDR, now=sim.clock.now)
        server.drain()
    assert not server.log(srv).eof and len(server.log(srv).received) == 1200
    server.endpoint.receive_datagram(out[1][0], CLIENT_ADDR, now=sim.clock.now)
    server.drain()
    assert server.log(srv).eof and bytes(server.log(srv).received) == data
    assert srv.state is ConnState.CLOSE_WAIT


def test_abort_resets_the_peer() -> None:
    sim, client, server = make_pair(impairment=Impairment(delay=DELAY))
    conn = connect(sim, client, server)
    srv = server.accepted[0]
    conn.abort(now=sim.clock.now)
    sim.run_until(lambda: server.log(srv).terminated is not None, sim.clock.now + 1)
    local, remote = client.log(conn).terminated, server.log(srv).terminated
    assert local is not None and isinstance(local.error, ConnectionReset) and not local.by_peer
    assert remote is not None and isinstance(remote.error, ConnectionReset) and remote.by_peer
    assert srv.state is ConnState.CLOSED and server.endpoint.connections == {}


def test_reset_at_the_wrong_sequence_gets_a_challenge_ack_not_a_teardown() -> None:
    sim, client, server = make_pair(impairment=Impairment(delay=DELAY))
    conn = connect(sim, client, server)
    srv = server.accepted[0]
    rcv_nxt = srv._rb.rcv_nxt if srv._rb is not None else 0
    now = sim.clock.now
    inside = Reset(cid=srv.local_cid, seq=(rcv_nxt + 1000) & MASK32, reason=ResetReason.ABORT)
    server.endpoint.receive_datagram(inside.encode(), CLIENT_ADDR, now=now)
    out = server.endpoint.datagrams_to_send(now=now)
    assert [d[0] for d, _ in out] == [ACK]
    assert srv.stats.challenge_acks_sent == 1
    outside = Reset(cid=srv.local_cid, seq=(rcv_nxt + 2**30) & MASK32, reason=ResetReason.ABORT)
    server.endpoint.receive_datagram(outside.encode(), CLIENT_ADDR, now=now)
    assert server.endpoint.datagrams_to_send(now=now) == []
    assert srv.state is ConnState.ESTABLISHED and conn.state is ConnState.ESTABLISHED
    exact = Reset(cid=srv.local_cid, seq=rcv_nxt & MASK32, reason=ResetReason.ABORT)
    server.endpoint.receive_datagram(exact.encode(), CLIENT_ADDR, now=now)
    assert srv.state is ConnState.CLOSED


def test_keepalive_detects_a_silent_peer_at_the_exact_deadline() -> None:
    config = Config(keepalive_idle=10.0, keepalive_interval=2.0, keepalive_probes=3)
    trace: list[TraceRecord] = []
    sim, client, server = make_pair(
        client_config=config, impairment=Impairment(delay=DELAY), trace=trace
    )
    conn = connect(sim, client, server)
    sim.run_for(0.1)
    last = sim.clock.now - 0.1 + 0.01  # the confirming ACK arrived 10 ms after the handshake
    # Keepalive answered: the connection stays up.
    sim.run_for(30.0)
    assert conn.state is ConnState.ESTABLISHED and conn.stats.keepalives_sent >= 2
    sim.remove_node(SERVER_ADDR)  # the peer vanishes
    mark = len(trace)
    sim.run_until(lambda: client.log(conn).terminated is not None, sim.clock.now + 100)
    probes = [t for t, kind, src, *_ in trace[mark:] if kind == "send" and src == CLIENT_ADDR]
    assert len(probes) == 3
    assert [round(b - a, 6) for a, b in zip(probes, probes[1:], strict=False)] == [2.0, 2.0]
    assert sim.clock.now == pytest.approx(probes[-1] + 2.0)
    event = client.log(conn).terminated
    assert event is not None and isinstance(event.error, ConnectionTimeout)
    assert last > 0


def test_idle_timeout_ends_a_quiet_connection_exactly() -> None:
    config = Config(idle_timeout=5.0)
    sim, client, server = make_pair(client_config=config, impairment=Impairment(delay=DELAY))
    conn = connect(sim, client, server)
    heard = sim.clock.now
    sim.run_until(lambda: client.log(conn).terminated is not None, heard + 60)
    assert sim.clock.now == pytest.approx(heard + 5.0)
    event = client.log(conn).terminated
    assert event is not None and event.reason == "idle_timeout"


def test_fin_wait_2_is_bounded_after_close() -> None:
    config = Config(fin_wait2_timeout=7.0)
    sim, client, server = make_pair(client_config=config, impairment=Impairment(delay=DELAY))
    conn = connect(sim, client, server)
    conn.close(now=sim.clock.now)
    sim.run_until(lambda: conn.state is ConnState.FIN_WAIT_2, sim.clock.now + 5)
    entered = sim.clock.now
    sim.run_until(lambda: conn.state is ConnState.CLOSED, entered + 60)
    assert sim.clock.now == pytest.approx(entered + 7.0)


def test_delayed_ack_waits_ack_delay_for_one_segment_and_not_for_two() -> None:
    trace: list[TraceRecord] = []
    sim, client, server = make_pair(impairment=Impairment(delay=DELAY), trace=trace)
    conn = connect(sim, client, server)
    sim.run_for(1.0)
    mark, start = len(trace), sim.clock.now
    client.write(conn, b"a" * 100, eof=False)
    sim.run_for(1.0)
    acks = [t for t, kind, src, _, _, f in trace[mark:] if kind == "send" and src == SERVER_ADDR]
    assert [round(t - start, 6) for t in acks] == [0.01 + 0.025]
    mark, start = len(trace), sim.clock.now
    client.write(conn, b"b" * 2400, eof=False)
    sim.run_for(1.0)
    acks = [t for t, kind, src, _, _, f in trace[mark:] if kind == "send" and src == SERVER_ADDR]
    assert [round(t - start, 6) for t in acks] == [0.01]


def test_nagle_holds_small_writes_while_data_is_unacknowledged() -> None:
    trace: list[TraceRecord] = []
    for nagle, expected in ((False, 10), (True, 2)):
        trace.clear()
        sim, client, server = make_pair(
            client_config=Config(nagle=nagle), impairment=Impairment(delay=DELAY), trace=trace
        )
        conn = connect(sim, client, server)
        mark = len(trace)
        for _ in range(10):
            conn.send(b"m" * 10)
            sim.flush()
        sim.run_for(1.0)
        assert len(data_sends(trace[mark:], CLIENT_ADDR)) == expected
        assert bytes(server.log(server.accepted[0]).received) == b"m" * 100


def test_send_buffer_bounds_and_writable_event() -> None:
    config = Config(send_buffer_high=100_000, send_buffer_low=20_000, send_buffer_max=200_000)
    sim, client, server = make_pair(client_config=config, impairment=Impairment(delay=DELAY))
    conn = connect(sim, client, server)
    conn.send(b"q" * 150_000)
    with pytest.raises(SendBufferFull):
        conn.send(b"q" * 60_000)
    assert conn.send_buffer_size == 150_000
    sim.run_until(lambda: any(isinstance(e, SendBufferLow) for e in client.log(conn).events), 30)
    assert conn.send_buffer_size <= 20_000


def test_api_misuse_raises_typed_errors() -> None:
    sim, client, server = make_pair()
    conn = client.endpoint.connect(SERVER_ADDR, now=0.0)
    with pytest.raises(InvalidStateError):
        conn.send(b"too early")
    sim.run_until(lambda: conn.state is ConnState.ESTABLISHED, 5)
    conn.send_eof()
    with pytest.raises(InvalidStateError):
        conn.send(b"after eof")
    with pytest.raises(ValueError):
        conn.consume(1)


def test_close_before_the_handshake_completes_ends_quietly() -> None:
    sim = Simulator()
    client = Peer()
    sim.add_node(client, CLIENT_ADDR)
    conn = client.endpoint.connect(SERVER_ADDR, now=0.0)
    conn.close(now=0.0)
    sim.flush()
    assert conn.state is ConnState.CLOSED and client.endpoint.connections == {}
    event = client.log(conn).terminated
    assert event is not None and event.reason == "closed"


def test_sender_sws_holds_a_small_window_tail_while_data_is_in_flight() -> None:
    trace: list[TraceRecord] = []
    sim, client, server = make_pair(
        server_config=Config(recv_buffer_size=3000),
        impairment=Impairment(delay=DELAY),
        trace=trace,
        auto_consume=False,
    )
    conn = connect(sim, client, server)
    start = sim.clock.now
    mark = len(trace)
    client.write(conn, payload(10_000, 10), eof=False)
    sim.run_for(0.2)
    sent = [
        (round(t - start, 6), length)
        for t, kind, src, _, length, first in trace[mark:]
        if kind == "send" and src == CLIENT_ADDR and first == DATA
    ]
    # Two full segments, then the 600 B the window still allows only once they are
    # acknowledged (RFC 9293 §3.8.6.2.1): never a small segment behind data in flight.
    assert sent == [(0.0, HEADER_SIZE + 1200), (0.0, HEADER_SIZE + 1200), (0.02, HEADER_SIZE + 600)]
    assert conn.peer_window == 0


def test_out_of_order_and_hole_filling_segments_are_acked_at_once() -> None:
    sim, client, server = make_pair(client_config=UNPACED, impairment=Impairment(delay=DELAY))
    conn = connect(sim, client, server)
    srv = server.accepted[0]
    sim.run_for(1.0)
    client.write(conn, payload(3 * 1200, 11), eof=False)
    first, second, third = (d for d, _ in client.endpoint.datagrams_to_send(now=sim.clock.now))
    now = sim.clock.now
    acks_before = srv.stats.acks_sent
    server.endpoint.receive_datagram(first, CLIENT_ADDR, now=now)
    assert server.endpoint.datagrams_to_send(now=now) == []  # in order: delayed
    assert srv.get_timer() == pytest.approx(now + Config().ack_delay)
    server.endpoint.receive_datagram(third, CLIENT_ADDR, now=now)
    out = server.endpoint.datagrams_to_send(now=now)  # out of order: at once, with a SACK
    assert len(out) == 1 and parse_segment(out[0][0])[8] != ()
    server.endpoint.receive_datagram(second, CLIENT_ADDR, now=now)
    out = server.endpoint.datagrams_to_send(now=now)  # fills the hole: at once, no SACK
    ack = parse_segment(out[0][0])
    assert ack[8] == () and ack[5] == (parse_segment(third)[4] + 1200) & MASK32
    assert srv.stats.acks_sent == acks_before + 2


def test_a_lost_retransmission_is_resent_after_one_rtt_not_an_rto() -> None:
    """RACK for retransmissions (RFC 8985 §6.2, with "bbr"): segment 2 and its first
    retransmission are dropped; data sent after the retransmission is SACKed, so one RTT after
    the retransmission it is sent a third time, long before the 1 s RTO."""
    sim, client, server = make_pair(
        client_config=EXACT.replace(congestion_control="bbr"), impairment=Impairment(delay=DELAY)
    )
    conn = connect(sim, client, server)
    srv = server.accepted[0]
    start = sim.clock.now
    seen: dict[int, int] = {}
    target: list[int] = []
    times: list[float] = []

    def second_segment_twice(_i: int, d: bytes) -> bool:
        if d[0] != DATA:
            return False
        seq = parse_segment(d)[4]
        seen[seq] = seen.get(seq, 0) + 1
        if target and seq == target[0]:
            times.append(sim.clock.now)
        if not target and len(seen) == 2:
            times.append(sim.clock.now)
            target.append(seq)
        return bool(target) and seq == target[0] and seen[seq] <= 2

    sim.links[(CLIENT_ADDR, SERVER_ADDR)].drop_where(second_segment_twice)
    data = payload(300 * 1200, 4)
    client.write(conn, data, eof=False)
    assert sim.run_until(lambda: len(server.log(srv).received) == len(data), start + 5)
    assert bytes(server.log(srv).received) == data
    assert seen[target[0]] == 3
    assert conn.stats.rto_timeouts == 0
    assert conn.stats.lost_retransmissions == 1
    assert conn.stats.segments_retransmitted == 2
    # Sent at 0 and fast-retransmitted about one RTT later; paced data sent after the
    # retransmission is SACKed, and once RACK.rtt (20 ms, the latest delivery's round trip)
    # has passed the reordering timer declares it lost (reo_wnd is 0 in recovery while no
    # reordering was seen, RFC 8985 §6.2 step 4): it leaves a third time 20 ms after the
    # second. The RTO would have waited 1 s.
    assert [round(t - start, 6) for t in times] == [0.0, 0.022773, 0.042773]


def test_time_wait_outlasts_two_fin_retransmissions_even_when_configured_shorter() -> None:
    config = Config(time_wait=0.05)  # shorter than the peer's first FIN retransmission
    sim, client, server = make_pair(
        client_config=config, server_config=config, impairment=Impairment(delay=DELAY)
    )
    conn = connect(sim, client, server)
    srv = server.accepted[0]
    sim.run_for(0.1)
    conn.close(now=sim.clock.now)  # the client closes first: it ends in TIME_WAIT
    sim.run_until(lambda: server.log(srv).eof, sim.clock.now + 5)
    # The client's ACK of the server's FIN is lost: only a retransmitted FIN can repair it.
    sim.links[(CLIENT_ADDR, SERVER_ADDR)].drop_next(1)
    srv.close(now=sim.clock.now)
    assert sim.run_until(lambda: conn.state is ConnState.TIME_WAIT, sim.clock.now + 5)
    entered = sim.clock.now
    assert conn._close_deadline == pytest.approx(entered + 4 * conn.rtt.base_rto)
    assert sim.run_until(lambda: srv.state is ConnState.CLOSED, entered + 5)
    ended = server.log(srv).terminated
    assert ended is not None and ended.error is None  # a clean close, not a timeout
    assert srv.stats.segments_retransmitted == 1  # the FIN, once


def test_one_flush_after_a_lossy_batch_reports_every_hole() -> None:
    sim, client, server = make_pair(client_config=Config(initial_window_segments=40))
    conn = connect(sim, client, server)
    srv = server.accepted[0]
    now = sim.clock.now
    acks_before = srv.stats.acks_sent
    conn.send(payload(40 * conn.max_payload))
    datagrams = client.endpoint.datagrams_to_send(now=now)
    assert len(datagrams) >= 20
    # Every other DATA datagram arrives, all in one batch (one wake-up of the batched I/O).
    for data, _ in datagrams[1:20:2]:
        server.endpoint.receive_datagram(data, CLIENT_ADDR, now=now)
    acks = [d for d, _ in server.endpoint.datagrams_to_send(now=now) if d[0] == ACK]
    blocks = set()
    for data in acks:
        sacks = parse_segment(data)[8]
        blocks.update(sacks)
    assert len(blocks) == 8  # of ten islands of one segment each, the eight newest
    assert len(acks) == 1 + 1  # 4 blocks in the first ACK, 4 more in one extra ACK
    assert srv.stats.acks_sent - acks_before == 2


def test_tsvals_never_go_backwards_so_a_clock_that_steps_back_loses_no_data() -> None:
    """An event loop may act at a timer's deadline, a little ahead of its own clock, and then
    at that clock: the second segment must not carry an older TSval, or PAWS (RFC 7323 §5.3)
    at the receiver drops it as an old duplicate."""
    sim, client, server = make_pair(client_config=UNPACED, impairment=Impairment(delay=DELAY))
    conn = connect(sim, client, server)
    srv = server.accepted[0]
    t = sim.clock.now
    conn.send(b"a" * 1000)
    first = client.endpoint.datagrams_to_send(now=t + 0.0009)  # at a deadline, early
    conn.send(b"b" * 1000)
    second = client.endpoint.datagrams_to_send(now=t + 0.0002)  # then at the loop's time
    assert len(first) == len(second) == 1
    tsvals = [parse_segment(data)[6] for data, _ in (*first, *second)]
    assert tsvals[1] == tsvals[0] == int((t + 0.0009) * 1e6) & MASK32
    for data, _ in (*first, *second):
        server.endpoint.receive_datagram(data, CLIENT_ADDR, now=t + 0.011)
    assert srv.stats.dropped["paws"] == 0
    server.drain()
    assert bytes(server.log(srv).received) == b"a" * 1000 + b"b" * 1000
    conn.send(b"c" * 10)
    (third,) = client.endpoint.datagrams_to_send(now=t + 0.0015)  # the clock moved on
    assert parse_segment(third[0])[6] == int((t + 0.0015) * 1e6) & MASK32
