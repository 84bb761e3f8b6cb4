"""Messages per second and one-way latency of rudp messages against the same framing over TCP.

Both transports carry the same frames: a varint length prefix (``rudp.wire.framing``) before
each message. ``rudp`` is ``rudp.messages.connect`` / ``serve`` (``send_bytes`` /
``recv_bytes``); ``tcp`` is ``asyncio.open_connection`` / ``start_server`` writing
``encode_prefix(n) + payload`` and reading through a ``FrameDecoder``. The sender and the
receiver run in separate processes (started like ``bench/loopback.py``'s children).

For each message size, on one connection per run:

* flood: the sender sends ``--count`` messages (or for ``--seconds``) as fast as the
  transport's backpressure lets it, then an empty end marker. **msg/s** is the count over the
  time from just before the first send to the receiver taking the last message. The latency
  under flood is mostly time spent queued in the send buffers.
* idle: ``--pings`` messages one at a time, each sent only once the receiver's empty reply to
  the previous one came back: the latency of an otherwise idle connection.

Latency is one-way: each message starts with the sender's ``time.monotonic()``, and the
receiver subtracts it from its own ``time.monotonic()`` when ``recv_bytes`` returns it. Both
processes run on one host and share CLOCK_MONOTONIC, so no clock offset enters.

Run from the repository root::

    .venv/bin/python bench/messages.py                       # 3 runs, 64 B / 1 KiB / 64 KiB
    .venv/bin/python bench/messages.py --runs 5 --loop both --json
    .venv/bin/python bench/messages.py --sizes 64,4K --seconds 2 --pings 1000

Exit status 0 when every run delivered every message, 1 otherwise, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import queue
import signal
import statistics
import struct
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import rudp  # noqa: E402
from bench.loopback import (  # noqa: E402  # the same process plumbing as the bulk benchmark
    BenchError,
    Child,
    _loop_factory,
    _next_event,
    _size,
    _watch_parent,
)
from rudp.wire.framing import FrameDecoder, encode_prefix  # noqa: E402

HOST = "127.0.0.1"
TRANSPORTS = ("rudp", "tcp")
LOOPS = ("asyncio", "uvloop")
DEFAULT_SIZES = (64, 1024, 65536)
STAMP = struct.Struct("!d")  # the sender's time.monotonic() at the head of each message
MAX_MESSAGE = 16 * 1024 * 1024
STARTUP_TIMEOUT = 30.0
EXIT_TIMEOUT = 15.0

Emit = Callable[[dict[str, Any]], None]
Key = tuple[int, str, str]  # (message size, transport, loop)


def default_count(size: int) -> int:
    """Enough flood for about a second of rudp per size on loopback: fewer of the big ones."""
    return 100_000 if size <= 1024 else max(1000, 128 * 1024 * 1024 // size)


# --- the two transports behind one interface ----------------------------------------------------


class Channel(Protocol):
    async def send_bytes(self, data: bytes) -> None: ...
    async def recv_bytes(self) -> bytes: ...
    async def close(self) -> None: ...


class TcpChannel:
    """``MessageConnection``'s send/recv over asyncio TCP with the same varint framing."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._decoder = FrameDecoder(MAX_MESSAGE)
        self._inbox: deque[bytes] = deque()

    async def send_bytes(self, data: bytes) -> None:
        # As rudp.messages does: join small messages with their prefix, write big ones apart.
        if len(data) <= 4096:
            self._writer.write(encode_prefix(len(data)) + data)
        else:
            self._writer.write(encode_prefix(len(data)))
            self._writer.write(data)
        await self._writer.drain()

    async def recv_bytes(self) -> bytes:
        while not self._inbox:
            data = await self._reader.read(1 << 16)
            if not data:
                raise BenchError("TCP peer closed the connection")
            self._inbox.extend(self._decoder.feed(data))
            if self._decoder.error is not None:
                raise BenchError(f"bad framing: {self._decoder.error}")
        return self._inbox.popleft()

    async def close(self) -> None:
        self._writer.close()
        await self._writer.wait_closed()


# --- children ------------------------------------------------------------------------------------


def _percentiles(values: list[float]) -> dict[str, float]:
    values.sort()
    return {
        "p50": values[len(values) // 2],
        "p99": values[min(len(values) - 1, len(values) * 99 // 100)],
    }


async def _receive(ch: Channel, sizes: Sequence[int]) -> dict[str, Any]:
    """Per size: take the flood, ack its end marker, then echo every ping until its marker."""
    results: dict[str, Any] = {}
    for size in sizes:
        flood: list[float] = []
        t_last = 0.0
        while message := await ch.recv_bytes():
            t_last = time.monotonic()
            if len(message) != size:
                raise BenchError(f"got {len(message)} B, expected {size}")
            flood.append(t_last - STAMP.unpack_from(message)[0])
        await ch.send_bytes(b"")
        idle: list[float] = []
        while message := await ch.recv_bytes():
            idle.append(time.monotonic() - STAMP.unpack_from(message)[0])
            await ch.send_bytes(b"")
        results[str(size)] = {
            "received": len(flood),
            "t_last": t_last,
            "flood": _percentiles(flood),
            "idle": _percentiles(idle) if idle else None,
        }
    return results


async def _send(ch: Channel, args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for size in args.sizes:
        filler = bytes(size - STAMP.size)
        count = args.count or default_count(size)
        t_first = time.monotonic()
        sent = 0
        while sent < count if not args.seconds else time.monotonic() - t_first < args.seconds:
            await ch.send_bytes(STAMP.pack(time.monotonic()) + filler)
            sent += 1
        await ch.send_bytes(b"")
        await ch.recv_bytes()  # the receiver took the whole flood
        for _ in range(args.pings):
            await ch.send_bytes(STAMP.pack(time.monotonic()) + filler)
            await ch.recv_bytes()
        await ch.send_bytes(b"")
        results[str(size)] = {"sent": sent, "t_first": t_first}
    return results


async def _receiver(args: argparse.Namespace, emit: Emit) -> None:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[dict[str, Any]] = loop.create_future()

    async def serve_one(ch: Channel) -> None:
        try:
            done.set_result(await _receive(ch, args.sizes))
        except Exception as exc:
            done.set_exception(exc)

    server: asyncio.AbstractServer | rudp.Server
    if args.transport == "tcp":

        async def on_tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            channel = TcpChannel(reader, writer)
            await serve_one(channel)
            await channel.close()

        server = await asyncio.start_server(on_tcp, HOST, 0)
    else:
        server = await rudp.messages.serve(serve_one, HOST, 0, max_message_size=MAX_MESSAGE)
    emit({"event": "ready", "port": server.sockets[0].getsockname()[1]})
    emit({"event": "result", "sizes": await done})
    server.close()


async def _sender(args: argparse.Namespace, emit: Emit) -> None:
    ch: Channel
    if args.transport == "tcp":
        ch = TcpChannel(*await asyncio.open_connection(HOST, args.port))
    else:
        ch = await rudp.messages.connect(HOST, args.port, max_message_size=MAX_MESSAGE)
    emit({"event": "result", "sizes": await _send(ch, args)})
    await ch.close()


def child_main(args: argparse.Namespace) -> int:
    channel = os.fdopen(os.dup(1), "w", buffering=1)  # fd 1 is the JSON channel only
    os.dup2(2, 1)
    threading.Thread(target=_watch_parent, args=(sys.stdin,), daemon=True).start()

    def emit(message: dict[str, Any]) -> None:
        channel.write(json.dumps(message) + "\n")

    role = _receiver if args.child == "receiver" else _sender
    try:
        with asyncio.Runner(loop_factory=_loop_factory(args.loop)) as runner:
            runner.run(asyncio.wait_for(role(args, emit), args.timeout))
    except Exception as exc:
        emit({"event": "error", "message": f"{args.child}: {exc!r}", "tb": traceback.format_exc()})
        return 1
    return 0


# --- parent --------------------------------------------------------------------------------------


def _argv(args: argparse.Namespace, transport: str, loop: str, role: str) -> list[str]:
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", role]
    argv += ["--transport", transport, "--loop", loop, "--timeout", str(args.timeout)]
    argv += ["--sizes", ",".join(map(str, args.sizes)), "--pings", str(args.pings)]
    argv += ["--count", str(args.count or 0), "--seconds", str(args.seconds or 0)]
    return argv


def run_once(args: argparse.Namespace, transport: str, loop: str) -> dict[str, dict[str, Any]]:
    """One connection in two fresh processes; returns the figures per size."""
    events: queue.Queue[tuple[str, Any]] = queue.Queue()
    children: dict[str, Child] = {}
    results: dict[str, Any] = {}
    try:
        children["receiver"] = Child("receiver", _argv(args, transport, loop, "receiver"), events)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while "port" not in results:
            _, message = _next_event(events, deadline, "the receiver's port")
            _check(message)
            results["port"] = message["port"]
        argv = _argv(args, transport, loop, "sender") + ["--port", str(results["port"])]
        children["sender"] = Child("sender", argv, events)
        deadline = time.monotonic() + args.timeout + STARTUP_TIMEOUT
        while len(results) < 3:
            role, message = _next_event(events, deadline, "the run to finish")
            if role not in results:
                _check(message)
                results[role] = message["sizes"]
        for child in children.values():
            child.wait_exit(EXIT_TIMEOUT)
    finally:
        for child in children.values():
            child.kill()
    out: dict[str, dict[str, Any]] = {}
    for size in args.sizes:
        tx, rx = results["sender"][str(size)], results["receiver"][str(size)]
        if tx["sent"] != rx["received"]:
            raise BenchError(f"{size} B: sent {tx['sent']}, received {rx['received']}")
        wall = rx["t_last"] - tx["t_first"]
        out[str(size)] = {
            "messages": tx["sent"],
            "wall_s": wall,
            "msg_s": tx["sent"] / wall,
            "mb_s": tx["sent"] * size / wall / 1e6,
            "flood_p50_ms": rx["flood"]["p50"] * 1e3,
            "flood_p99_ms": rx["flood"]["p99"] * 1e3,
            "idle_p50_us": rx["idle"]["p50"] * 1e6 if rx["idle"] else None,
            "idle_p99_us": rx["idle"]["p99"] * 1e6 if rx["idle"] else None,
        }
    return out


def _check(message: dict[str, Any]) -> None:
    if message.get("event") == "error":
        raise BenchError(f"{message['message']}\n{message.get('tb', '')}".rstrip())
    if message.get("event") in ("exit", "garbage"):
        raise BenchError(f"a child ended or printed garbage: {message}")


FIELDS = ("msg_s", "mb_s", "flood_p50_ms", "flood_p99_ms", "idle_p50_us", "idle_p99_us")


def summarize(runs: list[dict[str, Any]]) -> dict[str, float | None]:
    """Medians over the runs of one (transport, loop, size)."""
    out: dict[str, float | None] = {}
    for name in FIELDS:
        values = [run[name] for run in runs if run[name] is not None]
        out[name] = statistics.median(values) if values else None
    return out


def print_table(args: argparse.Namespace, table: dict[Key, dict[str, float | None]]) -> None:
    print(
        f"Messages over loopback {HOST}: {args.runs} run(s), medians; flood = "
        f"{'--seconds ' + str(args.seconds) if args.seconds else 'count per size'}, "
        f"idle = {args.pings} pings one at a time; Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs\nlatency is one-way: receiver's time.monotonic() minus the "
        "sender's stamp in the message (one host, shared CLOCK_MONOTONIC)"
    )
    print(
        f"{'size':>6} {'transport':<9} {'loop':<8} {'msg/s':>9} {'MB/s':>7} "
        f"{'flood p50 ms':>12} {'flood p99 ms':>12} {'idle p50 us':>11} {'idle p99 us':>11}"
    )

    def cell(value: float | None, spec: str, width: int) -> str:
        return f"{'-':>{width}}" if value is None else f"{value:{width}{spec}}"

    for (size, transport, loop), s in sorted(table.items()):
        print(
            f"{size:>6} {transport:<9} {loop:<8} {cell(s['msg_s'], '.0f', 9)} "
            f"{cell(s['mb_s'], '.1f', 7)} {cell(s['flood_p50_ms'], '.2f', 12)} "
            f"{cell(s['flood_p99_ms'], '.2f', 12)} {cell(s['idle_p50_us'], '.0f', 11)} "
            f"{cell(s['idle_p99_us'], '.0f', 11)}"
        )

    def ratio(a: float | None, b: float | None) -> str:
        return f"{a / b:.2f}x" if a is not None and b else "-"

    print("rudp/TCP (medians): msg/s ratio, idle p50 latency ratio")
    for (size, transport, loop), s in sorted(table.items()):
        tcp = table.get((size, "tcp", loop))
        if transport == "rudp" and tcp is not None:
            print(
                f"  {size:>6} B {loop:<8} msg/s {ratio(s['msg_s'], tcp['msg_s'])}  "
                f"latency {ratio(s['idle_p50_us'], tcp['idle_p50_us'])}"
            )


def _sizes(text: str) -> list[int]:
    sizes = [_size(item) for item in text.split(",")]
    if any(size < STAMP.size for size in sizes):
        raise argparse.ArgumentTypeError(f"sizes must be >= {STAMP.size} B (the time stamp)")
    return sizes


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3, help="runs per case (3)")
    parser.add_argument("--sizes", type=_sizes, default=list(DEFAULT_SIZES), help="64,1K,64K")
    parser.add_argument(
        "--count",
        type=int,
        default=0,
        help="flood messages per size (default: 100000 up to 1 KiB, 128 MiB worth above)",
    )
    parser.add_argument("--seconds", type=float, default=0, help="flood for this long instead")
    parser.add_argument("--pings", type=int, default=300, help="idle-latency messages (300)")
    parser.add_argument("--loop", choices=(*LOOPS, "both"), default="asyncio")
    parser.add_argument("--transports", default="rudp,tcp", help="rudp,tcp")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per run (120)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    parser.add_argument("--child", choices=("sender", "receiver"), help=argparse.SUPPRESS)
    parser.add_argument("--transport", choices=TRANSPORTS, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.runs < 1 or args.pings < 0 or args.count < 0 or args.seconds < 0:
        parser.error("--runs must be > 0; --pings, --count and --seconds >= 0")
    args.transports = [t for t in args.transports.split(",") if t]
    if not set(args.transports) <= set(TRANSPORTS):
        parser.error(f"--transports: choose from {', '.join(TRANSPORTS)}")
    return args


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child is not None:
        return child_main(args)
    signal.signal(signal.SIGTERM, _interrupt)
    loops = list(LOOPS) if args.loop == "both" else [args.loop]
    runs: dict[Key, list[dict[str, Any]]] = {}
    status = 0
    try:
        for run in range(1, args.runs + 1):  # interleaved, so a noisy moment hits every case
            for loop in loops:
                for transport in args.transports:
                    label = f"{transport}/{loop} run {run}/{args.runs}"
                    try:
                        result = run_once(args, transport, loop)
                    except BenchError as exc:
                        print(f"{label}: FAILED: {exc}", file=sys.stderr, flush=True)
                        status = 1
                        continue
                    for size, figures in result.items():
                        runs.setdefault((int(size), transport, loop), []).append(figures)
                    brief = ", ".join(f"{s} B {r['msg_s']:.0f} msg/s" for s, r in result.items())
                    print(f"{label}: {brief}", file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        print("interrupted; children killed", file=sys.stderr)
        return 130
    table = {key: summarize(values) for key, values in runs.items()}
    if args.json:
        report = [
            {
                "size": size,
                "transport": t,
                "loop": loop,
                "median": table[(size, t, loop)],
                "runs": r,
            }
            for (size, t, loop), r in sorted(runs.items())
        ]
        json.dump({"params": {**vars(args)}, "cases": report}, sys.stdout, indent=2, default=str)
        print()
    else:
        print_table(args, table)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
