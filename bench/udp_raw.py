"""Raw loopback UDP throughput: ``BatchedDatagramIO`` with GSO/GRO (``batched``), the same
without them (``drain``: sendto per datagram, recvfrom_into until EAGAIN per wake-up), and
``PlainDatagramIO`` (``plain``: the loop's datagram transport), on the default loop and uvloop.

A sender and a receiver share one loop and one host. The sender keeps at most ``--window``
bytes unreceived (the receiver's callback pulls the next burst), so the receive buffer never
overflows and the figure is the I/O path's cost, not a drop rate. Each run lasts ``--seconds``.

    .venv/bin/python bench/udp_raw.py                  # 1 s runs, 1224-byte datagrams, both loops
    .venv/bin/python bench/udp_raw.py --size 1452 --host ::1 --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from rudp.aio.dgram import Addr, DatagramIO, PlainDatagramIO  # noqa: E402
from rudp.aio.udpio import create_batched_endpoint  # noqa: E402

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a dependency on CPython/Linux
    uvloop = None  # type: ignore[assignment]


class Sink:
    """Counts what arrives and asks the pump for more."""

    def __init__(self) -> None:
        self.datagrams = 0
        self.bytes = 0
        self.wakeups = 0
        self.errors = 0
        self.on_progress: Callable[[], None] = lambda: None

    def datagrams_received(self, datagrams: list[tuple[bytes, Addr]]) -> None:
        self.wakeups += 1
        self.datagrams += len(datagrams)
        self.bytes += sum(len(d) for d, _ in datagrams)
        self.on_progress()

    def error_received(self, exc: OSError) -> None:
        self.errors += 1


class _PlainAdapter(asyncio.DatagramProtocol):
    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    def datagram_received(self, data: bytes, addr: Addr) -> None:
        self.sink.datagrams_received([(data, addr)])

    def error_received(self, exc: Exception) -> None:
        self.sink.errors += 1


async def _endpoints(kind: str, host: str) -> tuple[DatagramIO, DatagramIO, Sink, Addr]:
    loop = asyncio.get_running_loop()
    if kind in ("batched", "drain"):
        offload = kind == "batched"
        rx_io, sink = await create_batched_endpoint(
            loop, Sink, local_addr=(host, 0), gso=offload, gro=offload
        )
        tx_io, _ = await create_batched_endpoint(
            loop, Sink, local_addr=(host, 0), gso=offload, gro=offload
        )
        return tx_io, rx_io, sink, rx_io.get_extra_info("sockname")
    sink = Sink()
    rx_tr, _ = await loop.create_datagram_endpoint(
        lambda: _PlainAdapter(sink), local_addr=(host, 0)
    )
    tx_tr, _ = await loop.create_datagram_endpoint(
        lambda: _PlainAdapter(Sink()), local_addr=(host, 0)
    )
    for tr in (rx_tr, tx_tr):
        sock = tr.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    return PlainDatagramIO(tx_tr), PlainDatagramIO(rx_tr), sink, rx_tr.get_extra_info("sockname")


async def run_one(kind: str, host: str, size: int, seconds: float, window: int) -> dict[str, Any]:
    tx, rx, sink, dest = await _endpoints(kind, host)
    payload = bytes(size)
    burst = [(payload, dest)] * max(1, (256 * 1024) // max(size, 1))
    sent_bytes = 0
    done = asyncio.get_running_loop().create_future()
    deadline = 0.0

    def pump() -> None:
        nonlocal sent_bytes
        if time.perf_counter() >= deadline:
            if not done.done():
                done.set_result(None)
            return
        while sent_bytes - sink.bytes < window:
            tx.send_batch(burst)
            sent_bytes += len(burst) * size

    sink.on_progress = pump
    deadline = time.perf_counter() + seconds
    start = time.perf_counter()
    pump()
    try:
        await asyncio.wait_for(done, seconds + 5)
    except TimeoutError:
        pass  # the last burst was lost: report what arrived
    elapsed = time.perf_counter() - start
    result = {
        "io": kind,
        "MB/s": sink.bytes / elapsed / 1e6,
        "datagrams/s": sink.datagrams / elapsed,
        "per_wakeup": sink.datagrams / max(sink.wakeups, 1),
        "tx": tx.stats.as_dict(),
        "rx": rx.stats.as_dict(),
    }
    tx.close()
    rx.close()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--size", type=int, default=1224)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--window", type=int, default=2 << 20, help="max unreceived bytes")
    parser.add_argument("--loops", default="asyncio,uvloop")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    factories: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
        "asyncio": asyncio.new_event_loop
    }
    if uvloop is not None:
        factories["uvloop"] = uvloop.new_event_loop
    results = []
    for name in args.loops.split(","):
        if name not in factories:
            print(f"skipping {name}: not available", file=sys.stderr)
            continue
        for kind in ("batched", "drain", "plain"):
            with asyncio.Runner(loop_factory=factories[name]) as runner:
                res = runner.run(run_one(kind, args.host, args.size, args.seconds, args.window))
            res["loop"] = name
            results.append(res)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"{'loop':8} {'io':8} {'MB/s':>9} {'dgram/s':>11} {'per wake':>9} {'gso':>7} {'gro':>7}")
    for r in results:
        print(
            f"{r['loop']:8} {r['io']:8} {r['MB/s']:9.0f} {r['datagrams/s']:11.0f} "
            f"{r['per_wakeup']:9.1f} {r['tx']['gso_sends']:7} {r['rx']['gro_batches']:7}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
