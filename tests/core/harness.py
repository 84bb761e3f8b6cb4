"""A tiny application around ``Endpoint`` so the simulator can drive whole transfers.

``Peer`` is a simulator node: after every input it drains the endpoint's events, keeps what
each connection received, consumes it (unless told not to), feeds queued writes as the send
buffer drains, and checks the engine's invariants after every flush.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from rudp.config import Config
from rudp.core.connection import Addr, Connection
from rudp.core.endpoint import Endpoint
from rudp.core.events import (
    Connected,
    ConnectionTerminated,
    DataReceived,
    EndOfStream,
    Event,
    SendBufferLow,
)
from rudp.core.state import ConnState
from tests.sim import Impairment, Simulator, TraceRecord

CLIENT_ADDR: Addr = ("10.0.0.1", 5000)
SERVER_ADDR: Addr = ("10.0.0.2", 4433)


@dataclass
class Writer:
    """Bytes an application still has to write on one connection."""

    data: memoryview
    chunks: Iterator[int]
    eof: bool
    offset: int = 0


@dataclass
class ConnLog:
    """What the application saw on one connection."""

    received: bytearray = field(default_factory=bytearray)
    events: list[Event] = field(default_factory=list)
    eof: bool = False
    connected: bool = False
    terminated: ConnectionTerminated | None = None
    unconsumed: int = 0


class Peer:
    """An endpoint plus an application that reads everything and writes what it is given."""

    def __init__(
        self,
        config: Config | None = None,
        *,
        seed: int = 1,
        listening: bool = False,
        auto_consume: bool = True,
        auto_accept: bool = True,
        token_bytes: object = None,
        record: bool = False,
    ) -> None:
        source = random.Random(seed).randbytes if token_bytes is None else token_bytes
        self.endpoint = Endpoint(config, token_bytes=source, listening=listening)  # type: ignore[arg-type]
        self.auto_consume = auto_consume
        self.auto_accept = auto_accept
        self.logs: dict[Connection, ConnLog] = {}
        self.accepted: list[Connection] = []
        self.writers: dict[Connection, Writer] = {}
        self.invariant_checks = 0
        self._payload_seen: dict[Connection, int] = {}
        self.record = record
        self.sent: list[tuple[bytes, Addr]] = []  # every datagram sent, when ``record``

    # --- node interface ---------------------------------------------------------------------
    def receive_datagram(self, data: bytes, addr: Addr, *, now: float) -> None:
        self.endpoint.receive_datagram(data, addr, now=now)
        self.drain()

    def datagrams_to_send(self, *, now: float) -> list[tuple[bytes, Addr]]:
        self.drain()  # events raised by application calls made between inputs
        out = self.endpoint.datagrams_to_send(now=now)
        self._check_invariants()
        if self.record:
            self.sent.extend(out)
        return out

    def get_timer(self) -> float | None:
        return self.endpoint.get_timer()

    def handle_timer(self, *, now: float) -> None:
        self.endpoint.handle_timer(now=now)
        self.drain()

    # --- application --------------------------------------------------------------------
    def log(self, conn: Connection) -> ConnLog:
        log = self.logs.get(conn)
        if log is None:
            log = self.logs[conn] = ConnLog()
        return log

    def drain(self) -> None:
        endpoint = self.endpoint
        while True:
            item = endpoint.next_event()
            if item is None:
                break
            conn, event = item
            log = self.log(conn)
            log.events.append(event)
            if isinstance(event, Connected):
                log.connected = True
                if not conn.is_client and self.auto_accept:
                    accepted = endpoint.accept()
                    if accepted is not None:
                        self.accepted.append(accepted)
            elif isinstance(event, DataReceived):
                log.received += event.data
                if self.auto_consume:
                    conn.consume(len(event.data))
                else:
                    log.unconsumed += len(event.data)
            elif isinstance(event, EndOfStream):
                log.eof = True
            elif isinstance(event, ConnectionTerminated):
                log.terminated = event
            elif isinstance(event, SendBufferLow):
                pass
        for conn in list(self.writers):
            self.pump(conn)

    def consume_all(self, conn: Connection) -> None:
        log = self.log(conn)
        if log.unconsumed:
            conn.consume(log.unconsumed)
            log.unconsumed = 0

    def write(
        self, conn: Connection, data: bytes, *, chunks: Iterator[int] | None = None, eof: bool
    ) -> None:
        """Queue ``data`` for ``conn``, written in ``chunks`` sizes as the buffer allows."""
        self.writers[conn] = Writer(memoryview(data), chunks or _forever(65536), eof)
        self.pump(conn)

    def pump(self, conn: Connection) -> None:
        writer = self.writers.get(conn)
        if writer is None or conn.is_terminated:
            return
        high = conn.config.send_buffer_high
        total = len(writer.data)
        while writer.offset < total and conn.send_buffer_size < high:
            size = max(1, next(writer.chunks))
            chunk = writer.data[writer.offset : writer.offset + size]
            conn.send(bytes(chunk))
            writer.offset += len(chunk)
        if writer.offset >= total:
            del self.writers[conn]
            if writer.eof:
                conn.send_eof()

    def _check_invariants(self) -> None:
        for conn in self.endpoint.connections.values():
            sent = conn.stats.payload_bytes_sent
            if sent != self._payload_seen.get(conn, 0):
                self._payload_seen[conn] = sent
                self.invariant_checks += 1
                charged = conn.bytes_in_flight + conn._dg.recent_bytes  # datagrams' share
                probe = conn.max_payload + 1 if conn.probe_outstanding else 0
                if charged > conn.cwnd + probe:
                    raise AssertionError(
                        f"bytes_in_flight {conn.bytes_in_flight} + datagram charge "
                        f"{conn._dg.recent_bytes} > cwnd {conn.cwnd} after a send"
                    )


def _forever(size: int) -> Iterator[int]:
    while True:
        yield size


def make_pair(
    *,
    client_config: Config | None = None,
    server_config: Config | None = None,
    impairment: Impairment | None = None,
    back: Impairment | None = None,
    seed: int = 0,
    trace: list[TraceRecord] | None = None,
    **peer_kwargs: object,
) -> tuple[Simulator, Peer, Peer]:
    """A simulator with a client peer and a listening server peer joined by a link."""
    sim = Simulator(seed=seed, trace=trace)
    client = Peer(client_config, seed=seed * 2 + 1)
    server = Peer(server_config, seed=seed * 2 + 2, listening=True, **peer_kwargs)  # type: ignore[arg-type]
    sim.add_node(client, CLIENT_ADDR)
    sim.add_node(server, SERVER_ADDR)
    if impairment is not None or back is not None:
        forward = impairment or Impairment()
        sim.link(CLIENT_ADDR, SERVER_ADDR, forward, both_ways=False)
        sim.link(SERVER_ADDR, CLIENT_ADDR, back if back is not None else forward, both_ways=False)
    return sim, client, server


def connect(sim: Simulator, client: Peer, server: Peer, *, max_time: float = 30.0) -> Connection:
    """Open a client connection and run until the server confirmed it."""
    conn = client.endpoint.connect(SERVER_ADDR, now=sim.clock.now)
    client.log(conn)
    ok = sim.run_until(
        lambda: (
            conn.state is not ConnState.INIT_SENT
            and conn.state is not ConnState.COOKIE_ECHOED
            and bool(server.accepted)
        ),
        sim.clock.now + max_time,
    )
    assert ok and client.log(conn).terminated is None, (
        f"handshake did not complete: {client.log(conn).terminated}"
    )
    return conn
