"""INIT floods against a rudp server: INITs absorbed per second, CPU per INIT, kernel drops,
the reply limiter, memory, and what the flood does to real clients.

Each scenario starts a rudp echo server in this process, a flooding process
(``tests/peer_process.py flood``: a pool of UDP sockets bound to random 127.x.y.z addresses
and ports, sending 28-byte INITs with random ids as fast as one process can) and, unless
``--clients 0``, a process of real echo clients (16 KiB each, 20 new ones per second).
The scenarios differ in how the flood's sources are spread:

* ``spread``: 256 sockets, one moved to a new random address every 64 datagrams (tens of
  thousands of sources over the run): each prefix sees too few INITs to reach the reply
  limit, so every INIT costs a full COOKIE. This is the flood of tests/test_flood.py.
* ``concentrated``: 16 sockets that never move: 16 prefixes, each far beyond the limit, so
  almost every INIT is dropped by the limiter before it is decoded.

Run from the repository root::

    .venv/bin/python bench/flood.py                    # both scenarios, 10 s each
    .venv/bin/python bench/flood.py --seconds 5 --scenario spread --clients 0 --json

**CPU per INIT** is this process's CPU time during the flood over the INITs it processed
(with clients, it also pays for serving them). **Absorbed** is INITs processed per second;
what the flooder sent beyond that was dropped by the kernel at the server's socket
(``kernel drops``, from /proc/net/udp). On a shared 2-core machine the flooder, the server
and the clients compete for CPU, so absolute rates vary from run to run; CPU per INIT varies
much less. Linux only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from rudp import Config  # noqa: E402
from tests.flood_scenario import run_flood  # noqa: E402

SCENARIOS: dict[str, tuple[str, ...]] = {
    "spread": ("--sockets", "256", "--rotate", "64"),
    "concentrated": ("--sockets", "16", "--rotate", "100000000"),
}
COLUMNS = (
    ("scenario", "scenario"),
    ("flood_sent_per_s", "sent/s"),
    ("inits_absorbed_per_s", "absorbed/s"),
    ("kernel_drops", "kernel drops"),
    ("rate_limited", "rate-limited"),
    ("cpu_us_per_init", "CPU us/INIT"),
    ("server_cpu_share", "server CPU"),
    ("amplification", "out/in bytes"),
    ("max_connections", "max conns"),
    ("handshakes", "handshakes"),
    ("handshake_max_s", "slowest handshake s"),
)


def _table(rows: list[dict[str, Any]]) -> str:
    cells = [[title for _, title in COLUMNS]]
    for row in rows:
        cells.append([_fmt(row.get(key, "")) for key, _ in COLUMNS])
    widths = [max(len(r[i]) for r in cells) for i in range(len(COLUMNS))]
    lines = [" | ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if value < 10 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


async def _run(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    names = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    for name in names:
        result = await run_flood(
            Config(),
            seconds=args.seconds,
            clients=args.clients,
            flood_args=SCENARIOS[name],
        )
        row = {"scenario": name, **result.summary()}
        blocks = [s["blocks"] for s in result.samples]
        row["blocks_min_max"] = [min(blocks), max(blocks)] if blocks else None
        row["limiter_prefixes_max"] = max((s["prefixes"] for s in result.samples), default=0)
        rows.append(row)
        if not args.json:
            print(f"{name}: {json.dumps(row)}", file=sys.stderr)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="flood duration per run")
    parser.add_argument("--clients", type=int, default=200, help="real clients per run (0: none)")
    parser.add_argument("--scenario", choices=[*SCENARIOS, "all"], default="all")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args(argv)
    if sys.platform != "linux":
        print("bench/flood.py needs Linux (127.0.0.0/8 on loopback)", file=sys.stderr)
        return 2
    rows = asyncio.run(_run(args))
    print(json.dumps(rows, indent=2) if args.json else _table(rows))
    failed = [r for r in rows if "handshakes" in r and r["intact"] != args.clients]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
