"""One benchmark case from the command line: peers over an emulated WAN link (or veth, loopback).

Compare rudp's profiles with kernel CUBIC and BBR on a path you choose::

    python -m bench.wan --peer rudp:throughput --peer tcp:cubic --peer tcp:bbr \\
        --rtt 20ms --loss 2 --runs 3
    python -m bench.wan --peer rudp:fair --rtt 100ms --loss 1 --burst 0.01,0.3 --jitter 2ms
    python -m bench.wan --share rudp:fair,tcp:cubic --rtt 20ms --seconds 20   # two flows, one link
    python -m bench.wan --rr --peer rudp:latency --peer tcp:cubic --rtt 20ms --loss 5
    python -m bench.wan --link veth --loss 1 --peer rudp:throughput --peer tcp:bbr
    python -m bench.wan --peer rudp:throughput --rtt 20ms --loss 2 --runs 1 --profile /tmp/prof

Prints each peer's settings, then per peer: goodput median and min-max over the runs, the ratio
to kernel CUBIC and BBR when they ran, CPU seconds per side, bytes the sender retransmitted per
byte the link dropped in the data direction (1.0 is ideal: every lost byte sent once more), and
the packets the bottleneck queue dropped (the congestion the sender caused itself). A run the
forwarder may have limited (CPU, late packets, kernel drops before it read them) is marked.
``--json FILE`` keeps every run. Needs root (network namespaces); exit status 2 when the link
cannot be built here (the reason is printed), 1 when a run failed, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import peers
from bench.cases import bulk_cases, format_bulk_table, format_rr_table, rr_cases
from bench.loopback import _size
from bench.runner import LabUnavailable, LinkSession, LinkSpec, share_run

__all__ = ["main", "parse_duration_ms", "parse_rate_mbit"]


def parse_duration_ms(text: str) -> float:
    """``20ms``, ``0.1s``, ``20`` (ms) -> milliseconds."""
    text = text.strip().lower()
    try:
        if text.endswith("ms"):
            return float(text[:-2])
        if text.endswith("s"):
            return float(text[:-1]) * 1000
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r}") from None


def parse_rate_mbit(text: str) -> float:
    """``100mbit``, ``1gbit``, ``500kbit``, ``100`` (Mbit/s) -> Mbit/s."""
    text = text.strip().lower().removesuffix("/s").removesuffix("ps")
    scale = {"kbit": 1e-3, "mbit": 1.0, "gbit": 1e3}
    for suffix, factor in scale.items():
        if text.endswith(suffix):
            text, mult = text[: -len(suffix)], factor
            break
    else:
        mult = 1.0
    try:
        return float(text) * mult
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a rate: {text!r}") from None


def _burst(text: str) -> tuple[float, float]:
    try:
        a, b = (float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError("--burst takes P_GOOD_TO_BAD,P_BAD_TO_GOOD") from None
    return a, b


def _peer(text: str) -> str:
    try:
        return peers.parse_peer(text).name
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.wan",
        description="Peers over one emulated link: goodput, CPU, retransmissions, queue drops.",
    )
    p.add_argument(
        "--peer", action="append", type=_peer, help=f"repeatable; {', '.join(peers.ALL_PEERS)}"
    )
    p.add_argument("--link", choices=("wan", "veth", "loopback"), default="wan")
    p.add_argument("--rtt", type=parse_duration_ms, default=20.0, help="round trip (20ms)")
    p.add_argument("--loss", type=float, default=0.0, help="random loss %% each way (0)")
    p.add_argument(
        "--rate",
        type=parse_rate_mbit,
        default=None,
        help="bottleneck: the forwarder's (wan, 100mbit) or tbf on the veth pair (veth, none)",
    )
    p.add_argument("--jitter", type=parse_duration_ms, default=0.0, help="+/- jitter (0)")
    p.add_argument("--reorder", type=float, default=0.0, help="%% of packets held 2 ms (0)")
    p.add_argument("--burst", type=_burst, default=None, help="Gilbert-Elliott P_GB,P_BG")
    p.add_argument("--queue", type=_size, default=None, help="queue limit bytes (1 BDP)")
    p.add_argument("--bytes", type=_size, default=64 << 20, help="bytes per transfer (64M)")
    p.add_argument("--max-seconds", type=float, default=30.0, help="time cap per transfer (30)")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--rr", action="store_true", help="request/response latency instead of bulk")
    p.add_argument("--rounds", type=int, default=2000, help="request/response rounds (2000)")
    p.add_argument("--size", type=_size, default=1024, help="request and reply bytes (1K)")
    p.add_argument("--share", type=str, default=None, help="PEER,PEER: flows sharing the link")
    p.add_argument("--seconds", type=float, default=20.0, help="--share duration (20)")
    p.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    p.add_argument("--profile", default=None, help="cProfile both children into this directory")
    p.add_argument("--json", default=None, help="write every run to this file")
    args = p.parse_args(argv)
    if not args.peer and not args.share:
        args.peer = ["rudp:throughput", "tcp:cubic", "tcp:bbr"]
    return args


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def link_spec(args: argparse.Namespace) -> LinkSpec:
    if args.link == "loopback":
        return LinkSpec("loopback")
    if args.link == "veth":
        return LinkSpec("veth", loss_pct=args.loss, rate_mbit=args.rate, queue_bytes=args.queue)
    return LinkSpec(
        "wan",
        loss_pct=args.loss,
        rtt_ms=args.rtt,
        rate_mbit=100.0 if args.rate is None else args.rate,
        jitter_ms=args.jitter,
        reorder_pct=args.reorder,
        burst=args.burst,
        queue_bytes=args.queue,
    )


def print_settings(names: Sequence[str]) -> None:
    print("settings:")
    for name in names:
        print(f"  {name}: {json.dumps(peers.settings(peers.parse_peer(name)), default=str)}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    spec = link_spec(args)
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"link": spec.as_dict()}
    status = 0
    try:
        with LinkSession(spec.kind) as session:
            if args.share:
                names = [_peer(x) for x in args.share.split(",")]
                print_settings(names)
                session.use(spec)
                shares = []
                for i in range(args.runs):
                    result = share_run(session, names, args.seconds, loop=args.loop)
                    shares.append(result)
                    parts = ", ".join(
                        f"{f['peer']} {f['goodput_mb_s']:.2f} MB/s ({100 * f['share']:.0f}%)"
                        for f in result["flows"]
                    )
                    print(f"{spec.name} share run {i + 1}/{args.runs}: {parts}", flush=True)
                report["share"] = shares
            elif args.rr:
                print_settings(args.peer)
                cases = rr_cases(
                    session,
                    spec,
                    args.peer,
                    runs=args.runs,
                    rounds=args.rounds,
                    size=args.size,
                    loop=args.loop,
                )
                print(f"\n{spec.name}: {args.rounds} rounds of {args.size} B each way")
                print(format_rr_table(cases))
                report["rr"] = cases
                status = 1 if any(c["failures"] for c in cases.values()) else 0
            else:
                print_settings(args.peer)
                cases = bulk_cases(
                    session,
                    spec,
                    args.peer,
                    runs=args.runs,
                    total=args.bytes,
                    max_seconds=args.max_seconds,
                    loop=args.loop,
                    profile_dir=args.profile,
                )
                print(
                    f"\n{spec.name}: {args.bytes / 2**20:g} MiB per run "
                    f"(time cap {args.max_seconds:g} s), {args.runs} runs"
                )
                print(format_bulk_table(cases))
                report["bulk"] = cases
                status = 1 if any(c["failures"] for c in cases.values()) else 0
    except LabUnavailable as exc:
        print(f"cannot build the {spec.kind} link here: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; namespaces and processes removed", file=sys.stderr)
        return 130
    if args.profile:
        from bench.profiles import print_profiles

        print_profiles(args.profile)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=str))
    return status


if __name__ == "__main__":
    raise SystemExit(main())
