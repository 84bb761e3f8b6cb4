"""Batched UDP socket I/O for Linux behind the ``DatagramIO`` interface.

The loop's own datagram transport costs one system call and one callback per datagram: about
70k datagrams/s in, and ~0.6 GB/s out on loopback. Two kernel features remove most of that:

* **GSO** (generic segmentation offload, ``UDP_SEGMENT``; linux/udp.h, since 4.18): one
  ``sendmsg`` carries up to 64 equal-size datagrams (the last may be shorter), with the segment
  size in a ``SOL_UDP``/``UDP_SEGMENT`` control message. The kernel (or the NIC) splits it.
* **GRO** (generic receive offload, ``UDP_GRO``; linux/udp.h, since 5.0): with the socket option
  on, one ``recvmsg`` may return several datagrams of one flow glued together, with the segment
  size in a ``UDP_GRO`` control message (a native ``int``).

``BatchedDatagramIO`` reads with ``loop.add_reader`` until ``EAGAIN`` (or ``max_batch``
datagrams) per wake-up and hands the whole list to the receiver at once, and sends runs of
datagrams to one address as GSO super-datagrams. Where GSO or GRO is missing (older kernels,
other systems, devices without checksum offload) it falls back to one ``sendto`` /
``recvfrom_into`` per datagram, still draining the socket per wake-up.
"""

from __future__ import annotations

import asyncio
import errno
import platform
import socket
import struct
import sys
from collections import deque
from collections.abc import Callable, Sequence
from itertools import islice
from typing import Any, TypeVar

from .dgram import Addr, DatagramReceiver, IOStats

__all__ = [
    "MAX_GSO_BYTES",
    "MAX_GSO_SEGMENTS",
    "SOL_UDP",
    "UDP_GRO",
    "UDP_SEGMENT",
    "BatchedDatagramIO",
    "create_batched_endpoint",
    "family_for_host",
    "gro_supported",
    "gso_supported",
    "make_udp_socket",
    "resolve_remote",
    "set_buffer_sizes",
]

_IS_LINUX = sys.platform == "linux"

# linux/udp.h; the socket module of Python 3.11 does not export them.
SOL_UDP = 17  # == IPPROTO_UDP, the option level of UDP socket options and control messages
UDP_SEGMENT = 103  # GSO segment size, setsockopt or per-sendmsg cmsg (u16), since 4.18
UDP_GRO = 104  # receive coalesced datagrams + UDP_GRO cmsg (int segment size), since 5.0

# UDP_MAX_SEGMENTS (include/linux/udp.h) was 64 from 4.18 and is 128 in recent kernels (6.18
# takes 128, refuses 129 with EINVAL); 64 is accepted everywhere, and more would exceed the byte
# limit below at any segment size above 1023 bytes anyway.
MAX_GSO_SEGMENTS = 64

# One GSO send is one UDP datagram before segmentation, so its payload obeys the IP length
# limit: 65535 - 20 (IPv4 header) - 8 (UDP header) = 65507 bytes over IPv4. Over IPv6 the kernel
# takes 65527 (65535 - 8: the IPv6 payload length excludes the fixed header; checked on 6.18),
# but an AF_INET6 socket may send to an IPv4-mapped address, so the IPv4 limit applies to both.
MAX_GSO_BYTES = 65507

# Errors from a GSO sendmsg that mean "no segmentation offload on this route or device": EIO
# when the device cannot checksum (or on an xfrm route), EINVAL when the socket or route rules
# GSO out (no UDP checksum, a segment larger than the path MTU), EOPNOTSUPP / ENOPROTOOPT from
# kernels or stacks that do not know the control message.
_GSO_UNSUPPORTED = frozenset({errno.EIO, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOPROTOOPT})

# SO_RCVBUFFORCE / SO_SNDBUFFORCE (asm-generic/socket.h, since 2.6.14) ignore rmem_max/wmem_max
# for CAP_NET_ADMIN. The numbers differ on a few architectures, where they are not tried.
SO_RCVBUFFORCE = 33
SO_SNDBUFFORCE = 32
_FORCE_BUFFERS = _IS_LINUX and not platform.machine().startswith(
    ("mips", "alpha", "parisc", "sparc", "hppa")
)

DEFAULT_BUFFER_SIZE = 8 * 1024 * 1024
DEFAULT_MAX_BACKLOG_BYTES = 4 * 1024 * 1024

# The largest UDP payload is 65527 bytes (IPv6); a GRO receive is capped by the device's
# gro_max_size, 64 KiB unless BIG TCP raised it. The buffer starts with headroom and doubles,
# up to the cap, when a coalesced receive comes back truncated.
RECV_BUFFER_SIZE = 1 << 17
_RECV_BUFFER_CAP = 1 << 21

_FLUSH_CHUNK = 1024  # datagrams taken from the backlog per send attempt

_pack_u16 = struct.Struct("=H").pack  # UDP_SEGMENT cmsg payload: u16 (udp_cmsg_send)
_unpack_int = struct.Struct("@i").unpack  # UDP_GRO cmsg payload: int (udp_cmsg_recv)

R = TypeVar("R", bound=DatagramReceiver)


def gso_supported(sock: socket.socket) -> bool:
    """Whether the kernel knows ``UDP_SEGMENT`` for ``sock`` (Linux 4.18+).

    Probing matters: an older kernel ignores an unknown ``SOL_UDP`` control message, so a GSO
    send would leave as one oversized datagram instead of failing. ``getsockopt`` does not
    change the socket. Never raises.
    """
    if not _IS_LINUX:
        return False
    try:
        if sock.type != socket.SOCK_DGRAM or sock.family not in (socket.AF_INET, socket.AF_INET6):
            return False
        sock.getsockopt(SOL_UDP, UDP_SEGMENT)
    except (OSError, ValueError):
        return False
    return True


def gro_supported(sock: socket.socket) -> bool:
    """Whether the kernel knows ``UDP_GRO`` for ``sock`` (Linux 5.0+).

    The ``getsockopt`` form of ``UDP_GRO`` came in later kernels than the option itself; where
    it is missing the probe sets the option to 0 instead (GRO off), which is harmless for a
    socket not yet read with GRO. Never raises.
    """
    if not _IS_LINUX:
        return False
    try:
        if sock.type != socket.SOCK_DGRAM or sock.family not in (socket.AF_INET, socket.AF_INET6):
            return False
    except (OSError, ValueError):
        return False
    try:
        sock.getsockopt(SOL_UDP, UDP_GRO)
        return True
    except (OSError, ValueError):
        pass
    try:
        sock.setsockopt(SOL_UDP, UDP_GRO, 0)
    except (OSError, ValueError):
        return False
    return True


def set_buffer_sizes(sock: socket.socket, size: int) -> tuple[int, int]:
    """Make the socket's receive and send buffers as close to ``size`` as allowed.

    A bulk sender on loopback fills a default 208 KiB receive buffer in well under a
    millisecond, and every overflow is a silent drop. The FORCE options bypass
    ``net.core.rmem_max``/``wmem_max`` when privileged; otherwise the plain options are clamped
    to those limits by the kernel. Returns the (receive, send) sizes the kernel reports (Linux
    reports twice the request, counting its bookkeeping overhead).
    """
    for force, plain in ((SO_RCVBUFFORCE, socket.SO_RCVBUF), (SO_SNDBUFFORCE, socket.SO_SNDBUF)):
        if _FORCE_BUFFERS:
            try:
                sock.setsockopt(socket.SOL_SOCKET, force, size)
                continue
            except OSError:
                pass  # EPERM without CAP_NET_ADMIN
        try:
            sock.setsockopt(socket.SOL_SOCKET, plain, size)
        except OSError:
            pass  # keep the default buffer
    return (
        sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF),
        sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF),
    )


def family_for_host(host: str) -> int:
    """``AF_INET`` or ``AF_INET6`` for an address literal, ``AF_UNSPEC`` for a name.

    A literal (``"::1"``, ``"fe80::1%eth0"``, ``"127.0.0.1"``) decides the socket family without
    a resolver round trip; a name needs ``getaddrinfo`` (see ``resolve_remote``).
    """
    try:
        socket.inet_pton(socket.AF_INET, host)
        return socket.AF_INET
    except (OSError, ValueError):
        pass
    try:
        socket.inet_pton(socket.AF_INET6, host.partition("%")[0])
        return socket.AF_INET6
    except (OSError, ValueError):
        return socket.AF_UNSPEC


async def resolve_remote(
    loop: asyncio.AbstractEventLoop, host: str, port: int, *, family: int = 0
) -> tuple[int, Addr]:
    """The socket family and address to send to ``host``:``port`` (the first resolver answer).

    Literals without a scope id skip the resolver; names are resolved on the loop's executor so
    a slow DNS server never blocks the loop.
    """
    literal = family_for_host(host)
    if literal != socket.AF_UNSPEC and "%" not in host and family in (0, literal):
        if literal == socket.AF_INET6:
            return literal, (host, port, 0, 0)
        return literal, (host, port)
    infos = await loop.getaddrinfo(
        host, port, family=family, type=socket.SOCK_DGRAM, proto=socket.IPPROTO_UDP
    )
    if not infos:
        raise OSError(f"getaddrinfo({host!r}, {port!r}) returned no address")
    fam, _type, _proto, _canon, sockaddr = infos[0]
    return int(fam), tuple(sockaddr)


def _bind_candidates(local_addr: Addr | None, family: int) -> list[tuple[int, Addr]]:
    if local_addr is None:
        # Bind the wildcard at once, so the sockname (and the port) is known before the first
        # send, and reads work before any write.
        if family == socket.AF_INET6:
            return [(socket.AF_INET6, ("::", 0))]
        return [(socket.AF_INET, ("0.0.0.0", 0))]
    host, port = local_addr[0] or None, local_addr[1]  # "" is the wildcard, as in asyncio
    infos = socket.getaddrinfo(
        host, port, family, socket.SOCK_DGRAM, socket.IPPROTO_UDP, socket.AI_PASSIVE
    )
    out: list[tuple[int, Addr]] = []
    for fam, _type, _proto, _canon, sockaddr in infos:
        item = (int(fam), tuple(sockaddr))
        if item not in out:
            out.append(item)
    if not out:
        raise OSError(f"getaddrinfo({host!r}, {port!r}) returned no address")
    return out


def make_udp_socket(
    local_addr: Addr | None,
    *,
    family: int = 0,
    reuse_port: bool = False,
    buffer_size: int = DEFAULT_BUFFER_SIZE,
    ipv6_only: bool | None = None,
) -> socket.socket:
    """A bound, non-blocking UDP socket with large buffers.

    ``local_addr`` is ``(host, port)`` (names are resolved here, synchronously: pass a literal,
    or resolve first, when on a loop), or ``None`` for the wildcard of ``family`` (IPv4 when 0)
    on an ephemeral port. Each resolved address is tried in turn; the last bind error is raised
    as ``OSError``, as ``loop.create_datagram_endpoint`` does. ``ipv6_only`` sets
    ``IPV6_V6ONLY`` on an IPv6 socket (``None`` keeps the system default), which a server
    needs to bind ``0.0.0.0`` and ``::`` to the same port.
    """
    if reuse_port and not hasattr(socket, "SO_REUSEPORT"):
        raise ValueError("reuse_port is not supported on this platform")
    last_exc: OSError | None = None
    for fam, addr in _bind_candidates(local_addr, family):
        sock = socket.socket(fam, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        try:
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if ipv6_only is not None and fam == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(ipv6_only))
            set_buffer_sizes(sock, buffer_size)
            sock.bind(addr)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            last_exc = exc
            continue
        except BaseException:
            sock.close()
            raise
        return sock
    assert last_exc is not None  # _bind_candidates never returns an empty list
    raise last_exc


class BatchedDatagramIO:
    """``DatagramIO`` over a raw UDP socket: drain per wake-up, GRO in, GSO out.

    Reads: one ``add_reader`` callback drains the socket until ``EAGAIN`` or ``max_batch``
    datagrams (then returns, so other callbacks run; the level-triggered reader fires again),
    splits GRO super-datagrams by their segment size and calls ``datagrams_received`` once with
    the whole list. Writes: consecutive datagrams to the same address, of one size with only
    the last allowed shorter, leave as one GSO ``sendmsg``; a lone datagram as ``sendto``. When
    the socket buffer is full the rest waits in a FIFO bounded by ``max_backlog_bytes`` and
    is flushed from ``add_writer``; later ``send_batch`` calls queue behind it, so order holds.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        receiver: DatagramReceiver,
        *,
        gso: bool = True,
        gro: bool = True,
        max_batch: int = 1024,
        max_backlog_bytes: int = DEFAULT_MAX_BACKLOG_BYTES,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._loop = loop
        self._sock = sock
        self._fd = sock.fileno()
        self._receiver = receiver
        self._max_batch = max_batch
        self._max_backlog_bytes = max_backlog_bytes
        self._stats = IOStats()
        self._closed = False
        self._gso = gso and gso_supported(sock)
        self._gro = False
        if gro and gro_supported(sock):
            try:
                sock.setsockopt(SOL_UDP, UDP_GRO, 1)
                self._gro = True
            except OSError:
                pass
        elif _IS_LINUX and gro_supported(sock):
            # Someone may have switched GRO on: plain reads would then see glued datagrams.
            try:
                sock.setsockopt(SOL_UDP, UDP_GRO, 0)
            except OSError:
                pass
        self._recv_buf = bytearray(RECV_BUFFER_SIZE)
        self._recv_view = memoryview(self._recv_buf)
        self._recv_bufs = [self._recv_view]
        self._anc_size = socket.CMSG_SPACE(4) * 2 if self._gro else 0
        self._backlog: deque[tuple[bytes, Addr]] = deque()
        self._backlog_bytes = 0
        self._writing = False
        self._send_errors: list[OSError] = []
        self._sockname: Any = None
        self._peername: Any = None
        sock.setblocking(False)
        loop.add_reader(self._fd, self._read_gro if self._gro else self._read_plain)

    # --- introspection ---------------------------------------------------------------------

    @property
    def stats(self) -> IOStats:
        return self._stats

    @property
    def gso_enabled(self) -> bool:
        """Whether sends are grouped into GSO super-datagrams (off after a kernel refusal)."""
        return self._gso

    @property
    def gro_enabled(self) -> bool:
        """Whether the socket receives GRO-coalesced datagrams."""
        return self._gro

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """``socket`` (the raw socket), ``sockname``, ``peername`` (``None`` if unconnected)."""
        if name == "socket":
            return self._sock
        # Asked of the socket while it is open (it may be bound on the first send, or connected
        # later); the last answer is kept for after close().
        if name == "sockname":
            if not self._closed:
                try:
                    self._sockname = self._sock.getsockname()
                except OSError:
                    pass
            return self._sockname if self._sockname is not None else default
        if name == "peername":
            if not self._closed:
                try:
                    self._peername = self._sock.getpeername()
                except OSError:
                    pass  # ENOTCONN: not connected
            return self._peername if self._peername is not None else default
        return default

    def get_write_buffer_size(self) -> int:
        """Bytes waiting for the socket buffer to drain (the asyncio transport name)."""
        return self._backlog_bytes

    def is_closing(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Stop reading and writing and close the socket; queued datagrams are dropped."""
        if self._closed:
            return
        self.get_extra_info("sockname")  # keep the names for after close
        self.get_extra_info("peername")
        self._closed = True
        self._loop.remove_reader(self._fd)
        if self._writing:
            self._loop.remove_writer(self._fd)
            self._writing = False
        self._stats.send_drops += len(self._backlog)
        self._backlog.clear()
        self._backlog_bytes = 0
        self._sock.close()

    # --- receive ---------------------------------------------------------------------------

    def _read_gro(self) -> None:
        """Reader callback with GRO: ``recvmsg_into`` until EAGAIN, split by segment size."""
        recvmsg_into = self._sock.recvmsg_into
        bufs = self._recv_bufs
        view = self._recv_view
        anc_size = self._anc_size
        limit = self._max_batch
        out: list[tuple[bytes, Addr]] = []
        append = out.append
        count = 0
        coalesced = 0
        error: OSError | None = None
        while count < limit:
            try:
                nbytes, ancdata, flags, addr = recvmsg_into(bufs, anc_size)
            except BlockingIOError:
                break
            except OSError as exc:
                error = exc  # e.g. ECONNREFUSED from an ICMP error on a connected socket
                break
            seg = 0
            if ancdata:
                for level, kind, data in ancdata:
                    if level == SOL_UDP and kind == UDP_GRO:
                        seg = _unpack_int(data)[0]
            if flags & socket.MSG_TRUNC:
                error = self._truncated(nbytes, seg)
                nbytes -= nbytes % seg if seg else nbytes  # only whole segments are good
                if not nbytes:
                    break
            if 0 < seg < nbytes:
                coalesced += 1
                received = view[:nbytes]  # slices of it stop at nbytes: the last may be shorter
                for off in range(0, nbytes, seg):
                    append((received[off : off + seg].tobytes(), addr))
                count += -(-nbytes // seg)
            else:
                append((view[:nbytes].tobytes(), addr))
                count += 1
            if error is not None:
                break
        if out:
            stats = self._stats
            stats.recv_wakeups += 1
            stats.datagrams_received += len(out)
            stats.gro_batches += coalesced
            self._receiver.datagrams_received(out)
        if error is not None and not self._closed:
            self._receiver.error_received(error)

    def _truncated(self, nbytes: int, seg: int) -> OSError:
        """A receive did not fit the buffer: grow it for next time and report the loss."""
        size = len(self._recv_buf)
        if size < _RECV_BUFFER_CAP:
            self._recv_buf = bytearray(size * 2)
            self._recv_view = memoryview(self._recv_buf)
            self._recv_bufs = [self._recv_view]
        what = f"GRO receive of segment size {seg}" if seg else "datagram"
        return OSError(errno.EMSGSIZE, f"{what} truncated to {nbytes} bytes (buffer grown)")

    def _read_plain(self) -> None:
        """Reader callback without GRO: ``recvfrom_into`` until EAGAIN or ``max_batch``."""
        recvfrom_into = self._sock.recvfrom_into
        buf = self._recv_buf
        view = self._recv_view
        limit = self._max_batch
        out: list[tuple[bytes, Addr]] = []
        append = out.append
        error: OSError | None = None
        for _ in range(limit):
            try:
                nbytes, addr = recvfrom_into(buf)
            except BlockingIOError:
                break
            except OSError as exc:
                error = exc
                break
            append((view[:nbytes].tobytes(), addr))
        if out:
            stats = self._stats
            stats.recv_wakeups += 1
            stats.datagrams_received += len(out)
            self._receiver.datagrams_received(out)
        if error is not None and not self._closed:
            self._receiver.error_received(error)

    # --- send ------------------------------------------------------------------------------

    def send_batch(self, datagrams: Sequence[tuple[bytes, Addr]]) -> None:
        """Send every datagram in order; never raises for network conditions.

        A full socket buffer queues the rest (bounded); other kernel refusals are counted in
        ``send_drops`` and reported through ``receiver.error_received``.
        """
        if self._closed:
            self._stats.send_drops += len(datagrams)
            return
        if self._backlog:
            self._enqueue(datagrams, 0)
            return
        sent = self._send_from(datagrams, 0)
        if sent < len(datagrams) and not self._closed:
            self._enqueue(datagrams, sent)
        if self._send_errors:
            self._report_send_errors()

    def _send_from(self, datagrams: Sequence[tuple[bytes, Addr]], i: int) -> int:
        """Send ``datagrams[i:]``; return the index of the first one the socket had no room for.

        Errors other than a full buffer are collected in ``_send_errors`` and reported by the
        caller after the loop, so a receiver that sends from ``error_received`` cannot interleave
        its datagrams into this batch.
        """
        n = len(datagrams)
        sock = self._sock
        sendto = sock.sendto
        stats = self._stats
        gso = self._gso
        plain_until = 0  # a group refused as too long for the path leaves datagram by datagram
        while i < n:
            data, addr = datagrams[i]
            size = len(data)
            j = i + 1
            if gso and size and i >= plain_until:
                end = i + MAX_GSO_SEGMENTS
                if end > n:
                    end = n
                total = size
                parts = [data]
                # Equal sizes, same address; a shorter one closes the group. Zero-length ones
                # never join: GSO cannot express an empty segment.
                while j < end:
                    data2, addr2 = datagrams[j]
                    size2 = len(data2)
                    if addr2 != addr or not 0 < size2 <= size:
                        break
                    total += size2
                    if total > MAX_GSO_BYTES:
                        break
                    parts.append(data2)
                    j += 1
                    if size2 != size:
                        break
            try:
                if j - i == 1:
                    sendto(data, addr)
                else:
                    sock.sendmsg(
                        [b"".join(parts)], [(SOL_UDP, UDP_SEGMENT, _pack_u16(size))], 0, addr
                    )
                    stats.gso_sends += 1
            except BlockingIOError:
                return i
            except OSError as exc:
                code = exc.errno
                if code == errno.ENOBUFS:
                    return i  # device queue or socket memory full: retry when writable
                if j - i > 1:
                    if code in _GSO_UNSUPPORTED:
                        gso = self._gso = False  # no segmentation offload here: for good
                        stats.fallbacks += 1
                        continue  # resend this group datagram by datagram
                    if code == errno.EMSGSIZE:
                        plain_until = j  # this group only (e.g. IP options ate the headroom)
                        continue
                stats.send_drops += j - i
                self._send_errors.append(exc)
                i = j
                continue
            stats.send_calls += 1
            stats.datagrams_sent += j - i
            i = j
        return n

    def _enqueue(self, datagrams: Sequence[tuple[bytes, Addr]], start: int) -> None:
        """Queue ``datagrams[start:]`` behind the backlog; drop what exceeds the bound."""
        backlog = self._backlog
        queued = self._backlog_bytes
        limit = self._max_backlog_bytes
        dropped = 0
        for item in islice(datagrams, start, None):
            size = len(item[0])
            if queued + size > limit:
                dropped += 1  # drop the newest: the oldest are the protocol's earliest sends
                continue
            backlog.append(item)
            queued += size
        self._backlog_bytes = queued
        self._stats.send_drops += dropped
        if backlog and not self._writing:
            self._loop.add_writer(self._fd, self._on_writable)
            self._writing = True

    def _on_writable(self) -> None:
        """Writer callback: flush the backlog in order until the socket is full again."""
        backlog = self._backlog
        while backlog and not self._closed:
            chunk = list(islice(backlog, 0, _FLUSH_CHUNK))
            sent = self._send_from(chunk, 0)
            if self._closed:
                break
            popleft = backlog.popleft
            freed = 0
            for _ in range(sent):
                freed += len(popleft()[0])
            self._backlog_bytes -= freed
            if sent < len(chunk):
                break
        if not backlog and self._writing:
            self._loop.remove_writer(self._fd)
            self._writing = False
        if self._send_errors:
            self._report_send_errors()

    def _report_send_errors(self) -> None:
        errors = self._send_errors
        self._send_errors = []
        for exc in errors:
            if self._closed:
                break
            self._receiver.error_received(exc)


async def create_batched_endpoint(
    loop: asyncio.AbstractEventLoop,
    receiver_factory: Callable[[], R],
    *,
    local_addr: Addr | None = None,
    family: int = 0,
    reuse_port: bool = False,
    gso: bool = True,
    gro: bool = True,
) -> tuple[BatchedDatagramIO, R]:
    """Bind a UDP socket, build the receiver and start batched I/O on it.

    The counterpart of ``loop.create_datagram_endpoint``: host names in ``local_addr`` are
    resolved on the executor first, each address is tried in turn, and a bind failure raises
    ``OSError``.
    """
    candidates: list[tuple[int, Addr | None]]
    if local_addr is None:
        candidates = [(family, None)]
    else:
        host, port = local_addr[0], local_addr[1]
        if not host or family_for_host(host) != socket.AF_UNSPEC:
            candidates = [(family, local_addr)]
        else:
            infos = await loop.getaddrinfo(
                host,
                port,
                family=family,
                type=socket.SOCK_DGRAM,
                proto=socket.IPPROTO_UDP,
                flags=socket.AI_PASSIVE,
            )
            candidates = []
            for fam, _type, _proto, _canon, sockaddr in infos:
                item = (int(fam), tuple(sockaddr))
                if item not in candidates:
                    candidates.append(item)
            if not candidates:
                raise OSError(f"getaddrinfo({host!r}, {port!r}) returned no address")
    sock: socket.socket | None = None
    last_exc: OSError | None = None
    for candidate_family, candidate_addr in candidates:
        try:
            sock = make_udp_socket(candidate_addr, family=candidate_family, reuse_port=reuse_port)
            break
        except OSError as exc:
            last_exc = exc
    if sock is None:
        assert last_exc is not None
        raise last_exc
    try:
        receiver = receiver_factory()
        io = BatchedDatagramIO(loop, sock, receiver, gso=gso, gro=gro)
    except BaseException:
        sock.close()
        raise
    return io, receiver
