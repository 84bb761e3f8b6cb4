"""The transports the benchmarks compare, behind one small stream interface.

A peer is named ``KIND[:VARIANT]``:

* ``tcp:cubic`` / ``tcp:bbr``: kernel TCP through ``asyncio`` streams, the congestion control
  chosen per socket with ``TCP_CONGESTION`` (read back and reported);
* ``aioquic``: one bidirectional QUIC stream (aioquic, self-signed certificate made at start);
* ``kcp:fast`` / ``kcp:normal``: KCP (the PyPI ``kcp`` binding of ikcp.c) driven from an asyncio
  ``DatagramProtocol``;
* ``rudp:PROFILE``: ``rudp.open_connection`` / ``rudp.start_server`` with ``Config.profile``.

Every peer sets its sockets' send and receive buffers to :data:`SOCKET_BUFFER` (what rudp sets on
its own UDP sockets), so no peer wins by buffer size. :func:`settings` says what each one used.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from rudp.aio.udpio import DEFAULT_BUFFER_SIZE

__all__ = [
    "ALL_PEERS",
    "SOCKET_BUFFER",
    "PeerServer",
    "PeerSpec",
    "Stream",
    "connect",
    "parse_peer",
    "settings",
    "start_server",
]

SOCKET_BUFFER = DEFAULT_BUFFER_SIZE  # bytes asked for SO_SNDBUF and SO_RCVBUF, every peer

ALL_PEERS = (
    "tcp:cubic",
    "tcp:bbr",
    "aioquic",
    "kcp:fast",
    "kcp:normal",
    "rudp:fair",
    "rudp:throughput",
    "rudp:latency",
    "rudp:background",
)

_VARIANTS = {
    "tcp": ("cubic", "bbr", "reno"),
    "aioquic": ("",),
    "kcp": ("fast", "normal"),
    "rudp": ("fair", "throughput", "latency", "background", "default"),
}


@dataclass(frozen=True, slots=True)
class PeerSpec:
    kind: str
    variant: str

    @property
    def name(self) -> str:
        return f"{self.kind}:{self.variant}" if self.variant else self.kind


def parse_peer(text: str) -> PeerSpec:
    """``tcp:cubic``, ``aioquic``, ``kcp:fast``, ``rudp:throughput``...; ValueError otherwise."""
    kind, _, variant = text.strip().partition(":")
    if kind == "quic":
        kind = "aioquic"
    variants = _VARIANTS.get(kind)
    if variants is None:
        raise ValueError(f"unknown peer {text!r} (kinds: {', '.join(_VARIANTS)})")
    if not variant:
        variant = variants[0]
    if variant not in variants:
        raise ValueError(f"unknown {kind} variant {variant!r} (choose from {', '.join(variants)})")
    return PeerSpec(kind, variant)


class Stream(Protocol):
    """The subset of ``asyncio.StreamReader`` + ``StreamWriter`` the workloads use."""

    async def read(self, n: int) -> bytes: ...

    async def readexactly(self, n: int) -> bytes: ...

    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...

    def write_eof(self) -> None: ...

    async def close(self) -> None: ...

    def stats(self) -> dict[str, Any]: ...


class PeerServer(Protocol):
    port: int

    async def close(self) -> None: ...


Handler = Callable[[Stream], Awaitable[None]]


async def start_server(spec: PeerSpec, host: str, port: int, handler: Handler) -> PeerServer:
    """Listen on ``host:port`` (0: any) and run ``handler`` for each incoming stream."""
    module = _module(spec)
    server: PeerServer = await module.start_server(spec, host, port, handler)
    return server


async def connect(spec: PeerSpec, host: str, port: int) -> Stream:
    """One stream to a server of the same peer kind."""
    module = _module(spec)
    stream: Stream = await module.connect(spec, host, port)
    return stream


def settings(spec: PeerSpec) -> dict[str, Any]:
    """What this peer is configured with (printed beside the results)."""
    out: dict[str, Any] = _module(spec).settings(spec)
    out["socket_buffer_bytes"] = SOCKET_BUFFER
    return out


def _module(spec: PeerSpec) -> Any:
    # Imported on use: a child process loads only the library it runs.
    if spec.kind == "tcp":
        from bench.peers import tcp as module
    elif spec.kind == "aioquic":
        from bench.peers import quic as module
    elif spec.kind == "kcp":
        from bench.peers import kcp_peer as module
    else:
        from bench.peers import rudp_peer as module
    return module
