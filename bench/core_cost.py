"""Baseline cost of the sans-I/O protocol core (``rudp.core``), in two parts.

1. CPU cost per segment on an ideal link. A client ``Endpoint`` and a listening server
   ``Endpoint`` are wired back to back in one loop: no sockets, no simulator, no loss. Each
   loop iteration hands every datagram one side produced to the other side at once (a batch,
   as one turn of a real event loop would), then moves a fake clock on by ``--step-us``
   (or to the next timer when nothing is moving). The client writes ``--bytes`` in 64 KiB
   chunks while its send buffer is under ``Config.send_buffer_high``, then sends EOF; the
   server application consumes everything. ``time.process_time()`` is read around each side's
   turn, so the CPU time of the sender's calls (``send``, ``datagrams_to_send``,
   ``receive_datagram`` of ACKs, ``get_timer``/``handle_timer``, ``next_event``) and of the
   receiver's calls (``receive_datagram`` of DATA, ``next_event``, ``consume``,
   ``datagrams_to_send`` of ACKs, ``get_timer``/``handle_timer``) are added up separately.
   Reported: CPU microseconds per DATA segment sent and received, segment and ACK counts, and
   the CPU-bound throughput (bytes / CPU seconds of both sides together). The received
   stream is checked (length and CRC-32) against what was written.

2. Simulated goodput against loss. ``tests.sim.Simulator`` with the harness ``Peer`` nodes
   moves ``--sim-bytes`` over a path with 10 ms one-way delay (RTT 20 ms), a 100 Mbit/s
   bottleneck (12.5e6 B/s) behind a one-BDP (250 kB) drop-tail queue, and independent random
   loss (default 0, 1, 2, 5, 10 and 20 %) in both directions, with a fixed ``--seed``, once per
   name in ``--profiles``: a ``Config.profile`` name or a controller name from
   ``rudp.core.congestion.CONTROLLERS`` (a default ``Config`` with that controller). The
   default is ``newreno`` (the ``Config()`` default), ``fair`` (CUBIC) and ``throughput``
   (the model-based "bbr" controller). Reported per profile and loss rate: simulated transfer
   seconds, goodput in MB/s (10^6 B) of simulated time, retransmitted segments, RTO
   timeouts, fast retransmits, drops on the links, and the wall-clock seconds the run took.
   Each run stops at ``--max-sim-time`` simulated seconds
   and is then reported as "did not finish". The server must receive exactly the bytes sent.

Run from the repository root::

    .venv/bin/python bench/core_cost.py                 # full run (64 MiB, 8 MiB per loss rate)
    .venv/bin/python bench/core_cost.py --quick         # 4 MiB / 1 MiB, a few seconds
    .venv/bin/python bench/core_cost.py --json          # machine-readable output only
    .venv/bin/python bench/core_cost.py --profile --only ideal   # part 1 under cProfile

Exit status: 0 when every transfer finished with the right bytes, 1 when a transfer
delivered wrong data or the engine raised, 2 when a simulated transfer did not finish.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import pstats
import random
import sys
import time
import traceback
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from rudp.config import PROFILE_NAMES, Config  # noqa: E402
from rudp.core.congestion import CONTROLLERS  # noqa: E402
from rudp.core.connection import Addr, Connection  # noqa: E402
from rudp.core.endpoint import Endpoint  # noqa: E402
from rudp.core.events import (  # noqa: E402
    Connected,
    ConnectionTerminated,
    DataReceived,
    EndOfStream,
)
from rudp.wire.packet import PacketType  # noqa: E402
from tests.core.harness import CLIENT_ADDR, SERVER_ADDR, make_pair  # noqa: E402
from tests.sim import Impairment  # noqa: E402

KiB = 1024
MiB = 1024 * KiB
MB = 1_000_000

DEFAULT_BYTES = 64 * MiB
DEFAULT_SIM_BYTES = 8 * MiB
QUICK_BYTES = 4 * MiB
QUICK_SIM_BYTES = 1 * MiB
DEFAULT_LOSSES = (0.0, 1.0, 2.0, 5.0, 10.0, 20.0)  # percent
DEFAULT_PROFILES = ("newreno", "fair", "throughput")  # newreno, cubic and bbr
CHUNK = 64 * KiB  # application write size

ONE_WAY_DELAY = 0.010  # seconds
LINK_RATE = 12.5e6  # bytes/s (100 Mbit/s)
QUEUE_LIMIT = int(LINK_RATE * 2 * ONE_WAY_DELAY)  # one BDP: 250 kB

_TYPE_DATA = int(PacketType.DATA)
_TYPE_ACK = int(PacketType.ACK)
_IDEAL_TIME_CAP = 3600.0  # fake seconds after which part 1 gives up (a stalled engine)


class BenchError(Exception):
    """The engine misbehaved: a stall, a reset, or wrong data."""


# --- test data ---------------------------------------------------------------------------------


class Pattern:
    """A deterministic byte stream of any length in bounded memory.

    The stream repeats a random block whose length (1 MiB + 7) shares no factor with the
    64 KiB write size or a 1200 B segment, so misplaced data shows up in the CRC.
    """

    PERIOD = MiB + 7

    def __init__(self, seed: int) -> None:
        block = random.Random(seed).randbytes(self.PERIOD)
        self._doubled = memoryview(block + block[:CHUNK])

    def chunk(self, offset: int, size: int) -> memoryview:
        """``size <= CHUNK`` bytes of the stream from ``offset``, without copying."""
        start = offset % self.PERIOD
        return self._doubled[start : start + size]

    def crc(self, total: int) -> int:
        """CRC-32 of the first ``total`` bytes of the stream."""
        crc = 0
        offset = 0
        while offset < total:
            size = min(CHUNK, total - offset)
            crc = zlib.crc32(self.chunk(offset, size), crc)
            offset += size
        return crc

    def data(self, total: int) -> bytes:
        """The first ``total`` bytes of the stream as one object."""
        out = bytearray()
        offset = 0
        while offset < total:
            size = min(CHUNK, total - offset)
            out += self.chunk(offset, size)
            offset += size
        return bytes(out)


# --- part 1: CPU cost per segment on an ideal link ---------------------------------------------


@dataclass
class IdealResult:
    """What part 1 measured."""

    bytes: int
    step_us: float
    data_segments_sent: int
    data_segments_received: int
    acks: int
    retransmitted: int
    iterations: int
    timer_firings: int
    fake_seconds: float
    sender_cpu_s: float
    receiver_cpu_s: float
    wall_s: float
    profiled: bool

    @property
    def sender_us_per_segment(self) -> float:
        return 1e6 * self.sender_cpu_s / max(self.data_segments_sent, 1)

    @property
    def receiver_us_per_segment(self) -> float:
        return 1e6 * self.receiver_cpu_s / max(self.data_segments_received, 1)

    @property
    def cpu_s(self) -> float:
        return self.sender_cpu_s + self.receiver_cpu_s

    @property
    def cpu_mb_per_s(self) -> float:
        return _mb_per_s(self.bytes, self.cpu_s)

    @property
    def sender_mb_per_s(self) -> float:
        return _mb_per_s(self.bytes, self.sender_cpu_s)

    @property
    def receiver_mb_per_s(self) -> float:
        return _mb_per_s(self.bytes, self.receiver_cpu_s)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["sender_us_per_segment"] = self.sender_us_per_segment
        out["receiver_us_per_segment"] = self.receiver_us_per_segment
        out["cpu_s"] = self.cpu_s
        out["cpu_mb_per_s"] = self.cpu_mb_per_s
        out["sender_mb_per_s"] = self.sender_mb_per_s
        out["receiver_mb_per_s"] = self.receiver_mb_per_s
        return out


def _mb_per_s(nbytes: int, seconds: float) -> float:
    """Throughput in 10^6 B/s; a CPU time below the clock's 1 ns resolution counts as 1 ns."""
    return nbytes / max(seconds, 1e-9) / MB


def _token_source(seed: int) -> Callable[[int], bytes]:
    return random.Random(seed).randbytes


def _handshake(client: Endpoint, server: Endpoint, now: float) -> tuple[Connection, Connection]:
    """Open a connection over the ideal link; not measured."""
    conn = client.connect(SERVER_ADDR, now=now)
    client_ready = False
    accepted: Connection | None = None
    for _ in range(16):
        for data, _addr in client.datagrams_to_send(now=now):
            server.receive_datagram(data, CLIENT_ADDR, now=now)
        while (item := server.next_event()) is not None:
            if isinstance(item[1], Connected) and accepted is None:
                accepted = server.accept()
        for data, _addr in server.datagrams_to_send(now=now):
            client.receive_datagram(data, SERVER_ADDR, now=now)
        while (item := client.next_event()) is not None:
            client_ready = client_ready or isinstance(item[1], Connected)
        if client_ready and accepted is not None:
            return conn, accepted
    raise BenchError("handshake did not complete over a perfect link")


def run_ideal(total: int, *, step: float, seed: int, config: Config) -> IdealResult:
    """Part 1: move ``total`` bytes between two directly wired endpoints."""
    wall_start = time.perf_counter()
    pattern = Pattern(seed)
    expected_crc = pattern.crc(total)
    client = Endpoint(config, token_bytes=_token_source(seed * 2 + 1))
    server = Endpoint(config, token_bytes=_token_source(seed * 2 + 2), listening=True)
    now = 0.0
    conn, sconn = _handshake(client, server, now)

    high = config.send_buffer_high
    written = 0
    eof_sent = False
    eof_seen = False
    received = 0
    crc = 0
    got: list[bytes] = []
    acks_in: list[tuple[bytes, Addr]] = []
    data_sent = data_received = acks = iterations = timer_firings = 0
    sender_cpu = receiver_cpu = 0.0
    failure: str | None = None
    clock = time.process_time
    c_recv, c_timer, c_handle = client.receive_datagram, client.get_timer, client.handle_timer
    c_event, c_out, send = client.next_event, client.datagrams_to_send, conn.send
    s_recv, s_timer, s_handle = server.receive_datagram, server.get_timer, server.handle_timer
    s_event, s_out = server.next_event, server.datagrams_to_send

    gc.collect()
    while not eof_seen:
        iterations += 1
        # --- sender turn: ACKs from the last turn, timers, events, writes, DATA out.
        t0 = clock()
        for data, _addr in acks_in:
            c_recv(data, SERVER_ADDR, now=now)
        deadline = c_timer()
        if deadline is not None and deadline <= now:
            c_handle(now=now)
            timer_firings += 1
        while (item := c_event()) is not None:
            if isinstance(item[1], ConnectionTerminated):
                failure = f"client connection terminated: {item[1]!r}"
        while written < total and conn.send_buffer_size < high:
            size = min(CHUNK, total - written)
            send(pattern.chunk(written, size))
            written += size
        if written >= total and not eof_sent:
            conn.send_eof()
            eof_sent = True
        data_out = c_out(now=now)
        c_deadline = c_timer()
        # --- receiver turn: DATA in, the application reads, ACKs out.
        t1 = clock()
        for data, _addr in data_out:
            s_recv(data, CLIENT_ADDR, now=now)
        deadline = s_timer()
        if deadline is not None and deadline <= now:
            s_handle(now=now)
            timer_firings += 1
        while (item := s_event()) is not None:
            peer, event = item
            if type(event) is DataReceived:
                got.append(event.data)
                peer.consume(len(event.data))
            elif isinstance(event, EndOfStream):
                eof_seen = True
            elif isinstance(event, ConnectionTerminated):
                failure = f"server connection terminated: {event!r}"
        acks_in = s_out(now=now)
        s_deadline = s_timer()
        t2 = clock()
        sender_cpu += t1 - t0
        receiver_cpu += t2 - t1

        # --- bookkeeping, not measured.
        for data in got:
            crc = zlib.crc32(data, crc)
            received += len(data)
        got.clear()
        for data, _addr in data_out:
            if data[0] & 0x0F == _TYPE_DATA:
                data_sent += 1
        data_received = data_sent  # the ideal link delivers every datagram
        for data, _addr in acks_in:
            if data[0] & 0x0F == _TYPE_ACK:
                acks += 1
        if failure is not None:
            raise BenchError(failure)
        if eof_seen:
            break
        if data_out or acks_in:
            now += step
        else:
            timers = [t for t in (c_deadline, s_deadline) if t is not None]
            if not timers:
                raise BenchError(
                    f"stalled at t={now:.6f}: nothing to send and no timer armed; "
                    f"{written} bytes written, {received} received, "
                    f"send_buffer_size={conn.send_buffer_size}, cwnd={conn.cwnd}, "
                    f"state={conn.state.value}/{sconn.state.value}"
                )
            now = max(now + step, min(timers))
        if now > _IDEAL_TIME_CAP:
            raise BenchError(f"no EOF after {_IDEAL_TIME_CAP} fake seconds ({received} bytes)")

    wall = time.perf_counter() - wall_start
    if received != total or crc != expected_crc:
        raise BenchError(
            f"wrong data: received {received} bytes (crc {crc:#010x}), "
            f"sent {total} (crc {expected_crc:#010x})"
        )
    return IdealResult(
        bytes=total,
        step_us=step * 1e6,
        data_segments_sent=data_sent,
        data_segments_received=data_received,
        acks=acks,
        retransmitted=conn.stats.segments_retransmitted,
        iterations=iterations,
        timer_firings=timer_firings,
        fake_seconds=now,
        sender_cpu_s=sender_cpu,
        receiver_cpu_s=receiver_cpu,
        wall_s=wall,
        profiled=False,
    )


@dataclass
class ProfileRow:
    """One function of the cProfile report."""

    function: str
    ncalls: int
    primitive_calls: int
    tottime: float
    cumtime: float


def _short_name(key: tuple[str, int, str]) -> str:
    filename, line, name = key
    if filename == "~":
        return name  # a builtin, e.g. "<method 'append' of 'list' objects>"
    path = Path(filename)
    try:
        shown = str(path.resolve().relative_to(ROOT))
    except ValueError:
        shown = path.name
    return f"{shown}:{line}({name})"


def profile_ideal(
    total: int, *, step: float, seed: int, config: Config, top: int
) -> tuple[IdealResult, list[ProfileRow]]:
    """Part 1 under cProfile; returns its (inflated) result and the top functions."""
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        result = run_ideal(total, step=step, seed=seed, config=config)
    finally:
        profiler.disable()
    result.profiled = True
    stats = pstats.Stats(profiler)
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, Any]]
    raw = stats.stats  # type: ignore[attr-defined]
    ranked = sorted(raw.items(), key=lambda kv: kv[1][2], reverse=True)[:top]
    rows = [
        ProfileRow(
            function=_short_name(key),
            ncalls=nc,
            primitive_calls=cc,
            tottime=tt,
            cumtime=ct,
        )
        for key, (cc, nc, tt, ct, _callers) in ranked
    ]
    return result, rows


# --- part 2: simulated goodput against loss ----------------------------------------------------


@dataclass
class SimResult:
    """One loss rate of part 2."""

    loss_percent: float
    controller: str
    status: str  # "ok", "did not finish", "wrong data" or "error"
    detail: str
    bytes: int
    received: int
    handshake_s: float | None
    sim_seconds: float | None  # from the first write to EOF at the server application
    goodput_mb_per_s: float | None
    retransmitted: int
    rto_timeouts: int
    fast_retransmits: int
    recoveries: int
    dropped_loss: dict[str, int] = field(default_factory=dict)
    dropped_queue: dict[str, int] = field(default_factory=dict)
    sim_steps: int = 0
    wall_s: float = 0.0


def run_sim(
    total: int, *, loss: float, seed: int, max_time: float, config: Config | None = None
) -> SimResult:
    """Part 2 for one loss rate (``loss`` in percent)."""
    wall_start = time.perf_counter()
    impairment = Impairment(
        loss=loss / 100.0, delay=ONE_WAY_DELAY, rate=LINK_RATE, queue_limit=QUEUE_LIMIT
    )
    sim, client, server = make_pair(impairment=impairment, seed=seed, client_config=config)
    payload = Pattern(seed).data(total)
    result = SimResult(
        loss_percent=loss,
        controller=(config or Config()).congestion_control,
        status="ok",
        detail="",
        bytes=total,
        received=0,
        handshake_s=None,
        sim_seconds=None,
        goodput_mb_per_s=None,
        retransmitted=0,
        rto_timeouts=0,
        fast_retransmits=0,
        recoveries=0,
    )
    conn: Connection | None = None
    try:
        conn = client.endpoint.connect(SERVER_ADDR, now=sim.now)
        clog = client.log(conn)
        if not sim.run_until(lambda: clog.connected and bool(server.accepted), max_time):
            result.status = "did not finish"
            result.detail = f"handshake incomplete after {max_time:g} simulated s"
        else:
            result.handshake_s = sim.now
            slog = server.log(server.accepted[0])
            start = sim.now
            client.write(conn, payload, eof=True)
            sim.run_until(
                lambda: slog.eof or slog.terminated is not None or clog.terminated is not None,
                max_time,
            )
            result.received = len(slog.received)
            if slog.eof:
                result.sim_seconds = sim.now - start
                result.goodput_mb_per_s = total / result.sim_seconds / MB
                if bytes(slog.received) != payload:
                    result.status = "wrong data"
                    result.detail = _first_difference(bytes(slog.received), payload)
            elif slog.terminated is not None or clog.terminated is not None:
                result.status = "error"
                result.detail = f"connection terminated: {slog.terminated or clog.terminated!r}"
            else:
                result.status = "did not finish"
                result.detail = f"{result.received} of {total} bytes after {max_time:g} s"
            if result.status != "wrong data" and not payload.startswith(bytes(slog.received)):
                result.status = "wrong data"
                result.detail = _first_difference(bytes(slog.received), payload)
    except Exception as exc:  # the engine or the harness raised: report, do not hide
        result.status = "error"
        result.detail = f"{type(exc).__name__}: {exc}"
        traceback.print_exc(file=sys.stderr)
    if conn is not None:
        stats = conn.stats
        result.retransmitted = stats.segments_retransmitted
        result.rto_timeouts = stats.rto_timeouts
        result.fast_retransmits = stats.fast_retransmits
        result.recoveries = stats.recoveries
    for name, key in (("c2s", (CLIENT_ADDR, SERVER_ADDR)), ("s2c", (SERVER_ADDR, CLIENT_ADDR))):
        link = sim.links.get(key)
        if link is not None:
            result.dropped_loss[name] = link.stats.dropped_loss
            result.dropped_queue[name] = link.stats.dropped_queue
    result.sim_steps = sim.steps
    result.wall_s = time.perf_counter() - wall_start
    return result


def _first_difference(got: bytes, want: bytes) -> str:
    for index, (a, b) in enumerate(zip(got, want, strict=False)):
        if a != b:
            return f"first difference at byte {index} ({len(got)} received, {len(want)} sent)"
    return f"{len(got)} bytes received, {len(want)} sent (common prefix identical)"


# --- output ------------------------------------------------------------------------------------


def _size(text: str) -> int:
    """``65536``, ``64K``, ``64M``, ``1G`` (binary multiples) or ``4MiB``."""
    value = text.strip().upper().removesuffix("IB").removesuffix("B")
    scale = {"K": KiB, "M": MiB, "G": 1024 * MiB}.get(value[-1:], 1)
    if scale != 1:
        value = value[:-1]
    try:
        size = int(float(value) * scale)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r}") from None
    if size <= 0:
        raise argparse.ArgumentTypeError(f"size must be > 0: {text!r}")
    return size


def _losses(text: str) -> list[float]:
    try:
        values = [float(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list: {text!r}") from None
    if not values or any(not 0.0 <= v < 100.0 for v in values):
        raise argparse.ArgumentTypeError("loss rates are percentages in [0, 100)")
    return values


def _mib(n: int) -> str:
    if n >= MiB:
        return f"{n / MiB:.4g} MiB"
    if n >= KiB:
        return f"{n / KiB:.4g} KiB"
    return f"{n} B"


def print_ideal(result: IdealResult) -> None:
    note = "  (under cProfile: CPU times are inflated)" if result.profiled else ""
    print(f"== Part 1: CPU cost per segment, ideal link, no simulator{note}")
    rows = [
        ("bytes transferred", f"{result.bytes:,} ({_mib(result.bytes)})"),
        (
            "DATA segments",
            f"{result.data_segments_sent:,} sent, {result.data_segments_received:,} received, "
            f"{result.retransmitted} retransmitted",
        ),
        ("ACKs", f"{result.acks:,}"),
        (
            "loop iterations",
            f"{result.iterations:,} (step {result.step_us:g} us, {result.timer_firings} "
            f"timer firings, {result.fake_seconds:.4f} fake s)",
        ),
        (
            "sender CPU",
            f"{result.sender_cpu_s:.3f} s = {result.sender_us_per_segment:.2f} us per segment sent",
        ),
        (
            "receiver CPU",
            f"{result.receiver_cpu_s:.3f} s = {result.receiver_us_per_segment:.2f} us "
            "per segment received",
        ),
        (
            "CPU-bound throughput",
            f"{result.cpu_mb_per_s:.2f} MB/s (both sides on one core; "
            f"sender alone {result.sender_mb_per_s:.2f}, "
            f"receiver alone {result.receiver_mb_per_s:.2f})",
        ),
        ("wall clock", f"{result.wall_s:.2f} s"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    print()


def print_profile(rows: Sequence[ProfileRow]) -> None:
    print(f"== Part 1 profile: top {len(rows)} functions by tottime")
    print(f"  {'ncalls':>10} {'tottime':>8} {'percall':>8} {'cumtime':>8}  function")
    for row in rows:
        calls = str(row.ncalls)
        if row.primitive_calls != row.ncalls:
            calls = f"{row.ncalls}/{row.primitive_calls}"
        per_call_us = 1e6 * row.tottime / max(row.ncalls, 1)
        print(
            f"  {calls:>10} {row.tottime:8.3f} {per_call_us:7.2f}u {row.cumtime:8.3f}  "
            f"{row.function}"
        )
    print()


SIM_HEADER = (
    f"  {'cc':>8} {'loss':>5} {'sim s':>8} {'MB/s':>7} {'retx':>6} {'RTO':>4} {'fast':>5} "
    f"{'rand drop':>11} {'queue drop':>11} {'wall s':>7}  status"
)


def print_sim_header(total: int, seed: int, max_time: float) -> None:
    print(
        f"== Part 2: simulated goodput vs loss: {_mib(total)}, RTT "
        f"{2 * ONE_WAY_DELAY * 1e3:g} ms, {LINK_RATE * 8 / 1e6:g} Mbit/s, "
        f"queue {QUEUE_LIMIT:,} B, seed {seed}, cap {max_time:g} simulated s"
    )
    print("  (MB/s = 10^6 B per simulated second; drops shown as client->server/server->client)")
    print(SIM_HEADER)


def print_sim_row(r: SimResult) -> None:
    sim_s = f"{r.sim_seconds:8.3f}" if r.sim_seconds is not None else f"{'-':>8}"
    goodput = f"{r.goodput_mb_per_s:7.3f}" if r.goodput_mb_per_s is not None else f"{'-':>7}"
    rand = f"{r.dropped_loss.get('c2s', 0)}/{r.dropped_loss.get('s2c', 0)}"
    queue = f"{r.dropped_queue.get('c2s', 0)}/{r.dropped_queue.get('s2c', 0)}"
    status = r.status if not r.detail else f"{r.status}: {r.detail}"
    print(
        f"  {r.controller:>8} {r.loss_percent:4g}% {sim_s} {goodput} {r.retransmitted:6d} "
        f"{r.rto_timeouts:4d} {r.fast_retransmits:5d} {rand:>11} {queue:>11} "
        f"{r.wall_s:7.2f}  {status}",
        flush=True,
    )


# --- main --------------------------------------------------------------------------------------


def sim_config_for(name: str) -> Config:
    """A ``Config.profile`` by name, else a default ``Config`` with the controller ``name``."""
    if name in PROFILE_NAMES or name not in CONTROLLERS:
        return Config.profile(name)  # raises ValueError listing the profiles
    return Config(congestion_control=name)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Baseline CPU cost and simulated goodput of the rudp protocol core.",
    )
    parser.add_argument(
        "--bytes", type=_size, default=None, help="part 1 transfer size (default 64M)"
    )
    parser.add_argument(
        "--sim-bytes", type=_size, default=None, help="part 2 transfer size (default 8M)"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed for data and links (1)")
    parser.add_argument(
        "--loss",
        type=_losses,
        default=list(DEFAULT_LOSSES),
        help="comma-separated loss percentages for part 2 (0,1,2,5,10,20)",
    )
    parser.add_argument(
        "--profiles",
        type=lambda text: [p.strip() for p in text.split(",") if p.strip()],
        default=list(DEFAULT_PROFILES),
        help="comma-separated Config.profile or controller names for part 2"
        " (newreno,fair,throughput)",
    )
    parser.add_argument(
        "--max-sim-time",
        type=float,
        default=600.0,
        help="simulated-seconds cap per loss rate (600)",
    )
    parser.add_argument(
        "--step-us", type=float, default=50.0, help="part 1 fake clock step per iteration (50)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="small sizes (4M / 1M) for a run of a few seconds"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument(
        "--profile", action="store_true", help="run part 1 under cProfile, print the top 25"
    )
    parser.add_argument(
        "--profile-top", type=int, default=25, help="functions shown by --profile (25)"
    )
    parser.add_argument(
        "--only", choices=("ideal", "sim"), default=None, help="run only part 1 or part 2"
    )
    args = parser.parse_args(argv)
    if args.bytes is None:
        args.bytes = QUICK_BYTES if args.quick else DEFAULT_BYTES
    if args.sim_bytes is None:
        args.sim_bytes = QUICK_SIM_BYTES if args.quick else DEFAULT_SIM_BYTES
    if args.step_us <= 0 or args.max_sim_time <= 0 or args.profile_top < 1:
        parser.error("--step-us, --max-sim-time and --profile-top must be > 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    config = Config()
    report: dict[str, Any] = {
        "params": {
            "bytes": args.bytes,
            "sim_bytes": args.sim_bytes,
            "seed": args.seed,
            "losses_percent": args.loss,
            "max_sim_time": args.max_sim_time,
            "step_us": args.step_us,
            "one_way_delay_s": ONE_WAY_DELAY,
            "link_rate_bytes_per_s": LINK_RATE,
            "queue_limit_bytes": QUEUE_LIMIT,
            "python": sys.version.split()[0],
        }
    }
    status = 0
    show = not args.json

    if args.only != "sim":
        step = args.step_us / 1e6
        try:
            if args.profile:
                ideal, rows = profile_ideal(
                    args.bytes, step=step, seed=args.seed, config=config, top=args.profile_top
                )
                report["profile"] = [asdict(row) for row in rows]
            else:
                ideal = run_ideal(args.bytes, step=step, seed=args.seed, config=config)
                rows = []
        except BenchError as exc:
            print(f"part 1 failed: {exc}", file=sys.stderr)
            report["ideal"] = {"error": str(exc)}
            status = 1
        else:
            report["ideal"] = ideal.as_dict()
            if show:
                print_ideal(ideal)
                if rows:
                    print_profile(rows)

    if args.only != "ideal":
        if show:
            print_sim_header(args.sim_bytes, args.seed, args.max_sim_time)
        results = []
        for name in args.profiles:
            sim_config = sim_config_for(name)
            for loss in args.loss:
                result = run_sim(
                    args.sim_bytes,
                    loss=loss,
                    seed=args.seed,
                    max_time=args.max_sim_time,
                    config=sim_config,
                )
                results.append(result)
                if show:
                    print_sim_row(result)
                if result.status in ("wrong data", "error"):
                    status = 1
                elif result.status == "did not finish" and status == 0:
                    status = 2
        report["sim"] = [asdict(r) for r in results]
        if show:
            print()

    if args.json:
        json.dump(report, sys.stdout, indent=2)
        print()
    return status


if __name__ == "__main__":
    sys.exit(main())
