"""Path validation: NAT rebinding mid-transfer, the 3x limit toward an unvalidated address, and
spoofed datagrams from a third address that must not move the connection."""

from __future__ import annotations

import random
import struct

import pytest

from rudp.config import Config
from rudp.core.conn_path import MAX_PATH_CHALLENGES
from rudp.wire.packet import PATH_SIZE, PacketType, PathChallenge, PathResponse, parse_segment
from tests.core.harness import CLIENT_ADDR, SERVER_ADDR, Peer, connect, make_pair
from tests.sim import Impairment, Simulator, TraceRecord

DELAY = 0.01
LINK = Impairment(delay=DELAY)
CHALLENGE = 0x10 | PacketType.PATH_CHALLENGE
RESPONSE = 0x10 | PacketType.PATH_RESPONSE
REBOUND = (CLIENT_ADDR[0], CLIENT_ADDR[1] + 1000)  # the NAT's new mapping: a new port
THIRD = ("10.6.6.6", 7777)  # an attacker, or the victim it spoofs


def payload(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


def move(sim: Simulator, peer: Peer, old: tuple[str, int], new: tuple[str, int]) -> None:
    """The peer's datagrams leave from ``new`` from now on; ``old`` is gone (a NAT rebinding)."""
    sim.remove_node(old)
    sim.add_node(peer, new)
    sim.link(new, SERVER_ADDR, LINK)


def test_nat_rebinding_mid_transfer_keeps_the_connection_after_one_challenge() -> None:
    trace: list[TraceRecord] = []
    sim, client, server = make_pair(impairment=LINK, seed=20, trace=trace)
    conn = connect(sim, client, server)
    srv = server.accepted[0]
    up, down = payload(600_000, 1), payload(400_000, 2)
    client.write(conn, up, eof=True)
    server.write(srv, down, eof=True)
    assert sim.run_until(lambda: len(server.log(srv).received) > 200_000, sim.clock.now + 10)
    move(sim, client, CLIENT_ADDR, REBOUND)
    assert sim.run_until(lambda: client.log(conn).eof and server.log(srv).eof, sim.clock.now + 60)
    assert bytes(server.log(srv).received) == up and bytes(client.log(conn).received) == down
    # The same connection, found by its id, now talks to the new address.
    assert server.endpoint.connections[srv.local_cid] is srv
    assert srv.peer_addr == REBOUND and srv.path_candidate is None
    assert srv.stats.path_migrations == 1 and srv.stats.path_challenges_sent == 1
    assert conn.stats.path_responses_sent == 1
    ended = server.log(srv).terminated
    assert ended is None or ended.error is None
    # One round trip of validation: the response arrives 2 one-way delays after the first
    # datagram from the new address.
    first_in = min(t for t, k, s, d, _, _ in trace if k == "deliver" and s == REBOUND)
    (answer,) = [t for t, k, s, d, _, f in trace if k == "deliver" and f == RESPONSE]
    assert answer == pytest.approx(first_in + 2 * DELAY)
    # Until then the new address got only the challenge, within 3x what it sent (RFC 9000 §8.1).
    out = sum(n for t, k, s, d, n, _ in trace if k == "send" and d == REBOUND and t < answer)
    into = sum(n for t, k, s, d, n, _ in trace if k == "deliver" and s == REBOUND and t < answer)
    assert out == PATH_SIZE and out <= 3 * into
    assert srv.stats.unvalidated_bytes_sent == PATH_SIZE
    assert srv.stats.unvalidated_bytes_sent <= 3 * srv.stats.unvalidated_bytes_received
    # The congestion state and RTT estimate carry over to the new path.
    assert srv.srtt == pytest.approx(2 * DELAY, rel=0.5)


def test_a_receive_only_peer_that_moved_to_a_new_host_is_found_at_its_keepalive() -> None:
    # The client only receives: after the move it is silent until its keepalive, which is
    # what tells the server where it went (the server's data to the old address is lost).
    keepalive = Config(keepalive_idle=0.5, keepalive_interval=0.5)
    sim, client, server = make_pair(impairment=LINK, seed=21, client_config=keepalive)
    conn = connect(sim, client, server)
    srv = server.accepted[0]
    server.write(srv, payload(2_000_000, 3), eof=True)
    sim.run_until(lambda: srv.cwnd > 20 * srv.max_payload, sim.clock.now + 10)
    other_host = ("10.0.0.77", 5000)
    move(sim, client, CLIENT_ADDR, other_host)
    moved = sim.clock.now
    assert sim.run_until(lambda: srv.peer_addr == other_host, moved + 5)
    assert sim.clock.now < moved + 0.5 + 0.1  # the first keepalive, then one round trip
    assert sim.run_until(lambda: client.log(conn).eof, sim.clock.now + 60)
    assert bytes(client.log(conn).received) == payload(2_000_000, 3)


def _fresh_copy(datagram: bytes, *, tsval_bump: int) -> bytes:
    """The same segment with a newer TSval: what an on-path attacker could forge."""
    fields = parse_segment(datagram)
    data = bytearray(datagram)
    struct.pack_into("!I", data, 16, (fields[6] + tsval_bump) & 0xFFFFFFFF)
    return bytes(data)


def test_datagrams_from_a_third_address_cannot_move_the_connection() -> None:
    trace: list[TraceRecord] = []
    sim, client, server = make_pair(impairment=LINK, seed=22, trace=trace)
    client.record = True
    conn = connect(sim, client, server)
    srv = server.accepted[0]
    data = payload(500_000, 4)
    client.write(conn, data, eof=True)
    assert sim.run_until(lambda: len(server.log(srv).received) > 100_000, sim.clock.now + 10)
    genuine = [d for d, _ in client.sent if d[0] >> 4 == 1 and d[0] & 0x0F in (1, 2)]
    sim.run_for(3 * DELAY)  # what was captured has reached the server: replays are old now
    now = sim.clock.now
    # 1. A replay of what the client sent, from elsewhere: not fresh, so it starts nothing.
    for datagram in genuine[-20:]:
        server.endpoint.receive_datagram(datagram, THIRD, now=now)
    # 2. Blind guesses with the right connection id: outside every window.
    rng = random.Random(5)
    for _ in range(50):
        fields = [rng.randrange(1 << 32) for _ in range(4)]
        blind = struct.pack("!BBHIIIII", 0x12, 0, 100, srv.local_cid, *fields)
        server.endpoint.receive_datagram(blind, THIRD, now=now)
    assert srv.path_candidate is None
    assert srv.stats.dropped["wrong_address"] + srv.stats.dropped["paws"] >= 20
    assert srv.stats.path_challenges_sent == 0
    # 3. A fresh forgery (an on-path attacker's): it is processed like any copy of the
    # client's data, but only earns a challenge toward the third address, which never answers.
    latest = [d for d, _ in client.sent if d[0] >> 4 == 1 and d[0] & 0x0F in (1, 2)][-1]
    forged = _fresh_copy(latest, tsval_bump=10_000)
    server.endpoint.receive_datagram(forged, THIRD, now=now)
    assert srv.path_candidate == THIRD and srv.stats.path_challenges_sent == 1
    sim.flush()
    assert sim.run_until(lambda: server.log(srv).eof, sim.clock.now + 30)
    assert bytes(server.log(srv).received) == data
    assert srv.peer_addr == CLIENT_ADDR and srv.stats.path_migrations == 0
    # The client's next fresh segment from the validated address dropped the candidate.
    assert srv.path_candidate is None
    to_third = [(n, f) for t, k, s, d, n, f in trace if k == "send" and d == THIRD]
    assert to_third == [(PATH_SIZE, CHALLENGE)]
    assert PATH_SIZE <= 3 * len(forged)
    ended = client.log(conn).terminated
    assert ended is None or ended.error is None


def test_a_path_response_must_come_from_the_candidate_with_its_token() -> None:
    sim, client, server = make_pair(impairment=LINK, seed=23)
    client.record = True
    connect(sim, client, server)
    srv = server.accepted[0]
    conn = client.endpoint.connections[srv.peer_cid]
    client.write(conn, b"x" * 5000, eof=False)
    sim.run_for(0.1)
    genuine = [d for d, _ in client.sent if d[0] & 0x0F in (1, 2)][-1]
    now = sim.clock.now
    server.endpoint.receive_datagram(_fresh_copy(genuine, tsval_bump=5000), THIRD, now=now)
    (challenge_bytes, where), *_ = [
        (d, a) for d, a in server.endpoint.datagrams_to_send(now=now) if d[0] == CHALLENGE
    ]
    assert where == THIRD
    token = PathChallenge.decode(challenge_bytes).token
    wrong = bytes(b ^ 1 for b in token)
    server.endpoint.receive_datagram(PathResponse(srv.local_cid, wrong).encode(), THIRD, now=now)
    right = PathResponse(srv.local_cid, token).encode()
    server.endpoint.receive_datagram(right, ("10.6.6.7", 1), now=now)  # not the candidate
    assert srv.stats.dropped["bad_path_response"] == 2 and srv.peer_addr == CLIENT_ADDR
    server.endpoint.receive_datagram(right, THIRD, now=now)
    assert srv.peer_addr == THIRD and srv.stats.path_migrations == 1


def test_a_path_challenge_is_answered_only_to_the_peers_address() -> None:
    sim, client, server = make_pair(impairment=LINK, seed=24)
    conn = connect(sim, client, server)
    challenge = PathChallenge(conn.local_cid, b"\x01\x02\x03\x04\x05\x06\x07\x08").encode()
    now = sim.clock.now
    client.endpoint.receive_datagram(challenge, THIRD, now=now)  # would reflect toward THIRD
    assert client.endpoint.datagrams_to_send(now=now) == []
    assert conn.stats.dropped["wrong_address"] == 1
    client.endpoint.receive_datagram(challenge, SERVER_ADDR, now=now)
    (reply, addr), *_ = client.endpoint.datagrams_to_send(now=now)
    assert addr == SERVER_ADDR
    assert PathResponse.decode(reply) == PathResponse(conn.peer_cid, challenge[8:])
    unknown = PathChallenge(0xDEAD, bytes(8)).encode()
    client.endpoint.receive_datagram(unknown, SERVER_ADDR, now=now)
    assert client.endpoint.stats.dropped["unknown_connection"] == 1
    assert client.endpoint.datagrams_to_send(now=now) == []  # no reset for a path packet


def test_an_unanswered_candidate_gets_a_bounded_number_of_challenges_one_rto_apart() -> None:
    sim, client, server = make_pair(impairment=LINK, seed=25)
    client.record = True
    conn = connect(sim, client, server)
    srv = server.accepted[0]
    client.write(conn, b"y" * 3000, eof=False)
    sim.run_for(0.2)
    genuine = [d for d, _ in client.sent if d[0] & 0x0F in (1, 2)][-1]
    times = []
    for i in range(1, 200):
        now = sim.clock.now + 0.05 * i
        forged = _fresh_copy(genuine, tsval_bump=100_000 * i)
        server.endpoint.receive_datagram(forged, THIRD, now=now)
        for data, addr in server.endpoint.datagrams_to_send(now=now):
            if data[0] == CHALLENGE:
                assert addr == THIRD
                times.append(now)
    assert len(times) == MAX_PATH_CHALLENGES
    rto = srv.rtt.rto
    assert all(b - a >= rto - 1e-9 for a, b in zip(times, times[1:], strict=False))
    assert srv.peer_addr == CLIENT_ADDR
