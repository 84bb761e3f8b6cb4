"""rudp streams with one of its ``Config.profile`` presets."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import rudp
from bench.peers import PeerSpec
from bench.peers.streams import AsyncioStream

__all__ = ["config_for", "connect", "settings", "start_server"]


# Every benchmark link has a 1500-byte MTU (loopback more): 1408 payload bytes + the 24-byte
# header + 4 SACK blocks (32 B) + IPv4 and UDP (28 B) fill it with 8 bytes to spare, as kernel
# TCP fills it with its 1448-byte MSS. rudp's default of 1200 is for any internet path
# (RFC 8899 BASE_PLPMTU); loss-based congestion control counts in segments, so on a
# 1500-byte path it would carry 17 % less than TCP per window for that reason alone.
MAX_PAYLOAD = 1408


def config_for(spec: PeerSpec) -> rudp.Config:
    if spec.variant == "default":
        return rudp.Config(max_payload=MAX_PAYLOAD)
    return rudp.Config.profile(spec.variant, max_payload=MAX_PAYLOAD)


def _stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> AsyncioStream:
    def stats() -> dict[str, Any]:
        snapshot = writer.transport.get_extra_info("stats")
        return dict(snapshot) if isinstance(snapshot, dict) else {}

    return AsyncioStream(reader, writer, stats_fn=stats)


class _Server:
    def __init__(self, server: rudp.Server) -> None:
        self._server = server
        self.port: int = server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        self._server.close()
        await asyncio.wait_for(self._server.wait_closed(), 10.0)

    def stats(self) -> dict[str, Any]:
        """The listening endpoint's counters (datagrams, handshakes, drops by reason)."""
        return {
            k: v
            for k, v in self._server._endpoints[0].endpoint.stats.as_dict().items()
            if v  # the counters that moved
        }


async def start_server(spec: PeerSpec, host: str, port: int, handler: Any) -> _Server:
    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await handler(_stream(reader, writer))

    # Every benchmark client connects from one address, one /24: the per-prefix limit on
    # handshake replies (100/s, a defence against spoofed floods) would pace the scale
    # scenario's 10,000 handshakes, so the benchmark server turns it off.
    config = config_for(spec).replace(stateless_reply_rate=None)
    server = await rudp.start_server(on_connection, host, port, config=config)
    return _Server(server)


async def connect(spec: PeerSpec, host: str, port: int) -> AsyncioStream:
    reader, writer = await rudp.open_connection(host, port, config=config_for(spec))
    return _stream(reader, writer)


def settings(spec: PeerSpec) -> dict[str, Any]:
    config = config_for(spec)
    default = rudp.Config()
    changed = {
        f.name: getattr(config, f.name)
        for f in dataclasses.fields(config)
        if getattr(config, f.name) != getattr(default, f.name)
    }
    return {
        "transport": f"rudp {rudp.__version__} streams, Config.profile({spec.variant!r})",
        "congestion_control": config.congestion_control,
        "changed_from_default": changed,
        "max_payload": config.max_payload,
        "io": config.io,
        "server": "stateless_reply_rate=None (all clients share one address)",
    }
