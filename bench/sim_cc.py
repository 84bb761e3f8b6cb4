"""Congestion control on a simulated bottleneck: goodput over loss x RTT x controller.

Every case runs the sans-I/O core in ``tests.sim`` (a fake clock, seeded links, no sockets),
so a table is exactly reproducible and costs only CPU. The path is a 100 Mbit/s bottleneck
(12.5e6 B/s) behind a drop-tail queue of one bandwidth-delay product, a fixed one-way delay of
RTT/2 each way and independent random loss at the same rate in both directions. One client
writes without end; goodput is the payload the server received between ``--warmup`` and
``--duration`` simulated seconds, reported in MB/s (10^6 B) and as a share of the link's
payload rate (1200 / 1224 of 12.5 MB/s).

Columns: ``model`` is what theory says a loss-based flow gets at that loss rate (the larger
of the CUBIC response function, RFC 9438 §5.1, and Reno's, 1.22 / sqrt(p) segments per RTT,
Mathis et al.; the link rate for the model-based controller), ``retx/lost`` the segments
retransmitted per data segment the forward link dropped, ``spur`` the retransmissions that
arrived as duplicates, ``qdrop`` the datagrams the bottleneck queue dropped.

Two more scenarios share one bottleneck between two flows (the second starts 2 s after the
first): ``fair`` against ``fair`` (Jain's fairness index over the last half of the run) and
``background`` against ``fair`` (the background flow's share). The last one times 1 KiB
requests answered by 1 KiB replies, one at a time, over a 40 ms path with 0, 1 and 5 % loss
each way, for the ``fair`` and ``latency`` profiles (p50 / p99 / max).

    .venv/bin/python bench/sim_cc.py                 # the full table (a few minutes)
    .venv/bin/python bench/sim_cc.py --quick         # 50 ms only, shorter runs
    .venv/bin/python bench/sim_cc.py --json bench/results/sim_cc.json --markdown docs/sim_cc.md
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from rudp.config import PROFILE_NAMES, Config  # noqa: E402
from rudp.core.cc_cubic import BETA_CUBIC, C  # noqa: E402
from rudp.core.congestion import CONTROLLERS  # noqa: E402
from rudp.core.connection import Addr, Connection  # noqa: E402
from tests.core.harness import SERVER_ADDR, ConnLog, Peer  # noqa: E402
from tests.sim import Impairment, LossyLink, Simulator  # noqa: E402

LINK_RATE = 12.5e6  # bytes/s: 100 Mbit/s
SMSS = 1200
HEADER = 24
PAYLOAD_RATE = LINK_RATE * SMSS / (SMSS + HEADER)  # what the link carries of payload
MB = 1e6
DEFAULT_CONTROLLERS = ("fair", "throughput", "background", "newreno")
DEFAULT_LOSSES = (0.0, 1.0, 2.0, 5.0, 10.0)  # percent
DEFAULT_RTTS = (0.010, 0.050, 0.200)  # seconds
_ENDLESS = 1 << 30  # bytes the "endless" writer offers: more than any run moves


@dataclass
class CaseResult:
    """One controller at one loss rate and RTT."""

    controller: str
    loss_percent: float
    rtt: float
    goodput: float  # MB/s over the measured interval
    share: float  # goodput / the link's payload rate
    model: float  # MB/s the response function predicts
    retransmitted: int  # segments
    lost: int  # data datagrams the forward link dropped
    spurious: int  # retransmissions that arrived as duplicates
    queue_drops: int
    rto_timeouts: int
    tlp_probes: int
    undone: int
    wall: float

    @property
    def retx_per_lost(self) -> float:
        return self.retransmitted / self.lost if self.lost else float("nan")


def config_for(name: str, **changes: object) -> Config:
    """A ``Config.profile`` by name, or a default ``Config`` with the controller ``name``."""
    if name in PROFILE_NAMES or name not in CONTROLLERS:
        return Config.profile(name, **changes)
    return Config(congestion_control=name, **changes)  # type: ignore[arg-type]


def bottleneck(
    rtt: float, loss: float, rate: float = LINK_RATE, queue: float | None = None
) -> tuple[Impairment, Impairment]:
    """The forward (data) and backward (ACK) impairments of the path: a drop-tail queue of
    ``queue`` seconds at the rate, one RTT (one BDP) by default."""
    bdp = int(rate * (rtt if queue is None else queue))
    forward = Impairment(
        loss=loss, delay=rtt / 2, rate=rate, queue_limit=max(bdp, 4 * (SMSS + HEADER))
    )
    return forward, Impairment(loss=loss, delay=rtt / 2)


def response_function(loss: float, rtt: float) -> float:
    """MB/s a loss-based flow gets at loss rate ``loss`` and round trip ``rtt``: the larger
    of CUBIC's average window (RFC 9438 §5.1) and Reno's (1.22 / sqrt(p)), capped by the
    link. With no loss, the link's payload rate."""
    if loss <= 0:
        return PAYLOAD_RATE / MB
    cubic: float = (C * (3 + BETA_CUBIC) / (4 * (1 - BETA_CUBIC))) ** 0.25 * (rtt / loss) ** 0.75
    reno = math.sqrt(1.5 / loss)
    window = max(cubic, reno)  # segments
    return min(window * SMSS / rtt, PAYLOAD_RATE) / MB


def _endless(peer: Peer, conn: Connection) -> None:
    """Keep ``conn``'s send buffer topped up for the whole run."""
    peer.write(conn, bytes(_ENDLESS), eof=False)  # calloc: pages appear as they are read


def _open(sim: Simulator, peer: Peer, server: Peer) -> tuple[Connection, ConnLog]:
    conn = peer.endpoint.connect(SERVER_ADDR, now=sim.clock.now)
    peer.log(conn)
    known = len(server.accepted)
    if not sim.run_until(lambda: len(server.accepted) > known, sim.clock.now + 30.0):
        raise RuntimeError("handshake did not complete")
    return conn, server.log(server.accepted[-1])


def _one_flow(
    controller: str, loss_percent: float, rtt: float, *, seed: int, queue_back: bool = False
) -> tuple[Simulator, Peer, Peer, LossyLink]:
    """A client and a server with ``controller``'s config joined by the bottleneck (the
    backward path through a queue too with ``queue_back``); returns the forward link."""
    sim = Simulator(seed=seed)
    client_addr: Addr = ("10.0.0.1", 5000)
    client = Peer(config_for(controller), seed=seed * 2 + 1)
    server = Peer(config_for(controller), seed=seed * 2 + 2, listening=True)
    sim.add_node(client, client_addr)
    sim.add_node(server, SERVER_ADDR)
    forward, back = bottleneck(rtt, loss_percent / 100.0)
    fwd = sim.link(client_addr, SERVER_ADDR, forward, both_ways=False)
    sim.link(SERVER_ADDR, client_addr, forward if queue_back else back, both_ways=False)
    return sim, client, server, fwd


def run_case(
    controller: str,
    loss_percent: float,
    rtt: float,
    *,
    duration: float,
    warmup: float,
    seed: int = 1,
) -> CaseResult:
    """One flow alone on the bottleneck."""
    wall = time.perf_counter()
    loss = loss_percent / 100.0
    sim, client, server, fwd = _one_flow(controller, loss_percent, rtt, seed=seed)
    conn, log = _open(sim, client, server)
    _endless(client, conn)
    start = sim.clock.now
    sim.run_until(lambda: False, start + warmup)
    got = len(log.received)
    sim.run_until(lambda: False, start + duration)
    goodput = (len(log.received) - got) / (duration - warmup)
    peer_conn = server.accepted[-1]
    stats = conn.stats
    return CaseResult(
        controller=controller,
        loss_percent=loss_percent,
        rtt=rtt,
        goodput=goodput / MB,
        share=goodput / PAYLOAD_RATE,
        model=(PAYLOAD_RATE if controller == "throughput" else 0.0) / MB
        or response_function(loss, rtt + (SMSS + HEADER) / LINK_RATE),
        retransmitted=stats.segments_retransmitted,
        lost=fwd.stats.dropped,
        spurious=peer_conn.stats.duplicate_segments,
        queue_drops=fwd.stats.dropped_queue,
        rto_timeouts=stats.rto_timeouts,
        tlp_probes=stats.tlp_probes,
        undone=stats.undone_recoveries,
        wall=time.perf_counter() - wall,
    )


@dataclass
class ShareResult:
    """Two flows on one bottleneck: each one's goodput over the measured interval."""

    first: str
    second: str
    rtt: float
    loss_percent: float
    goodput_first: float  # MB/s
    goodput_second: float
    jain: float

    @property
    def share_first(self) -> float:
        total = self.goodput_first + self.goodput_second
        return self.goodput_first / total if total else 0.0


def jain_index(rates: Sequence[float]) -> float:
    """Jain's fairness index: (sum x)^2 / (n sum x^2); 1 when all are equal."""
    total = sum(rates)
    squares = sum(r * r for r in rates)
    return total * total / (len(rates) * squares) if squares else 0.0


def run_shared(
    first: str,
    second: str,
    *,
    rtt: float,
    loss_percent: float = 0.0,
    duration: float,
    join_after: float = 2.0,
    rate: float = LINK_RATE,
    queue: float | None = None,
    seed: int = 1,
) -> ShareResult:
    """``first`` starts alone; ``second`` joins after ``join_after`` seconds through the same
    drop-tail queue. Goodput is measured over the second half of the time both ran."""
    loss = loss_percent / 100.0
    sim = Simulator(seed=seed)
    addr_a: Addr = ("10.0.0.1", 5000)
    addr_b: Addr = ("10.0.0.3", 5000)
    peer_a = Peer(config_for(first), seed=seed * 3 + 1)
    peer_b = Peer(config_for(second), seed=seed * 3 + 2)
    server = Peer(None, seed=seed * 3 + 3, listening=True)
    sim.add_node(peer_a, addr_a)
    sim.add_node(peer_b, addr_b)
    sim.add_node(server, SERVER_ADDR)
    forward, back = bottleneck(rtt, loss, rate, queue)
    shared = sim.link(addr_a, SERVER_ADDR, forward, both_ways=False)
    sim.links[(addr_b, SERVER_ADDR)] = shared  # one queue for both flows
    sim.link(SERVER_ADDR, addr_a, back, both_ways=False)
    sim.link(SERVER_ADDR, addr_b, back, both_ways=False)
    conn_a, log_a = _open(sim, peer_a, server)
    _endless(peer_a, conn_a)
    sim.run_until(lambda: False, sim.clock.now + join_after)
    conn_b, log_b = _open(sim, peer_b, server)
    _endless(peer_b, conn_b)
    both = sim.clock.now
    sim.run_until(lambda: False, both + duration / 2)
    a0, b0, t0 = len(log_a.received), len(log_b.received), sim.clock.now
    sim.run_until(lambda: False, both + duration)
    span = sim.clock.now - t0
    rate_a = (len(log_a.received) - a0) / span / MB
    rate_b = (len(log_b.received) - b0) / span / MB
    return ShareResult(
        first, second, rtt, loss_percent, rate_a, rate_b, jain_index([rate_a, rate_b])
    )


@dataclass
class LatencyResult:
    """Request/response rounds, one at a time: percentiles of the round time."""

    controller: str
    loss_percent: float
    rtt: float
    rounds: int
    p50: float  # seconds
    p99: float
    max: float
    mean: float
    tlp_probes: int
    rto_timeouts: int


def _holds(log: ConnLog, size: int) -> Callable[[], bool]:
    return lambda: len(log.received) >= size


def run_request_response(
    controller: str,
    loss_percent: float,
    rtt: float,
    *,
    rounds: int = 2000,
    size: int = 1024,
    seed: int = 1,
) -> LatencyResult:
    """``size``-byte requests answered by ``size``-byte replies, one at a time, over the
    bottleneck with random loss each way; both ends use the same profile."""
    sim, client, server, _ = _one_flow(controller, loss_percent, rtt, seed=seed, queue_back=True)
    conn, log = _open(sim, client, server)
    srv = server.accepted[-1]
    back = client.log(conn)
    times = []
    request = bytes(size)
    for i in range(rounds):
        start = sim.clock.now
        want = (i + 1) * size
        conn.send(request)
        if not sim.run_until(_holds(log, want), start + 60):
            raise RuntimeError(f"request {i} not delivered within 60 s")
        srv.send(request)
        if not sim.run_until(_holds(back, want), start + 60):
            raise RuntimeError(f"reply {i} not delivered within 60 s")
        times.append(sim.clock.now - start)
    times.sort()
    return LatencyResult(
        controller=controller,
        loss_percent=loss_percent,
        rtt=rtt,
        rounds=rounds,
        p50=times[len(times) // 2],
        p99=times[min(len(times) - 1, int(len(times) * 0.99))],
        max=times[-1],
        mean=sum(times) / len(times),
        tlp_probes=conn.stats.tlp_probes + srv.stats.tlp_probes,
        rto_timeouts=conn.stats.rto_timeouts + srv.stats.rto_timeouts,
    )


# --- output ------------------------------------------------------------------------------------


def _header() -> str:
    return (
        f"{'controller':>10} {'RTT':>6} {'loss':>5} {'MB/s':>7} {'link':>6} {'model':>7}"
        f" {'retx/lost':>9} {'spur':>6} {'qdrop':>6} {'RTO':>4} {'TLP':>5} {'undo':>4}"
        f" {'wall s':>6}"
    )


def _row(r: CaseResult) -> str:
    return (
        f"{r.controller:>10} {r.rtt * 1000:>4.0f}ms {r.loss_percent:>4.0f}% {r.goodput:>7.3f}"
        f" {r.share:>6.1%} {r.model:>7.3f} {r.retx_per_lost:>9.3f} {r.spurious:>6}"
        f" {r.queue_drops:>6} {r.rto_timeouts:>4} {r.tlp_probes:>5} {r.undone:>4}"
        f" {r.wall:>6.1f}"
    )


def markdown(
    cases: Sequence[CaseResult],
    shares: Sequence[ShareResult],
    args: str,
    latencies: Sequence[LatencyResult] = (),
) -> str:
    lines = [
        "# Simulated congestion control",
        "",
        f"Generated by `bench/sim_cc.py {args}`. 100 Mbit/s bottleneck, 1-BDP drop-tail queue,",
        "random loss each way; goodput in MB/s (10^6 B/s) of simulated time, `model` as",
        "described in `bench/sim_cc.py`.",
        "",
    ]
    rtts = sorted({c.rtt for c in cases})
    losses = sorted({c.loss_percent for c in cases})
    controllers = list(dict.fromkeys(c.controller for c in cases))
    by_key = {(c.controller, c.rtt, c.loss_percent): c for c in cases}
    for rtt in rtts:
        lines.append(f"## RTT {rtt * 1000:.0f} ms: goodput MB/s (retransmitted / lost)")
        lines.append("")
        lines.append("| controller | " + " | ".join(f"{loss:g} %" for loss in losses) + " |")
        lines.append("|---|" + "---:|" * len(losses))
        for name in controllers:
            cells = []
            for loss in losses:
                c = by_key.get((name, rtt, loss))
                if c is None:
                    cells.append("")
                elif c.lost:
                    cells.append(f"{c.goodput:.2f} ({c.retx_per_lost:.2f})")
                else:
                    cells.append(f"{c.goodput:.2f}")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        model = []
        for loss in losses:
            model.append(f"{response_function(loss / 100, rtt):.2f}")
        lines.append("| *loss-based model* | " + " | ".join(model) + " |")
        lines.append("")
    if shares:
        lines.append("## Two flows on one bottleneck")
        lines.append("")
        lines.append("| flows | RTT | loss | MB/s first | MB/s second | first's share | Jain |")
        lines.append("|---|---:|---:|---:|---:|---:|---:|")
        for s in shares:
            lines.append(
                f"| {s.first} + {s.second} | {s.rtt * 1000:.0f} ms | {s.loss_percent:g} % |"
                f" {s.goodput_first:.2f} | {s.goodput_second:.2f} | {s.share_first:.0%} |"
                f" {s.jain:.3f} |"
            )
        lines.append("")
    if latencies:
        lines.append("## Request/response latency (1 KiB each way, one at a time)")
        lines.append("")
        lines.append("| profile | RTT | loss | p50 ms | p99 ms | max ms | mean ms | TLPs | RTOs |")
        lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in latencies:
            lines.append(
                f"| {r.controller} | {r.rtt * 1000:.0f} ms | {r.loss_percent:g} % |"
                f" {r.p50 * 1000:.1f} | {r.p99 * 1000:.1f} | {r.max * 1000:.1f} |"
                f" {r.mean * 1000:.1f} | {r.tlp_probes} | {r.rto_timeouts} |"
            )
        lines.append("")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    def floats(text: str) -> list[float]:
        return [float(part) for part in text.split(",") if part.strip()]

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--controllers", default=",".join(DEFAULT_CONTROLLERS))
    parser.add_argument("--loss", type=floats, default=list(DEFAULT_LOSSES), help="percent")
    parser.add_argument(
        "--rtt", type=floats, default=[r * 1000 for r in DEFAULT_RTTS], help="milliseconds"
    )
    parser.add_argument("--duration", type=float, default=None, help="simulated s per case")
    parser.add_argument("--warmup", type=float, default=None, help="simulated s not measured")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="50 ms only, shorter runs")
    parser.add_argument("--no-shared", action="store_true", help="skip the two-flow cases")
    parser.add_argument(
        "--no-latency", action="store_true", help="skip the request/response rounds"
    )
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--markdown", type=Path, default=None, help="write tables here")
    return parser.parse_args(argv)


def case_duration(
    controller: str, loss_percent: float, rtt: float, quick: bool
) -> tuple[float, float]:
    """Simulated (duration, warmup) of one case. A loss-limited flow needs hundreds of round
    trips for its average to settle (a loss event every few RTTs, and the window left by slow
    start takes a while to forget); a flow that fills the link moves ~12 MB per simulated
    second, so it gets the shortest run that still spans 40 round trips."""
    fills_link = (
        controller == "throughput"
        or loss_percent == 0
        or (response_function(loss_percent / 100, rtt) > 0.25 * PAYLOAD_RATE / MB)
    )
    if fills_link:
        warmup = max(2.0, 20 * rtt)
        measured = max(4.0 if quick else 8.0, 40 * rtt)
    else:
        warmup = max(2.0, 50 * rtt)
        measured = max(10.0, (100 if quick else 400) * rtt)
    return warmup + measured, warmup


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    rtts = [0.05] if args.quick else [r / 1000 for r in args.rtt]
    controllers = [c.strip() for c in args.controllers.split(",") if c.strip()]
    cases: list[CaseResult] = []
    print(_header(), flush=True)
    for rtt in rtts:
        for name in controllers:
            for loss in args.loss:
                duration, warmup = case_duration(name, loss, rtt, args.quick)
                if args.duration is not None:
                    duration = args.duration
                if args.warmup is not None:
                    warmup = args.warmup
                result = run_case(name, loss, rtt, duration=duration, warmup=warmup, seed=args.seed)
                cases.append(result)
                print(_row(result), flush=True)
    shares: list[ShareResult] = []
    if not args.no_shared:
        for first, second in (("fair", "fair"), ("fair", "background"), ("background", "fair")):
            share = run_shared(first, second, rtt=0.05, duration=20.0 if args.quick else 40.0)
            shares.append(share)
            print(
                f"shared {first}+{second}: {share.goodput_first:.2f} + {share.goodput_second:.2f}"
                f" MB/s, first's share {share.share_first:.0%}, Jain {share.jain:.3f}",
                flush=True,
            )
    latencies: list[LatencyResult] = []
    if not args.no_latency:
        for name in ("fair", "latency"):
            for loss in (0.0, 1.0, 5.0):
                lat = run_request_response(name, loss, 0.04, rounds=500 if args.quick else 2000)
                latencies.append(lat)
                print(
                    f"request/response {name} {loss:g} %: p50 {lat.p50 * 1000:.1f} ms,"
                    f" p99 {lat.p99 * 1000:.1f} ms, max {lat.max * 1000:.1f} ms",
                    flush=True,
                )
    argline = " ".join(argv if argv is not None else sys.argv[1:])
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "cases": [asdict(c) | {"retx_per_lost": c.retx_per_lost} for c in cases],
            "shared": [asdict(s) | {"share_first": s.share_first} for s in shares],
            "latency": [asdict(r) for r in latencies],
            "args": argline,
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    if args.markdown is not None:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(markdown(cases, shares, argline, latencies) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
