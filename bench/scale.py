"""Many connections to one server: handshakes per second, server CPU share, RSS per connection.

``N`` clients (spread over processes of at most :data:`PER_PROCESS` connections) connect to one
server on 127.0.0.1, at most :data:`CONNECT_CONCURRENCY` handshakes in flight per process, then
each sends a :data:`MESSAGE`-byte message once a second (at a random phase, so the load is even).
The server (one process, one event loop) measures:

* handshakes/s: ``N`` over the time from its first accepted connection to its ``N``-th (if not all
  ``N`` connect within the budget, 120 s + 20 ms per connection, the figures are for those that
  did, and ``complete`` is false);
* RSS per connection: its resident memory with all ``N`` open, minus before the first, over ``N``;
* CPU share: its CPU seconds over wall seconds during a steady window of ``steady`` seconds that
  starts once all ``N`` are connected (1.0 is one core saturated), and that per connection;
* messages/s received in that window (``N`` expected: less means it fell behind).

Run through ``bench.suite`` or ``python -m bench.scale --peer rudp:fair --connections 1000``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import os
import queue
import random
import resource
import signal
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from bench import peers
from bench.loopback import BenchError, Child, _next_event
from bench.workloads import cpu_seconds, now
from tests.flood_scenario import udp_drops

__all__ = ["clients", "main", "raise_nofile", "scale_run", "server"]

PER_PROCESS = 1000
CONNECT_CONCURRENCY = 100
MESSAGE = 64
INTERVAL = 1.0
HOST = "127.0.0.1"
Emit = Callable[[dict[str, Any]], None]


def raise_nofile(wanted: int) -> int:
    """Raise RLIMIT_NOFILE towards ``wanted`` (as root, past the hard limit); the new soft one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = max(soft, wanted)
    for limits in ((target, max(hard, target)), (min(target, hard), hard)):
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, limits)
            break
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def server(job: dict[str, Any], emit: Emit) -> None:
    """The scale server: accept ``connections``, read messages, measure, report, exit."""
    total = int(job["connections"])
    steady = float(job["steady"])
    raise_nofile(total + 1000)
    spec = peers.parse_peer(job["peer"])
    loop = asyncio.get_running_loop()
    all_in = loop.create_future()
    accepted = 0
    messages = 0
    t_first: float | None = None
    t_all: float | None = None
    streams: list[peers.Stream] = []

    async def handler(stream: peers.Stream) -> None:
        nonlocal accepted, messages, t_first, t_all
        accepted += 1
        streams.append(stream)
        if t_first is None:
            t_first = now()
        if accepted == total:
            t_all = now()
            if not all_in.done():
                all_in.set_result(None)
        while True:
            data = await stream.read(4096)
            if not data:
                break
            messages += len(data) // MESSAGE

    gc.collect()
    rss0 = _rss_bytes()
    srv = await peers.start_server(spec, job["host"], 0, handler)
    try:
        emit({"event": "ready", "port": srv.port, "pid": os.getpid()})
        try:
            await asyncio.wait_for(asyncio.shield(all_in), float(job["connect_budget"]))
        except TimeoutError:
            pass  # measure what did connect, and say so
        if t_first is None:
            raise RuntimeError(f"no connection accepted within {job['connect_budget']} s")
        if t_all is None:
            t_all = now()
        await asyncio.sleep(1.0)  # let the last handshakes' ACKs and first messages settle
        gc.collect()
        rss1 = _rss_bytes()
        cpu0, t0, m0 = cpu_seconds(), now(), messages
        await asyncio.sleep(steady)
        cpu1, t1, m1 = cpu_seconds(), now(), messages
        handshake_s = t_all - t_first
        share = (cpu1 - cpu0) / (t1 - t0)
        emit(
            {
                "event": "result",
                "connections": total,
                "accepted": accepted,
                "complete": accepted >= total,
                "handshake_s": handshake_s,
                "handshakes_per_s": accepted / handshake_s if handshake_s > 0 else None,
                "rss_base_bytes": rss0,
                "rss_bytes": rss1,
                "rss_per_connection_bytes": (rss1 - rss0) / max(1, accepted),
                "steady_s": t1 - t0,
                "cpu_share": share,
                "cpu_us_per_connection_s": 1e6 * share / max(1, accepted),
                "messages_per_s": (m1 - m0) / (t1 - t0),
                "kernel_drops": udp_drops(srv.port),
                "server_stats": srv.stats() if hasattr(srv, "stats") else None,
            }
        )
    finally:
        await srv.close()


async def clients(job: dict[str, Any], emit: Emit) -> None:
    """``count`` connections that each send a message every second for ``seconds``."""
    count = int(job["count"])
    raise_nofile(count + 1000)
    spec = peers.parse_peer(job["peer"])
    host, port = job["host"], int(job["port"])
    seconds = float(job["seconds"])
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    payload = os.urandom(MESSAGE)
    rng = random.Random(os.getpid())
    stop_at = now() + seconds
    failures = 0

    async def one() -> peers.Stream | None:
        nonlocal failures
        async with gate:
            try:
                return await asyncio.wait_for(peers.connect(spec, host, port), 60.0)
            except (OSError, TimeoutError, ConnectionError, Exception):
                failures += 1
                return None

    opened = [s for s in await asyncio.gather(*(one() for _ in range(count))) if s is not None]
    emit({"event": "connected", "count": len(opened), "failures": failures})

    talk_failures = 0

    async def talk(stream: peers.Stream) -> None:
        """One connection's messages; a connection that fails is counted (the first one is
        reported) and the others go on."""
        nonlocal talk_failures
        await asyncio.sleep(rng.random() * INTERVAL)
        try:
            while now() < stop_at:
                stream.write(payload)
                await stream.drain()
                await asyncio.sleep(INTERVAL)
        except Exception as exc:
            talk_failures += 1
            if talk_failures == 1:
                emit({"event": "talk-error", "error": f"{type(exc).__name__}: {exc}"})

    await asyncio.gather(*(talk(s) for s in opened))
    for stream in opened:
        with contextlib.suppress(Exception):
            stream.write_eof()
    await asyncio.gather(*(s.close() for s in opened), return_exceptions=True)
    emit(
        {
            "event": "result",
            "count": len(opened),
            "failures": failures,
            "talk_failures": talk_failures,
        }
    )


def _argv(job: dict[str, Any]) -> list[str]:
    return [sys.executable, "-m", "bench.child", json.dumps(job)]


def scale_run(
    peer: str, connections: int, *, steady: float = 10.0, loop: str = "uvloop"
) -> dict[str, Any]:
    """One scale run on loopback; the server's figures plus the clients' connect failures."""
    raise_nofile(connections + 1000)
    events: queue.Queue[tuple[str, Any]] = queue.Queue()
    processes = max(1, math.ceil(connections / PER_PROCESS))
    budget = 120.0 + connections / 50  # seconds for every handshake to complete
    children: list[Child] = []
    try:
        server_job = {
            "role": "scale-server",
            "peer": peer,
            "loop": loop,
            "host": HOST,
            "connections": connections,
            "steady": steady,
            "connect_budget": budget,
            "timeout": budget + steady + 60,
        }
        children.append(Child("server", _argv(server_job), events))
        deadline = time.monotonic() + 30
        port = None
        while port is None:
            role, message = _next_event(events, deadline, "the scale server's port")
            if message.get("event") == "error":
                raise BenchError(message.get("message", "scale server failed"))
            if message.get("event") == "ready":
                port = int(message["port"])
        share, rest = divmod(connections, processes)
        for i in range(processes):
            job = {
                "role": "scale-clients",
                "peer": peer,
                "loop": loop,
                "host": HOST,
                "port": port,
                "count": share + (1 if i < rest else 0),
                "seconds": budget + steady + 5,
                "timeout": budget + steady + 90,
            }
            children.append(Child(f"clients{i}", _argv(job), events))
        failures = 0
        talk_errors: list[str] = []
        deadline = time.monotonic() + budget + steady + 30
        while True:
            role, message = _next_event(events, deadline, "the scale server's result")
            event = message.get("event")
            if event == "error":
                raise BenchError(f"{role}: {message.get('message')}")
            if event == "connected":
                failures += int(message.get("failures", 0))
            if event == "talk-error":  # a client's first connection to fail after connecting
                talk_errors.append(f"{role}: {message.get('error')}")
            if role == "server" and event == "result":
                result = dict(message)
                break
            if role == "server" and event == "exit":
                raise BenchError("the scale server exited without a result")
    finally:
        for child in children:
            child.kill()
    result.pop("event", None)
    result.update(
        {
            "peer": peer,
            "client_processes": processes,
            "connect_failures": failures,
            "talk_errors": talk_errors,
        }
    )
    return result


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__)
    parser.add_argument("--peer", action="append", default=None)
    parser.add_argument("--connections", type=int, action="append", default=None)
    parser.add_argument("--steady", type=float, default=10.0)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    names = args.peer or ["tcp:cubic", "rudp:fair"]
    for n in args.connections or [1000]:
        for peer in names:
            try:
                r = scale_run(peers.parse_peer(peer).name, n, steady=args.steady)
            except BenchError as exc:
                print(f"{peer} x{n}: FAILED: {exc}")
                continue
            except KeyboardInterrupt:
                return 130
            print(
                f"{peer} x{n}: {r['handshakes_per_s']:.0f} handshakes/s, "
                f"server CPU {100 * r['cpu_share']:.1f}% ({r['cpu_us_per_connection_s']:.1f} us/s "
                f"per conn), RSS {r['rss_per_connection_bytes'] / 1024:.1f} KiB/conn, "
                f"{r['messages_per_s']:.0f} msg/s, {r['connect_failures']} connect failures"
            )
            for error in r["talk_errors"]:
                print(f"  failed after connecting: {error}")
            if r.get("kernel_drops") is not None or r.get("server_stats"):
                print(f"  kernel drops {r.get('kernel_drops')}, server {r.get('server_stats')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
