"""Processes the hardening tests and benchmarks run beside the one under test.

``python -m tests.peer_process flood HOST PORT --duration S``
    Sends INITs to HOST:PORT as fast as one process can for S seconds, from a pool of UDP
    sockets bound to random addresses across 127.0.0.0/8 (Linux routes all of 127/8 to
    loopback) with random ports, each INIT with random ids. Every ``--rotate`` datagrams one
    socket is closed and a new one bound elsewhere, so the sources keep moving across the /8.
    ``--exclude`` keeps one /24 (the real clients') out. Prints a JSON summary.

``python -m tests.peer_process echo-clients HOST PORT --count N``
    Runs N rudp stream clients, ``--concurrency`` at a time and at most ``--rate`` new ones
    per second; each connects, sends ``--size`` seeded random bytes, half-closes and checks
    that the echo is byte-exact. Prints a JSON summary of handshakes and transfers.

``python -m tests.peer_process send HOST PORT``
    Connects and writes forever (a peer to kill mid-transfer); prints ``connected`` once the
    handshake is done. ``--local-port`` binds the client to a fixed port (a peer that
    restarts on the same address).

``python -m tests.peer_process sink PORT``
    A server that reads every connection to the end and never writes; prints its port.

``python -m tests.peer_process idle-clients HOST PORT --count N``
    Opens N connections from one endpoint (one socket) and keeps them open and idle, only
    answering what the server sends; prints ``connected N`` once all are established.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import sys
import time
from typing import Any

from rudp import Config, open_connection, start_server
from rudp.aio.loop import open_endpoint
from rudp.wire.packet import Init

__all__ = ["flood", "main"]


def _random_source(rng: random.Random, exclude: str | None) -> tuple[str, int]:
    while True:
        host = f"127.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        if exclude is None or host.rpartition(".")[0] != exclude:
            return host, rng.randrange(1024, 65536)


def _bound_socket(
    rng: random.Random, target: tuple[str, int], exclude: str | None
) -> tuple[socket.socket, str]:
    while True:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        host, port = _random_source(rng, exclude)
        try:
            sock.bind((host, port))
            sock.connect(target)
        except OSError:
            sock.close()  # port in use: try elsewhere
            continue
        return sock, host


def flood(
    host: str,
    port: int,
    *,
    duration: float,
    sockets: int = 256,
    rotate: int = 64,
    seed: int = 1,
    exclude: str | None = None,
) -> dict[str, Any]:
    """Send minimal (28-byte) INITs for ``duration`` seconds; return what was sent."""
    rng = random.Random(seed)
    target = (host, port)
    inits = [
        Init(rng.randrange(1, 2**32), rng.randrange(2**32), 1200, 7, 65535, 1).encode()
        for _ in range(4096)
    ]
    pool = [_bound_socket(rng, target, exclude) for _ in range(sockets)]
    prefixes = {h.rpartition(".")[0] for _, h in pool}
    sources = len(pool)
    sent = errors = 0
    start = time.monotonic()
    cpu = time.process_time()
    end = start + duration
    batch = min(rotate, 1024)  # datagrams between looks at the clock
    while time.monotonic() < end:
        for i in range(batch):
            sock = pool[(sent + i) % sockets][0]
            try:
                sock.send(inits[(sent + i) & 4095])
            except OSError:
                errors += 1
        sent += batch
        if sent % rotate < batch:
            slot = rng.randrange(sockets)
            pool[slot][0].close()
            pool[slot] = _bound_socket(rng, target, exclude)
            prefixes.add(pool[slot][1].rpartition(".")[0])
            sources += 1
    elapsed = time.monotonic() - start
    for sock, _ in pool:
        sock.close()
    return {
        "sent": sent - errors,
        "errors": errors,
        "seconds": elapsed,
        "rate": (sent - errors) / elapsed,
        "sources": sources,
        "prefixes": len(prefixes),
        "bytes": (sent - errors) * len(inits[0]),
        "cpu_seconds": time.process_time() - cpu,
    }


async def echo_clients(
    host: str,
    port: int,
    *,
    count: int,
    concurrency: int,
    rate: float,
    size: int,
    handshake_timeout: float,
    seed: int,
) -> dict[str, Any]:
    config = Config()
    gate = asyncio.Semaphore(concurrency)
    results: list[dict[str, Any]] = []

    async def one(index: int) -> None:
        data = random.Random(seed * 100_003 + index).randbytes(size)
        record: dict[str, Any] = {"index": index, "connected": False, "intact": False}
        async with gate:
            started = time.monotonic()
            try:
                reader, writer = await open_connection(
                    host, port, config=config, handshake_timeout=handshake_timeout
                )
            except Exception as exc:  # the summary reports every failure by type
                record["error"] = type(exc).__name__
                results.append(record)
                return
            record["connected"] = True
            record["handshake_s"] = time.monotonic() - started
            try:
                writer.write(data)
                writer.write_eof()
                echoed = await asyncio.wait_for(reader.read(), 60.0)
                record["intact"] = echoed == data
                record["transfer_s"] = time.monotonic() - started
                writer.close()
                await asyncio.wait_for(writer.wait_closed(), 10.0)
            except Exception as exc:
                record["error"] = type(exc).__name__
            results.append(record)

    tasks = []
    for i in range(count):
        tasks.append(asyncio.create_task(one(i)))
        await asyncio.sleep(1.0 / rate)  # pacing the arrivals, not waiting for a condition
    await asyncio.gather(*tasks)
    handshakes = [r["handshake_s"] for r in results if r["connected"]]
    errors: dict[str, int] = {}
    for r in results:
        if "error" in r:
            errors[r["error"]] = errors.get(r["error"], 0) + 1
    return {
        "attempted": count,
        "connected": len(handshakes),
        "intact": sum(r["intact"] for r in results),
        "errors": errors,
        "handshake_max_s": max(handshakes, default=None),
        "handshake_median_s": sorted(handshakes)[len(handshakes) // 2] if handshakes else None,
    }


async def send_forever(host: str, port: int, *, local_port: int | None, config: Config) -> None:
    local = ("127.0.0.1", local_port) if local_port is not None else None
    reader, writer = await open_connection(host, port, config=config, local_addr=local)
    print("connected", flush=True)
    chunk = bytes(range(256)) * 256
    while True:
        writer.write(chunk)
        await writer.drain()


async def sink(port: int, *, config: Config) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.read(65536):
                pass
        except ConnectionError:
            pass
        writer.close()

    server = await start_server(handle, "127.0.0.1", port, config=config)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


async def idle_clients(host: str, port: int, *, count: int) -> None:
    endpoint = await open_endpoint(Config(max_connections=count + 1), remote_addr=(host, port))
    waiters = []
    for i in range(count):
        _, waiter = endpoint.connect((host, port))
        waiters.append(waiter)
        if i % 500 == 499:
            await asyncio.gather(*waiters[-500:])  # a batch at a time: no burst of 10k INITs
    await asyncio.gather(*waiters)
    print("connected", count, flush=True)
    await asyncio.get_running_loop().create_future()  # hold them until killed


def _config(args: argparse.Namespace) -> Config:
    changes: dict[str, Any] = {}
    if getattr(args, "idle_timeout", None) is not None:
        changes["idle_timeout"] = args.idle_timeout
    if getattr(args, "keepalive", None) is not None:
        changes["keepalive_idle"] = changes["keepalive_interval"] = args.keepalive
    return Config(**changes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.peer_process")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("flood")
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--sockets", type=int, default=256)
    p.add_argument("--rotate", type=int, default=64)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--exclude", default=None)
    p = sub.add_parser("echo-clients")
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--rate", type=float, default=20.0)
    p.add_argument("--size", type=int, default=16384)
    p.add_argument("--handshake-timeout", type=float, default=60.0)
    p.add_argument("--seed", type=int, default=1)
    p = sub.add_parser("send")
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--local-port", type=int, default=None)
    p.add_argument("--idle-timeout", type=float, default=None)
    p.add_argument("--keepalive", type=float, default=None)
    p = sub.add_parser("sink")
    p.add_argument("port", type=int)
    p.add_argument("--idle-timeout", type=float, default=None)
    p.add_argument("--keepalive", type=float, default=None)
    p = sub.add_parser("idle-clients")
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--count", type=int, default=10_000)
    args = parser.parse_args(argv)
    if args.command == "idle-clients":
        asyncio.run(idle_clients(args.host, args.port, count=args.count))
    elif args.command == "flood":
        summary = flood(
            args.host,
            args.port,
            duration=args.duration,
            sockets=args.sockets,
            rotate=args.rotate,
            seed=args.seed,
            exclude=args.exclude,
        )
        print(json.dumps(summary), flush=True)
    elif args.command == "echo-clients":
        summary = asyncio.run(
            echo_clients(
                args.host,
                args.port,
                count=args.count,
                concurrency=args.concurrency,
                rate=args.rate,
                size=args.size,
                handshake_timeout=args.handshake_timeout,
                seed=args.seed,
            )
        )
        print(json.dumps(summary), flush=True)
    elif args.command == "send":
        asyncio.run(
            send_forever(args.host, args.port, local_port=args.local_port, config=_config(args))
        )
    else:
        asyncio.run(sink(args.port, config=_config(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
