"""Stateless handshake cookies (RFC 9260 §5.1.3 and §5.1.5, RFC 4987 §3.6).

A server answers an INIT with a cookie that carries the little state it needs, MACed with a
secret, and allocates nothing until the client echoes a valid cookie from the same address.

Layout (``COOKIE_OVERHEAD`` = 21 bytes around the caller's state)::

    key id (u8) | issue time (u32, whole seconds of ``now`` mod 2**32) | state | MAC (16 bytes)

MAC = HMAC-SHA256(secret, key id | issue time | address | state) truncated to 16 bytes, where
address = len(host) (u8) | host (UTF-8) | port (u16). The address goes before the state so the
MAC input has one parse (header and address are self-delimiting, the state is the rest).
IPv6 flowinfo and scope id are not covered: only host and port identify the peer.

Secrets come from the injected ``token_bytes`` and rotate every ``rotation`` seconds, as
RFC 9260 §5.1.3 asks ("changed reasonably frequently"). The key id is the rotation epoch
(floor(now / rotation)) mod 256; the jar keeps the current and the previous epoch's secret, so a
cookie stays verifiable for at least one full rotation. With ``rotation >= lifetime`` every
cookie young enough to be accepted was made with one of those two secrets.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives import constant_time, hashes, hmac

from ..errors import RudpError

__all__ = [
    "BAD_COOKIE",
    "COOKIE_OVERHEAD",
    "MAX_COOKIE_STATE",
    "STALE_COOKIE",
    "CookieError",
    "CookieJar",
]

BAD_COOKIE = "bad_cookie"
STALE_COOKIE = "stale_cookie"

SECRET_SIZE = 32  # bytes of HMAC-SHA256 key (RFC 2104 §3: at least the hash output length)
MAC_SIZE = 16  # HMAC-SHA256 truncated to 128 bits (RFC 2104 §5: at least half the output)
MAX_COOKIE_STATE = 200
"""Largest ``state`` a cookie carries, in bytes."""

_HEADER = struct.Struct("!BI")  # key id, issue time
_PORT = struct.Struct("!H")
COOKIE_OVERHEAD = _HEADER.size + MAC_SIZE
"""Bytes a cookie adds around ``state``."""
_MAX_COOKIE = COOKIE_OVERHEAD + MAX_COOKIE_STATE
_U32 = 0xFFFFFFFF
_FUTURE_SLACK = 1  # seconds an issue time may lie ahead of ``now`` (clock rounding)


class CookieError(RudpError):
    """A cookie failed verification; ``reason`` is ``"bad_cookie"`` or ``"stale_cookie"``.

    ``staleness`` is the whole seconds beyond the lifetime for a stale cookie (RFC 9260 §3.3.10.3
    reports it in the Stale Cookie error), else 0.
    """

    def __init__(self, reason: str, staleness: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.staleness = staleness


def _encode_addr(addr: tuple[Any, ...]) -> bytes:
    # Canonical peer address: host as UTF-8 with a length byte, then the port as u16.
    if len(addr) < 2:
        raise ValueError(f"address must be (host, port, ...), got {addr!r}")
    host, port = addr[0], addr[1]
    if not isinstance(host, str) or not isinstance(port, int):
        raise ValueError(f"address must be (str host, int port, ...), got {addr!r}")
    raw = host.encode("utf-8")
    if len(raw) > 255 or not 0 <= port <= 0xFFFF:
        raise ValueError(f"address cannot be encoded: {addr!r}")
    return bytes((len(raw),)) + raw + _PORT.pack(port)


class CookieJar:
    """Makes and verifies cookies; holds only two secrets, never per-peer state."""

    __slots__ = (
        "_current",
        "_current_id",
        "_epoch",
        "_lifetime",
        "_previous",
        "_previous_id",
        "_rotation",
        "_token_bytes",
    )

    def __init__(
        self, token_bytes: Callable[[int], bytes], *, lifetime: float, rotation: float
    ) -> None:
        if not 0 < lifetime < math.inf:
            raise ValueError(f"lifetime must be > 0, got {lifetime}")
        if not 0 < rotation < math.inf:
            raise ValueError(f"rotation must be > 0, got {rotation}")
        if rotation < lifetime:
            # A valid cookie's secret could be gone before the cookie expired.
            raise ValueError("rotation must be >= lifetime")
        self._token_bytes = token_bytes
        self._lifetime = lifetime
        self._rotation = rotation
        # Secrets are drawn lazily: the jar learns the time only from make()/verify().
        self._epoch = 0  # meaningful once _current is set
        self._current: hmac.HMAC | None = None
        self._current_id = -1
        self._previous: hmac.HMAC | None = None
        self._previous_id = -1

    def _new_key(self) -> hmac.HMAC:
        # Keyed once per epoch; each MAC copies it, which halves the cost of make()/verify().
        secret = self._token_bytes(SECRET_SIZE)
        if len(secret) != SECRET_SIZE:
            raise ValueError(f"token_bytes({SECRET_SIZE}) returned {len(secret)} bytes")
        return hmac.HMAC(bytes(secret), hashes.SHA256())

    def _rotate(self, now: float) -> hmac.HMAC:
        """Bring the keys up to the epoch of ``now`` and return the current one."""
        epoch = math.floor(now / self._rotation)
        current = self._current
        if current is not None and epoch <= self._epoch:
            # Same epoch (the common case), or a clock that went backwards: keep the keys.
            return current
        if current is not None and epoch == self._epoch + 1:
            self._previous = current
            self._previous_id = self._current_id
        else:
            # First use, or more than one epoch skipped: no older secret may survive, and none
            # issued a cookie the jar could still accept, so there is no previous secret at all.
            self._previous = None
            self._previous_id = -1
        current = self._current = self._new_key()
        self._current_id = epoch & 0xFF
        self._epoch = epoch
        return current

    @staticmethod
    def _mac(key: hmac.HMAC, header: bytes, addr: bytes, state: bytes) -> bytes:
        h = key.copy()
        h.update(header + addr + state)
        return h.finalize()[:MAC_SIZE]

    def make(self, addr: tuple[Any, ...], state: bytes, *, now: float) -> bytes:
        """A cookie binding ``state`` to the peer ``addr`` at time ``now``."""
        if len(state) > MAX_COOKIE_STATE:
            raise ValueError(f"cookie state is {len(state)} bytes, max {MAX_COOKIE_STATE}")
        encoded_addr = _encode_addr(addr)
        key = self._rotate(now)
        header = _HEADER.pack(self._current_id, math.floor(now) & _U32)
        state = bytes(state)
        return header + state + self._mac(key, header, encoded_addr, state)

    def verify(self, addr: tuple[Any, ...], cookie: bytes, *, now: float) -> bytes:
        """Return the ``state`` inside ``cookie`` or raise ``CookieError``.

        Any cookie bytes raise nothing but ``CookieError``. ``"stale_cookie"`` is reported only
        for an authentic cookie older than the lifetime, or for a cookie whose secret is already
        discarded and whose (then unauthenticated) issue time is older than the lifetime: with
        rotation >= lifetime such a cookie is necessarily stale if it is genuine. Treat the
        latter like any unauthenticated input (do not answer it with more than it costs).
        """
        encoded_addr = _encode_addr(addr)
        size = len(cookie)
        if not COOKIE_OVERHEAD <= size <= _MAX_COOKIE:
            raise CookieError(BAD_COOKIE)
        key_id, issued = _HEADER.unpack_from(cookie)
        current = self._rotate(now)
        # Serial (mod 2**32) difference between floor(now) and the issue time.
        age = (math.floor(now) - issued) & _U32
        if age > 0x7FFFFFFF:
            age -= 1 << 32
        if key_id == self._current_id:
            key: hmac.HMAC | None = current
        elif key_id == self._previous_id:
            key = self._previous
        else:
            key = None
        if key is None:
            if age > self._lifetime:
                raise CookieError(STALE_COOKIE, math.ceil(age - self._lifetime))
            raise CookieError(BAD_COOKIE)
        header = bytes(cookie[: _HEADER.size])
        state = bytes(cookie[_HEADER.size : size - MAC_SIZE])
        expected = self._mac(key, header, encoded_addr, state)
        if not constant_time.bytes_eq(expected, bytes(cookie[size - MAC_SIZE :])):
            raise CookieError(BAD_COOKIE)
        if age < -_FUTURE_SLACK:
            raise CookieError(BAD_COOKIE)
        # RFC 9260 §5.1.5 step 3: stale if the lifespan has passed (accepted at age == lifetime).
        if age > self._lifetime:
            raise CookieError(STALE_COOKIE, math.ceil(age - self._lifetime))
        return state
