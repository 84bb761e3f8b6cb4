"""Telemetry over unreliable datagrams: a late sample is worth less than the next one.

The sender sends one datagram per tick (sequence number + send time, packed with ``struct``)
with ``send_datagram``: never retransmitted, so a lost sample stays lost and never holds up
the newer ones. The receiver counts what arrived, what is missing (gaps in the sequence
numbers) and what came out of order. At the end the sender says, over the reliable stream of
the same connection, how many it sent, so losses at the tail are counted too.

Run:
    .venv/bin/python examples/telemetry.py receiver --port 9001
    .venv/bin/python examples/telemetry.py sender --port 9001 --rate 200 --count 1000 --loss 0.2
    .venv/bin/python examples/telemetry.py demo --loss 0.2    # both in one process
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import struct
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import rudp
from rudp.messages import MessageConnection

SAMPLE = struct.Struct("!Qd")  # sequence number, sender's time.monotonic()


@dataclass
class LossCounter:
    """Counts samples by sequence number; memory grows with the gaps, not with the stream."""

    received: int = 0
    lost: int = 0  # not (yet) received; a late arrival moves one from lost to reordered
    reordered: int = 0
    duplicated: int = 0
    max_age_ms: float = 0.0  # one-way: send time to receipt (same host, shared clock)
    _next: int = 0  # the sequence number expected next
    _missing: set[int] = field(default_factory=set)

    def add(self, seq: int, age: float) -> None:
        if seq >= self._next:
            self._missing.update(range(self._next, seq))
            self.lost += seq - self._next
            self._next = seq + 1
        elif seq in self._missing:
            self._missing.discard(seq)
            self.lost -= 1
            self.reordered += 1
        else:
            self.duplicated += 1
            return
        self.received += 1
        self.max_age_ms = max(self.max_age_ms, age * 1000)

    def finish(self, sent: int) -> None:
        """The sender sent ``sent`` samples: the ones after the last arrival are lost too."""
        self.lost += max(0, sent - self._next)
        self._next = max(self._next, sent)

    def line(self) -> str:
        return (
            f"received {self.received}  lost {self.lost}  reordered {self.reordered}  "
            f"duplicated {self.duplicated}  max age {self.max_age_ms:.1f} ms"
        )


async def send_samples(conn: MessageConnection, *, rate: float, count: int) -> int:
    """Send ``count`` samples at ``rate`` per second, then the total over the reliable
    stream; returns how many were sent."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    for seq in range(count):
        # Absolute deadlines: a slow tick does not shift every later one.
        await asyncio.sleep(max(0.0, start + seq / rate - loop.time()))
        conn.send_datagram(SAMPLE.pack(seq, time.monotonic()))
    await conn.send({"sent": count})
    return count


async def receive_samples(
    conn: MessageConnection, *, report: Callable[[str], None] | None = None, every: float = 1.0
) -> LossCounter:
    """Count samples until the sender closes; ``report`` gets a status line every ``every`` s."""
    counter = LossCounter()

    async def count_datagrams() -> None:
        next_report = time.monotonic() + every
        with contextlib.suppress(rudp.ConnectionClosed):  # the sender closed: all read
            while True:
                seq, sent_at = SAMPLE.unpack(await conn.recv_datagram())
                now = time.monotonic()
                counter.add(seq, now - sent_at)
                if report is not None and now >= next_report:
                    report(counter.line())
                    next_report = now + every

    datagrams = asyncio.create_task(count_datagrams())
    summary = await conn.recv()  # the reliable {"sent": n}, after every datagram was sent
    await datagrams
    counter.finish(int(summary["sent"]))
    return counter


async def demo(
    *, rate: float = 200.0, count: int = 400, loss: float = 0.0, seed: int = 2
) -> dict[str, int | float]:
    """A receiver and a sender on loopback; ``loss`` drops that share of everything the
    sender sends (seeded: seed 2 happens to spare the handshake, so no 3 s handshake retry).
    Returns the receiver's counts plus ``sent`` and the sender's own datagram count."""
    done: asyncio.Future[LossCounter] = asyncio.get_running_loop().create_future()

    async def handler(conn: MessageConnection) -> None:
        done.set_result(await receive_samples(conn))

    impairment = rudp.Impairment(loss=loss, seed=seed, directions="send") if loss else None
    async with await rudp.messages.serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        conn = await rudp.messages.connect("127.0.0.1", port, impairment=impairment)
        sent = await send_samples(conn, rate=rate, count=count)
        await conn.close()
        counter = await asyncio.wait_for(done, 10.0)
    result = {k: v for k, v in asdict(counter).items() if not k.startswith("_")}
    return {**result, "sent": sent, "datagrams_sent": conn.datagrams_sent}


async def run_receiver(host: str, port: int) -> None:
    async def handler(conn: MessageConnection) -> None:
        print(f"sender {conn.peername} connected", flush=True)
        counter = await receive_samples(conn, report=lambda line: print(line, flush=True))
        print(f"done: {counter.line()}", flush=True)

    server = await rudp.messages.serve(handler, host, port)
    bound = server.sockets[0].getsockname()
    print(f"listening on {bound[0]}:{bound[1]}", flush=True)
    async with server:
        await server.serve_forever()


async def run_sender(
    host: str, port: int, *, rate: float, count: int, loss: float, seed: int | None
) -> None:
    impairment = rudp.Impairment(loss=loss, seed=seed, directions="send") if loss else None
    conn = await rudp.messages.connect(host, port, impairment=impairment)
    sent = await send_samples(conn, rate=rate, count=count)
    await conn.close()
    print(f"sent {sent} samples", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("role", choices=("receiver", "sender", "demo"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9001)
    parser.add_argument("--rate", type=float, default=200.0, help="samples per second (200)")
    parser.add_argument("--count", type=int, default=1000, help="samples to send (1000)")
    parser.add_argument("--loss", type=float, default=0.0, help="drop this share of sends")
    parser.add_argument("--seed", type=int, default=None, help="seed of the --loss draws")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        if args.role == "receiver":
            asyncio.run(run_receiver(args.host, args.port))
        elif args.role == "sender":
            options = dict(rate=args.rate, count=args.count, loss=args.loss, seed=args.seed)
            asyncio.run(run_sender(args.host, args.port, **options))
        else:
            print(asyncio.run(demo(rate=args.rate, count=args.count, loss=args.loss)))


if __name__ == "__main__":
    main()
