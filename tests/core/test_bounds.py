"""The engine's own bounds, each reached on a fake clock: connections per endpoint, reassembly
pieces, and the timer heap (the reply queue is in test_spoofing.py)."""

from __future__ import annotations

import struct

import pytest

from rudp.config import Config
from rudp.errors import ConnectionRefused, TooManyConnections
from rudp.wire.packet import PacketType, parse_segment
from tests.core.harness import CLIENT_ADDR, SERVER_ADDR, Peer, connect, make_pair
from tests.sim import Impairment, Simulator

DELAY = 0.01
DATA = 0x10 | PacketType.DATA
ACK = 0x10 | PacketType.ACK


def test_max_connections_refuses_the_next_echo_and_connect_raises() -> None:
    sim = Simulator()
    server = Peer(Config(max_connections=2), seed=1, listening=True)
    sim.add_node(server, SERVER_ADDR)
    clients = [Peer(seed=10 + i) for i in range(3)]
    conns = []
    for i, client in enumerate(clients):
        sim.add_node(client, (f"10.0.1.{i + 1}", 4000))
        conns.append(client.endpoint.connect(SERVER_ADDR, now=0.0))
    sim.run_for(5.0)
    assert len(server.endpoint.connections) == 2
    assert server.endpoint.stats.dropped["connection_limit"] == 1
    refused = [c.log(conn).terminated for c, conn in zip(clients, conns, strict=True)]
    errors = [t.error for t in refused if t is not None]
    assert len(errors) == 1 and isinstance(errors[0], ConnectionRefused)
    # The client side of the bound: a local, typed error.
    one = Peer(Config(max_connections=1), seed=20)
    one.endpoint.connect(SERVER_ADDR, now=0.0)
    with pytest.raises(TooManyConnections):
        one.endpoint.connect(SERVER_ADDR, now=0.0)


def test_tiny_out_of_order_segments_stop_at_the_reassembly_bound() -> None:
    """A hostile peer sends 1-byte segments at every other offset of the window: the bytes
    are few, the pieces many. The receiver holds max_reassembly_segments of them, no more."""
    server_config = Config(max_reassembly_segments=100, recv_buffer_size=256 * 1024)
    sim, client, server = make_pair(server_config=server_config, impairment=Impairment(delay=DELAY))
    client.record = True
    conn = connect(sim, client, server)
    srv = server.accepted[0]
    client.write(conn, b"first", eof=False)
    sim.run_for(0.1)
    template = next(d for d, _ in reversed(client.sent) if d[0] == DATA)
    _, _, window, cid, seq, ack, tsval, tsecr, _, offset = parse_segment(template)
    far = seq + len(template) - offset + 100_000  # above what the real stream will send
    now = sim.clock.now
    for k in range(1000):
        head = struct.pack("!BBHIIIII", DATA, 0, window, cid, far + 2 * k, ack, tsval + k, tsecr)
        server.endpoint.receive_datagram(head + b"!", CLIENT_ADDR, now=now)
    rb = srv._rb
    assert rb is not None and len(rb._pieces) == 100
    assert srv.stats.dropped["reassembly_full"] == 900
    assert rb.buffered == 100
    # The genuine stream below them still flows.
    data = bytes(range(256)) * 200
    client.write(conn, data, eof=False)
    assert sim.run_until(lambda: len(server.log(srv).received) == 5 + len(data), now + 5)
    assert bytes(server.log(srv).received) == b"first" + data


def test_a_peer_that_keeps_moving_a_far_deadline_does_not_grow_the_timer_heap() -> None:
    """Pure ACKs with nothing of ours in flight move only the idle deadline, 600 s out. Each
    move pushes a heap entry that would otherwise stay until its time came."""
    config = Config(idle_timeout=600.0)
    sim, client, server = make_pair(server_config=config, impairment=Impairment(delay=DELAY))
    client.record = True
    conn = connect(sim, client, server)
    server.write(server.accepted[0], b"x" * 100, eof=False)
    sim.run_for(0.2)  # the client ACKs it
    ack = next(d for d, _ in reversed(client.sent) if d[0] == ACK)
    tsval = parse_segment(ack)[6]
    endpoint = server.endpoint
    now = sim.clock.now
    for i in range(1, 20_001):
        now += 0.001
        fresh = bytearray(ack)
        struct.pack_into("!I", fresh, 16, (tsval + 1000 * i) & 0xFFFFFFFF)
        endpoint.receive_datagram(bytes(fresh), CLIENT_ADDR, now=now)
        endpoint.datagrams_to_send(now=now)
        assert len(endpoint._heap) <= 2 * len(endpoint.connections) + 64
    assert endpoint.get_timer() == pytest.approx(now + 600.0)
    assert conn.stats.dropped == {} and server.accepted[0].stats.dropped == {}
