"""Endpoint: the stateless cookie handshake, demultiplexing, the accept queue, bad input."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rudp.config import Config
from rudp.core.endpoint import Endpoint
from rudp.core.events import ConnectionTerminated
from rudp.core.state import ConnState
from rudp.errors import ConnectionRefused, HandshakeTimeout
from rudp.wire.packet import (
    HEADER_SIZE,
    Cookie,
    CookieEcho,
    Init,
    PacketType,
    Reset,
    ResetReason,
    decode_control,
    encode_segment,
)
from tests.core.harness import CLIENT_ADDR, SERVER_ADDR, Peer, connect, make_pair
from tests.sim import Impairment, Simulator, TraceRecord

INIT = 0x10 | PacketType.INIT
COOKIE = 0x10 | PacketType.COOKIE
ECHO = 0x10 | PacketType.COOKIE_ECHO
ACK = 0x10 | PacketType.ACK
DATA = 0x10 | PacketType.DATA
RESET = 0x10 | PacketType.RESET
DELAY = 0.01  # one-way, so the RTT is 20 ms


def sends(trace: list[TraceRecord]) -> list[tuple[float, int, tuple[object, ...]]]:
    return [(round(t, 6), first, src) for t, kind, src, _, _, first in trace if kind == "send"]


def test_handshake_is_four_datagrams_and_one_round_trip_for_the_client() -> None:
    trace: list[TraceRecord] = []
    sim, client, server = make_pair(impairment=Impairment(delay=DELAY), trace=trace)
    conn = client.endpoint.connect(SERVER_ADDR, now=0.0)
    sim.run_until(lambda: client.log(conn).connected, 1.0)
    assert sim.clock.now == 0.02  # connected after one round trip, like TCP's connect()
    assert conn.state is ConnState.COOKIE_ECHOED
    sim.run_until(lambda: conn.state is ConnState.ESTABLISHED, 1.0)
    assert sim.clock.now == 0.04
    assert [first for _, first, _ in sends(trace)] == [INIT, COOKIE, ECHO, ACK]
    times = [t for t, _, _ in sends(trace)]
    assert times == [0.0, 0.01, 0.02, 0.03]
    assert server.accepted[0].state is ConnState.ESTABLISHED
    assert server.accepted[0].peer_cid == conn.local_cid
    assert conn.peer_cid == server.accepted[0].local_cid
    assert conn.srtt == pytest.approx(0.02, abs=2e-6)  # microsecond timestamps
    assert server.accepted[0].srtt == pytest.approx(0.02, abs=2e-6)


def test_client_pads_init_and_server_reply_stays_within_three_times() -> None:
    trace: list[TraceRecord] = []
    sim, client, server = make_pair(trace=trace)
    connect(sim, client, server)
    sizes = {first: length for _, kind, _, _, length, first in trace if kind == "send"}
    assert sizes[INIT] == HEADER_SIZE + Config().max_payload
    assert sizes[COOKIE] <= 3 * sizes[INIT]


def test_smallest_init_still_gets_a_reply_within_the_amplification_budget() -> None:
    server = Endpoint(token_bytes=random.Random(1).randbytes, listening=True)
    init = Init(1, 2, 1200, 7, 1 << 20, 5, pad_to=0).encode()
    server.receive_datagram(init, CLIENT_ADDR, now=0.0)
    out = server.datagrams_to_send(now=0.0)
    assert len(out) == 1 and out[0][0][0] == COOKIE
    assert len(out[0][0]) <= 3 * len(init)
    assert server.connections == {}


@pytest.mark.parametrize(
    ("dropped", "resent", "first_again"),
    [
        (INIT, INIT, 1.0),  # the INIT times out after initial_rto
        (COOKIE, INIT, 1.0),  # the server kept nothing: the INIT is simply repeated
        # The echo is repeated one RTO after the first: SRTT 20 ms + the 200 ms variance floor.
        (ECHO, ECHO, 0.02 + 0.22),
        (ACK, ECHO, 0.02 + 0.22),  # the confirmation was lost: the echo is repeated
    ],
)
def test_each_handshake_datagram_lost_once_is_recovered(
    dropped: int, resent: int, first_again: float
) -> None:
    trace: list[TraceRecord] = []
    sim, client, server = make_pair(impairment=Impairment(delay=DELAY), trace=trace)
    src, dst = (
        (SERVER_ADDR, CLIENT_ADDR) if dropped in (COOKIE, ACK) else (CLIENT_ADDR, SERVER_ADDR)
    )
    sim.links[(src, dst)].drop_where(lambda _i, data: data[0] == dropped, times=1)
    conn = connect(sim, client, server)
    sent = sends(trace)
    repeats = [t for t, first, _ in sent if first == resent]
    assert len(repeats) == 2
    assert repeats[1] == pytest.approx(first_again, abs=1e-5)  # 1 us timestamp ticks
    assert conn.stats.handshake_retransmits == 1
    assert len(server.accepted) == 1
    if dropped == ACK:
        assert server.accepted[0].stats.acks_sent == 2  # confirmed twice, one connection
    # Data flows afterwards in both directions.
    client.write(conn, b"ping" * 1000, eof=True)
    server.write(server.accepted[0], b"pong" * 1000, eof=True)
    assert sim.run_until(lambda: client.log(conn).eof and server.log(server.accepted[0]).eof, 60)
    assert bytes(server.log(server.accepted[0]).received) == b"ping" * 1000
    assert bytes(client.log(conn).received) == b"pong" * 1000


def test_a_lost_handshake_starts_the_data_with_a_one_segment_window() -> None:
    sim, client, server = make_pair(impairment=Impairment(delay=DELAY))
    sim.links[(CLIENT_ADDR, SERVER_ADDR)].drop_nth(1)
    conn = connect(sim, client, server)
    assert conn.cwnd == conn.max_payload  # RFC 6928 §2 fallback
    sim2, client2, server2 = make_pair(impairment=Impairment(delay=DELAY))
    conn2 = connect(sim2, client2, server2)
    assert conn2.cwnd == 10 * conn2.max_payload


def test_handshake_gives_up_after_the_configured_retries_with_exact_backoff() -> None:
    config = Config(handshake_retries=3, handshake_timeout=100.0)
    trace: list[TraceRecord] = []
    sim = Simulator(trace=trace)
    client = Peer(config)
    sim.add_node(client, CLIENT_ADDR)  # nobody at SERVER_ADDR: every INIT is lost
    conn = client.endpoint.connect(SERVER_ADDR, now=0.0)
    sim.run_until(lambda: client.log(conn).terminated is not None, 1000.0)
    assert [t for t, first, _ in sends(trace) if first == INIT] == [0.0, 1.0, 3.0, 7.0]
    event = client.log(conn).terminated
    assert event is not None and isinstance(event.error, HandshakeTimeout)
    assert isinstance(event.error, TimeoutError)
    assert sim.clock.now == 15.0
    assert client.endpoint.connections == {}


def test_handshake_timeout_bounds_the_whole_handshake() -> None:
    config = Config(handshake_retries=10, handshake_timeout=5.0)
    sim = Simulator()
    client = Peer(config)
    sim.add_node(client, CLIENT_ADDR)
    conn = client.endpoint.connect(SERVER_ADDR, now=0.0)
    sim.run_until(lambda: client.log(conn).terminated is not None, 1000.0)
    assert sim.clock.now == 5.0
    event = client.log(conn).terminated
    assert event is not None and isinstance(event.error, HandshakeTimeout)


def test_connecting_to_an_endpoint_that_does_not_listen_is_refused() -> None:
    sim = Simulator()
    client = Peer()
    other = Peer(listening=False)
    sim.add_node(client, CLIENT_ADDR)
    sim.add_node(other, SERVER_ADDR)
    conn = client.endpoint.connect(SERVER_ADDR, now=0.0)
    sim.run_until(lambda: client.log(conn).terminated is not None, 10.0)
    event = client.log(conn).terminated
    assert event is not None and isinstance(event.error, ConnectionRefused)
    assert sim.clock.now == 0.0
    assert other.endpoint.stats.dropped["not_listening"] == 1


def _handshake_by_hand(server: Endpoint, now: float = 0.0) -> tuple[Init, Cookie]:
    init = Init(0x1234, 777, 1200, 7, 1 << 22, 99, pad_to=HEADER_SIZE + 1200)
    server.receive_datagram(init.encode(), CLIENT_ADDR, now=now)
    (reply, addr), *rest = server.datagrams_to_send(now=now)
    assert addr == CLIENT_ADDR and rest == []
    cookie = decode_control(reply)
    assert isinstance(cookie, Cookie)
    return init, cookie


def _echo(cookie: Cookie, *, cookie_bytes: bytes | None = None) -> bytes:
    return CookieEcho(
        server_cid=cookie.server_cid,
        client_cid=cookie.client_cid,
        tsval=1,
        tsecr=cookie.tsval,
        cookie=cookie.cookie if cookie_bytes is None else cookie_bytes,
    ).encode()


def test_server_keeps_no_state_for_any_number_of_inits() -> None:
    server = Endpoint(token_bytes=random.Random(2).randbytes, listening=True)
    rng = random.Random(3)
    for i in range(2000):
        addr = (f"127.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}", i + 1)
        init = Init(rng.randrange(1, 2**32), rng.randrange(2**32), 1200, 7, 65535, i, pad_to=1224)
        server.receive_datagram(init.encode(), addr, now=i * 0.001)
    assert len(server.datagrams_to_send(now=2.0)) == 2000
    assert server.connections == {}
    assert server.get_timer() is None
    assert server.stats.cookies_sent == 2000


def test_valid_echo_creates_exactly_one_connection() -> None:
    server = Endpoint(token_bytes=random.Random(4).randbytes, listening=True)
    init, cookie = _handshake_by_hand(server)
    server.receive_datagram(_echo(cookie), CLIENT_ADDR, now=0.5)
    assert list(server.connections) == [cookie.server_cid]
    assert server.stats.connections_accepted == 0
    conn = server.accept()
    assert conn is not None and conn.peer_cid == init.client_cid
    assert server.stats.connections_accepted == 1 and server.accept() is None
    out = server.datagrams_to_send(now=0.5)
    assert [d[0] for d, _ in out] == [ACK]
    # The same echo again is answered, not turned into a second connection.
    server.receive_datagram(_echo(cookie), CLIENT_ADDR, now=0.6)
    assert len(server.connections) == 1
    assert [d[0] for d, _ in server.datagrams_to_send(now=0.6)] == [ACK]


def test_forged_cookie_is_dropped_and_counted() -> None:
    server = Endpoint(token_bytes=random.Random(5).randbytes, listening=True)
    _, cookie = _handshake_by_hand(server)
    forged = bytearray(cookie.cookie)
    forged[len(forged) // 2] ^= 0x40
    server.receive_datagram(_echo(cookie, cookie_bytes=bytes(forged)), CLIENT_ADDR, now=0.1)
    assert server.connections == {}
    assert server.stats.dropped["bad_cookie"] == 1


def test_cookie_replayed_from_another_address_is_dropped() -> None:
    server = Endpoint(token_bytes=random.Random(6).randbytes, listening=True)
    _, cookie = _handshake_by_hand(server)
    server.receive_datagram(_echo(cookie), ("10.9.9.9", 5000), now=0.1)
    server.receive_datagram(_echo(cookie), (CLIENT_ADDR[0], CLIENT_ADDR[1] + 1), now=0.1)
    assert server.connections == {}
    assert server.stats.dropped["bad_cookie"] == 2


def test_stale_cookie_is_dropped_at_exactly_the_lifetime() -> None:
    config = Config(cookie_lifetime=60.0, cookie_secret_rotation=600.0)
    server = Endpoint(config, token_bytes=random.Random(7).randbytes, listening=True)
    _, cookie = _handshake_by_hand(server, now=100.0)
    server.receive_datagram(_echo(cookie), CLIENT_ADDR, now=161.0)
    assert server.connections == {}
    assert server.stats.dropped["stale_cookie"] == 1
    server.receive_datagram(_echo(cookie), CLIENT_ADDR, now=160.0)
    assert len(server.connections) == 1


def test_echo_with_mismatched_ids_is_dropped() -> None:
    server = Endpoint(token_bytes=random.Random(8).randbytes, listening=True)
    _, cookie = _handshake_by_hand(server)
    bad = CookieEcho(
        server_cid=cookie.server_cid,
        client_cid=cookie.client_cid ^ 1,
        tsval=1,
        tsecr=cookie.tsval,
        cookie=cookie.cookie,
    )
    server.receive_datagram(bad.encode(), CLIENT_ADDR, now=0.1)
    assert server.connections == {}
    assert server.stats.dropped["bad_cookie"] == 1


def _clients(n: int, sim: Simulator) -> list[Peer]:
    peers = []
    for i in range(n):
        peer = Peer(seed=100 + i)
        sim.add_node(peer, (f"10.0.1.{i + 1}", 6000))
        peers.append(peer)
    return peers


def test_backlog_overflow_drops_the_echo_and_the_client_gets_in_later() -> None:
    sim = Simulator()
    server = Peer(Config(backlog=2), listening=True, auto_accept=False, seed=9)
    sim.add_node(server, SERVER_ADDR)
    clients = _clients(3, sim)
    conns = [c.endpoint.connect(SERVER_ADDR, now=0.0) for c in clients]
    sim.run_for(0.1)
    assert server.endpoint.accept_queue_length == 2
    assert server.endpoint.stats.dropped["backlog_full"] >= 1
    assert conns[2].state is ConnState.COOKIE_ECHOED  # still echoing
    first = server.endpoint.accept()
    assert first is not None
    sim.run_until(lambda: conns[2].state is ConnState.ESTABLISHED, 30.0)
    assert sim.clock.now == pytest.approx(0.2)  # its echo, repeated after the handshake RTO
    assert server.endpoint.accept_queue_length == 2
    assert all(c.log(conn).terminated is None for c, conn in zip(clients, conns, strict=True))


def test_backlog_overflow_with_reset_policy_refuses_the_client() -> None:
    sim = Simulator()
    server = Peer(
        Config(backlog=2, backlog_overflow="reset"), listening=True, auto_accept=False, seed=10
    )
    sim.add_node(server, SERVER_ADDR)
    clients = _clients(3, sim)
    conns = [c.endpoint.connect(SERVER_ADDR, now=0.0) for c in clients]
    sim.run_for(1.0)
    refused = [
        c.log(conn).terminated
        for c, conn in zip(clients, conns, strict=True)
        if c.log(conn).terminated
    ]
    assert len(refused) == 1
    assert isinstance(refused[0], ConnectionTerminated)
    assert isinstance(refused[0].error, ConnectionRefused)
    assert server.endpoint.accept_queue_length == 2


def test_new_init_from_the_same_address_does_not_disturb_a_live_connection() -> None:
    sim, client, server = make_pair(impairment=Impairment(delay=DELAY))
    first = connect(sim, client, server)
    second = client.endpoint.connect(SERVER_ADDR, now=sim.clock.now)
    sim.run_until(lambda: second.state is ConnState.ESTABLISHED, sim.clock.now + 5)
    assert len(server.accepted) == 2
    assert first.state is ConnState.ESTABLISHED and second.state is ConnState.ESTABLISHED
    assert first.local_cid != second.local_cid
    data_a, data_b = b"a" * 300_000, b"b" * 200_000
    client.write(first, data_a, eof=True)
    client.write(second, data_b, eof=True)
    a, b = server.accepted
    assert sim.run_until(lambda: server.log(a).eof and server.log(b).eof, sim.clock.now + 30)
    assert bytes(server.log(a).received) == data_a
    assert bytes(server.log(b).received) == data_b


def test_segment_for_unknown_connection_gets_a_reset_naming_it() -> None:
    server = Endpoint(token_bytes=random.Random(11).randbytes, listening=True)
    segment = encode_segment(PacketType.ACK, 0, 100, 0xABCD, 5, 0x1234, 1, 0)
    server.receive_datagram(segment, CLIENT_ADDR, now=0.0)
    (reply, addr), *_ = server.datagrams_to_send(now=0.0)
    reset = Reset.decode(reply)
    assert addr == CLIENT_ADDR
    assert (reset.cid, reset.seq, reset.reason) == (0xABCD, 0x1234, ResetReason.UNKNOWN_CONNECTION)
    assert server.stats.dropped["unknown_connection"] == 1
    assert len(reply) < len(segment)


def test_blind_segment_from_another_address_is_not_accepted() -> None:
    sim, client, server = make_pair()
    conn = connect(sim, client, server)
    srv = server.accepted[0]
    before = srv.stats.payload_bytes_received
    segment = encode_segment(PacketType.DATA, 0, 100, srv.local_cid, 0, 0, 1, 0, payload=b"x")
    server.endpoint.receive_datagram(segment, ("10.6.6.6", 1), now=sim.clock.now)
    assert srv.stats.dropped["seq_out_of_window"] == 1
    assert srv.stats.payload_bytes_received == before
    assert srv.peer_addr == CLIENT_ADDR and srv.path_candidate is None
    out = server.endpoint.datagrams_to_send(now=sim.clock.now)
    assert all(addr == CLIENT_ADDR for _, addr in out)  # at most a challenge ACK, to the peer
    assert conn.state is ConnState.ESTABLISHED


def test_endpoint_timer_is_the_earliest_connection_deadline() -> None:
    sim, client, server = make_pair(impairment=Impairment(delay=DELAY))
    a = connect(sim, client, server)
    b = client.endpoint.connect(SERVER_ADDR, now=sim.clock.now)
    sim.flush()
    deadlines = [d for d in (a.get_timer(), b.get_timer()) if d is not None]
    assert client.endpoint.get_timer() == min(deadlines)
    client.endpoint.handle_timer(now=sim.clock.now)  # nothing due: nothing happens
    assert client.endpoint.datagrams_to_send(now=sim.clock.now) == []


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=1500), st.sampled_from([True, False]))
def test_arbitrary_datagrams_never_raise(data: bytes, listening: bool) -> None:
    endpoint = Endpoint(token_bytes=random.Random(12).randbytes, listening=listening)
    endpoint.receive_datagram(data, CLIENT_ADDR, now=1.0)
    endpoint.datagrams_to_send(now=1.0)
    endpoint.handle_timer(now=2.0)
    assert endpoint.stats.datagrams_received == 1


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_handshake_and_data_datagrams_never_raise(data: st.DataObject) -> None:
    sim, client, server = make_pair(seed=1)
    conn = connect(sim, client, server)
    client.write(conn, b"z" * 5000, eof=False)
    captured = client.endpoint.datagrams_to_send(now=sim.clock.now)
    init = Init(7, 8, 1200, 7, 65535, 9, pad_to=1224).encode()
    pool = [d for d, _ in captured] + [init]
    original = data.draw(st.sampled_from(pool))
    mutated = bytearray(original)
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, len(mutated) - 1))
        mutated[index] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(mutated)))
    for addr in (CLIENT_ADDR, ("10.1.1.1", 1)):
        server.endpoint.receive_datagram(bytes(mutated[:cut]), addr, now=sim.clock.now)
        server.endpoint.receive_datagram(bytes(mutated), addr, now=sim.clock.now)
    server.endpoint.datagrams_to_send(now=sim.clock.now)
    server.endpoint.handle_timer(now=sim.clock.now + 1)


def test_client_that_half_closes_before_the_echo_is_confirmed_waits_for_a_late_reply() -> None:
    sim, client, server = make_pair(impairment=Impairment(delay=DELAY))
    sim.links[(SERVER_ADDR, CLIENT_ADDR)].drop_where(lambda _i, d: d[0] == ACK, times=1)
    conn = client.endpoint.connect(SERVER_ADDR, now=0.0)
    sim.run_until(lambda: client.log(conn).connected, 1.0)
    conn.send(b"request")
    conn.send_eof()  # COOKIE_ECHOED -> FIN_WAIT_1, before the server's confirmation
    assert conn.state is ConnState.FIN_WAIT_1
    assert sim.run_until(lambda: bool(server.accepted) and server.log(server.accepted[0]).eof, 5)
    srv = server.accepted[0]
    sim.run_for(100.0)  # the reply comes long after the echo retries would have run out
    assert client.log(conn).terminated is None and conn.state is ConnState.FIN_WAIT_2
    server.write(srv, b"late reply", eof=True)
    assert sim.run_until(lambda: client.log(conn).eof, sim.clock.now + 5)
    assert bytes(client.log(conn).received) == b"late reply"
    assert bytes(server.log(srv).received) == b"request"


def test_repeated_echo_gives_the_server_no_inflated_rtt_sample() -> None:
    sim, client, server = make_pair(impairment=Impairment(delay=DELAY))
    sim.links[(CLIENT_ADDR, SERVER_ADDR)].drop_where(lambda _i, d: d[0] == ECHO, times=1)
    connect(sim, client, server)
    srv = server.accepted[0]
    assert srv.srtt is None  # the only echo that arrived was a repeat: no sample from it
    assert srv.rtt.rto == Config().initial_rto
