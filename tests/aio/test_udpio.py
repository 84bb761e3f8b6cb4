"""Batched UDP I/O on real loopback sockets, on the default loop and on uvloop.

Every wait is a future the receiver resolves, bounded by ``asyncio.timeout``; nothing sleeps.
Kernel refusals (no GSO, a full buffer, an unreachable host) are injected through socket
subclasses handed to the constructor, so the rest of the path stays real.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import struct
import sys
from collections.abc import Callable, Coroutine, Iterable, Sequence
from random import Random
from typing import Any, TypeVar

import pytest

from rudp.aio.dgram import Addr
from rudp.aio.udpio import (
    MAX_GSO_BYTES,
    MAX_GSO_SEGMENTS,
    SOL_UDP,
    UDP_GRO,
    UDP_SEGMENT,
    BatchedDatagramIO,
    create_batched_endpoint,
    family_for_host,
    gro_supported,
    gso_supported,
    make_udp_socket,
    resolve_remote,
)

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is installed wherever CPython runs on Linux
    uvloop = None  # type: ignore[assignment]

T = TypeVar("T")
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


def _probe(check: Callable[[socket.socket], bool]) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        return check(sock)


HAVE_IPV6 = _ipv6_loopback()
HAVE_GSO = _probe(gso_supported)
HAVE_GRO = _probe(gro_supported)
needs_gso = pytest.mark.skipif(not HAVE_GSO, reason="kernel without UDP_SEGMENT")

LOOPS = [pytest.param(asyncio.new_event_loop, id="asyncio")]
if uvloop is not None:
    LOOPS.append(pytest.param(uvloop.new_event_loop, id="uvloop"))

HOSTS = [
    pytest.param("127.0.0.1", id="ipv4"),
    pytest.param("::1", id="ipv6", marks=pytest.mark.skipif(not HAVE_IPV6, reason="no ::1")),
]

Runner = Callable[[Callable[[], Coroutine[Any, Any, T]]], T]


@pytest.fixture(params=LOOPS)
def run(request: pytest.FixtureRequest) -> Callable[[Callable[[], Coroutine[Any, Any, Any]]], Any]:
    """Run a coroutine function to completion on a fresh loop of the parametrized kind."""
    factory = request.param

    def runner(main: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
        with asyncio.Runner(loop_factory=factory) as r:
            return r.run(main())

    return runner


class Collector:
    """A DatagramReceiver that keeps every batch and wakes waiters on counts and errors."""

    def __init__(self) -> None:
        self.datagrams: list[tuple[bytes, Addr]] = []
        self.batch_sizes: list[int] = []
        self.errors: list[OSError] = []
        self._count_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._error_waiters: list[asyncio.Future[OSError]] = []

    def datagrams_received(self, datagrams: list[tuple[bytes, Addr]]) -> None:
        self.batch_sizes.append(len(datagrams))
        self.datagrams.extend(datagrams)
        count = len(self.datagrams)
        waiting = []
        for target, fut in self._count_waiters:
            if count >= target:
                if not fut.done():
                    fut.set_result(None)
            else:
                waiting.append((target, fut))
        self._count_waiters = waiting

    def error_received(self, exc: OSError) -> None:
        self.errors.append(exc)
        for fut in self._error_waiters:
            if not fut.done():
                fut.set_result(exc)
        self._error_waiters = []

    async def wait_count(self, target: int) -> None:
        if len(self.datagrams) >= target:
            return
        fut = asyncio.get_running_loop().create_future()
        self._count_waiters.append((target, fut))
        await fut

    async def wait_error(self) -> OSError:
        if self.errors:
            return self.errors[0]
        fut: asyncio.Future[OSError] = asyncio.get_running_loop().create_future()
        self._error_waiters.append(fut)
        return await fut

    @property
    def payloads(self) -> list[bytes]:
        return [data for data, _ in self.datagrams]


def payload(index: int, size: int) -> bytes:
    """Distinct, checkable content: the index repeated, cut to ``size``."""
    stamp = struct.pack("!I", index & 0xFFFFFFFF)
    return (stamp * (size // 4 + 1))[:size]


def mixed_sizes(count: int, seed: int = 7) -> list[int]:
    """Runs of equal sizes (GSO groups), odd sizes, tiny and empty datagrams, a few jumbo ones."""
    rng = Random(seed)
    sizes: list[int] = []
    while len(sizes) < count:
        kind = rng.random()
        if kind < 0.5:
            sizes.extend([rng.choice((1224, 1452, 600))] * rng.randint(1, 80))
        elif kind < 0.8:
            sizes.append(rng.randint(1, 1472))
        elif kind < 0.9:
            sizes.append(0)
        else:
            sizes.append(rng.choice((8000, 20000, 65000)))
    return sizes[:count]


def same_peer(a: Addr, b: Addr) -> bool:
    return tuple(a[:2]) == tuple(b[:2])


async def send_paced(
    io: BatchedDatagramIO,
    rx: Collector,
    datagrams: Sequence[tuple[bytes, Addr]],
    chunk: int = 500,
) -> None:
    """Send in chunks, waiting for each to arrive, so the receive buffer never overflows."""
    for start in range(0, len(datagrams), chunk):
        part = datagrams[start : start + chunk]
        io.send_batch(part)
        await rx.wait_count(start + len(part))


# --- end to end -------------------------------------------------------------------------------


MODES = [
    pytest.param(True, True, id="gso+gro"),
    pytest.param(True, False, id="gso-only"),
    pytest.param(False, False, id="plain"),
]


@pytest.mark.parametrize("host", HOSTS)
@pytest.mark.parametrize(("gso", "gro"), MODES)
@pytest.mark.parametrize("sizes", ["fixed", "mixed"])
def test_bulk_transfer_intact_and_in_order(
    run: Runner[None], host: str, gso: bool, gro: bool, sizes: str
) -> None:
    count = 10_000
    size_list = [1224] * count if sizes == "fixed" else mixed_sizes(count)
    payloads = [payload(i, size) for i, size in enumerate(size_list)]

    async def main() -> None:
        loop = asyncio.get_running_loop()
        rx_io, rx = await create_batched_endpoint(
            loop, Collector, local_addr=(host, 0), gso=gso, gro=gro
        )
        tx_io, _ = await create_batched_endpoint(
            loop, Collector, local_addr=(host, 0), gso=gso, gro=gro
        )
        try:
            dest = rx_io.get_extra_info("sockname")
            async with asyncio.timeout(TIMEOUT):
                await send_paced(tx_io, rx, [(p, dest) for p in payloads])
            assert rx.payloads == payloads
            src = tx_io.get_extra_info("sockname")
            assert all(same_peer(addr, src) for _, addr in rx.datagrams)

            tx, rs = tx_io.stats, rx_io.stats
            assert tx.datagrams_sent == count and rs.datagrams_received == count
            assert tx.send_drops == 0 and tx.fallbacks == 0
            assert rs.recv_wakeups == len(rx.batch_sizes)
            assert rs.datagrams_received / rs.recv_wakeups > 1
            assert tx_io.gso_enabled == (gso and HAVE_GSO)
            assert rx_io.gro_enabled == (gro and HAVE_GRO)
            if gso and HAVE_GSO:
                assert tx.gso_sends > 0
                assert tx.send_calls < count
            else:
                assert tx.gso_sends == 0
                assert tx.send_calls == count
            if gso and gro and HAVE_GSO and HAVE_GRO:
                assert rs.gro_batches > 0  # loopback hands the GSO super-datagram over whole
            else:
                assert rs.gro_batches == 0
        finally:
            tx_io.close()
            rx_io.close()

    run(main)


@pytest.mark.parametrize("host", HOSTS)
def test_max_batch_bounds_each_delivery(run: Runner[None], host: str) -> None:
    """A wake-up returns to the loop after ``max_batch`` datagrams; the reader fires again."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        rx = Collector()
        rx_sock = make_udp_socket((host, 0))
        rx_io = BatchedDatagramIO(loop, rx_sock, rx, gro=False, max_batch=16)
        tx_io, _ = await create_batched_endpoint(loop, Collector, local_addr=(host, 0))
        try:
            dest = rx_io.get_extra_info("sockname")
            payloads = [payload(i, 300) for i in range(500)]
            async with asyncio.timeout(TIMEOUT):
                await send_paced(tx_io, rx, [(p, dest) for p in payloads], chunk=500)
            assert rx.payloads == payloads
            assert max(rx.batch_sizes) == 16
            assert len(rx.batch_sizes) >= 500 // 16
        finally:
            tx_io.close()
            rx_io.close()

    run(main)


# --- grouping ---------------------------------------------------------------------------------


class RecordingSocket(socket.socket):
    """A real UDP socket that records each send as (segment size or None, sizes, address)."""

    def __init__(self, family: int) -> None:
        super().__init__(family, socket.SOCK_DGRAM)
        self.sends: list[tuple[int | None, int, Addr]] = []

    def sendto(self, data: Any, *args: Any) -> int:
        self.sends.append((None, len(data), args[-1]))
        return super().sendto(data, *args)

    def sendmsg(
        self,
        buffers: Iterable[Any],
        ancdata: Iterable[Any] = (),
        flags: int = 0,
        address: Any = None,
    ) -> int:
        buffers = list(buffers)
        ancdata = list(ancdata)
        seg = None
        for level, kind, data in ancdata:
            if level == SOL_UDP and kind == UDP_SEGMENT:
                seg = struct.unpack("=H", data)[0]
        self.sends.append((seg, sum(len(b) for b in buffers), address))
        return super().sendmsg(buffers, ancdata, flags, address)


S = TypeVar("S", bound=socket.socket)


def _bound(sock: S, host: str) -> S:
    sock.bind((host, 0))
    sock.setblocking(False)
    return sock


def _expected_sends(groups: list[tuple[int | None, list[int], Addr]]) -> list[tuple[Any, ...]]:
    return [(seg, sum(sizes), addr) for seg, sizes, addr in groups]


@needs_gso
@pytest.mark.parametrize("host", HOSTS)
def test_groups_split_at_address_and_size_changes(run: Runner[None], host: str) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        a_io, a = await create_batched_endpoint(loop, Collector, local_addr=(host, 0))
        b_io, b = await create_batched_endpoint(loop, Collector, local_addr=(host, 0))
        sock = _bound(RecordingSocket(family), host)
        tx_io = BatchedDatagramIO(loop, sock, Collector())
        try:
            addr_a = a_io.get_extra_info("sockname")
            addr_b = b_io.get_extra_info("sockname")
            plan: list[tuple[int, Addr]] = (
                [(100, addr_a)] * 3
                + [(100, addr_b)] * 2
                + [(100, addr_a)]
                + [(100, addr_b)] * 3
                # to A: equal run closed by a shorter one, a longer one starts a new group,
                # a shorter after a shorter is alone, empty datagrams never join
                + [(s, addr_a) for s in (100, 100, 100, 50, 100, 100, 200, 50, 50, 0, 0, 7)]
                + [(1000, addr_a)] * 100  # the segment cap
                + [(1400, addr_b)] * 100  # the byte cap
            )
            datagrams = [(payload(i, size), addr) for i, (size, addr) in enumerate(plan)]
            tx_io.send_batch(datagrams)
            per_seg_cap = MAX_GSO_BYTES // 1400
            assert per_seg_cap < MAX_GSO_SEGMENTS
            expected = _expected_sends(
                [
                    (100, [100] * 3, addr_a),
                    (100, [100] * 2, addr_b),
                    (None, [100], addr_a),
                    (100, [100] * 3, addr_b),
                    (100, [100, 100, 100, 50], addr_a),
                    (100, [100, 100], addr_a),
                    (200, [200, 50], addr_a),
                    (None, [50], addr_a),
                    (None, [0], addr_a),
                    (None, [0], addr_a),
                    (None, [7], addr_a),
                    (1000, [1000] * MAX_GSO_SEGMENTS, addr_a),
                    (1000, [1000] * (100 - MAX_GSO_SEGMENTS), addr_a),
                    (1400, [1400] * per_seg_cap, addr_b),
                    (1400, [1400] * per_seg_cap, addr_b),
                    (1400, [1400] * (100 - 2 * per_seg_cap), addr_b),
                ]
            )
            assert sock.sends == expected
            assert tx_io.stats.gso_sends == sum(1 for seg, _, _ in expected if seg is not None)
            assert tx_io.stats.send_calls == len(expected)
            assert tx_io.stats.datagrams_sent == len(plan)

            want_a = [d for d, addr in datagrams if addr is addr_a]
            want_b = [d for d, addr in datagrams if addr is addr_b]
            async with asyncio.timeout(TIMEOUT):
                await a.wait_count(len(want_a))
                await b.wait_count(len(want_b))
            assert a.payloads == want_a
            assert b.payloads == want_b
        finally:
            tx_io.close()
            a_io.close()
            b_io.close()

    run(main)


# --- GSO refused by the kernel ----------------------------------------------------------------


class GsoRefusingSocket(socket.socket):
    """Refuses any sendmsg that carries a control message, as a device without checksum
    offload does (EIO from udp_send_skb), or with a chosen errno."""

    def __init__(self, family: int, code: int = errno.EIO, times: int | None = None) -> None:
        super().__init__(family, socket.SOCK_DGRAM)
        self.code = code
        self.times = times
        self.refusals = 0

    def sendmsg(
        self,
        buffers: Iterable[Any],
        ancdata: Iterable[Any] = (),
        flags: int = 0,
        address: Any = None,
    ) -> int:
        ancdata = list(ancdata)
        if ancdata and (self.times is None or self.refusals < self.times):
            self.refusals += 1
            raise OSError(self.code, "refused by the test")
        return super().sendmsg(buffers, ancdata, flags, address)


@needs_gso
@pytest.mark.parametrize("code", [errno.EIO, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOPROTOOPT])
def test_gso_refusal_falls_back_for_good(run: Runner[None], code: int) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        rx_io, rx = await create_batched_endpoint(loop, Collector, local_addr=("127.0.0.1", 0))
        sock = _bound(GsoRefusingSocket(socket.AF_INET, code), "127.0.0.1")
        errors = Collector()
        tx_io = BatchedDatagramIO(loop, sock, errors)
        try:
            assert tx_io.gso_enabled
            dest = rx_io.get_extra_info("sockname")
            payloads = [payload(i, 1224) for i in range(300)]
            tx_io.send_batch([(p, dest) for p in payloads[:150]])
            assert not tx_io.gso_enabled
            tx_io.send_batch([(p, dest) for p in payloads[150:]])
            async with asyncio.timeout(TIMEOUT):
                await rx.wait_count(len(payloads))
            assert rx.payloads == payloads
            stats = tx_io.stats
            assert stats.fallbacks == 1 and sock.refusals == 1
            assert stats.gso_sends == 0 and stats.send_drops == 0
            assert stats.send_calls == stats.datagrams_sent == len(payloads)
            assert errors.errors == []  # a fallback is not a network error
        finally:
            tx_io.close()
            rx_io.close()

    run(main)


@needs_gso
def test_group_too_long_for_the_path_is_resent_plainly(run: Runner[None]) -> None:
    """EMSGSIZE on a GSO send splits that group only; GSO stays on."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        rx_io, rx = await create_batched_endpoint(loop, Collector, local_addr=("127.0.0.1", 0))
        sock = _bound(GsoRefusingSocket(socket.AF_INET, errno.EMSGSIZE, times=1), "127.0.0.1")
        tx_io = BatchedDatagramIO(loop, sock, Collector())
        try:
            dest = rx_io.get_extra_info("sockname")
            payloads = [payload(i, 1000) for i in range(20)]
            tx_io.send_batch([(p, dest) for p in payloads])
            tx_io.send_batch([(p, dest) for p in payloads])
            async with asyncio.timeout(TIMEOUT):
                await rx.wait_count(40)
            assert rx.payloads == payloads * 2
            assert tx_io.gso_enabled and tx_io.stats.fallbacks == 0
            assert tx_io.stats.send_calls == 20 + 1 and tx_io.stats.gso_sends == 1
        finally:
            tx_io.close()
            rx_io.close()

    run(main)


# --- a full socket buffer ---------------------------------------------------------------------


class BlockingSocket(socket.socket):
    """Raises ``exc`` on the send calls whose 1-based numbers are in ``fail_on``."""

    def __init__(self, family: int, fail_on: set[int], exc: Callable[[], OSError]) -> None:
        super().__init__(family, socket.SOCK_DGRAM)
        self.fail_on = fail_on
        self.exc = exc
        self.calls = 0

    def _gate(self) -> None:
        self.calls += 1
        if self.calls in self.fail_on:
            raise self.exc()

    def sendto(self, data: Any, *args: Any) -> int:
        self._gate()
        return super().sendto(data, *args)

    def sendmsg(
        self,
        buffers: Iterable[Any],
        ancdata: Iterable[Any] = (),
        flags: int = 0,
        address: Any = None,
    ) -> int:
        self._gate()
        return super().sendmsg(buffers, ancdata, flags, address)


FULL_BUFFER = [
    pytest.param(BlockingIOError, id="EAGAIN"),
    pytest.param(lambda: OSError(errno.ENOBUFS, "no buffer space"), id="ENOBUFS"),
]


@pytest.mark.parametrize("gso", [True, False], ids=["gso", "plain"])
@pytest.mark.parametrize("exc", FULL_BUFFER)
def test_full_buffer_queues_in_order_and_drains_when_writable(
    run: Runner[None], gso: bool, exc: Callable[[], OSError]
) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        rx_io, rx = await create_batched_endpoint(loop, Collector, local_addr=("127.0.0.1", 0))
        # The second send call finds the buffer full, and so does the first retry.
        sock = _bound(BlockingSocket(socket.AF_INET, {2, 3}, exc), "127.0.0.1")
        tx_io = BatchedDatagramIO(loop, sock, Collector(), gso=gso)
        try:
            dest = rx_io.get_extra_info("sockname")
            first = [payload(i, 1200) for i in range(100)]
            second = [payload(1000 + i, 700) for i in range(50)]
            tx_io.send_batch([(p, dest) for p in first])
            first_sent = min(MAX_GSO_SEGMENTS, MAX_GSO_BYTES // 1200) if gso and HAVE_GSO else 1
            assert tx_io.stats.datagrams_sent == first_sent
            assert tx_io.get_write_buffer_size() == 1200 * (100 - first_sent)
            calls = sock.calls
            tx_io.send_batch([(p, dest) for p in second])  # queues behind, no send attempt
            assert sock.calls == calls
            assert tx_io.get_write_buffer_size() == 1200 * (100 - first_sent) + 700 * 50
            async with asyncio.timeout(TIMEOUT):
                await rx.wait_count(150)
            assert rx.payloads == first + second
            assert tx_io.get_write_buffer_size() == 0
            assert tx_io.stats.send_drops == 0
            calls = sock.calls
            tx_io.send_batch([(b"after", dest)])  # the writer is gone: sent at once
            assert sock.calls == calls + 1
            assert tx_io.stats.datagrams_sent == 151
        finally:
            tx_io.close()
            rx_io.close()

    run(main)


def test_backlog_bound_drops_the_newest(run: Runner[None]) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        rx_io, rx = await create_batched_endpoint(loop, Collector, local_addr=("127.0.0.1", 0))
        sock = _bound(BlockingSocket(socket.AF_INET, {1}, BlockingIOError), "127.0.0.1")
        tx_io = BatchedDatagramIO(loop, sock, Collector(), max_backlog_bytes=10 * 1000)
        try:
            dest = rx_io.get_extra_info("sockname")
            payloads = [payload(i, 1000) for i in range(30)]
            tx_io.send_batch([(p, dest) for p in payloads[:25]])
            tx_io.send_batch([(p, dest) for p in payloads[25:]])
            assert tx_io.get_write_buffer_size() == 10 * 1000
            assert tx_io.stats.send_drops == 20
            async with asyncio.timeout(TIMEOUT):
                await rx.wait_count(10)
            assert rx.payloads == payloads[:10]
            assert tx_io.stats.datagrams_sent == 10
        finally:
            tx_io.close()
            rx_io.close()

    run(main)


def test_close_drops_the_backlog_and_later_sends(run: Runner[None]) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        sock = _bound(BlockingSocket(socket.AF_INET, {1}, BlockingIOError), "127.0.0.1")
        tx_io = BatchedDatagramIO(loop, sock, Collector(), gso=False)
        tx_io.send_batch([(b"x" * 10, ("127.0.0.1", 9))] * 5)
        assert tx_io.get_write_buffer_size() == 50
        tx_io.close()
        tx_io.close()
        assert tx_io.is_closing() and sock.fileno() == -1
        assert tx_io.stats.send_drops == 5 and tx_io.get_write_buffer_size() == 0
        tx_io.send_batch([(b"y", ("127.0.0.1", 9))] * 3)
        assert tx_io.stats.send_drops == 8

    run(main)


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize("host", HOSTS)
def test_icmp_port_unreachable_reaches_error_received(run: Runner[None], host: str) -> None:
    """Linux reports ICMP errors on a connected UDP socket (no IP_RECVERR needed) as
    ECONNREFUSED on the next receive or send."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.bind((host, 0))
            closed = probe.getsockname()
        sock = make_udp_socket((host, 0))
        sock.connect(closed)
        rx = Collector()
        io = BatchedDatagramIO(loop, sock, rx)
        try:
            assert same_peer(io.get_extra_info("peername"), closed)
            io.send_batch([(b"ping", closed)])
            async with asyncio.timeout(TIMEOUT):
                exc = await rx.wait_error()
            assert isinstance(exc, OSError) and exc.errno == errno.ECONNREFUSED
            assert not io.is_closing()
        finally:
            io.close()

    run(main)


class UnreachableSocket(socket.socket):
    """Every send to ``blocked`` fails with EHOSTUNREACH; the others go out."""

    def __init__(self, family: int, blocked: Addr) -> None:
        super().__init__(family, socket.SOCK_DGRAM)
        self.blocked = blocked

    def sendto(self, data: Any, *args: Any) -> int:
        if args[-1] == self.blocked:
            raise OSError(errno.EHOSTUNREACH, "no route to host")
        return super().sendto(data, *args)

    def sendmsg(
        self,
        buffers: Iterable[Any],
        ancdata: Iterable[Any] = (),
        flags: int = 0,
        address: Any = None,
    ) -> int:
        if address == self.blocked:
            raise OSError(errno.EHOSTUNREACH, "no route to host")
        return super().sendmsg(buffers, ancdata, flags, address)


def test_send_errors_are_reported_counted_and_skipped(run: Runner[None]) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        rx_io, rx = await create_batched_endpoint(loop, Collector, local_addr=("127.0.0.1", 0))
        blocked = ("127.0.0.1", 9)
        sock = _bound(UnreachableSocket(socket.AF_INET, blocked), "127.0.0.1")
        errors = Collector()
        tx_io = BatchedDatagramIO(loop, sock, errors)
        try:
            dest = rx_io.get_extra_info("sockname")
            good = [payload(i, 500) for i in range(10)]
            batch = (
                [(p, dest) for p in good[:5]]
                + [(b"z" * 500, blocked)] * 4
                + [(b"lone", blocked)]
                + [(p, dest) for p in good[5:]]
            )
            tx_io.send_batch(batch)
            assert tx_io.stats.send_drops == 5
            # With GSO the four 500-byte ones and the shorter "lone" form one refused group.
            assert len(errors.errors) == (1 if HAVE_GSO else 5)
            assert all(e.errno == errno.EHOSTUNREACH for e in errors.errors)
            async with asyncio.timeout(TIMEOUT):
                await rx.wait_count(10)
            assert rx.payloads == good
        finally:
            tx_io.close()
            rx_io.close()

    run(main)


class TruncatingSocket(socket.socket):
    """Reports the next GRO receive as cut after ``keep`` bytes (MSG_TRUNC), as a receive
    larger than the buffer would be."""

    def __init__(self, family: int, keep: int) -> None:
        super().__init__(family, socket.SOCK_DGRAM)
        self.keep: int | None = keep

    def recvmsg_into(self, buffers: Any, *args: Any) -> Any:
        nbytes, ancdata, flags, addr = super().recvmsg_into(buffers, *args)
        if self.keep is not None:
            nbytes, self.keep = min(nbytes, self.keep), None
            flags |= socket.MSG_TRUNC
        return nbytes, ancdata, flags, addr


@needs_gso
@pytest.mark.skipif(not HAVE_GRO, reason="kernel without UDP_GRO")
def test_truncated_gro_receive_keeps_whole_segments(run: Runner[None]) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        rx = Collector()
        rx_sock = _bound(TruncatingSocket(socket.AF_INET, keep=4500), "127.0.0.1")
        rx_io = BatchedDatagramIO(loop, rx_sock, rx)
        tx_io, _ = await create_batched_endpoint(loop, Collector, local_addr=("127.0.0.1", 0))
        try:
            dest = rx_io.get_extra_info("sockname")
            payloads = [payload(i, 1000) for i in range(5)]
            tx_io.send_batch([(p, dest) for p in payloads])
            async with asyncio.timeout(TIMEOUT):
                exc = await rx.wait_error()
            assert exc.errno == errno.EMSGSIZE
            assert rx.payloads == payloads[:4]
            tx_io.send_batch([(p, dest) for p in payloads])
            async with asyncio.timeout(TIMEOUT):
                await rx.wait_count(9)
            assert rx.payloads == payloads[:4] + payloads
        finally:
            tx_io.close()
            rx_io.close()

    run(main)


# --- sockets and helpers ----------------------------------------------------------------------


def test_gro_cmsg_is_a_native_int() -> None:
    """The UDP_GRO control message carries the segment size as a C int (udp_cmsg_recv)."""
    if not (HAVE_GSO and HAVE_GRO):
        pytest.skip("kernel without GSO/GRO")
    rx = make_udp_socket(("127.0.0.1", 0))
    tx = make_udp_socket(("127.0.0.1", 0))
    try:
        rx.setsockopt(SOL_UDP, UDP_GRO, 1)
        rx.setblocking(True)
        rx.settimeout(TIMEOUT)
        tx.sendmsg(
            [b"a" * 3000], [(SOL_UDP, UDP_SEGMENT, struct.pack("=H", 1000))], 0, rx.getsockname()
        )
        nbytes, ancdata, _flags, _addr = rx.recvmsg_into([bytearray(65536)], socket.CMSG_SPACE(4))
        assert nbytes == 3000
        assert ancdata == [(SOL_UDP, UDP_GRO, struct.pack("@i", 1000))]
    finally:
        rx.close()
        tx.close()


def test_make_udp_socket_binds_nonblocking_with_large_buffers() -> None:
    sock = make_udp_socket(("127.0.0.1", 0), buffer_size=8 << 20)
    try:
        assert not sock.getblocking()
        assert sock.getsockname()[1] != 0
        rcv = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        snd = sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
        if sys.platform == "linux":
            with open("/proc/sys/net/core/rmem_max") as f:
                rmem_max = int(f.read())
            with open("/proc/sys/net/core/wmem_max") as f:
                wmem_max = int(f.read())
            # FORCE (root) gets the full size; otherwise the sysctl cap. Linux doubles both.
            assert rcv >= 2 * min(8 << 20, rmem_max)
            assert snd >= 2 * min(8 << 20, wmem_max)
    finally:
        sock.close()
    wildcard = make_udp_socket(None)
    try:
        assert wildcard.family == socket.AF_INET and wildcard.getsockname()[1] != 0
    finally:
        wildcard.close()
    if HAVE_IPV6:
        six = make_udp_socket(None, family=socket.AF_INET6, ipv6_only=True)
        try:
            assert six.family == socket.AF_INET6
            assert six.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 1
        finally:
            six.close()


def test_bind_failure_raises_oserror_and_reuse_port_shares(run: Runner[None]) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        first_io, _ = await create_batched_endpoint(loop, Collector, local_addr=("127.0.0.1", 0))
        try:
            taken = first_io.get_extra_info("sockname")
            with pytest.raises(OSError) as info:
                await create_batched_endpoint(loop, Collector, local_addr=taken)
            assert info.value.errno == errno.EADDRINUSE
        finally:
            first_io.close()
        if not hasattr(socket, "SO_REUSEPORT"):
            return
        a_io, _ = await create_batched_endpoint(
            loop, Collector, local_addr=("127.0.0.1", 0), reuse_port=True
        )
        try:
            port = a_io.get_extra_info("sockname")[1]
            b_io, _ = await create_batched_endpoint(
                loop, Collector, local_addr=("127.0.0.1", port), reuse_port=True
            )
            assert b_io.get_extra_info("sockname")[1] == port
            b_io.close()
        finally:
            a_io.close()

    run(main)


def test_create_endpoint_resolves_names_and_exposes_extra_info(run: Runner[None]) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        io, receiver = await create_batched_endpoint(
            loop, Collector, local_addr=("localhost", 0), family=socket.AF_INET
        )
        try:
            assert isinstance(receiver, Collector)
            sock = io.get_extra_info("socket")
            assert isinstance(sock, socket.socket)
            assert io.get_extra_info("sockname") == sock.getsockname()
            assert io.get_extra_info("sockname")[0] == "127.0.0.1"
            assert io.get_extra_info("peername") is None
            assert io.get_extra_info("peername", "none") == "none"
            assert io.get_extra_info("nonsense", 42) == 42
            name = io.get_extra_info("sockname")
        finally:
            io.close()
        assert io.is_closing()
        assert io.get_extra_info("sockname") == name  # still known after close

        wildcard_io, _ = await create_batched_endpoint(loop, Collector, local_addr=("", 0))
        try:
            assert wildcard_io.get_extra_info("sockname")[1] != 0
        finally:
            wildcard_io.close()

    run(main)


def test_constructor_rejects_a_zero_batch(run: Runner[None]) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            with pytest.raises(ValueError):
                BatchedDatagramIO(loop, sock, Collector(), max_batch=0)

    run(main)


def test_gro_off_is_enforced_when_not_wanted(run: Runner[None]) -> None:
    """A socket that arrives with GRO on must not feed glued datagrams to a plain reader."""
    if not HAVE_GRO:
        pytest.skip("kernel without UDP_GRO")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        sock = make_udp_socket(("127.0.0.1", 0))
        sock.setsockopt(SOL_UDP, UDP_GRO, 1)
        io = BatchedDatagramIO(loop, sock, Collector(), gro=False)
        try:
            assert not io.gro_enabled
            assert sock.getsockopt(SOL_UDP, UDP_GRO) == 0
        finally:
            io.close()

    run(main)


def test_probes_say_no_for_other_sockets() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
        assert not gso_supported(tcp)
        assert not gro_supported(tcp)
    closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    closed.close()
    assert not gso_supported(closed)
    assert not gro_supported(closed)
    if sys.platform == "linux":
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            assert gso_supported(udp) == HAVE_GSO


def test_family_for_host_and_resolve_remote(run: Runner[None]) -> None:
    assert family_for_host("127.0.0.1") == socket.AF_INET
    assert family_for_host("::1") == socket.AF_INET6
    assert family_for_host("fe80::1%lo") == socket.AF_INET6
    assert family_for_host("localhost") == socket.AF_UNSPEC

    async def main() -> None:
        loop = asyncio.get_running_loop()
        assert await resolve_remote(loop, "127.0.0.1", 5) == (socket.AF_INET, ("127.0.0.1", 5))
        assert await resolve_remote(loop, "::1", 5) == (socket.AF_INET6, ("::1", 5, 0, 0))
        fam, addr = await resolve_remote(loop, "localhost", 7, family=socket.AF_INET)
        assert fam == socket.AF_INET and addr == ("127.0.0.1", 7)

    run(main)
