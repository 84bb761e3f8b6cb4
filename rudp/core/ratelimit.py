"""Token buckets for the replies an endpoint sends before it knows the peer is genuine.

A server answers an INIT with a COOKIE, and a datagram for no connection with a RESET, from
no state at all. A spoofed source address turns those replies into traffic aimed at a victim
(reflection), so ``PrefixRateLimiter`` caps them per *source prefix* (a /24 for IPv4 and a
/56 for IPv6 by default: the blocks one site or one subscriber usually holds, so that a victim
cannot be hit from many of its addresses at once).

The table of buckets is bounded: past ``max_prefixes`` the least recently used bucket is
forgotten. A forgotten prefix starts again with a full bucket, so an attacker who wants more
replies for one victim prefix must first send from ``max_prefixes`` other prefixes: each
eviction cycle buys at most ``burst`` extra replies.

``TokenBucket`` is the single-bucket form, for per-connection limits (challenge ACKs).
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from typing import Any

__all__ = ["PrefixRateLimiter", "TokenBucket", "prefix_key"]


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved; one token per event."""

    __slots__ = ("rate", "burst", "_tokens", "_last")

    def __init__(self, *, rate: float, burst: float) -> None:
        if not rate > 0 or not burst >= 1:
            raise ValueError(f"need rate > 0 and burst >= 1, got {rate!r} and {burst!r}")
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._last: float | None = None

    def allow(self, now: float) -> bool:
        """Take a token if there is one at ``now``."""
        last = self._last
        tokens = self._tokens
        if last is not None and now > last:
            tokens += (now - last) * self.rate
            if tokens > self.burst:
                tokens = self.burst
        if last is None or now > last:
            self._last = now
        if tokens >= 1.0:
            self._tokens = tokens - 1.0
            return True
        self._tokens = tokens
        return False


def prefix_key(host: Any, ipv4_bits: int, ipv6_bits: int) -> Any:
    """The bucket key of ``host``: its first ``ipv4_bits`` / ``ipv6_bits`` bits.

    IPv4-mapped IPv6 addresses count as IPv4 and an IPv6 scope id is ignored. A host that is
    not an address literal (only tests and exotic transports produce one) is its own key.
    """
    if not isinstance(host, str):
        return host
    if ":" not in host:
        if ipv4_bits == 24:
            # The default, on every datagram of a flood: cut at the last dot.
            cut = host.rfind(".")
            return host[:cut] if cut > 0 else host
        return _ipv4_key(host, ipv4_bits)
    if "%" in host:
        host = host[: host.index("%")]
    if host.startswith("::ffff:") and "." in host:
        return prefix_key(host[7:], ipv4_bits, ipv6_bits)
    try:
        value = int(ipaddress.IPv6Address(host))
    except ValueError:
        return host
    return (6, value >> (128 - ipv6_bits))


def _ipv4_key(host: str, bits: int) -> Any:
    parts = host.split(".")
    if len(parts) != 4:
        return host
    try:
        a, b, c, d = (int(part) for part in parts)
    except ValueError:
        return host
    return ((a << 24) | (b << 16) | (c << 8) | d) >> (32 - bits)


class PrefixRateLimiter:
    """One token bucket per source prefix, in a table of at most ``max_prefixes`` buckets."""

    __slots__ = ("_rate", "_burst", "_max", "_v4", "_v6", "_table", "evictions")

    def __init__(
        self,
        *,
        rate: float,
        burst: float,
        max_prefixes: int,
        ipv4_prefix: int = 24,
        ipv6_prefix: int = 56,
    ) -> None:
        if not rate > 0 or not burst >= 1:
            raise ValueError(f"need rate > 0 and burst >= 1, got {rate!r} and {burst!r}")
        if max_prefixes < 1:
            raise ValueError(f"max_prefixes must be >= 1, got {max_prefixes!r}")
        if not 1 <= ipv4_prefix <= 32 or not 1 <= ipv6_prefix <= 128:
            raise ValueError("prefix lengths must be in [1, 32] (IPv4) and [1, 128] (IPv6)")
        self._rate = float(rate)
        self._burst = float(burst)
        self._max = max_prefixes
        self._v4 = ipv4_prefix
        self._v6 = ipv6_prefix
        # key -> [tokens, time of the last update], least recently used first.
        self._table: OrderedDict[Any, list[float]] = OrderedDict()
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._table)

    @property
    def max_prefixes(self) -> int:
        return self._max

    def allow(self, addr: tuple[Any, ...], now: float) -> bool:
        """Take a token from the bucket of ``addr``'s prefix if it has one at ``now``."""
        key = prefix_key(addr[0], self._v4, self._v6)
        table = self._table
        entry = table.get(key)
        if entry is None:
            if len(table) >= self._max:
                table.popitem(last=False)
                self.evictions += 1
            table[key] = [self._burst - 1.0, now]
            return True
        table.move_to_end(key)
        tokens, last = entry
        if now > last:
            tokens += (now - last) * self._rate
            if tokens > self._burst:
                tokens = self._burst
            entry[1] = now
        if tokens >= 1.0:
            entry[0] = tokens - 1.0
            return True
        entry[0] = tokens
        return False
