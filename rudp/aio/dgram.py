"""The seam between the endpoint protocol and whatever moves its datagrams.

``EndpointProtocol`` sends through a ``DatagramIO`` and receives through the
``DatagramReceiver`` methods, so the same protocol runs over the loop's own datagram transport
(``PlainDatagramIO``), over the batched Linux socket I/O (``udpio.BatchedDatagramIO``), or
behind a seeded impairment (``impairment.ImpairedIO``).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence
from typing import Any, Protocol

__all__ = ["Addr", "DatagramIO", "DatagramReceiver", "IOStats", "PlainDatagramIO"]

Addr = tuple[Any, ...]


class DatagramReceiver(Protocol):
    """What an I/O object delivers to: a batch of datagrams per wake-up, and errors."""

    def datagrams_received(self, datagrams: list[tuple[bytes, Addr]]) -> None: ...

    def error_received(self, exc: OSError) -> None: ...


class DatagramIO(Protocol):
    """What the endpoint protocol sends through."""

    def send_batch(self, datagrams: Sequence[tuple[bytes, Addr]]) -> None:
        """Send every datagram, in order. Never raises for network conditions: a datagram the
        kernel will not take is dropped and counted (the protocol retransmits)."""
        ...

    def get_extra_info(self, name: str, default: Any = None) -> Any: ...

    def close(self) -> None: ...

    @property
    def stats(self) -> IOStats: ...


class IOStats:
    """Counters of one I/O object."""

    __slots__ = (
        "datagrams_sent",
        "datagrams_received",
        "send_calls",
        "recv_wakeups",
        "gso_sends",
        "gro_batches",
        "send_drops",
        "fallbacks",
    )

    def __init__(self) -> None:
        self.datagrams_sent = 0
        self.datagrams_received = 0
        self.send_calls = 0  # syscalls (or transport.sendto calls) that sent datagrams
        self.recv_wakeups = 0  # read callbacks that delivered at least one datagram
        self.gso_sends = 0  # sendmsg calls that carried several segments
        self.gro_batches = 0  # receives that returned several coalesced segments
        self.send_drops = 0  # datagrams the kernel refused (buffer full, unreachable ...)
        self.fallbacks = 0  # times GSO or GRO was switched off after a kernel error

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


class PlainDatagramIO:
    """The loop's own datagram transport: one ``sendto`` per datagram (the portable path)."""

    def __init__(self, transport: asyncio.DatagramTransport) -> None:
        self._transport = transport
        self._stats = IOStats()

    @property
    def stats(self) -> IOStats:
        return self._stats

    def send_batch(self, datagrams: Sequence[tuple[bytes, Addr]]) -> None:
        transport = self._transport
        if transport.is_closing():
            self._stats.send_drops += len(datagrams)
            return
        sendto = transport.sendto
        for data, addr in datagrams:
            sendto(data, addr)
        self._stats.datagrams_sent += len(datagrams)
        self._stats.send_calls += len(datagrams)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def close(self) -> None:
        self._transport.close()


def socket_family(sock: socket.socket | None) -> int:
    """The address family of ``sock`` (AF_INET when unknown)."""
    return sock.family if sock is not None else socket.AF_INET
