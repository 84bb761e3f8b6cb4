"""RFC 1982 serial arithmetic and unwrap."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rudp.wire.seqnum import MASK32, seq_add, seq_diff, seq_ge, seq_gt, seq_le, seq_lt, unwrap

HALF = 2**31
u32 = st.integers(0, MASK32)
# A distance for which RFC 1982 defines the order.
defined_delta = st.integers(-HALF + 1, HALF - 1)


def test_mask() -> None:
    assert MASK32 == 2**32 - 1


@pytest.mark.parametrize(
    ("a", "n", "expected"),
    [
        (MASK32, 1, 0),
        (MASK32, 2, 1),
        (0, -1, MASK32),
        (5, 2**32, 5),
        (2**32 - 10, 20, 10),
        (7, 0, 7),
    ],
)
def test_seq_add_wraps(a: int, n: int, expected: int) -> None:
    assert seq_add(a, n) == expected


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (0, MASK32, 1),
        (MASK32, 0, -1),
        (5, 2**32 - 5, 10),
        (2**32 - 5, 5, -10),
        (HALF - 1, 0, HALF - 1),
        (HALF, 0, -HALF),  # RFC 1982's undefined distance maps to the bottom of the range
        (0, HALF, -HALF),
        (123, 123, 0),
    ],
)
def test_seq_diff_boundaries(a: int, b: int, expected: int) -> None:
    assert seq_diff(a, b) == expected


def test_compare_across_wrap() -> None:
    lo, hi = 0xFFFFFFF0, 0x10  # hi comes after lo once the counter wraps
    assert seq_lt(lo, hi) and seq_le(lo, hi)
    assert seq_gt(hi, lo) and seq_ge(hi, lo)
    assert not seq_lt(hi, lo) and not seq_le(hi, lo)
    assert not seq_gt(lo, hi) and not seq_ge(lo, hi)


def test_compare_equal() -> None:
    assert seq_le(9, 9) and seq_ge(9, 9)
    assert not seq_lt(9, 9) and not seq_gt(9, 9)


def test_compare_undefined_half_distance() -> None:
    # RFC 1982 §3.2: at exactly 2**31 apart neither is less, greater or equal.
    for a, b in ((0, HALF), (HALF, 0), (MASK32, HALF - 1)):
        assert not seq_lt(a, b) and not seq_gt(a, b)
        assert not seq_le(a, b) and not seq_ge(a, b)


def test_compare_masks_its_inputs() -> None:
    assert seq_lt(2**32 + 1, 2)
    assert seq_le(2**32 + 5, 5) and seq_ge(5, 2**32 + 5)


@given(u32, st.integers(-HALF, HALF - 1))
def test_diff_inverts_add(a: int, d: int) -> None:
    assert seq_diff(seq_add(a, d), a) == d


@given(u32, defined_delta)
def test_order_matches_delta(a: int, d: int) -> None:
    b = seq_add(a, d)
    assert seq_lt(a, b) == (d > 0)
    assert seq_gt(a, b) == (d < 0)
    assert seq_le(a, b) == (d >= 0)
    assert seq_ge(a, b) == (d <= 0)
    assert seq_lt(a, b) == seq_gt(b, a)
    # Trichotomy holds away from the undefined distance.
    assert [seq_lt(a, b), a == b, seq_gt(a, b)].count(True) == 1


@pytest.mark.parametrize(
    ("wire", "expected", "result"),
    [
        (5, 0xFFFFFFF0, 2**32 + 5),  # forward across the wrap
        (0xFFFFFFF0, 2**32 + 5, 0xFFFFFFF0),  # backward across the wrap
        (100, 100, 100),
        (0, 10 * 2**32 + 3, 10 * 2**32),
        (3, 2**70, 2**70 + 3),  # 2**70 is a multiple of 2**32
        (MASK32, 5, -1),  # closest is below zero
    ],
)
def test_unwrap_examples(wire: int, expected: int, result: int) -> None:
    assert unwrap(wire, expected) == result


def test_unwrap_tie_takes_larger() -> None:
    for expected in (0, 7, 2**32 - 1, 2**40 + 12345):
        wire = (expected + HALF) & MASK32
        assert unwrap(wire, expected) == expected + HALF


@settings(max_examples=500)
@given(st.integers(0, 2**80), st.integers(-HALF + 1, HALF - 1))
def test_unwrap_recovers_any_nearby_value(expected: int, delta: int) -> None:
    assert unwrap((expected + delta) & MASK32, expected) == expected + delta


@given(u32, st.integers(-(2**80), 2**80))
def test_unwrap_is_congruent_and_closest(wire: int, expected: int) -> None:
    got = unwrap(wire, expected)
    assert got & MASK32 == wire
    assert -HALF < got - expected <= HALF
