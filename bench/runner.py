"""The parent side of a benchmark case: the link, the two child processes, one result per run.

A :class:`LinkSpec` says which link (``loopback``, ``veth`` with nftables loss, or ``wan``: the
TUN forwarder with delay, loss and a 1-BDP bottleneck queue). :class:`LinkSession` builds the
namespaces once for many cases and runs, and for each run gives a :class:`RunLink` whose
``stats`` are the link's own counters for that run (the forwarder's drops and health, or the
nftables drop counters). :func:`run_pair` starts the server child on the server side, then the
client child on the client side, and returns both results; every child is killed on the way out.
"""

from __future__ import annotations

import contextlib
import json
import queue
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from types import TracebackType
from typing import Any, Literal

from bench.loopback import BenchError, Child, _next_event
from bench.netlab.lab import LOOPBACK, LabUnavailable, Netlab, Side, WanLink
from bench.netlab.model import GilbertElliott, LinkParams

__all__ = [
    "BenchError",
    "LabUnavailable",
    "LinkSession",
    "LinkSpec",
    "bulk_run",
    "run_pair",
    "rr_run",
    "summarize",
]

STARTUP_TIMEOUT = 30.0
EXIT_TIMEOUT = 10.0
MBIT = 1e6


@dataclass(frozen=True, slots=True)
class LinkSpec:
    """One link: its kind and impairments (loss is per direction, in percent)."""

    kind: Literal["loopback", "veth", "wan"]
    loss_pct: float = 0.0
    rtt_ms: float = 0.0
    rate_mbit: float | None = None
    jitter_ms: float = 0.0
    reorder_pct: float = 0.0
    burst: tuple[float, float] | None = None  # Gilbert-Elliott (p_good_to_bad, p_bad_to_good)
    queue_bytes: int | None = None  # None: one BDP

    @property
    def name(self) -> str:
        if self.kind == "loopback":
            return "loopback"
        parts = [self.kind]
        if self.kind == "wan":
            parts.append(f"{self.rate_mbit:g}Mbit" if self.rate_mbit else "unlimited")
            parts.append(f"rtt{self.rtt_ms:g}ms")
        elif self.rate_mbit:
            parts.append(f"{self.rate_mbit:g}Mbit")
        parts.append(f"loss{self.loss_pct:g}%")
        if self.jitter_ms:
            parts.append(f"jitter{self.jitter_ms:g}ms")
        if self.reorder_pct:
            parts.append(f"reorder{self.reorder_pct:g}%")
        if self.burst:
            parts.append(f"burst{self.burst[0]:g}/{self.burst[1]:g}")
        return "-".join(parts)

    def link_params(self) -> LinkParams:
        """One direction of the WAN link (both directions are alike)."""
        return LinkParams(
            delay=self.rtt_ms / 2000,
            jitter=self.jitter_ms / 1000,
            loss=self.loss_pct / 100,
            burst=GilbertElliott(*self.burst) if self.burst else None,
            reorder=self.reorder_pct / 100,
            rate=self.rate_mbit * MBIT / 8 if self.rate_mbit else None,
            queue_limit=self.queue_bytes,
        )

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["name"] = self.name
        if self.kind == "wan":
            out["per_direction"] = self.link_params().as_dict()
        return out


class RunLink:
    """The link during one run; ``stats`` is filled when the run ends."""

    def __init__(self, session: LinkSession) -> None:
        self.session = session
        self.stats: dict[str, Any] = {}


class LinkSession:
    """The namespaces for a kind of link, made on enter and removed on exit."""

    def __init__(self, kind: Literal["loopback", "veth", "wan"], seed: int = 1) -> None:
        self.kind = kind
        self.lab: Netlab | None = None
        self.spec: LinkSpec | None = None
        self._seed = seed
        self._runs = 0

    @property
    def client(self) -> Side:
        return LOOPBACK if self.lab is None else self.lab.client

    @property
    def server(self) -> Side:
        return LOOPBACK if self.lab is None else self.lab.server

    def __enter__(self) -> LinkSession:
        if self.kind == "veth":
            self.lab = Netlab("veth", loss_pct=0.0).__enter__()
        elif self.kind == "wan":
            self.lab = Netlab("tun").__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.lab is not None:
            self.lab.close()
            self.lab = None

    def use(self, spec: LinkSpec) -> None:
        if spec.kind != self.kind:
            raise ValueError(f"a {self.kind} session cannot run a {spec.kind} link")
        if self.lab is not None and spec.kind == "veth":
            rate = spec.rate_mbit * MBIT if spec.rate_mbit else None
            if rate != self.lab.rate_bit_s:
                self.lab.set_rate(rate, spec.queue_bytes)
            self.lab.set_loss(spec.loss_pct)
        self.spec = spec

    @contextlib.contextmanager
    def run(self) -> Iterator[RunLink]:
        """One run on the current spec: the forwarder (wan) or the drop counters (veth)."""
        run = RunLink(self)
        self._runs += 1
        if self.kind == "wan":
            assert self.lab is not None and self.spec is not None
            params = self.spec.link_params()
            with WanLink(self.lab, params, params, seed=self._seed + self._runs) as link:
                yield run
            run.stats = link.stats or {}
        elif self.kind == "veth":
            assert self.lab is not None
            before = self.lab.nft_drops()
            yield run
            after = self.lab.nft_drops()
            run.stats = {"nft_drops": {k: after[k] - before[k] for k in after}}
        else:
            yield run


def _child_argv(side: Side, job: dict[str, Any]) -> list[str]:
    return [*side.exec_prefix(), sys.executable, "-m", "bench.child", json.dumps(job)]


def _check(role: str, message: dict[str, Any]) -> None:
    if message.get("event") == "error":
        detail = message.get("traceback") or ""
        raise BenchError(f"{role}: {message.get('message')}\n{detail}".rstrip())
    if message.get("event") == "exit":
        raise BenchError(f"{role} exited without a result")


def run_pair(
    session: LinkSession,
    server_job: dict[str, Any],
    client_jobs: list[dict[str, Any]],
    timeout: float,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Start the server, then the clients against its port; both sides' results."""
    events: queue.Queue[tuple[str, Any]] = queue.Queue()
    children: list[Child] = []
    try:
        server_job = {**server_job, "host": session.server.addr, "timeout": timeout + 30}
        children.append(Child("server", _child_argv(session.server, server_job), events))
        deadline = time.monotonic() + STARTUP_TIMEOUT
        port = None
        while port is None:
            role, message = _next_event(events, deadline, "the server's port")
            _check(role, message)
            if message.get("event") == "ready":
                port = int(message["port"])
        for i, job in enumerate(client_jobs):
            job = {**job, "host": session.server.addr, "port": port, "timeout": timeout}
            children.append(Child(f"client{i}", _child_argv(session.client, job), events))
        results = _collect_results(children, events, timeout, "the run to finish")
    finally:
        for child in children:
            child.kill()
    return results["server"], [results[f"client{i}"] for i in range(len(client_jobs))]


def _collect_results(
    children: list[Child], events: queue.Queue[tuple[str, Any]], timeout: float, what: str
) -> dict[str, dict[str, Any]]:
    """Each child's ``result`` message by role, once all are in; then wait for them to exit."""
    results: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout + STARTUP_TIMEOUT
    while len(results) < len(children):
        role, message = _next_event(events, deadline, what)
        if role in results:
            continue
        _check(role, message)
        if message.get("event") == "result":
            results[role] = message
    for child in children:
        child.wait_exit(EXIT_TIMEOUT)
    return results


def run_servers(
    session: LinkSession,
    pairs: list[tuple[dict[str, Any], dict[str, Any]]],
    timeout: float,
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Several independent server/client pairs at once (flows sharing the link)."""
    events: queue.Queue[tuple[str, Any]] = queue.Queue()
    children: list[Child] = []
    try:
        ports: dict[int, int] = {}
        for i, (server_job, _) in enumerate(pairs):
            job = {**server_job, "host": session.server.addr, "timeout": timeout + 30}
            children.append(Child(f"server{i}", _child_argv(session.server, job), events))
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while len(ports) < len(pairs):
            role, message = _next_event(events, deadline, "the servers' ports")
            _check(role, message)
            if message.get("event") == "ready":
                ports[int(role.removeprefix("server"))] = int(message["port"])
        for i, (_, client_job) in enumerate(pairs):
            job = {**client_job, "host": session.server.addr, "port": ports[i], "timeout": timeout}
            children.append(Child(f"client{i}", _child_argv(session.client, job), events))
        results = _collect_results(children, events, timeout, "the flows to finish")
    finally:
        for child in children:
            child.kill()
    return [(results[f"server{i}"], results[f"client{i}"]) for i in range(len(pairs))]


# --- bulk and request/response runs -------------------------------------------------------------


def _lost_bytes(link_stats: dict[str, Any], direction: str) -> int | None:
    d = link_stats.get("directions", {}).get(direction)
    return None if d is None else int(d["dropped_bytes"])


def _retransmitted_bytes(peer: str, stats: dict[str, Any]) -> int | None:
    if peer.startswith("rudp"):
        return stats.get("bytes_retransmitted")
    if peer.startswith("tcp"):
        return stats.get("bytes_retrans")
    if peer.startswith("kcp"):
        return stats.get("bytes_retransmitted")
    return None


def bulk_result(
    peer: str, link: LinkSpec, snd: dict[str, Any], rcv: dict[str, Any], link_stats: dict[str, Any]
) -> dict[str, Any]:
    if snd["bytes"] != rcv["bytes"] or snd["crc32"] != rcv["crc32"]:
        raise BenchError(
            f"{peer}: sent {snd['bytes']} B crc {snd['crc32']:#x}, "
            f"received {rcv['bytes']} B crc {rcv['crc32']:#x}"
        )
    wall = rcv["t_eof"] - snd["t_first_write"]
    retx = _retransmitted_bytes(peer, snd.get("stats") or {})
    lost = _lost_bytes(link_stats, "ab")
    queue_drops = None
    if link_stats.get("directions"):
        queue_drops = link_stats["directions"]["ab"]["queue_drops"]
    return {
        "peer": peer,
        "link": link.name,
        "bytes": rcv["bytes"],
        "capped": bool(snd.get("capped")),
        "wall_s": wall,
        "goodput_mb_s": rcv["bytes"] / wall / 1e6,
        "sender_cpu_s": snd["cpu_s"],
        "receiver_cpu_s": rcv["cpu_s"],
        "bytes_retransmitted": retx,
        "bytes_lost_on_link": lost,
        "retx_per_lost_byte": (retx / lost) if retx is not None and lost else None,
        "queue_drops": queue_drops,
        "link_limited": link_stats.get("limited") or [],
        "sender_stats": snd.get("stats"),
        "receiver_stats": rcv.get("stats"),
        "link_stats": link_stats,
    }


def bulk_run(
    session: LinkSession,
    peer: str,
    total: int,
    max_seconds: float,
    *,
    loop: str = "uvloop",
    profile_dir: str | None = None,
    tag: str = "",
) -> dict[str, Any]:
    """One bulk transfer client -> server on the session's current link."""
    assert session.spec is not None
    server_job: dict[str, Any] = {"role": "bulk-server", "peer": peer, "loop": loop}
    client_job: dict[str, Any] = {
        "role": "bulk-client",
        "peer": peer,
        "loop": loop,
        "bytes": total,
        "max_seconds": max_seconds,
    }
    if profile_dir:
        stem = f"{profile_dir}/{peer.replace(':', '-')}-{session.spec.name}{tag}"
        server_job["profile_out"] = f"{stem}-receiver.prof"
        client_job["profile_out"] = f"{stem}-sender.prof"
    with session.run() as run:
        rcv, (snd,) = run_pair(session, server_job, [client_job], timeout=max_seconds + 120)
    return bulk_result(peer, session.spec, snd, rcv, run.stats)


def rr_run(
    session: LinkSession,
    peer: str,
    rounds: int,
    size: int,
    *,
    loop: str = "uvloop",
) -> dict[str, Any]:
    """``rounds`` request/response exchanges of ``size`` bytes each way."""
    assert session.spec is not None
    server_job = {"role": "rr-server", "peer": peer, "loop": loop, "size": size}
    client_job = {"role": "rr-client", "peer": peer, "loop": loop, "rounds": rounds, "size": size}
    with session.run() as run:
        srv, (cli,) = run_pair(session, server_job, [client_job], timeout=60 + rounds * 1.0)
    return {
        "peer": peer,
        "link": session.spec.name,
        "rounds": rounds,
        "size": size,
        "summary": cli["summary"],
        "rtt_ms": cli["rtt_ms"],
        "client_cpu_s": cli["cpu_s"],
        "server_cpu_s": srv["cpu_s"],
        "wall_s": cli["wall_s"],
        "link_limited": run.stats.get("limited") or [],
        "link_stats": run.stats,
        "client_stats": cli.get("stats"),
    }


def share_run(
    session: LinkSession, peers: list[str], seconds: float, *, loop: str = "uvloop"
) -> dict[str, Any]:
    """Flows of ``peers`` started together on one link for ``seconds``: each one's share."""
    assert session.spec is not None
    big = 1 << 40  # time-capped: every flow sends for the same ``seconds``
    pairs = [
        (
            {"role": "bulk-server", "peer": peer, "loop": loop},
            {"role": "bulk-client", "peer": peer, "loop": loop, "bytes": big},
        )
        for peer in peers
    ]
    for _, client in pairs:
        client["max_seconds"] = seconds
    with session.run() as run:
        results = run_servers(session, pairs, timeout=seconds + 60)
    flows = [
        bulk_result(peer, session.spec, snd, rcv, {})
        for peer, (rcv, snd) in zip(peers, results, strict=True)
    ]
    total = sum(f["goodput_mb_s"] for f in flows)
    for flow in flows:
        flow["share"] = flow["goodput_mb_s"] / total if total else 0.0
    return {"link": session.spec.name, "seconds": seconds, "flows": flows, "link_stats": run.stats}


# --- summaries ----------------------------------------------------------------------------------


def summarize(values: list[float | None]) -> dict[str, float] | None:
    """Median, min and max of the values that are not None (None if there are none)."""
    present = [float(v) for v in values if v is not None]
    if not present:
        return None
    return {
        "median": statistics.median(present),
        "min": min(present),
        "max": max(present),
        "n": len(present),
    }


def check_tools() -> dict[str, str]:
    """Versions of the system tools used (for the report)."""
    out = {}
    for name, argv in (("ip", ["ip", "-V"]), ("nft", ["nft", "--version"])):
        try:
            out[name] = subprocess.run(argv, capture_output=True, text=True).stdout.strip()
        except OSError:
            out[name] = "missing"
    return out
