"""``create_connection`` / ``create_server`` argument handling and the paths they open.

Real loopback sockets on both I/O paths, default loop. Protocols resolve futures that the
tests await; the timing test measures the loop's own clock around one await.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

import rudp
from rudp import Config, RudpTransport

HOST = "127.0.0.1"
TIMEOUT = 10.0


def _ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


HAVE_IPV6 = _ipv6_loopback()


@pytest.fixture(params=["batched", "plain"])
def config(request: pytest.FixtureRequest) -> Config:
    return Config(io=request.param, time_wait=0.05)


class Sink(asyncio.Protocol):
    """Collects what arrives; resolves futures for a byte count and for connection_lost."""

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.transport: RudpTransport | None = None
        self.data = bytearray()
        self.made: asyncio.Future[None] = loop.create_future()
        self.lost: asyncio.Future[BaseException | None] = loop.create_future()
        self._want: tuple[int, asyncio.Future[None]] | None = None

    def wait_data(self, nbytes: int) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._want = (nbytes, future)
        self._check()
        return future

    def _check(self) -> None:
        if self._want is not None and len(self.data) >= self._want[0]:
            self._want[1].set_result(None)
            self._want = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, RudpTransport)
        self.transport = transport
        if not self.made.done():
            self.made.set_result(None)

    def data_received(self, data: bytes) -> None:
        self.data += data
        self._check()

    def eof_received(self) -> bool:
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(exc)


class Echo(Sink):
    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        assert self.transport is not None
        self.transport.write(data)


@contextlib.contextmanager
def silent_port(host: str = HOST, family: int = socket.AF_INET) -> Iterator[int]:
    """A bound UDP socket that never reads (so the kernel sends no ICMP either)."""
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        yield sock.getsockname()[1]


class Serving:
    """A server for one test and the protocols it accepted, in order."""

    def __init__(self, protocol: type[Sink]) -> None:
        self.protocol = protocol
        self.accepted: list[Sink] = []
        self.first: asyncio.Future[Sink] = asyncio.get_running_loop().create_future()
        self.server: rudp.Server | None = None

    def factory(self) -> Sink:
        protocol = self.protocol()
        self.accepted.append(protocol)
        if not self.first.done():
            self.first.set_result(protocol)
        return protocol

    @property
    def port(self) -> int:
        assert self.server is not None
        port: int = self.server.sockets[0].getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def serving(protocol: type[Sink], host: str, **kwargs: Any) -> AsyncIterator[Serving]:
    s = Serving(protocol)
    s.server = server = await rudp.create_server(s.factory, host, 0, **kwargs)
    try:
        yield s
    finally:
        server.abort_clients()
        server.close()
        async with asyncio.timeout(TIMEOUT):  # bounded even after the test itself timed out
            await server.wait_closed()


# --- rejected arguments ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"ssl": True},
        {"server_hostname": "example.org"},
        {"ssl_handshake_timeout": 5.0},
        {"ssl_shutdown_timeout": 5.0},
    ],
    ids=["ssl", "server_hostname", "ssl_handshake_timeout", "ssl_shutdown_timeout"],
)
async def test_tls_arguments_are_refused_with_a_clear_message(
    config: Config, kwargs: dict[str, Any]
) -> None:
    (name,) = kwargs
    with silent_port() as port:
        with pytest.raises(ValueError, match=f"rudp does not do TLS: {name}= is not supported"):
            await rudp.create_connection(Sink, HOST, port, config=config, **kwargs)
    with pytest.raises(ValueError, match=f"rudp does not do TLS: {name}= is not supported"):
        await rudp.create_server(Sink, HOST, 0, config=config, **kwargs)


async def test_tls_arguments_set_to_none_are_accepted(config: Config) -> None:
    async with asyncio.timeout(TIMEOUT), serving(Echo, HOST, config=config, ssl=None) as s:
        transport, proto = await rudp.create_connection(
            Sink, HOST, s.port, config=config, ssl=None, server_hostname=None
        )
        assert isinstance(proto, Sink)
        transport.write(b"plain")
        await proto.wait_data(5)
        assert bytes(proto.data) == b"plain"
        transport.abort()


async def test_unknown_keyword_arguments_raise_type_error(config: Config) -> None:
    with silent_port() as port:
        with pytest.raises(TypeError, match="unexpected keyword argument.*: bogus, colour"):
            await rudp.create_connection(Sink, HOST, port, config=config, colour="red", bogus=1)
    with pytest.raises(TypeError, match="unexpected keyword argument.*: sock_type"):
        await rudp.create_server(Sink, HOST, 0, config=config, sock_type=1)


# --- handshake timeout ------------------------------------------------------------------------


async def test_handshake_timeout_against_a_silent_port(config: Config) -> None:
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(TIMEOUT):
        with silent_port() as port:
            start = loop.time()
            with pytest.raises(rudp.HandshakeTimeout) as info:
                await rudp.create_connection(Sink, HOST, port, config=config, handshake_timeout=0.3)
            elapsed = loop.time() - start
    exc = info.value
    assert isinstance(exc, TimeoutError)
    assert isinstance(exc, asyncio.TimeoutError)
    assert isinstance(exc, rudp.ConnectionTimeout)
    assert isinstance(exc, rudp.RudpError)
    assert str(exc) == f"handshake with {HOST}:{port} timed out after 0.3 s"
    assert 0.3 <= elapsed < 0.6


async def test_handshake_gives_up_after_the_configured_retries(config: Config) -> None:
    # Without handshake_timeout=, the engine's own retry budget ends the attempt.
    quick = config.replace(initial_rto=0.05, min_rto=0.05, handshake_retries=2)
    async with asyncio.timeout(TIMEOUT):
        with silent_port() as port:
            with pytest.raises(rudp.HandshakeTimeout, match="no answer after 2 retransmissions"):
                await rudp.create_connection(Sink, HOST, port, config=quick)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
async def test_a_failed_or_cancelled_connect_closes_its_socket(config: Config) -> None:
    async with asyncio.timeout(TIMEOUT):
        with silent_port() as port:
            before = open_fds()
            with pytest.raises(rudp.HandshakeTimeout):
                await rudp.create_connection(
                    Sink, HOST, port, config=config, handshake_timeout=0.05
                )
            await asyncio.sleep(0)  # the loop's datagram transport closes on the next pass
            assert open_fds() == before
            connecting = asyncio.ensure_future(
                rudp.create_connection(Sink, HOST, port, config=config)
            )
            await asyncio.sleep(0.02)  # the INIT is out and unanswered
            assert not connecting.done()
            connecting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await connecting
            await asyncio.sleep(0)
            assert open_fds() == before


# --- backlog ----------------------------------------------------------------------------------


async def test_backlog_argument_bounds_the_accept_queue(config: Config) -> None:
    # With backlog_overflow="reset" a handshake past the backlog is refused, so the bound the
    # server applies can be seen from the clients.
    refusing = config.replace(backlog_overflow="reset")
    async with (
        asyncio.timeout(TIMEOUT),
        serving(Sink, HOST, config=refusing, backlog=2, start_serving=False) as s,
    ):
        clients = []
        for _ in range(3):
            transport, proto = await rudp.create_connection(Sink, HOST, s.port, config=refusing)
            assert isinstance(proto, Sink)
            clients.append((transport, proto))
        exc = await clients[2][1].lost
        assert isinstance(exc, ConnectionRefusedError)
        assert isinstance(exc, rudp.ConnectionRefused)
        assert not clients[0][1].lost.done() and not clients[1][1].lost.done()
        assert s.server is not None
        await s.server.start_serving()
        assert len(s.accepted) == 2
        for transport, _ in clients:
            transport.abort()


async def test_backlog_defaults_to_the_config(config: Config) -> None:
    refusing = config.replace(backlog_overflow="reset", backlog=1)
    async with (
        asyncio.timeout(TIMEOUT),
        serving(Sink, HOST, config=refusing, start_serving=False) as s,
    ):
        first, p1 = await rudp.create_connection(Sink, HOST, s.port, config=refusing)
        _, p2 = await rudp.create_connection(Sink, HOST, s.port, config=refusing)
        assert isinstance(p2, Sink) and isinstance(p1, Sink)
        assert isinstance(await p2.lost, rudp.ConnectionRefused)
        assert not p1.lost.done()
        first.abort()


async def test_a_profile_by_name_instead_of_a_config() -> None:
    async with asyncio.timeout(TIMEOUT), serving(Sink, HOST, profile="throughput") as s:
        transport, _ = await rudp.create_connection(Sink, HOST, s.port, profile="latency")
        accepted = await s.first
        assert transport.config == Config.profile("latency")
        assert accepted.transport is not None
        assert accepted.transport.config.congestion_control == "bbr"
        transport.abort()
    with pytest.raises(ValueError, match="config= or profile=, not both"):
        await rudp.create_connection(Sink, HOST, 9, config=Config(), profile="fair")
    with pytest.raises(ValueError, match="background, fair, latency, throughput"):
        await rudp.open_connection(HOST, 9, profile="turbo")


# --- address families and impairment --------------------------------------------------------


@pytest.mark.skipif(not HAVE_IPV6, reason="no IPv6 loopback (::1 cannot be bound here)")
async def test_ipv6_loopback(config: Config) -> None:
    async with asyncio.timeout(TIMEOUT), serving(Echo, "::1", config=config) as s:
        assert s.server is not None
        sockname = s.server.sockets[0].getsockname()
        assert sockname[0] == "::1"
        port = sockname[1]
        transport, proto = await rudp.create_connection(Sink, "::1", port, config=config)
        assert isinstance(proto, Sink)
        assert transport.get_extra_info("peername")[:2] == ("::1", port)
        assert transport.get_extra_info("socket").family == socket.AF_INET6
        payload = os.urandom(100_000)
        transport.write(payload)
        await proto.wait_data(len(payload))
        assert bytes(proto.data) == payload
        transport.close()
        assert await proto.lost is None


async def test_impaired_link_still_transfers_a_mebibyte_intact(config: Config) -> None:
    # Each end impairs what it sends, so each direction of the path loses 10 % and takes
    # 5 ms more. (Impairing both directions at both ends would compound to 19 % each way: the
    # transfer then takes over 30 s, dominated by retransmission timeouts.) A 50 ms RTO floor
    # keeps the timeouts that small windows cannot avoid short.
    lossy = config.replace(min_rto=0.05, initial_rto=0.2)

    def impairment(seed: int) -> rudp.Impairment:
        return rudp.Impairment(loss=0.1, delay=0.005, seed=seed, directions="send")

    async with (
        asyncio.timeout(30),
        serving(Sink, HOST, config=lossy, impairment=impairment(1)) as s,
    ):
        transport, proto = await rudp.create_connection(
            Sink, HOST, s.port, config=lossy, impairment=impairment(2)
        )
        payload = os.urandom(1 << 20)
        transport.write(payload)
        peer = await s.first  # the COOKIE-ECHO may have needed a retransmission
        await peer.wait_data(len(payload))
        assert bytes(peer.data) == payload
        # The loss was real, and it was repaired.
        assert transport.get_extra_info("stats")["segments_retransmitted"] > 0
        transport.abort()
