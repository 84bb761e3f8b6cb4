"""One INIT-flood run, shared by tests/test_flood.py (which asserts) and bench/flood.py (which
reports): a rudp echo server on this process's event loop, a flooding subprocess and a
subprocess of real echo clients (``tests/peer_process.py``), and samples of the server's
tables and memory every half second while the flood lasts."""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rudp import Config, start_server

__all__ = ["FloodResult", "run_flood", "udp_drops"]

ROOT = Path(__file__).resolve().parent.parent
CLOSE_GRACE = 5.0  # seconds the server's connections get to close once the clients are done


@dataclass
class FloodResult:
    """What one run measured. ``samples`` are taken every 0.5 s during the flood."""

    flood: dict[str, Any]  # the flooder's own summary (sent, rate, sources, prefixes)
    clients: dict[str, Any] | None  # the echo clients' summary, None without clients
    inits: int  # INITs the server processed during the flood
    cpu: float  # server process CPU seconds during the flood
    wall: float  # seconds from the flood's start to its end
    kernel_drops: int | None  # datagrams the kernel dropped at the server's socket
    stats: dict[str, Any]  # the server endpoint's counters at the end of the flood
    final_stats: dict[str, Any]  # ... and once the real clients are done
    prefix_limit: int
    samples: list[dict[str, Any]] = field(default_factory=list)
    # States of the server connections still open CLOSE_GRACE seconds after the clients were
    # done (then aborted): a client process that exits takes its TIME_WAIT with it, so a
    # server connection whose last ACK the flood made the kernel drop waits in LAST_ACK.
    lingering: list[str] = field(default_factory=list)

    @property
    def amplification(self) -> float:
        """Bytes of stateless replies / bytes of datagrams that could draw one."""
        sent = self.stats["stateless_bytes_sent"]
        return float(sent) / max(1, self.stats["stateless_bytes_received"])

    @property
    def cpu_per_init(self) -> float:
        return self.cpu / max(1, self.inits)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "flood_sent_per_s": round(self.flood["rate"]),
            "flood_sources": self.flood["sources"],
            "flood_prefixes": self.flood["prefixes"],
            "inits_absorbed": self.inits,
            "inits_absorbed_per_s": round(self.inits / self.flood["seconds"]),
            "kernel_drops": self.kernel_drops,
            "rate_limited": self.stats["dropped"].get("rate_limited", 0),
            "server_cpu_share": round(self.cpu / self.wall, 2),
            "cpu_us_per_init": round(self.cpu_per_init * 1e6, 1),
            "amplification": round(self.amplification, 3),
            "max_connections": max((s["connections"] for s in self.samples), default=0),
            "lingering": self.lingering,
        }
        if self.clients is not None:
            out["handshakes"] = f"{self.clients['connected']}/{self.clients['attempted']}"
            out["intact"] = self.clients["intact"]
            out["handshake_max_s"] = self.clients["handshake_max_s"]
        return out


def _rss() -> int:
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * 4096


def udp_drops(port: int) -> int | None:
    """The kernel's drop counter of the UDP socket bound to ``port`` (/proc/net/udp)."""
    with open("/proc/net/udp", encoding="ascii") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if int(fields[1].split(":")[1], 16) == port:
                return int(fields[-1])
    return None


async def _spawn(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.peer_process", *args, stdout=asyncio.subprocess.PIPE, cwd=ROOT
    )


async def run_flood(
    config: Config,
    *,
    seconds: float,
    clients: int,
    client_rate: float = 20.0,
    flood_args: tuple[str, ...] = (),
) -> FloodResult:
    """Flood a fresh server for ``seconds`` while ``clients`` real clients echo 16 KiB each
    (none if 0). The flooder leaves out 127.0.0.0/24, where the real clients are."""

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.read())
        writer.write_eof()
        await writer.drain()
        writer.close()

    server = await start_server(echo, "127.0.0.1", 0, config=config)
    port = server.sockets[0].getsockname()[1]
    endpoint = server._endpoints[0].endpoint
    limiter = endpoint.reply_limiter
    gc.collect()
    processes: list[asyncio.subprocess.Process] = []
    samples: list[dict[str, Any]] = []
    real: dict[str, Any] | None = None
    lingering: list[str] = []
    try:
        cpu0, wall0 = time.process_time(), time.monotonic()
        args = ("flood", "127.0.0.1", str(port), "--duration", str(seconds), "--exclude")
        flooder = await _spawn(*args, "127.0.0", *flood_args)
        processes.append(flooder)
        if clients:
            args = ("echo-clients", "127.0.0.1", str(port), "--count", str(clients))
            processes.append(await _spawn(*args, "--rate", str(client_rate)))
        flood_done = asyncio.ensure_future(flooder.communicate())
        while not flood_done.done():
            try:  # a bounded wait on the flooder's exit; each timeout takes a sample
                await asyncio.wait_for(asyncio.shield(flood_done), 0.5)
            except TimeoutError:
                pass
            samples.append(
                {
                    "t": time.monotonic() - wall0,
                    "inits": endpoint.stats.inits_received,
                    "connections": len(endpoint.connections),
                    "prefixes": len(limiter) if limiter is not None else 0,
                    "blocks": sys.getallocatedblocks(),
                    "rss": _rss(),
                }
            )
        cpu = time.process_time() - cpu0
        wall = time.monotonic() - wall0
        flood = json.loads(flood_done.result()[0])
        inits = endpoint.stats.inits_received
        stats = endpoint.stats.as_dict()
        drops = udp_drops(port)
        if clients:
            out, _ = await asyncio.wait_for(processes[1].communicate(), 120.0)
            real = json.loads(out)
        final_stats = endpoint.stats.as_dict()
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()
        server.close()
        try:
            await asyncio.wait_for(server.wait_closed(), CLOSE_GRACE)
        except TimeoutError:
            lingering = sorted(conn.state.name for conn in endpoint.connections.values())
            server.abort_clients()
            await asyncio.wait_for(server.wait_closed(), CLOSE_GRACE)
    return FloodResult(
        flood=flood,
        clients=real,
        inits=inits,
        cpu=cpu,
        wall=wall,
        kernel_drops=drops,
        stats=stats,
        final_stats=final_stats,
        prefix_limit=config.stateless_reply_prefixes,
        samples=samples,
        lingering=lingering,
    )
