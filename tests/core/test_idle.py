"""Idle established connections: what each costs in memory (tracemalloc), and that keepalive
over many of them is one PING and one ACK per interval each, with a bounded timer heap.
bench/idle_conns.py measures 10,000 of them over real sockets, with the CPU they cost."""

from __future__ import annotations

import gc
import tracemalloc

from rudp.config import Config
from tests.core.harness import CLIENT_ADDR, SERVER_ADDR, Peer
from tests.sim import Simulator

N = 300
KEEPALIVE = 10.0
SERVER_CONFIG = Config(
    keepalive_idle=KEEPALIVE, keepalive_interval=KEEPALIVE, stateless_reply_rate=None
)


def _idle_pair(n: int) -> tuple[Simulator, Peer, Peer]:
    """``n`` established, idle connections from one client endpoint to one server."""
    sim = Simulator()
    server = Peer(SERVER_CONFIG, seed=1, listening=True)
    client = Peer(Config(), seed=2)  # no keepalive of its own: it only answers
    sim.add_node(server, SERVER_ADDR)
    sim.add_node(client, CLIENT_ADDR)
    for _ in range(n):
        client.endpoint.connect(SERVER_ADDR, now=0.0)
    sim.run_for(1.0)
    assert len(server.endpoint.connections) == n == len(server.accepted)
    return sim, client, server


def test_memory_per_idle_established_connection() -> None:
    gc.collect()
    tracemalloc.start()
    try:
        sim, client, server = _idle_pair(N)
        server.logs.clear()  # the application's own records of events are not the engine's
        client.logs.clear()
        gc.collect()
        both = tracemalloc.take_snapshot()
        sim.remove_node(SERVER_ADDR)
        del server
        gc.collect()
        client_only = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    per_connection = sum(s.size_diff for s in both.compare_to(client_only, "filename")) / N
    print(f"\nmemory per idle established server connection (engine): {per_connection:.0f} B")
    assert 2_000 < per_connection < 16 * 1024
    assert len(client.endpoint.connections) == N  # (the client side was kept alive throughout)


def test_keepalive_over_many_idle_connections_is_one_ping_each_per_interval() -> None:
    sim, client, server = _idle_pair(N)
    sim.run_for(60.0)  # pings at 10, 20, ... 60 s after the handshakes (at ~0 s)
    connections = list(server.endpoint.connections.values())
    assert len(connections) == N
    assert [c.stats.keepalives_sent for c in connections] == [6] * N
    assert [c.stats.datagrams_received for c in connections] == [6] * N  # each answered
    assert len(server.endpoint._heap) <= 2 * N + 64
    deadlines = {c.get_timer() for c in connections}
    assert len(deadlines) <= N and min(d for d in deadlines if d is not None) > sim.clock.now
