"""Every benchmark scenario, one JSON file each in ``bench/results/``; ``make bench`` runs it.

Scenarios (``--only`` picks some, by name):

* ``bulk-loopback``: every peer on 127.0.0.1;
* ``bulk-veth``: a veth pair between two namespaces, nftables random loss 0/1/5/10 % each way;
* ``bulk-wan``: the emulated 100 Mbit/s link, RTT 20 and 100 ms, loss 0/1/2/5/10 % each way,
  one-BDP drop-tail queue;
* ``share``: rudp ``fair`` and kernel CUBIC started together on the emulated link;
* ``latency``: 1 KiB request / 1 KiB reply, one at a time, on the emulated link (RTT 20 ms)
  at 0/1/5 % loss;
* ``scale``: 1,000 and 10,000 connections to one server, a message a second each;
* ``profile``: cProfile of the rudp sender and receiver on loopback and on the emulated link.

Bulk transfers move ``bytes`` (64 MiB) or stop writing at ``max_seconds``, whichever comes
first; a peer that needs minutes therefore moves less, and its rows say so. ``--quick`` is a
subset that takes about two minutes and writes to ``bench/results/quick/`` (``make
bench-quick``). A scenario that cannot run here (no root, no namespaces) is recorded as skipped
with the reason. ``python -m bench.report`` turns the files into ``docs/benchmarks.md`` and plots.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import peers
from bench.cases import bulk_cases, format_bulk_table, format_rr_table, rr_cases
from bench.netlab.lab import cleanup_stale
from bench.runner import BenchError, LabUnavailable, LinkSession, LinkSpec, share_run, summarize
from bench.scale import scale_run

__all__ = ["FULL", "QUICK", "SCENARIOS", "Plan", "main"]

ROOT = Path(__file__).resolve().parent.parent
MIB = 1 << 20
LATENCY_PEERS = (
    "tcp:cubic",
    "tcp:bbr",
    "aioquic",
    "kcp:fast",
    "kcp:normal",
    "rudp:latency",
    "rudp:fair",
)


@dataclass(frozen=True)
class Plan:
    runs: int = 3
    bytes: int = 64 * MIB
    max_seconds: float = 15.0
    loopback_peers: tuple[str, ...] = peers.ALL_PEERS
    veth_peers: tuple[str, ...] = peers.ALL_PEERS
    veth_losses: tuple[float, ...] = (0, 1, 5, 10)
    wan_peers: tuple[str, ...] = peers.ALL_PEERS
    wan_rtts: tuple[float, ...] = (20, 100)
    wan_losses: tuple[float, ...] = (0, 1, 2, 5, 10)
    rate_mbit: float = 100.0
    share_peers: tuple[str, ...] = ("rudp:fair", "tcp:cubic")
    share_rtts: tuple[float, ...] = (20, 100)
    share_seconds: float = 20.0
    latency_peers: tuple[str, ...] = LATENCY_PEERS
    latency_losses: tuple[float, ...] = (0, 1, 5)
    latency_rtt: float = 20.0
    latency_runs: int = 3
    rounds: int = 2000
    scale_peers: tuple[str, ...] = ("tcp:cubic", "rudp:fair")
    scale_connections: tuple[int, ...] = (1000, 10000)
    scale_steady: float = 10.0
    scale_runs: int = 3
    profile_bytes: int = 64 * MIB
    scenarios: tuple[str, ...] = field(default=())


FULL = Plan()
QUICK = Plan(
    runs=1,
    bytes=16 * MIB,
    max_seconds=8.0,
    loopback_peers=("tcp:bbr", "rudp:throughput", "kcp:fast", "aioquic"),
    veth_peers=("tcp:cubic", "rudp:throughput"),
    veth_losses=(1,),
    wan_peers=("tcp:cubic", "tcp:bbr", "rudp:throughput"),
    wan_rtts=(20,),
    wan_losses=(1,),
    share_rtts=(20,),
    share_seconds=8.0,
    latency_peers=("tcp:cubic", "kcp:fast", "rudp:latency"),
    latency_losses=(1,),
    latency_runs=1,
    rounds=200,
    scale_connections=(1000,),
    scale_steady=3.0,
    scale_runs=1,
    profile_bytes=16 * MIB,
    scenarios=("bulk-loopback", "bulk-wan", "latency", "scale"),
)


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _host() -> dict[str, Any]:
    def read(path: str) -> str:
        try:
            return Path(path).read_text().strip()
        except OSError:
            return "?"

    return {
        "python": platform.python_version(),
        "kernel": platform.release(),
        "cpus": os.cpu_count(),
        "tcp_default_congestion_control": read("/proc/sys/net/ipv4/tcp_congestion_control"),
        "loadavg_at_start": read("/proc/loadavg"),
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
    }


def _bulk(plan: Plan, kind: str, links: list[LinkSpec], names: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"cases": []}
    with LinkSession(kind) as session:  # type: ignore[arg-type]
        for link in links:
            cases = bulk_cases(
                session,
                link,
                names,
                runs=plan.runs,
                total=plan.bytes,
                max_seconds=plan.max_seconds,
            )
            print(f"\n{link.name}: {plan.bytes / MIB:g} MiB per run, cap {plan.max_seconds:g} s")
            print(format_bulk_table(cases), flush=True)
            out["cases"].append({"link": link.as_dict(), "peers": cases})
    return out


def run_bulk_loopback(plan: Plan) -> dict[str, Any]:
    return _bulk(plan, "loopback", [LinkSpec("loopback")], plan.loopback_peers)


def run_bulk_veth(plan: Plan) -> dict[str, Any]:
    links = [LinkSpec("veth", loss_pct=loss) for loss in plan.veth_losses]
    return _bulk(plan, "veth", links, plan.veth_peers)


def run_bulk_wan(plan: Plan) -> dict[str, Any]:
    links = [
        LinkSpec("wan", loss_pct=loss, rtt_ms=rtt, rate_mbit=plan.rate_mbit)
        for rtt in plan.wan_rtts
        for loss in plan.wan_losses
    ]
    return _bulk(plan, "wan", links, plan.wan_peers)


def run_share(plan: Plan) -> dict[str, Any]:
    out: dict[str, Any] = {"cases": []}
    with LinkSession("wan") as session:
        for rtt in plan.share_rtts:
            link = LinkSpec("wan", rtt_ms=rtt, rate_mbit=plan.rate_mbit)
            session.use(link)
            runs = []
            for i in range(plan.runs):
                try:
                    result = share_run(session, list(plan.share_peers), plan.share_seconds)
                except BenchError as exc:
                    _log(f"share {link.name} run {i + 1}: FAILED: {str(exc).splitlines()[0]}")
                    continue
                runs.append(result)
                _log(
                    f"share {link.name} run {i + 1}/{plan.runs}: "
                    + ", ".join(
                        f"{f['peer']} {f['goodput_mb_s']:.2f} MB/s ({100 * f['share']:.0f}%)"
                        for f in result["flows"]
                    )
                )
            summary = {
                peer: {
                    "goodput_mb_s": summarize(
                        [f["goodput_mb_s"] for r in runs for f in r["flows"] if f["peer"] == peer]
                    ),
                    "share": summarize(
                        [f["share"] for r in runs for f in r["flows"] if f["peer"] == peer]
                    ),
                }
                for peer in plan.share_peers
            }
            out["cases"].append({"link": link.as_dict(), "runs": runs, "summary": summary})
    return out


def run_latency(plan: Plan) -> dict[str, Any]:
    out: dict[str, Any] = {"cases": [], "rounds": plan.rounds, "size": 1024}
    with LinkSession("wan") as session:
        for loss in plan.latency_losses:
            link = LinkSpec("wan", loss_pct=loss, rtt_ms=plan.latency_rtt, rate_mbit=plan.rate_mbit)
            cases = rr_cases(
                session,
                link,
                plan.latency_peers,
                runs=plan.latency_runs,
                rounds=plan.rounds,
                size=1024,
            )
            print(f"\n{link.name}: {plan.rounds} rounds, 1 KiB each way")
            print(format_rr_table(cases), flush=True)
            out["cases"].append({"link": link.as_dict(), "peers": cases})
    return out


def run_scale(plan: Plan) -> dict[str, Any]:
    out: dict[str, Any] = {"cases": [], "steady_s": plan.scale_steady}
    for n in plan.scale_connections:
        for peer in plan.scale_peers:
            runs = []
            failures = []
            for i in range(plan.scale_runs):
                try:
                    r = scale_run(peer, n, steady=plan.scale_steady)
                except BenchError as exc:
                    failures.append(str(exc))
                    _log(f"scale {peer} x{n} run {i + 1}: FAILED: {str(exc).splitlines()[0]}")
                    continue
                runs.append(r)
                _log(
                    f"scale {peer} x{n} run {i + 1}/{plan.scale_runs}: "
                    f"{r['handshakes_per_s']:.0f} handshakes/s, server CPU "
                    f"{100 * r['cpu_share']:.1f}%, {r['rss_per_connection_bytes'] / 1024:.1f} "
                    f"KiB/conn, {r['messages_per_s']:.0f} msg/s"
                )
            keys = (
                "accepted",
                "handshakes_per_s",
                "cpu_share",
                "cpu_us_per_connection_s",
                "rss_per_connection_bytes",
                "messages_per_s",
            )
            summary = {k: summarize([r.get(k) for r in runs]) for k in keys}
            out["cases"].append(
                {
                    "peer": peer,
                    "connections": n,
                    "runs": runs,
                    "failures": failures,
                    "summary": summary,
                }
            )
    return out


def run_profile(plan: Plan) -> dict[str, Any]:
    """cProfile of the rudp throughput profile's children: where its CPU goes."""
    from bench.loopback import profile_rows
    from bench.runner import bulk_run

    out: dict[str, Any] = {"cases": []}
    directory = ROOT / "bench" / "results" / "profiles"
    directory.mkdir(parents=True, exist_ok=True)
    for kind, link in (
        ("loopback", LinkSpec("loopback")),
        ("wan", LinkSpec("wan", loss_pct=1, rtt_ms=20, rate_mbit=plan.rate_mbit)),
    ):
        with LinkSession(kind) as session:  # type: ignore[arg-type]
            session.use(link)
            result = bulk_run(
                session,
                "rudp:throughput",
                plan.profile_bytes,
                plan.max_seconds * 2,
                profile_dir=str(directory),
            )
        case: dict[str, Any] = {
            "link": link.name,
            "goodput_mb_s": result["goodput_mb_s"],
            "sender_cpu_s": result["sender_cpu_s"],
            "receiver_cpu_s": result["receiver_cpu_s"],
            "wall_s": result["wall_s"],
        }
        for role in ("sender", "receiver"):
            path = directory / f"rudp-throughput-{link.name}-{role}.prof"
            if path.exists():
                total, rows = profile_rows(str(path), 12)
                case[role] = {
                    "profiled_s": total,
                    "top": [
                        {
                            "function": r.function,
                            "ncalls": r.ncalls,
                            "tottime": r.tottime,
                            "cumtime": r.cumtime,
                        }
                        for r in rows
                    ],
                }
        out["cases"].append(case)
        _log(f"profile {link.name}: {result['goodput_mb_s']:.2f} MB/s under cProfile")
    return out


SCENARIOS: dict[str, Callable[[Plan], dict[str, Any]]] = {
    "bulk-loopback": run_bulk_loopback,
    "bulk-veth": run_bulk_veth,
    "bulk-wan": run_bulk_wan,
    "share": run_share,
    "latency": run_latency,
    "scale": run_scale,
    "profile": run_profile,
}


def _case_key(case: dict[str, Any]) -> str:
    """What identifies a case across runs: its link's name (bulk, share, latency), the link
    itself where it is a name (profile), or the peer and connection count (scale)."""
    link = case.get("link")
    if isinstance(link, dict):
        return str(link.get("name"))
    if link is not None:
        return str(link)
    return f"{case.get('peer')} x{case.get('connections')}"


def merge_records(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """``new``'s cases over ``old``'s: per link (by name), the re-run peers replace the old
    entries, the others stay; a link only in one of them is kept. The hosts and plans of
    both runs are kept under ``merged_from``."""
    if not isinstance(old.get("cases"), list) or not isinstance(new.get("cases"), list):
        return new
    by_link: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    for record in (old, new):
        for case in record["cases"]:
            name = _case_key(case)
            if name not in by_link:
                by_link[name] = {"link": case.get("link"), "peers": {}}
                order.append(name)
            peers_now = case.get("peers")
            if isinstance(peers_now, dict):
                by_link[name]["peers"].update(peers_now)
            else:
                by_link[name] = case  # a scenario whose cases are not keyed by peer
    merged = dict(new)
    merged["cases"] = [by_link[name] for name in order]
    history = list(old.get("merged_from", [])) or [
        {"host": old.get("host"), "plan": old.get("plan")}
    ]
    merged["merged_from"] = [*history, {"host": new.get("host"), "plan": new.get("plan")}]
    return merged


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.suite", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="the two-minute subset")
    parser.add_argument("--only", default=None, help=f"comma-separated: {', '.join(SCENARIOS)}")
    parser.add_argument("--out", default=None, help="results directory")
    parser.add_argument("--runs", type=int, default=None, help="bulk/share runs per case (3)")
    parser.add_argument("--latency-runs", type=int, default=None, help="latency runs (3)")
    parser.add_argument("--scale-runs", type=int, default=None, help="scale runs (3)")
    parser.add_argument("--rounds", type=int, default=None, help="latency rounds (2000)")
    parser.add_argument("--max-seconds", type=float, default=None, help="bulk time cap (15)")
    parser.add_argument(
        "--peers",
        default=None,
        help="comma-separated peers for every scenario (default: each scenario's own list)",
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help="update the existing result files: replace the re-run peers' cases, keep the rest",
    )
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    plan = QUICK if args.quick else FULL
    changes = {
        "runs": args.runs,
        "latency_runs": args.latency_runs,
        "scale_runs": args.scale_runs,
        "rounds": args.rounds,
        "max_seconds": args.max_seconds,
    }
    plan = Plan(**{**plan.__dict__, **{k: v for k, v in changes.items() if v is not None}})
    if args.peers:
        chosen = tuple(p.strip() for p in args.peers.split(",") if p.strip())
        for name in chosen:
            peers.parse_peer(name)  # raises on an unknown peer
        plan = Plan(
            **{
                **plan.__dict__,
                **{
                    f"{kind}_peers": tuple(p for p in chosen if p in getattr(plan, f"{kind}_peers"))
                    or chosen
                    for kind in ("loopback", "veth", "wan", "latency")
                },
            }
        )
    names = list(plan.scenarios or SCENARIOS)
    if args.only:
        names = [n.strip() for n in args.only.split(",")]
        unknown = [n for n in names if n not in SCENARIOS]
        if unknown:
            parser.error(f"unknown scenario(s) {', '.join(unknown)}")
    out_dir = (
        Path(args.out) if args.out else ROOT / "bench" / "results" / ("quick" if args.quick else "")
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    removed = cleanup_stale()
    if removed:
        _log(f"removed stale namespaces: {', '.join(removed)}")
    status = 0
    started = time.monotonic()
    try:
        for name in names:
            t0 = time.monotonic()
            _log(f"=== {name}")
            record: dict[str, Any] = {"scenario": name, "host": _host(), "plan": plan.__dict__}
            try:
                record.update(SCENARIOS[name](plan))
            except LabUnavailable as exc:
                record["skipped"] = str(exc)
                _log(f"{name}: skipped: {exc}")
            except BenchError as exc:
                record["failed"] = str(exc)
                status = 1
                _log(f"{name}: FAILED: {exc}")
            record["elapsed_s"] = time.monotonic() - t0
            path = out_dir / f"{name}.json"
            if args.merge and path.exists() and "cases" in record:
                record = merge_records(json.loads(path.read_text()), record)
            path.write_text(json.dumps(record, indent=1, default=str))
            _log(f"=== {name}: {record['elapsed_s']:.0f} s")
    except KeyboardInterrupt:
        _log("interrupted; namespaces and processes removed")
        return 130
    _log(f"all scenarios: {time.monotonic() - started:.0f} s; results in {out_dir}")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
