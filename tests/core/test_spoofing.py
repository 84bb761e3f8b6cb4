"""Spoofed and blind input on a fake clock: the reply rate limit, the amplification factor,
blind injection with a guessed connection id, rate-limited challenge ACKs, and a peer that
restarts on the same address while its old connection is half-open."""

from __future__ import annotations

import random

import pytest

from rudp.config import Config
from rudp.core.endpoint import Endpoint
from rudp.core.state import ConnState
from rudp.errors import ConnectionReset
from rudp.wire.packet import (
    HEADER_SIZE,
    Init,
    PacketType,
    Reset,
    ResetReason,
    encode_segment,
)
from rudp.wire.seqnum import MASK32
from tests.core.harness import CLIENT_ADDR, SERVER_ADDR, Peer, connect, make_pair
from tests.sim import Impairment

ACK = 0x10 | PacketType.ACK
COOKIE = 0x10 | PacketType.COOKIE
RESET = 0x10 | PacketType.RESET
DELAY = 0.01
COOKIE_SIZE = 80  # 36-byte header + 44-byte cookie
MIN_INIT = Init(1, 2, 1200, 7, 65535, 3).encode()  # 28 bytes: the attacker's cheapest INIT


def listening(config: Config | None = None, seed: int = 1) -> Endpoint:
    return Endpoint(config, token_bytes=random.Random(seed).randbytes, listening=True)


def init_from(rng: random.Random, *, pad_to: int = 0) -> bytes:
    return Init(rng.randrange(1, 2**32), rng.randrange(2**32), 1200, 7, 65535, 1, pad_to).encode()


# --- the per-prefix limit on stateless replies ------------------------------------------------


def test_inits_from_one_prefix_get_the_burst_at_once_then_the_rate() -> None:
    config = Config(stateless_reply_rate=100.0, stateless_reply_burst=200)
    server = listening(config)
    rng = random.Random(2)
    for i in range(1000):  # one /24, many hosts and ports, all at one instant
        server.receive_datagram(init_from(rng), (f"203.0.113.{i % 250 + 1}", 1024 + i), now=0.0)
    assert server.stats.cookies_sent == 200
    assert server.stats.dropped["rate_limited"] == 800
    for i in range(300):  # 1 s later: 100 tokens more
        server.receive_datagram(init_from(rng), ("203.0.113.9", 5000 + i), now=1.0)
    assert server.stats.cookies_sent == 300
    server.receive_datagram(init_from(rng), ("203.0.114.1", 1), now=1.0)  # another prefix
    assert server.stats.cookies_sent == 301
    out = server.datagrams_to_send(now=1.0)
    assert len(out) == 301 and all(data[0] == COOKIE for data, _ in out)
    limiter = server.reply_limiter
    assert limiter is not None and len(limiter) == 2
    assert server.connections == {}


def test_resets_for_unknown_connections_share_the_limit() -> None:
    server = listening(Config(stateless_reply_rate=1.0, stateless_reply_burst=3))
    ack = encode_segment(PacketType.ACK, 0, 100, 0xABCD, 5, 0x1234, 1, 0)
    for _ in range(10):
        server.receive_datagram(ack, CLIENT_ADDR, now=0.0)
    assert server.stats.resets_sent == 3
    assert server.stats.dropped["unknown_connection"] == 10
    assert server.stats.dropped["rate_limited"] == 7
    client = Endpoint(
        Config(stateless_reply_rate=1.0, stateless_reply_burst=2),
        token_bytes=random.Random(3).randbytes,
    )
    for _ in range(5):  # INITs to an endpoint that does not listen: RESET REFUSED, limited too
        client.receive_datagram(MIN_INIT, SERVER_ADDR, now=0.0)
    assert client.stats.resets_sent == 2 and client.stats.dropped["rate_limited"] == 3


def test_amplification_factor_before_validation_is_at_most_three() -> None:
    """Every reply an unvalidated address can draw, from the smallest datagram that draws
    it, measured as bytes out / bytes in."""
    rng = random.Random(4)
    server = listening(Config(stateless_reply_rate=None))
    client = Endpoint(Config(stateless_reply_rate=None), token_bytes=rng.randbytes)
    unknown_ack = encode_segment(PacketType.ACK, 0, 1, 0xABCD, 5, 6, 7, 8)
    cases = [
        (server, MIN_INIT),  # COOKIE
        (server, init_from(rng, pad_to=HEADER_SIZE + 1200)),  # what rudp clients send
        (server, unknown_ack),  # RESET UNKNOWN_CONNECTION
        (client, MIN_INIT),  # RESET REFUSED
    ]
    factors = []
    for endpoint, datagram in cases:
        endpoint.receive_datagram(datagram, ("198.51.100.7", 4000), now=0.0)
        out = endpoint.datagrams_to_send(now=0.0)
        assert len(out) == 1 and out[0][1] == ("198.51.100.7", 4000)
        factors.append(len(out[0][0]) / len(datagram))
        stats = endpoint.stats
        assert stats.stateless_bytes_sent / stats.stateless_bytes_received <= 3.0
    assert factors == pytest.approx([COOKIE_SIZE / 28, COOKIE_SIZE / 1224, 12 / 24, 12 / 28])
    assert max(factors) <= 3.0  # 80 / 28 = 2.86 (RFC 9000 §8.1)


def test_a_reflection_attack_on_one_prefix_is_capped_by_the_rate() -> None:
    """10 s of minimal INITs at 10,000/s spoofed from one victim /24: the victim gets the
    burst plus the rate, 3.4 % of the attacker's bytes, not 2.86 x."""
    server = listening()  # default: 100/s, burst 200
    rng = random.Random(5)
    bytes_in = bytes_out = 0
    for i in range(100_000):
        now = i / 10_000
        victim = (f"192.0.2.{rng.randrange(1, 255)}", 1 + i % 60000)
        server.receive_datagram(MIN_INIT, victim, now=now)
        bytes_in += len(MIN_INIT)
        if i % 100 == 99:
            bytes_out += sum(len(d) for d, _ in server.datagrams_to_send(now=now))
    cookies = server.stats.cookies_sent
    assert 200 + 999 <= cookies <= 200 + 1000  # the last 0.1 ms of refill may not be spent
    assert bytes_out == cookies * COOKIE_SIZE == server.stats.stateless_bytes_sent
    assert bytes_in == server.stats.stateless_bytes_received
    assert bytes_out / bytes_in == pytest.approx(cookies * 80 / 2_800_000)
    assert bytes_out / bytes_in < 0.035


def test_reply_queue_is_bounded_when_nobody_drains_it() -> None:
    server = listening(Config(stateless_reply_rate=None, stateless_reply_queue=10))
    rng = random.Random(6)
    for i in range(50):
        server.receive_datagram(init_from(rng), (f"10.0.{i}.1", 1), now=0.0)
    assert len(server.datagrams_to_send(now=0.0)) == 10
    assert server.stats.dropped["reply_queue_full"] == 40


# --- blind injection with a guessed connection id --------------------------------------------


def test_blind_segments_with_the_right_cid_are_dropped_and_challenged_at_a_bounded_rate() -> None:
    sim, client, server = make_pair(impairment=Impairment(delay=DELAY), seed=7)
    conn = connect(sim, client, server)
    srv = server.accepted[0]
    data = random.Random(8).randbytes(300_000)
    client.write(conn, data, eof=True)
    sim.run_until(lambda: len(server.log(srv).received) > 100_000, sim.clock.now + 10)
    rng = random.Random(9)
    now = sim.clock.now
    for i in range(1000):
        ptype = PacketType.DATA if i % 2 else PacketType.ACK
        blind = encode_segment(
            ptype,
            0,
            rng.randrange(1 << 16),
            srv.local_cid,  # the attacker guessed the id right
            rng.randrange(1 << 32),
            rng.randrange(1 << 32),
            rng.randrange(1 << 32),
            rng.randrange(1 << 32),
            payload=b"evil" if ptype == PacketType.DATA else b"",
        )
        server.endpoint.receive_datagram(blind, CLIENT_ADDR, now=now)  # spoofed source
    dropped = srv.stats.dropped
    assert dropped["paws"] + dropped["seq_out_of_window"] + dropped["out_of_window"] == 1000
    assert dropped["seq_out_of_window"] > 200 and dropped["paws"] > 200
    # RFC 5961 §7: one bucket of challenge ACKs, not one per injected datagram.
    assert srv.stats.challenge_acks_sent == 10
    assert srv.stats.challenge_acks_limited == 990
    assert sim.run_until(lambda: server.log(srv).eof, sim.clock.now + 30)
    assert bytes(server.log(srv).received) == data  # nothing injected reached the stream
    assert server.log(srv).terminated is None


def test_reset_only_at_the_exact_sequence_and_challenges_are_rate_limited() -> None:
    sim, client, server = make_pair(impairment=Impairment(delay=DELAY))
    conn = connect(sim, client, server)
    srv = server.accepted[0]
    rcv_nxt = srv._rb.rcv_nxt if srv._rb is not None else 0
    now = sim.clock.now
    for offset in range(1, 101):  # inside the window, never exact: challenge ACKs
        bad = Reset(cid=srv.local_cid, seq=(rcv_nxt + offset) & MASK32, reason=ResetReason.ABORT)
        server.endpoint.receive_datagram(bad.encode(), CLIENT_ADDR, now=now)
    assert srv.stats.challenge_acks_sent == 10 and srv.stats.challenge_acks_limited == 90
    out = server.endpoint.datagrams_to_send(now=now)
    assert [d[0] for d, _ in out] == [ACK]  # one flush: the ten challenges are one ACK
    for offset in (2**23, 2**31 + 5):  # outside the window: dropped without a word
        far = Reset(cid=srv.local_cid, seq=(rcv_nxt + offset) & MASK32, reason=ResetReason.ABORT)
        server.endpoint.receive_datagram(far.encode(), CLIENT_ADDR, now=now + 1)
    assert srv.stats.dropped["out_of_window"] == 2
    assert server.endpoint.datagrams_to_send(now=now + 1) == []
    assert srv.state is ConnState.ESTABLISHED and conn.state is ConnState.ESTABLISHED
    exact = Reset(cid=srv.local_cid, seq=rcv_nxt & MASK32, reason=ResetReason.ABORT)
    server.endpoint.receive_datagram(exact.encode(), ("10.9.9.9", 1), now=now + 1)
    assert srv.state is ConnState.ESTABLISHED  # the exact number, but not from the peer
    server.receive_datagram(exact.encode(), CLIENT_ADDR, now=now + 1)  # drains the events
    assert srv.state is ConnState.CLOSED
    event = server.log(srv).terminated
    assert event is not None and isinstance(event.error, ConnectionReset)


# --- a peer that restarts on the same address -------------------------------------------------


def test_a_restarted_client_resets_its_stale_connection_and_connects_again() -> None:
    sim, client, server = make_pair(impairment=Impairment(delay=DELAY), seed=10)
    old = connect(sim, client, server)
    stale = server.accepted[0]
    client.write(old, b"before the crash", eof=False)
    sim.run_until(lambda: len(server.log(stale).received) == 16, sim.clock.now + 5)
    sim.remove_node(CLIENT_ADDR)  # the client process dies; the server does not know
    sim.run_for(1.0)
    assert stale.state is ConnState.ESTABLISHED
    reborn = Peer(seed=99)  # a new process, the same address and port
    sim.add_node(reborn, CLIENT_ADDR)
    started = sim.clock.now
    fresh = reborn.endpoint.connect(SERVER_ADDR, now=started)
    assert sim.run_until(lambda: server.log(stale).terminated is not None, started + 1)
    # INIT, then a challenge ACK on the stale connection, then the UNKNOWN_CONNECTION reset
    # it draws: three one-way trips after connect().
    assert sim.clock.now == pytest.approx(started + 3 * DELAY)
    event = server.log(stale).terminated
    assert event is not None and isinstance(event.error, ConnectionReset) and event.by_peer
    assert stale.stats.challenge_acks_sent == 1
    assert sim.run_until(lambda: len(server.accepted) == 2, sim.clock.now + 5)
    new = server.accepted[1]
    assert new is not stale and new.peer_addr == CLIENT_ADDR
    reborn.write(fresh, b"after the restart", eof=True)
    assert sim.run_until(lambda: server.log(new).eof, sim.clock.now + 5)
    assert bytes(server.log(new).received) == b"after the restart"
    assert reborn.log(fresh).terminated is None


def test_a_restarted_server_resets_the_clients_half_open_connection() -> None:
    sim, client, server = make_pair(impairment=Impairment(delay=DELAY), seed=11)
    conn = connect(sim, client, server)
    sim.remove_node(SERVER_ADDR)
    reborn = Peer(seed=98, listening=True)
    sim.add_node(reborn, SERVER_ADDR)
    sent = sim.clock.now
    client.write(conn, b"hello?", eof=False)  # the server process restarted meanwhile
    assert sim.run_until(lambda: client.log(conn).terminated is not None, sent + 1)
    assert sim.clock.now == pytest.approx(sent + 2 * DELAY)
    event = client.log(conn).terminated
    assert event is not None and isinstance(event.error, ConnectionReset)
    again = connect(sim, client, reborn)
    client.write(again, b"hello again", eof=True)
    assert sim.run_until(lambda: reborn.log(reborn.accepted[0]).eof, sim.clock.now + 5)
    assert bytes(reborn.log(reborn.accepted[0]).received) == b"hello again"


def test_an_init_from_a_live_peer_costs_it_only_a_rate_limited_ack() -> None:
    sim, client, server = make_pair(impairment=Impairment(delay=DELAY), seed=12)
    conn = connect(sim, client, server)
    srv = server.accepted[0]
    rng = random.Random(13)
    for _ in range(50):  # spoofed INITs naming the live client's address
        sim.inject(init_from(rng), CLIENT_ADDR, SERVER_ADDR)
    sim.run_for(1.0)
    assert srv.stats.challenge_acks_sent == 10 and srv.stats.challenge_acks_limited == 40
    assert srv.state is ConnState.ESTABLISHED and conn.state is ConnState.ESTABLISHED
    assert client.endpoint.stats.resets_sent == 0  # the live client knows the connection


def test_restart_detection_uses_the_exact_sequence_number() -> None:
    """The reset the challenge draws echoes the ACK field, so only a peer that received the
    challenge ACK can produce it."""
    sim, client, server = make_pair(impairment=Impairment(delay=DELAY), seed=14)
    connect(sim, client, server)
    srv = server.accepted[0]
    rcv_nxt = srv._rb.rcv_nxt if srv._rb is not None else 0
    guess = Reset(cid=srv.peer_cid, seq=(rcv_nxt + 7) & MASK32, reason=5)
    sim.inject(guess.encode(), CLIENT_ADDR, SERVER_ADDR)
    sim.run_for(0.5)
    assert srv.state is ConnState.ESTABLISHED
    assert srv.stats.challenge_acks_sent == 1  # in window but not exact: challenged


def test_an_init_from_an_address_with_many_connections_challenges_two_of_them_in_turn() -> None:
    """One socket may carry many live connections: a new INIT from it must not cost one ACK
    per connection (that made 10,000 connections from one client quadratic)."""
    sim, client, server = make_pair(impairment=Impairment(delay=DELAY), seed=15)
    for _ in range(20):
        client.endpoint.connect(SERVER_ADDR, now=0.0)
    sim.run_for(1.0)
    conns = list(server.endpoint.connections.values())
    assert len(conns) == 20
    before = {c: c.stats.challenge_acks_sent for c in conns}
    rng = random.Random(16)
    for _ in range(5):
        sim.inject(init_from(rng), CLIENT_ADDR, SERVER_ADDR)
    sim.run_for(1.0)
    challenged = [c for c in conns if c.stats.challenge_acks_sent > before[c]]
    assert len(challenged) == 10  # 2 per INIT, each time the two challenged longest ago
    assert all(c.stats.challenge_acks_sent == before[c] + 1 for c in challenged)
    assert all(c.state is ConnState.ESTABLISHED for c in conns)


def test_a_cookie_makes_one_connection_and_is_refused_after_it_is_gone() -> None:
    """A cookie is single-use: an echo replayed (or retransmitted late) after its connection
    closed does not make a second one."""
    sim, client, server = make_pair(impairment=Impairment(delay=DELAY), seed=17)
    client.record = True
    conn = connect(sim, client, server)
    echo = next(d for d, _ in client.sent if d[0] == 0x10 | PacketType.COOKIE_ECHO)
    conn.close(now=sim.clock.now)
    srv = server.accepted[0]
    server.write(srv, b"", eof=True)
    sim.run_for(10.0)  # closed on both sides, TIME_WAIT over
    assert server.endpoint.connections == {}
    sim.inject(echo, CLIENT_ADDR, SERVER_ADDR)  # within cookie_lifetime (60 s) still
    sim.run_for(1.0)
    assert server.endpoint.connections == {} and len(server.accepted) == 1
    assert server.endpoint.stats.dropped["cookie_reused"] == 1
    # The record of used cookies lasts only as long as the cookie could verify.
    sim.run_for(Config().cookie_lifetime + 2.0)
    server.receive_datagram(echo, CLIENT_ADDR, now=sim.clock.now)
    assert server.endpoint.stats.dropped["stale_cookie"] == 1
    assert len(server.endpoint._used_cookies) == 0
