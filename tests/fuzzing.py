"""Fuzzing material shared by tests/core/test_fuzz.py and bench/fuzz.py: a corpus recorded from
real simulated traffic, a mutator, and a target that feeds one input to a server endpoint
carrying a live transfer, then checks that nothing grew beyond its bound."""

from __future__ import annotations

import random
import struct
from collections.abc import Callable
from functools import lru_cache

from rudp.config import Config
from rudp.core.connection import Connection
from rudp.wire.packet import PacketType
from tests.core.harness import CLIENT_ADDR, SERVER_ADDR, connect, make_pair
from tests.sim import Impairment, Simulator

__all__ = ["LiveTransfer", "corpus", "mutate"]

# Fields worth hitting exactly: zero, one, the serial-arithmetic half point, the top.
INTERESTING_U32 = (0, 1, 2, 0x7FFFFFFF, 0x80000000, 0x80000001, 0xFFFFFFFE, 0xFFFFFFFF)
LIVE_CONFIG = Config(recv_buffer_size=256 * 1024)  # a small window: blind guesses miss it


@lru_cache(maxsize=1)
def corpus() -> tuple[bytes, ...]:
    """Every datagram of one simulated transfer with loss, both ways: handshake, data with
    SACK blocks, ACKs, FINs, a reset, a path challenge and response, and unreliable datagrams.
    Recorded from a transfer of its own, so its ids and sequence numbers are not the live
    transfer's."""
    sim, client, server = make_pair(impairment=Impairment(delay=0.005, loss=0.05), seed=77)
    client.record = server.record = True
    conn = connect(sim, client, server)
    srv = server.accepted[0]
    client.write(conn, random.Random(1).randbytes(200_000), eof=True)
    server.write(srv, random.Random(2).randbytes(50_000), eof=True)
    conn.send_datagram(b"unreliable")
    sim.run_until(lambda: client.log(conn).eof and server.log(srv).eof, 60.0)
    second = client.endpoint.connect(SERVER_ADDR, now=sim.clock.now)
    sim.run_until(lambda: len(server.accepted) == 2, sim.clock.now + 5)
    second.abort(now=sim.clock.now)
    sim.run_for(1.0)
    moved = (CLIENT_ADDR[0], CLIENT_ADDR[1] + 1)  # a rebinding, for the path packets
    third = client.endpoint.connect(SERVER_ADDR, now=sim.clock.now)
    sim.run_until(lambda: len(server.accepted) == 3, sim.clock.now + 5)
    client.write(third, b"moving", eof=False)
    sim.remove_node(CLIENT_ADDR)
    sim.add_node(client, moved)
    client.write(third, b"moved", eof=True)
    sim.run_for(2.0)
    datagrams = {d for d, _ in client.sent} | {d for d, _ in server.sent}
    return tuple(sorted(datagrams))


def mutate(rng: random.Random, data: bytes, pool: tuple[bytes, ...], cid: int | None) -> bytes:
    """One to four structural or byte-level mutations of ``data``; with ``cid``, sometimes
    aim the result at that connection id (a blind attacker who guessed it)."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        kind = rng.randrange(9)
        if kind == 0 and out:  # flip a bit
            out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
        elif kind == 1 and out:  # set a byte
            out[rng.randrange(len(out))] = rng.randrange(256)
        elif kind == 2:  # truncate
            del out[rng.randint(0, len(out)) :]
        elif kind == 3:  # extend
            out += rng.randbytes(rng.randint(1, 64))
        elif kind == 4:  # splice with another datagram
            other = rng.choice(pool)
            cut = rng.randint(0, len(out))
            out = out[:cut] + other[rng.randint(0, len(other)) :]
        elif kind == 5 and len(out) >= 4:  # an interesting or nearby 32-bit field
            offset = rng.randrange(0, len(out) - 3)
            old = struct.unpack_from("!I", out, offset)[0]
            new = rng.choice(INTERESTING_U32) if rng.random() < 0.5 else old + rng.randint(-3, 3)
            struct.pack_into("!I", out, offset, new & 0xFFFFFFFF)
        elif kind == 6 and out:  # another packet type, known or not
            out[0] = (out[0] & 0xF0) | rng.randrange(16)
        elif kind == 7 and len(out) >= 2:  # flags and SACK count
            out[1] = rng.randrange(256)
        elif kind == 8 and len(out) >= 4:  # the type-specific u16 (window, cookie length ...)
            struct.pack_into("!H", out, 2, rng.choice((0, 1, 255, 256, 257, 0xFFFF)))
    if cid is not None and len(out) >= 8 and rng.random() < 0.5:
        struct.pack_into("!I", out, 4, cid)
    return bytes(out)


class LiveTransfer:
    """A server endpoint carrying a real transfer that fuzz input is fed to on the side.

    ``feed(data, from_peer)`` hands one datagram to the server endpoint, from the client's own
    address or from a random one, and drains what it answers; ``advance()`` lets the real
    transfer run a little. ``check()`` raises AssertionError if a table or queue is past its
    bound. ``finish()`` runs the transfer to its end and says whether it arrived intact.
    """

    DATA_SIZE = 2_000_000

    def __init__(self, seed: int = 5) -> None:
        self.sim: Simulator
        self.sim, self.client, self.server = make_pair(
            client_config=LIVE_CONFIG,
            server_config=LIVE_CONFIG,
            impairment=Impairment(delay=0.002),
            seed=seed,
        )
        self.conn: Connection = connect(self.sim, self.client, self.server)
        self.srv: Connection = self.server.accepted[0]
        self.data = random.Random(seed).randbytes(self.DATA_SIZE)
        self.client.write(self.conn, self.data, eof=True)
        self.rng = random.Random(seed + 1)
        self.fed = 0

    @property
    def cid(self) -> int:
        return self.srv.local_cid

    def feed(self, data: bytes, *, from_peer: bool) -> None:
        endpoint = self.server.endpoint
        if from_peer:
            addr = CLIENT_ADDR
        else:
            addr = (
                f"10.{self.rng.randrange(256)}.{self.rng.randrange(256)}.1",
                1 + self.fed % 60000,
            )
        endpoint.receive_datagram(data, addr, now=self.sim.clock.now)
        self.server.drain()
        self.fed += 1

    def advance(self, seconds: float = 0.01) -> None:
        self.sim.run_for(seconds)

    def check(self) -> None:
        endpoint = self.server.endpoint
        cfg = endpoint.config
        # The live connection, the ones the corpus may open with a still-valid cookie, and
        # what lingers in TIME_WAIT: never more than the bound.
        assert len(endpoint.connections) <= cfg.max_connections
        assert len(endpoint._out) <= cfg.stateless_reply_queue
        assert len(endpoint._heap) <= 2 * len(endpoint._deadlines) + 64 + len(endpoint._dirty)
        limiter = endpoint.reply_limiter
        assert limiter is None or len(limiter) <= cfg.stateless_reply_prefixes
        for conn in endpoint.connections.values():
            rb = conn._rb
            if rb is not None:
                assert rb.buffered <= rb.capacity
                assert len(rb._pieces) <= rb.max_pieces
            assert len(conn._events) <= cfg.datagram_recv_queue + 8
            assert len(conn._control) <= 64

    def finish(self, max_time: float = 120.0) -> bool:
        """Run to the end; True if the server received exactly what the client sent."""
        log = self.server.log(self.srv)
        self.sim.run_until(
            lambda: log.eof or log.terminated is not None, self.sim.clock.now + max_time
        )
        return log.eof and bytes(log.received) == self.data


def random_input(rng: random.Random, pool: tuple[bytes, ...], cid: int) -> tuple[bytes, bool]:
    """One fuzz input: random bytes (a tenth of the time) or a mutated recorded datagram, and
    whether it comes from the live peer's address."""
    if rng.random() < 0.1:
        data = rng.randbytes(rng.choice((0, 1, 7, 8, 12, 16, 24, 28, 36, 100, 1300)))
        if len(data) >= 1 and rng.random() < 0.7:
            data = bytes([0x10 | rng.randrange(1, 10)]) + data[1:]  # a valid version nibble
    else:
        data = mutate(rng, rng.choice(pool), pool, cid)
    return data, rng.random() < 0.5


FuzzTarget = Callable[[bytes], None]


def type_names() -> dict[int, str]:
    """First byte -> packet type name, for reporting what the inputs looked like."""
    return {0x10 | int(t): t.name for t in PacketType}
