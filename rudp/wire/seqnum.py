"""32-bit serial number arithmetic (RFC 1982) for sequence numbers and timestamps.

The wire carries 32-bit values that wrap; the engine keeps unbounded Python ints so that every
comparison inside ``core/`` is a plain ``<``. Values go out with ``& MASK32`` and come back in
with :func:`unwrap`. The helpers below are for the few places that must compare raw wire values
(the codec's SACK checks, timestamps).

All functions accept any int and work modulo 2**32, so callers need not mask first.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "MASK32",
    "seq_add",
    "seq_diff",
    "seq_ge",
    "seq_gt",
    "seq_le",
    "seq_lt",
    "unwrap",
]

MASK32: Final = 0xFFFFFFFF
_HALF: Final = 0x80000000  # 2**31, RFC 1982 §2: 2^(SERIAL_BITS - 1)


def seq_add(a: int, n: int) -> int:
    """Return ``a + n`` modulo 2**32 (RFC 1982 §3.1; ``n`` may be negative or large here)."""
    return (a + n) & MASK32


def seq_diff(a: int, b: int) -> int:
    """Return the signed serial distance ``a - b`` in ``[-2**31, 2**31)``.

    At exactly 2**31 apart RFC 1982 leaves the order undefined; this returns ``-2**31`` then.
    """
    return ((a - b + _HALF) & MASK32) - _HALF


# RFC 1982 §3.2: i1 < i2 iff the forward distance from i1 to i2 is in (0, 2**31). At a distance
# of exactly 2**31 neither value is less than the other (the "undefined" case), so lt/gt are
# both False there while le/ge are also False (the values are unequal).


def seq_lt(a: int, b: int) -> bool:
    """Serial ``a < b`` (RFC 1982 §3.2)."""
    return 0 < ((b - a) & MASK32) < _HALF


def seq_le(a: int, b: int) -> bool:
    """Serial ``a <= b`` (RFC 1982 §3.2)."""
    return ((b - a) & MASK32) < _HALF


def seq_gt(a: int, b: int) -> bool:
    """Serial ``a > b`` (RFC 1982 §3.2)."""
    return 0 < ((a - b) & MASK32) < _HALF


def seq_ge(a: int, b: int) -> bool:
    """Serial ``a >= b`` (RFC 1982 §3.2)."""
    return ((a - b) & MASK32) < _HALF


def unwrap(wire: int, expected: int) -> int:
    """Return the unbounded value congruent to ``wire`` mod 2**32 that is closest to ``expected``.

    ``expected`` is the engine's unbounded estimate (e.g. the next sequence number it wants).
    The result is within ``(-2**31, 2**31]`` of it; a tie (exactly 2**31 away) resolves to the
    larger value. It can be negative when ``expected`` < 2**31 and the wire value is "behind";
    callers treat that like any other old value.
    """
    # Map (wire - expected) mod 2**32 into (-2**31, 2**31] rather than [-2**31, 2**31).
    return expected + ((wire - expected + _HALF - 1) & MASK32) - _HALF + 1
