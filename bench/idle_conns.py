"""10,000 idle rudp connections on one server with keepalive: the memory each costs and the
CPU share they take.

The server (a ``rudp.start_server`` whose handler waits on ``reader.read()``, as a real idle
server does: one task, one StreamReader/StreamWriter and one RudpTransport per connection)
runs in this process; one client process (``tests/peer_process.py idle-clients``) opens the
connections from a single UDP socket and then only answers. The server sends a keepalive
PING on each connection after ``--keepalive`` idle seconds, and every ``--keepalive`` seconds
while the client answers: N / keepalive PINGs and as many ACKs per second.

Reported: **bytes per connection**, the growth of this process's RSS and of Python's traced
memory (``tracemalloc``, with ``--tracemalloc``: slower handshakes) from before the first
connection to after the last, divided by N; and the **CPU share**, this process's CPU time
over ``--window`` seconds of wall time once every connection is idle (1.0 = one core busy).

Run from the repository root::

    .venv/bin/python bench/idle_conns.py                          # 10,000, keepalive 10 s
    .venv/bin/python bench/idle_conns.py --count 2000 --keepalive 5 --window 20 --json
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from rudp import Config, start_server  # noqa: E402

HOST = "127.0.0.1"


def _rss() -> int:
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * 4096


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.read()
        except ConnectionError:
            pass
        writer.close()

    config = Config(
        keepalive_idle=args.keepalive,
        keepalive_interval=args.keepalive,
        stateless_reply_rate=None,  # 10,000 handshakes from one /24 in a few seconds
        max_connections=args.count + 16,
    )
    server = await start_server(hold, HOST, 0, config=config)
    port = server.sockets[0].getsockname()[1]
    endpoint = server._endpoints[0].endpoint
    gc.collect()
    if args.tracemalloc:
        tracemalloc.start()
    traced0 = tracemalloc.get_traced_memory()[0] if args.tracemalloc else 0
    rss0 = _rss()
    clients = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.peer_process",
        "idle-clients",
        HOST,
        str(port),
        "--count",
        str(args.count),
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    try:
        assert clients.stdout is not None
        started = time.monotonic()
        line = await asyncio.wait_for(clients.stdout.readline(), 600.0)
        setup = time.monotonic() - started
        if not line.startswith(b"connected"):
            raise RuntimeError(f"clients failed: {line!r}")
        for _ in range(300):  # the server has a connection once the echo arrives: wait for all
            if len(endpoint.connections) >= args.count:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # let the last handlers' tasks start
        gc.collect()
        established = len(endpoint.connections)
        rss1 = _rss()
        traced1 = tracemalloc.get_traced_memory()[0] if args.tracemalloc else 0
        if args.tracemalloc:
            tracemalloc.stop()  # tracing would inflate the CPU figure
        pings0 = sum(c.stats.keepalives_sent for c in endpoint.connections.values())
        cpu0, wall0 = time.process_time(), time.monotonic()
        await asyncio.sleep(args.window)  # the measurement window itself
        cpu = time.process_time() - cpu0
        wall = time.monotonic() - wall0
        conns = list(endpoint.connections.values())
        pings = sum(c.stats.keepalives_sent for c in conns) - pings0
        alive = sum(1 for c in conns if not c.is_terminated)
    finally:
        if clients.returncode is None:
            clients.kill()
            await clients.wait()
        server.abort_clients()
        server.close()
        await asyncio.wait_for(server.wait_closed(), 60.0)
    result: dict[str, Any] = {
        "connections": established,
        "alive_after_window": alive,
        "keepalive_s": args.keepalive,
        "setup_s": round(setup, 1),
        "rss_bytes_per_connection": round((rss1 - rss0) / max(1, established)),
        "window_s": round(wall, 1),
        "cpu_share": round(cpu / wall, 4),
        "pings_per_s": round(pings / wall),
        "cpu_us_per_ping_exchange": round(cpu / max(1, pings) * 1e6, 1),
    }
    if args.tracemalloc:
        result["traced_bytes_per_connection"] = round((traced1 - traced0) / max(1, established))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--keepalive", type=float, default=10.0, help="keepalive_idle, s")
    parser.add_argument("--window", type=float, default=30.0, help="CPU measurement, s")
    parser.add_argument("--tracemalloc", action="store_true", help="also trace Python memory")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = asyncio.run(_run(args))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key:>28}: {value}")
    return 0 if result["alive_after_window"] == result["connections"] == args.count else 1


if __name__ == "__main__":
    sys.exit(main())
