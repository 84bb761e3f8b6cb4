"""Peer faults on a fake clock, with exact deadlines: a peer that dies mid-transfer, and a
partition longer than the RTO but shorter than the timeouts. (The same on real processes:
tests/aio/test_peer_faults.py; a peer that restarts: tests/core/test_spoofing.py.)"""

from __future__ import annotations

import random

import pytest

from rudp.config import Config
from rudp.errors import ConnectionTimeout
from rudp.wire.packet import PacketType
from tests.core.harness import CLIENT_ADDR, SERVER_ADDR, connect, make_pair
from tests.sim import Impairment, TraceRecord

DELAY = 0.01
DATA = 0x10 | PacketType.DATA
# RTO at its 1 s floor after a 20 ms sample, so every backoff step is a round number.
EXACT = Config(min_rto=1.0, max_retransmits=4, idle_timeout=8.0)


def test_a_receiver_whose_sender_died_fails_at_exactly_the_idle_timeout() -> None:
    sim, client, server = make_pair(server_config=EXACT, impairment=Impairment(delay=DELAY))
    conn = connect(sim, client, server)
    srv = server.accepted[0]
    client.write(conn, random.Random(1).randbytes(3_000_000), eof=True)
    sim.run_until(lambda: len(server.log(srv).received) > 1_000_000, sim.clock.now + 10)
    sim.remove_node(CLIENT_ADDR)  # SIGKILL: no FIN, no RESET, nothing more
    died = sim.clock.now
    assert sim.run_until(lambda: server.log(srv).terminated is not None, died + 60)
    # What the client sent before it died still arrives for a few ms: the idle timeout runs
    # from the last of it, to the microsecond.
    heard = srv._last_recv
    assert died <= heard <= died + 2 * DELAY
    assert sim.clock.now == pytest.approx(heard + 8.0)
    event = server.log(srv).terminated
    assert event is not None and event.reason == "idle_timeout"
    assert isinstance(event.error, ConnectionTimeout) and isinstance(event.error, TimeoutError)
    sim.run_for(10.0)
    assert server.endpoint.connections == {}  # nothing left behind


def test_a_sender_whose_receiver_died_fails_at_the_retransmission_limit() -> None:
    trace: list[TraceRecord] = []
    config = EXACT.replace(idle_timeout=None)
    sim, client, server = make_pair(
        client_config=config, impairment=Impairment(delay=DELAY), trace=trace
    )
    conn = connect(sim, client, server)
    client.write(conn, random.Random(2).randbytes(3_000_000), eof=True)
    sim.run_until(lambda: conn.bytes_acked > 1_000_000, sim.clock.now + 10)
    sim.remove_node(SERVER_ADDR)
    died = sim.clock.now
    assert sim.run_until(lambda: client.log(conn).terminated is not None, died + 100)
    event = client.log(conn).terminated
    assert event is not None and event.reason == "retransmission_limit"
    assert isinstance(event.error, ConnectionTimeout)
    assert conn.stats.rto_timeouts == 4
    # The RTO doubles from its 1 s floor (RFC 6298 §5.5): the four RTO retransmissions are
    # 2, 4 and 8 s apart, and the fifth expiry, 16 s after the last, ends the connection.
    sends = sorted({t for t, k, s, *_ in trace if k == "send" and s == CLIENT_ADDR and t > died})
    last_four = sends[-4:]
    gaps = [round(b - a, 6) for a, b in zip(last_four, last_four[1:], strict=False)]
    assert gaps == [2.0, 4.0, 8.0]
    assert sim.clock.now == pytest.approx(last_four[-1] + 16.0)


def test_a_partition_longer_than_the_rto_but_shorter_than_the_timeouts_heals() -> None:
    trace: list[TraceRecord] = []
    sim, client, server = make_pair(
        client_config=EXACT,
        server_config=EXACT,
        impairment=Impairment(delay=DELAY),
        trace=trace,
    )
    conn = connect(sim, client, server)
    srv = server.accepted[0]
    data = random.Random(3).randbytes(3_000_000)
    client.write(conn, data, eof=True)
    sim.run_until(lambda: len(server.log(srv).received) > 500_000, sim.clock.now + 10)
    start, end = sim.clock.now, sim.clock.now + 5.0  # > RTO (1 s), < idle timeout (8 s)
    sim.links[(CLIENT_ADDR, SERVER_ADDR)].blackhole(start, end)
    sim.links[(SERVER_ADDR, CLIENT_ADDR)].blackhole(start, end)
    assert sim.run_until(lambda: server.log(srv).eof, end + 60)
    assert bytes(server.log(srv).received) == data
    assert client.log(conn).terminated is None or client.log(conn).terminated.error is None
    assert server.log(srv).terminated is None or server.log(srv).terminated.error is None
    assert conn.stats.rto_timeouts >= 2  # (at 1 s and 3 s into the partition; 7 s is after)
    # The first datagram through after the partition is the RTO retransmission due 7 s after
    # the timer's last restart: 1 + 2 + 4 s of backoff.
    through = [t for t, k, s, *_, f in trace if k == "deliver" and s == CLIENT_ADDR and t >= end]
    assert through and through[0] == pytest.approx(start + 7.0, abs=0.2)
