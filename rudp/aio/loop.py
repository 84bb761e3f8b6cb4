"""``create_connection`` and ``create_server``: the loop methods, over rudp.

They mirror ``loop.create_connection`` / ``loop.create_server``: a protocol factory in, a
transport (or a ``Server``) out. A client connection gets an endpoint (a UDP socket) of its own,
connected to the server so ICMP errors reach it; a server has one endpoint per bound address.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import Callable
from typing import Any, cast

from ..config import Config
from ..core.connection import Connection
from ..errors import HandshakeTimeout
from .dgram import Addr, PlainDatagramIO
from .impairment import ImpairedIO, Impairment
from .protocol import EndpointProtocol
from .server import Server
from .transport import RudpTransport
from .udpio import DEFAULT_BUFFER_SIZE, BatchedDatagramIO, make_udp_socket, set_buffer_sizes

__all__ = ["create_connection", "create_server", "open_endpoint"]

ProtocolFactory = Callable[[], asyncio.BaseProtocol]


def _reject_tls(kwds: dict[str, Any]) -> None:
    for name in ("ssl", "server_hostname", "ssl_handshake_timeout", "ssl_shutdown_timeout"):
        if kwds.get(name) is not None:
            raise ValueError(
                f"rudp does not do TLS: {name}= is not supported (run TLS over the stream "
                "yourself, or use aioquic for an encrypted transport)"
            )
    unknown = set(kwds) - {
        "ssl",
        "server_hostname",
        "ssl_handshake_timeout",
        "ssl_shutdown_timeout",
        "happy_eyeballs_delay",
        "interleave",
        "flags",
        "proto",
        "reuse_address",
        "keep_alive",
    }
    if unknown:
        raise TypeError(f"unexpected keyword argument(s): {', '.join(sorted(unknown))}")


def resolve_config(config: Config | None, profile: str | None) -> Config:
    """``config``, or ``Config.profile(profile)``, or the defaults. Both at once is an error:
    ``Config.profile(name, **changes)`` is how to adjust a profile."""
    if profile is None:
        return config or Config()
    if config is not None:
        raise ValueError(
            "pass config= or profile=, not both (Config.profile(name, **changes) adjusts one)"
        )
    return Config.profile(profile)


def _use_batched(config: Config) -> bool:
    if config.io == "batched":
        return True
    return config.io == "auto" and sys.platform == "linux"


class _PlainToBatch(asyncio.DatagramProtocol):
    """Feeds the loop's datagram transport into a batch receiver (the impaired plain path)."""

    def __init__(self, receiver: ImpairedIO, endpoint: EndpointProtocol) -> None:
        self._receiver = receiver
        self._endpoint = endpoint

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # CPython 3.11's selector datagram transport is not a DatagramTransport subclass.
        self._receiver.attach(PlainDatagramIO(cast(asyncio.DatagramTransport, transport)))

    def datagram_received(self, data: bytes, addr: Addr) -> None:
        self._receiver.datagrams_received([(data, addr)])

    def error_received(self, exc: Exception) -> None:
        if isinstance(exc, OSError):
            self._receiver.error_received(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self._endpoint.connection_lost(exc)


async def open_endpoint(
    config: Config,
    *,
    local_addr: Addr | None = None,
    remote_addr: Addr | None = None,
    family: int = 0,
    reuse_port: bool = False,
    listening: bool = False,
    impairment: Impairment | None = None,
    on_connected: Callable[[Connection], None] | None = None,
) -> EndpointProtocol:
    """A UDP socket driven by an ``EndpointProtocol``, on the I/O path ``config.io`` picks."""
    loop = asyncio.get_running_loop()
    endpoint = EndpointProtocol(loop, config, listening=listening, on_connected=on_connected)
    impaired = ImpairedIO(loop, endpoint, impairment) if impairment is not None else None
    if _use_batched(config):
        sock = make_udp_socket(local_addr, family=family, reuse_port=reuse_port)
        try:
            if remote_addr is not None:
                sock.connect(remote_addr)
            receiver = impaired if impaired is not None else endpoint
            io = BatchedDatagramIO(loop, sock, receiver)
        except BaseException:
            sock.close()
            raise
        if impaired is not None:
            impaired.attach(io)
            endpoint.attach_io(impaired)
        else:
            endpoint.attach_io(io)
        return endpoint
    kwargs: dict[str, Any] = {"family": family}
    # The loop takes (host, port) even for IPv6; getaddrinfo gives 4-tuples.
    if local_addr is not None:
        kwargs["local_addr"] = tuple(local_addr[:2])
    if remote_addr is not None:
        kwargs["remote_addr"] = tuple(remote_addr[:2])
    if reuse_port:
        kwargs["reuse_port"] = True
    if impaired is not None:
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _PlainToBatch(impaired, endpoint), **kwargs
        )
        endpoint.attach_io(impaired)
    else:
        transport, _ = await loop.create_datagram_endpoint(lambda: endpoint, **kwargs)
    sock = transport.get_extra_info("socket")
    if sock is not None:
        set_buffer_sizes(sock, DEFAULT_BUFFER_SIZE)  # one read per wake-up: deep buffers
    return endpoint


async def _resolve(
    host: str | None, port: int | None, *, family: int, passive: bool
) -> list[tuple[int, Addr]]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(
        host,
        port,
        family=family,
        type=socket.SOCK_DGRAM,
        flags=socket.AI_PASSIVE if passive else 0,
    )
    if not infos:
        raise OSError(f"getaddrinfo({host!r}, {port!r}) returned nothing")
    seen: list[tuple[int, Addr]] = []
    for fam, _, _, _, addr in infos:
        if (fam, addr) not in seen:
            seen.append((fam, addr))
    return seen


async def create_connection(
    protocol_factory: ProtocolFactory,
    host: str | None = None,
    port: int | None = None,
    *,
    config: Config | None = None,
    profile: str | None = None,
    local_addr: Addr | None = None,
    family: int = 0,
    handshake_timeout: float | None = None,
    impairment: Impairment | None = None,
    **kwds: Any,
) -> tuple[RudpTransport, asyncio.BaseProtocol]:
    """Open a rudp connection to ``host:port``; returns ``(transport, protocol)`` once the
    handshake is done. ``profile`` names a ``Config.profile`` instead of passing ``config``.
    Raises ``ConnectionRefusedError`` (refused, or ICMP port unreachable) or a
    ``TimeoutError`` subclass (``HandshakeTimeout``)."""
    _reject_tls(kwds)
    config = resolve_config(config, profile)
    addrs = await _resolve(host, port, family=family, passive=False)
    fam, addr = addrs[0]
    endpoint = await open_endpoint(
        config, local_addr=local_addr, remote_addr=addr, family=fam, impairment=impairment
    )
    endpoint.close_when_idle = True
    conn, waiter = endpoint.connect(addr)
    try:
        if handshake_timeout is None:
            await waiter
        else:
            try:
                async with asyncio.timeout(handshake_timeout):
                    await waiter
            except TimeoutError:
                raise HandshakeTimeout(
                    f"handshake with {host}:{port} timed out after {handshake_timeout} s"
                ) from None
    except BaseException:
        endpoint.cancel_connect(conn)
        endpoint.close()
        raise
    protocol = protocol_factory()
    transport = endpoint.attach(conn, protocol)
    return transport, protocol


async def create_server(
    protocol_factory: ProtocolFactory,
    host: str | None = None,
    port: int | None = None,
    *,
    config: Config | None = None,
    profile: str | None = None,
    family: int = 0,
    backlog: int | None = None,
    reuse_port: bool = False,
    start_serving: bool = True,
    impairment: Impairment | None = None,
    **kwds: Any,
) -> Server:
    """Listen for rudp connections on every address ``host`` resolves to; each connection
    gets a protocol from ``protocol_factory``. ``profile`` names a ``Config.profile`` instead
    of passing ``config``. Returns a ``Server``."""
    _reject_tls(kwds)
    config = resolve_config(config, profile)
    if backlog is not None:
        config = config.replace(backlog=backlog)
    loop = asyncio.get_running_loop()
    server = Server(loop, protocol_factory)
    addrs = await _resolve(host, port, family=family, passive=True)
    try:
        for fam, addr in addrs:
            endpoint = await open_endpoint(
                config,
                local_addr=addr,
                family=fam,
                reuse_port=reuse_port,
                listening=True,
                impairment=impairment,
                on_connected=server.connection_handler(),
            )
            server.add_endpoint(endpoint)
            if port == 0 and host is None:
                break  # one ephemeral port: do not bind each family to a different one
    except BaseException:
        server.close()
        raise
    if start_serving:
        await server.start_serving()
    return server
