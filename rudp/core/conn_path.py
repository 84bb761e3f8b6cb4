"""Path validation: a connection follows its peer to a new address (NAT rebinding) only once
the peer has proved it receives there (RFC 9000 §8.2 and §9.3, without QUIC's encryption).

A segment for this connection from an address other than the peer's is *fresh* when its
timestamp is newer than any the connection has seen. The receive path calls
``_segment_from_new_address`` only for segments that already passed every check a segment
from the peer's own address must pass (PAWS, sequence and acknowledgment windows), so a blind
attacker's guesses never get this far. A fresh one is processed like any segment and makes the
new address a *candidate*: a PATH_CHALLENGE with a random token goes there (the rest of the
connection's traffic stays on the validated address). The peer answers from wherever it now
is; a PATH_RESPONSE with the token, from the candidate address, moves the connection there.

Until then the candidate gets at most 3x the bytes it sent (RFC 9000 §8.1), so a spoofed
source cannot turn the connection into a reflector. A segment from the candidate that is not
fresh (a replay of something the peer sent from its validated address) is dropped and starts
nothing; a fresh segment from the validated address while a candidate is pending means the
old path still works, and the candidate is dropped (RFC 9000 §9.3.3).
"""

from __future__ import annotations

from ..wire.packet import PATH_SIZE, PATH_TOKEN_SIZE, PathChallenge, PathResponse
from ..wire.seqnum import MASK32
from .conn_base import Addr, ConnectionBase

__all__ = ["MAX_PATH_CHALLENGES", "PathCandidate", "PathLayer"]

# Challenges per candidate address before it is given up (RFC 9000 §8.2.4 leaves the count to
# the implementation; each needs a fresh segment from the candidate one RTO after the last).
MAX_PATH_CHALLENGES = 4
# Before validation, at most this many times the bytes received from an address go to it
# (RFC 9000 §8.1).
AMPLIFICATION_FACTOR = 3


class PathCandidate:
    """A peer address being validated, and the bytes exchanged with it so far."""

    __slots__ = ("addr", "tokens", "bytes_received", "bytes_sent", "last_challenge")

    def __init__(self, addr: Addr) -> None:
        self.addr = addr
        self.tokens: list[bytes] = []  # every challenge sent; any of them validates
        self.bytes_received = 0
        self.bytes_sent = 0
        self.last_challenge: float | None = None


class PathLayer(ConnectionBase):
    """Validating a new peer address and moving the connection to it."""

    _path: PathCandidate | None = None

    @property
    def path_candidate(self) -> Addr | None:
        """The peer address being validated, if any."""
        return self._path.addr if self._path is not None else None

    def _segment_from_new_address(self, addr: Addr, size: int, tsval: int, now: float) -> bool:
        """An acceptable segment came from ``addr``, not the peer's address. True: process it
        (it is fresh, and ``addr`` is now the candidate); False: drop it."""
        if not _newer(tsval, self._ts_recent):
            self.stats.dropped["wrong_address"] += 1
            return False
        candidate = self._path
        if candidate is None or candidate.addr != addr:
            candidate = self._path = PathCandidate(addr)
        candidate.bytes_received += size
        self.stats.unvalidated_bytes_received += size
        self._send_path_challenge(candidate, now)
        return True

    def _segment_from_peer_address(self, tsval: int) -> None:
        """An acceptable segment came from the validated address while a candidate waits."""
        if _newer(tsval, self._ts_recent):
            self._path = None  # the old path still works: whoever sent from the candidate lied

    def _send_path_challenge(self, candidate: PathCandidate, now: float) -> None:
        if len(candidate.tokens) >= MAX_PATH_CHALLENGES:
            return
        last = candidate.last_challenge
        if last is not None and now - last < self.rtt.rto:
            return
        if candidate.bytes_sent + PATH_SIZE > AMPLIFICATION_FACTOR * candidate.bytes_received:
            self.stats.dropped["path_amplification_limit"] += 1
            return
        token = self._owner._random_bytes(PATH_TOKEN_SIZE)
        candidate.tokens.append(token)
        candidate.bytes_sent += PATH_SIZE
        candidate.last_challenge = now
        self.stats.path_challenges_sent += 1
        self.stats.unvalidated_bytes_sent += PATH_SIZE
        self.stats.datagrams_sent += 1
        self.stats.bytes_sent += PATH_SIZE
        self._owner._send_to(PathChallenge(self.peer_cid, token).encode(), candidate.addr)

    def receive_path_challenge(self, token: bytes, addr: Addr, *, now: float) -> None:
        """A PATH_CHALLENGE: echo it, but only to the peer's validated address (an answer to
        any other would reflect whoever spoofed it)."""
        if not self._synchronized or self._terminated:
            self.stats.dropped["state"] += 1
            return
        if addr != self.peer_addr:
            self.stats.dropped["wrong_address"] += 1
            return
        self.stats.path_responses_sent += 1
        self.stats.datagrams_sent += 1
        self.stats.bytes_sent += PATH_SIZE
        self._owner._send_to(PathResponse(self.peer_cid, token).encode(), addr)

    def receive_path_response(self, token: bytes, addr: Addr, *, now: float) -> None:
        """A PATH_RESPONSE: from the candidate with one of its tokens, the path is valid."""
        candidate = self._path
        if candidate is None or addr != candidate.addr or token not in candidate.tokens:
            self.stats.dropped["bad_path_response"] += 1
            return
        if self._terminated:
            self.stats.dropped["state"] += 1
            return
        self._path = None
        old = self.peer_addr
        self.peer_addr = addr
        self.stats.path_migrations += 1
        # The congestion state and RTT estimate are kept, for a new port and a new host alike:
        # RFC 9000 §9.4 resets them for a new host, but the data in flight toward the old
        # address would then have to be declared lost, which is the loss recovery's call.
        # Loss recovery adapts to the new path within a few round trips instead.
        self._owner._peer_address_changed(self, old)
        self._ack_now = True  # the peer hears from the new path at once
        self._owner._mark_dirty(self)


def _newer(tsval: int, recent: int) -> bool:
    """``tsval`` is serially after ``recent`` (RFC 7323 §5.3 ordering, strict)."""
    return 0 < ((tsval - recent) & MASK32) < 0x80000000
