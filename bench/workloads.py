"""What the benchmark children do over a ``bench.peers.Stream``: bulk and request/response.

Both sides of a case are separate processes (``bench.child``); these coroutines are the part
each side measures. Times are CLOCK_MONOTONIC, shared by every process and namespace of the host,
so one side's start and the other's end can be subtracted.
"""

from __future__ import annotations

import asyncio
import math
import os
import resource
import time
import zlib
from typing import Any

from bench.peers import Stream

__all__ = [
    "CHUNK",
    "bulk_receive",
    "bulk_send",
    "cpu_seconds",
    "now",
    "percentiles",
    "rr_client",
    "rr_server",
]

CHUNK = 1 << 16  # bytes per write
CHUNK_POOL = 16  # distinct random chunks the sender cycles through
READ_SIZE = 1 << 16


def now() -> float:
    return time.clock_gettime(time.CLOCK_MONOTONIC)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def bulk_send(stream: Stream, total: int, max_seconds: float) -> dict[str, Any]:
    """Write ``total`` bytes, or as many as fit in ``max_seconds``; then EOF and wait for the
    receiver's EOF (it closes once it has read ours)."""
    pool = [os.urandom(CHUNK) for _ in range(CHUNK_POOL)]
    cpu0 = cpu_seconds()
    t_first = now()
    stop_at = t_first + max_seconds
    sent = 0
    crc = 0
    index = 0
    capped = False
    while sent < total:
        if now() >= stop_at:
            capped = True
            break
        chunk = pool[index % CHUNK_POOL]
        if total - sent < CHUNK:
            chunk = chunk[: total - sent]
        stream.write(chunk)
        crc = zlib.crc32(chunk, crc)
        sent += len(chunk)
        index += 1
        await stream.drain()
    stream.write_eof()
    await stream.drain()
    t_written = now()
    tail = await stream.read(READ_SIZE)
    if tail:  # the receiver sends nothing
        raise RuntimeError(f"the receiver sent {len(tail)} unexpected bytes")
    t_closed = now()
    return {
        "bytes": sent,
        "crc32": crc,
        "capped": capped,
        "t_first_write": t_first,
        "t_written": t_written,
        "t_peer_closed": t_closed,
        "cpu_s": cpu_seconds() - cpu0,
        "stats": stream.stats(),
    }


async def bulk_receive(stream: Stream) -> dict[str, Any]:
    """Read until EOF, counting bytes and their CRC-32."""
    cpu0 = cpu_seconds()
    t_accept = now()
    t_first: float | None = None
    count = 0
    crc = 0
    while True:
        data = await stream.read(READ_SIZE)
        if not data:
            break
        if t_first is None:
            t_first = now()
        count += len(data)
        crc = zlib.crc32(data, crc)
    t_eof = now()
    return {
        "bytes": count,
        "crc32": crc,
        "t_accept": t_accept,
        "t_first_byte": t_first,
        "t_eof": t_eof,
        "cpu_s": cpu_seconds() - cpu0,
        "stats": stream.stats(),
    }


def percentiles(values: list[float], points: tuple[float, ...]) -> dict[str, float]:
    """Nearest-rank percentiles of ``values`` (``p50``, ``p99``...) plus ``max`` and ``mean``."""
    ordered = sorted(values)
    out: dict[str, float] = {}
    if not ordered:
        return out
    for p in points:
        rank = max(1, min(len(ordered), math.ceil(p / 100 * len(ordered) - 1e-9)))
        out[f"p{p:g}"] = ordered[rank - 1]
    out["max"] = ordered[-1]
    out["mean"] = sum(ordered) / len(ordered)
    return out


async def rr_client(stream: Stream, rounds: int, size: int, warmup: int) -> dict[str, Any]:
    """``warmup`` + ``rounds`` requests of ``size`` bytes, each once the previous reply of
    ``size`` bytes arrived; the round-trip times of the last ``rounds`` in ms."""
    request = os.urandom(size)
    rtts: list[float] = []
    cpu0 = 0.0
    t0 = 0.0
    for i in range(warmup + rounds):
        if i == warmup:
            cpu0 = cpu_seconds()
            t0 = now()
        start = now()
        stream.write(request)
        await stream.drain()
        await stream.readexactly(size)
        if i >= warmup:
            rtts.append(1e3 * (now() - start))
    wall = now() - t0
    cpu = cpu_seconds() - cpu0
    stream.write_eof()
    await stream.drain()
    await stream.read(1)  # the server closes after our EOF
    return {
        "rounds": rounds,
        "size": size,
        "rtt_ms": rtts,
        "summary": percentiles(rtts, (50, 90, 99, 99.9)),
        "wall_s": wall,
        "cpu_s": cpu,
        "stats": stream.stats(),
    }


async def rr_server(stream: Stream, size: int) -> dict[str, Any]:
    """Answer each ``size``-byte request with ``size`` bytes until EOF."""
    reply = os.urandom(size)
    cpu0 = cpu_seconds()
    served = 0
    while True:
        try:
            await stream.readexactly(size)
        except asyncio.IncompleteReadError:
            break
        stream.write(reply)
        await stream.drain()
        served += 1
    return {"served": served, "cpu_s": cpu_seconds() - cpu0, "stats": stream.stats()}
