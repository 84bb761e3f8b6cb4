"""RangeSet: unit tests plus a model test against a plain set of ints."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rudp.wire.ranges import RangeSet


def check_invariants(rs: RangeSet) -> None:
    pairs = list(rs)
    for start, end in pairs:
        assert start < end, "empty range stored"
    for (_, end1), (start2, _) in zip(pairs, pairs[1:], strict=False):
        assert end1 < start2, "ranges overlap, touch or are out of order"
    assert len(rs) == len(pairs)
    assert bool(rs) == bool(pairs)


def runs(members: set[int]) -> list[tuple[int, int]]:
    """The maximal half-open runs of a set of ints, ascending."""
    out: list[tuple[int, int]] = []
    for x in sorted(members):
        if out and out[-1][1] == x:
            out[-1] = (out[-1][0], x + 1)
        else:
            out.append((x, x + 1))
    return out


# --- unit tests -----------------------------------------------------------------------------


def test_empty() -> None:
    rs = RangeSet()
    assert not rs
    assert len(rs) == 0
    assert list(rs) == []
    assert rs.total() == 0
    assert 0 not in rs
    assert rs.range_containing(0) is None
    assert rs.holes(3, 7) == [(3, 7)]
    assert rs.overlap(3, 7) == 0
    assert not rs.covers(3, 7)
    assert repr(rs) == "RangeSet([])"
    with pytest.raises(ValueError):
        rs.bounds()


def test_add_merges_overlap_and_adjacency() -> None:
    rs = RangeSet()
    rs.add(10, 20)
    rs.add(30, 40)
    assert list(rs) == [(10, 20), (30, 40)]
    rs.add(20, 25)  # adjacent on the left range
    assert list(rs) == [(10, 25), (30, 40)]
    rs.add(25, 30)  # fills the gap exactly: everything merges
    assert list(rs) == [(10, 40)]
    rs.add(0, 5)
    rs.add(50, 60)
    rs.add(3, 55)  # swallows three ranges
    assert list(rs) == [(0, 60)]
    rs.add(20, 30)  # inside: no change
    assert list(rs) == [(0, 60)]


def test_add_inserts_in_order() -> None:
    rs = RangeSet()
    for start in (50, 10, 30, 70, 0):
        rs.add(start, start + 5)
    assert list(rs) == [(0, 5), (10, 15), (30, 35), (50, 55), (70, 75)]


def test_add_empty_is_noop_and_inverted_raises() -> None:
    rs = RangeSet([(0, 5)])
    rs.add(9, 9)
    assert list(rs) == [(0, 5)]
    with pytest.raises(ValueError):
        rs.add(5, 4)
    with pytest.raises(ValueError):
        rs.subtract(5, 4)
    with pytest.raises(ValueError):
        rs.holes(5, 4)
    with pytest.raises(ValueError):
        rs.overlap(5, 4)
    with pytest.raises(ValueError):
        rs.covers(5, 4)


def test_subtract_splits_trims_and_removes() -> None:
    rs = RangeSet([(0, 100)])
    rs.subtract(40, 60)
    assert list(rs) == [(0, 40), (60, 100)]
    rs.subtract(30, 70)  # trims both sides
    assert list(rs) == [(0, 30), (70, 100)]
    rs.subtract(0, 30)  # removes a whole range
    assert list(rs) == [(70, 100)]
    rs.subtract(0, 70)  # touches only: no change
    rs.subtract(100, 200)
    assert list(rs) == [(70, 100)]
    rs.subtract(80, 80)
    assert list(rs) == [(70, 100)]
    rs.subtract(-(2**80), 2**80)
    assert not rs


def test_discard_below() -> None:
    rs = RangeSet([(0, 10), (20, 30), (40, 50)])
    rs.discard_below(5)
    assert list(rs) == [(5, 10), (20, 30), (40, 50)]
    rs.discard_below(10)  # exactly at an end: drops that range
    assert list(rs) == [(20, 30), (40, 50)]
    rs.discard_below(35)  # in a gap
    assert list(rs) == [(40, 50)]
    rs.discard_below(0)  # below everything
    assert list(rs) == [(40, 50)]
    rs.discard_below(1000)
    assert not rs


def test_queries() -> None:
    rs = RangeSet([(10, 20), (30, 40)])
    assert 10 in rs and 19 in rs and 30 in rs
    assert 9 not in rs and 20 not in rs and 25 not in rs and 40 not in rs
    assert "10" not in rs
    assert rs.range_containing(15) == (10, 20)
    assert rs.range_containing(20) is None
    assert rs.covers(10, 20) and rs.covers(12, 13) and rs.covers(100, 100)
    assert not rs.covers(15, 31) and not rs.covers(5, 12) and not rs.covers(20, 30)
    assert rs.holes(0, 50) == [(0, 10), (20, 30), (40, 50)]
    assert rs.holes(10, 40) == [(20, 30)]
    assert rs.holes(12, 18) == []
    assert rs.holes(15, 15) == []
    assert rs.overlap(0, 50) == 20
    assert rs.overlap(15, 35) == 10
    assert rs.overlap(20, 30) == 0
    assert rs.bounds() == (10, 40)
    assert rs.total() == 20
    assert len(rs) == 2
    assert repr(rs) == "RangeSet([(10, 20), (30, 40)])"


def test_huge_ints() -> None:
    base = 2**100
    rs = RangeSet([(base, base + 10), (base + 2**40, base + 2**40 + 1)])
    assert base + 5 in rs
    assert rs.total() == 11
    assert rs.holes(base, base + 2**40 + 1) == [(base + 10, base + 2**40)]


def test_equality() -> None:
    assert RangeSet([(0, 5), (5, 10)]) == RangeSet([(0, 10)])
    assert RangeSet([(0, 5)]) != RangeSet([(0, 6)])
    assert RangeSet() == RangeSet()
    assert RangeSet([(0, 5)]) != [(0, 5)]
    with pytest.raises(TypeError):
        hash(RangeSet())


# --- model test against a set of ints ------------------------------------------------------

SPAN = 64
point = st.integers(-4, SPAN)
pair = st.tuples(point, point).map(sorted).map(tuple)
op = st.one_of(
    st.tuples(st.just("add"), pair),
    st.tuples(st.just("subtract"), pair),
    st.tuples(st.just("discard_below"), st.tuples(point)),
)


@settings(max_examples=300, deadline=None)
@given(
    base=st.sampled_from([0, -1000, 2**64 - 7, 2**100]),
    ops=st.lists(op, max_size=25),
    queries=st.lists(pair, min_size=1, max_size=8),
)
def test_matches_set_model(
    base: int, ops: list[tuple[str, tuple[int, ...]]], queries: list[tuple[int, int]]
) -> None:
    rs = RangeSet()
    model: set[int] = set()
    for name, args in ops:
        shifted = [base + a for a in args]
        if name == "add":
            rs.add(shifted[0], shifted[1])
            model |= set(range(shifted[0], shifted[1]))
        elif name == "subtract":
            rs.subtract(shifted[0], shifted[1])
            model -= set(range(shifted[0], shifted[1]))
        else:
            rs.discard_below(shifted[0])
            model = {x for x in model if x >= shifted[0]}
        check_invariants(rs)
        assert list(rs) == runs(model)

    assert rs.total() == len(model)
    assert rs == RangeSet(runs(model))
    if model:
        assert rs.bounds() == (min(model), max(model) + 1)
    for x in range(base - 6, base + SPAN + 2):
        assert (x in rs) == (x in model)
        found = rs.range_containing(x)
        if x in model:
            assert found is not None and found[0] <= x < found[1]
            assert found in list(rs)
        else:
            assert found is None
    for lo, hi in queries:
        start, end = base + lo, base + hi
        span = set(range(start, end))
        assert rs.overlap(start, end) == len(span & model)
        assert rs.holes(start, end) == runs(span - model)
        # A contiguous span inside the set lies inside one maximal run.
        assert rs.covers(start, end) == (span <= model)
