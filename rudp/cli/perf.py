"""``rudp perf server|client``: goodput and RTT between two hosts, like iperf, on the streams
API.

One test per connection. The client sends a JSON line ``{"perf": 1, "mode": "up"|"down"|
"bidir", "bytes": N|null, "seconds": S|null}``. Then each side that sends in this mode writes
length-prefixed blocks (4-byte big-endian length, then that many bytes) until the byte count
or the duration is reached, and a zero length; a side that does not send writes the zero
length at once. When a side has both finished sending and read the peer's zero length, it
writes a JSON report line (what it received and its connection counters) and reads the
peer's. Goodput is always measured by the receiving side: bytes received over the time from
the test's start to the last byte.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import struct
import sys
import time
from dataclasses import dataclass
from typing import Any

from ..streams import open_connection, start_server
from .exits import EXIT_FAILURE, EXIT_OK, CliError
from .failures import CONNECTION_FAILURES, connecting, listening, lost, show_address
from .options import config_from, impairment_from
from .transfer import shut_down
from .units import format_bytes, format_duration, format_rate

__all__ = ["Plan", "run_perf_client", "run_perf_server"]

BLOCK = 64 * 1024
_LENGTH = struct.Struct("!I")
_PAYLOAD = os.urandom(BLOCK)
_HEADER_TIMEOUT = 10.0
_CLOSE_TIMEOUT = 10.0  # seconds a side waits for the close handshake
_DEFAULT_SECONDS = 10.0
MODES = ("up", "down", "bidir")


class PerfError(Exception):
    """The peer does not speak this protocol."""


_TEST_FAILURES: tuple[type[BaseException], ...] = (
    *CONNECTION_FAILURES,
    PerfError,
    asyncio.IncompleteReadError,
)


@dataclass(frozen=True, slots=True)
class Plan:
    """What the client asked for; ``up`` is client to server."""

    mode: str
    nbytes: int | None
    seconds: float | None

    def to_line(self) -> bytes:
        body = {"perf": 1, "mode": self.mode, "bytes": self.nbytes, "seconds": self.seconds}
        return json.dumps(body).encode() + b"\n"

    @classmethod
    def from_line(cls, line: bytes) -> Plan:
        try:
            body = json.loads(line)
        except ValueError:
            raise PerfError("not a perf client") from None
        if not isinstance(body, dict) or body.get("perf") != 1 or body.get("mode") not in MODES:
            raise PerfError("not a perf client")
        nbytes, seconds = body.get("bytes"), body.get("seconds")
        if not (nbytes is None or (isinstance(nbytes, int) and nbytes >= 0)):
            raise PerfError("bad byte count")
        if not (seconds is None or (isinstance(seconds, int | float) and seconds > 0)):
            raise PerfError("bad duration")
        if (nbytes is None) == (seconds is None):
            raise PerfError("give exactly one of bytes and seconds")
        return cls(body["mode"], nbytes, None if seconds is None else float(seconds))


class Meter:
    """Bytes moved in one direction since the test started, and when the last one moved."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.bytes = 0
        self.last = started

    def add(self, count: int) -> None:
        self.bytes += count
        self.last = time.monotonic()

    @property
    def seconds(self) -> float:
        return self.last - self.started


async def _send_blocks(writer: asyncio.StreamWriter, plan: Plan, meter: Meter) -> None:
    deadline = None if plan.seconds is None else meter.started + plan.seconds
    remaining = plan.nbytes
    while True:
        if deadline is not None and time.monotonic() >= deadline:
            break
        count = BLOCK if remaining is None else min(BLOCK, remaining)
        if count == 0:
            break
        writer.write(_LENGTH.pack(count))
        writer.write(_PAYLOAD[:count] if count < BLOCK else _PAYLOAD)
        await writer.drain()
        meter.add(count)
        if remaining is not None:
            remaining -= count
    writer.write(_LENGTH.pack(0))
    await writer.drain()


async def _recv_blocks(reader: asyncio.StreamReader, meter: Meter) -> None:
    while True:
        (count,) = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))
        if count == 0:
            return
        if count > BLOCK:
            raise PerfError(f"block of {count} bytes")
        await reader.readexactly(count)
        meter.add(count)


async def _report_every(interval: float, meters: dict[str, Meter], writer: Any) -> None:
    """iperf-style interval lines for the directions this side measures."""
    last = {name: 0 for name in meters}
    begin = time.monotonic()
    tick = 0
    while True:
        tick += 1
        await asyncio.sleep(begin + tick * interval - time.monotonic())
        stats = writer.transport.get_extra_info("stats") or {}
        for name, meter in meters.items():
            moved = meter.bytes - last[name]
            last[name] = meter.bytes
            print(
                f"[{(tick - 1) * interval:5.1f}-{tick * interval:5.1f} s] {name:5} "
                f"{format_bytes(moved):>10}  {format_rate(moved / interval)}  "
                f"RTT {format_duration(stats.get('srtt'))}  "
                f"retx {stats.get('segments_retransmitted', 0)}",
                flush=True,
            )


async def _exchange(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    plan: Plan,
    *,
    sending: bool,
    started: float,
    interval: float = 0.0,
    labels: dict[str, str] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run one side of a test; returns (our report, the peer's report). With ``interval``,
    print progress for ``labels``: ``{"sent": "up", "received": "down"}`` names the meters."""
    sent, received = Meter(started), Meter(started)
    idle = Plan(plan.mode, 0, None)
    ticker = None
    if interval > 0 and labels:
        meters = {"sent": sent, "received": received}
        shown = {label: meters[key] for key, label in labels.items()}
        ticker = asyncio.ensure_future(_report_every(interval, shown, writer))
    try:
        await asyncio.gather(
            _send_blocks(writer, plan if sending else idle, sent), _recv_blocks(reader, received)
        )
    finally:
        if ticker is not None:
            ticker.cancel()
    stats = writer.transport.get_extra_info("stats") or {}
    ours = {
        "sent_bytes": sent.bytes,
        "received_bytes": received.bytes,
        "received_seconds": received.seconds,
        "srtt": stats.get("srtt"),
        "segments_retransmitted": stats.get("segments_retransmitted", 0),
        "bytes_retransmitted": stats.get("bytes_retransmitted", 0),
    }
    writer.write(json.dumps(ours).encode() + b"\n")
    await writer.drain()
    line = await reader.readline()
    try:
        theirs = json.loads(line)
    except ValueError:
        raise PerfError("peer sent no report") from None
    if not isinstance(theirs, dict):
        raise PerfError("peer sent no report")
    return ours, theirs


def _direction(receiver: dict[str, Any], sender: dict[str, Any]) -> dict[str, Any]:
    seconds = float(receiver.get("received_seconds") or 0.0)
    nbytes = int(receiver.get("received_bytes") or 0)
    return {
        "bytes": nbytes,
        "seconds": round(seconds, 6),
        "goodput_bytes_per_second": round(nbytes / seconds, 1) if seconds > 0 else 0.0,
        "srtt": sender.get("srtt"),
        "segments_retransmitted": sender.get("segments_retransmitted", 0),
        "bytes_retransmitted": sender.get("bytes_retransmitted", 0),
    }


def _print_direction(name: str, result: dict[str, Any]) -> None:
    print(
        f"{name}: {format_bytes(result['bytes'])} in {format_duration(result['seconds'])}, "
        f"goodput {format_rate(result['goodput_bytes_per_second'])}, "
        f"RTT {format_duration(result['srtt'])}, "
        f"{result['segments_retransmitted']} segments retransmitted",
        flush=True,
    )


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    try:
        async with asyncio.timeout(_CLOSE_TIMEOUT):
            await writer.wait_closed()
    except CONNECTION_FAILURES:
        return


async def run_perf_client(args: argparse.Namespace) -> int:
    """``rudp perf client HOST:PORT [-t S | -n SIZE] [-R | --bidir]``."""
    host, port = args.address
    mode = "bidir" if args.bidir else "down" if args.reverse else "up"
    seconds = args.time if args.time is not None or args.bytes is not None else _DEFAULT_SECONDS
    if seconds is not None and seconds <= 0:
        raise CliError("--time must be > 0", 2)
    plan = Plan(mode, args.bytes, seconds)
    with connecting(host, port, timeout=args.connect_timeout, what="perf server"):
        reader, writer = await open_connection(
            host,
            port,
            config=config_from(args),
            impairment=impairment_from(args),
            handshake_timeout=args.connect_timeout,
        )
    labels = {}
    if mode != "down":
        labels["sent"] = "up"
    if mode != "up":
        labels["received"] = "down"
    try:
        writer.write(plan.to_line())
        started = time.monotonic()
        ours, theirs = await _exchange(
            reader,
            writer,
            plan,
            sending=mode != "down",
            started=started,
            interval=0.0 if args.json else args.interval,
            labels=labels,
        )
        # The server closes once it has our report: wait for its FIN before closing, so this
        # process is still there to acknowledge it (exiting first leaves the server
        # retransmitting its FIN into a closed port until its close gives up).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_CLOSE_TIMEOUT):
                await reader.read()
    except CONNECTION_FAILURES as exc:
        raise lost(exc, f"testing with {show_address(host, port)}") from exc
    except (PerfError, asyncio.IncompleteReadError) as exc:
        raise CliError(
            f"{show_address(host, port)} is not a rudp perf server", EXIT_FAILURE
        ) from exc
    finally:
        await _close(writer)
    results: dict[str, Any] = {"mode": mode}
    if mode != "down":
        results["up"] = _direction(theirs, ours)
    if mode != "up":
        results["down"] = _direction(ours, theirs)
    if args.json:
        print(json.dumps(results))
    else:
        for name in ("up", "down"):
            if name in results:
                _print_direction(name, results[name])
    return EXIT_OK


async def run_perf_server(args: argparse.Namespace) -> int:
    """``rudp perf server --listen HOST:PORT [--once]``."""
    host, port = args.listen
    first_done = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        who = show_address(str(peer[0]), int(peer[1]))
        try:
            async with asyncio.timeout(_HEADER_TIMEOUT):
                plan = Plan.from_line(await reader.readline())
            ours, theirs = await _exchange(
                reader, writer, plan, sending=plan.mode != "up", started=time.monotonic()
            )
            result: dict[str, Any] = {"event": "test", "peer": who, "mode": plan.mode}
            if plan.mode != "down":
                result["up"] = _direction(ours, theirs)
            if plan.mode != "up":
                result["down"] = _direction(theirs, ours)
            if args.json:
                print(json.dumps(result), flush=True)
            else:
                for name in ("up", "down"):
                    if name in result:
                        _print_direction(f"{who} {name}", result[name])
        except _TEST_FAILURES as exc:
            print(f"perf test from {who} failed: {exc or type(exc).__name__}", file=sys.stderr)
        finally:
            await _close(writer)
            first_done.set()

    with listening(host, port):
        server = await start_server(
            handler, host, port, config=config_from(args), impairment=impairment_from(args)
        )
    try:
        bound = server.sockets[0].getsockname()
        if args.json:
            print(
                json.dumps({"event": "listening", "host": bound[0], "port": bound[1]}), flush=True
            )
        else:
            print(
                f"perf server listening on {show_address(str(bound[0]), int(bound[1]))}", flush=True
            )
        await (first_done if args.once else asyncio.Event()).wait()
    except asyncio.CancelledError:
        server.abort_clients()
        raise
    finally:
        await shut_down(server)
    return EXIT_OK
