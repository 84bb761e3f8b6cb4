"""Unreliable datagrams inside a connection: never retransmitted, but congestion controlled.

Sending: datagrams wait in a bounded queue (the oldest is dropped when it is full) and leave
only while the congestion window has room. They carry no sequence number the peer
acknowledges, so they cannot sit in the SACK scoreboard's pipe; instead the bytes sent in the
last smoothed RTT are charged against cwnd, for datagrams and reliable data alike (one RTT
is how long a byte stays "in flight" on average). That keeps a datagram sender within the rate
the window allows, as RFC 9221 §5.4 asks of QUIC DATAGRAM frames.

Receiving: a replay window discards copies the network duplicated; delivery goes through the
connection's event queue, whose backlog of undelivered datagrams is bounded too.
"""

from __future__ import annotations

from collections import deque

from ..wire.datagram import DATAGRAM_HEADER_SIZE, ReplayWindow, encode_datagram

__all__ = ["DatagramChannel"]


class DatagramChannel:
    """The unreliable side channel of one connection."""

    __slots__ = (
        "_queue",
        "_queue_limit",
        "_next_number",
        "_recent",
        "recent_bytes",
        "replay",
        "pending_events",
        "recv_limit",
    )

    def __init__(self, *, send_queue: int, recv_queue: int) -> None:
        self._queue: deque[bytes] = deque()
        self._queue_limit = send_queue
        self._next_number = 0
        self._recent: deque[tuple[float, int]] = deque()  # (send time, datagram bytes)
        self.recent_bytes = 0  # bytes of datagrams sent within the last SRTT
        self.replay = ReplayWindow()
        self.pending_events = 0  # DatagramReceived events not yet taken from the connection
        self.recv_limit = recv_queue

    @property
    def queued(self) -> int:
        return len(self._queue)

    def enqueue(self, payload: bytes) -> bool:
        """Queue ``payload``; a full queue drops its oldest datagram (then returns True)."""
        dropped = len(self._queue) >= self._queue_limit
        if dropped:
            self._queue.popleft()
        self._queue.append(payload)
        return dropped

    def expire(self, now: float, horizon: float) -> None:
        """Forget the charge of datagrams sent more than ``horizon`` seconds ago."""
        recent = self._recent
        # The same sum as next_expiry's, so a timer set to that moment always expires it.
        while recent and recent[0][0] + horizon <= now:
            self.recent_bytes -= recent.popleft()[1]

    def next_expiry(self, horizon: float) -> float | None:
        """When the oldest charge expires, or None when nothing is charged."""
        return self._recent[0][0] + horizon if self._recent else None

    def take(self, cid: int, room: int, now: float) -> list[bytes]:
        """Encode the queued datagrams that fit in ``room`` bytes of window, oldest first."""
        out: list[bytes] = []
        queue = self._queue
        while queue:
            size = DATAGRAM_HEADER_SIZE + len(queue[0])
            if size > room:
                break
            out.append(encode_datagram(cid, self._next_number, queue.popleft()))
            self._next_number += 1
            room -= size
            self._recent.append((now, size))
            self.recent_bytes += size
        return out

    def clear(self) -> None:
        """The connection ended: nothing queued will ever be sent."""
        self._queue.clear()
        self._recent.clear()
        self.recent_bytes = 0
