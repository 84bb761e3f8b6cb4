from __future__ import annotations

import math
import random
import zlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.sim import GilbertElliott, Impairment, LinkStats, LossyLink


def make(seed: int = 1, **kwargs: Any) -> LossyLink:
    return LossyLink(Impairment(**kwargs), random.Random(seed))


def numbered(i: int, size: int = 8) -> bytes:
    return i.to_bytes(4, "big") + bytes(max(0, size - 4))


def drop_pattern(link: LossyLink, count: int) -> list[bool]:
    """True for each datagram of ``count`` (sent 1 ms apart) that the link dropped."""
    return [not link.transmit(numbered(i), i * 0.001) for i in range(count)]


def check_conservation(stats: LinkStats) -> None:
    assert stats.sent == stats.delivered - stats.duplicated + stats.dropped


# -- Impairment validation ---------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"loss": -0.1},
        {"loss": 1.5},
        {"loss": math.nan},
        {"duplicate": 2.0},
        {"reorder": -1.0},
        {"corrupt": 1.01},
        {"delay": -0.001},
        {"delay": math.inf},
        {"jitter": -1.0},
        {"reorder_delay": -0.5},
        {"rate": 0.0},
        {"rate": -10.0},
        {"rate": math.inf},
        {"queue_limit": 1000},  # a queue limit without a rate
        {"rate": 1000.0, "queue_limit": -1},
    ],
)
def test_impairment_rejects_out_of_range(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Impairment(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"p_good_to_bad": -0.1, "p_bad_to_good": 0.5},
        {"p_good_to_bad": 0.1, "p_bad_to_good": 1.5},
        {"p_good_to_bad": 0.1, "p_bad_to_good": 0.5, "loss_in_good": -0.2},
        {"p_good_to_bad": 0.1, "p_bad_to_good": 0.5, "loss_in_bad": math.nan},
    ],
)
def test_gilbert_elliott_rejects_out_of_range(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        GilbertElliott(**kwargs)


def test_impairment_defaults_are_a_perfect_link() -> None:
    imp = Impairment()
    assert imp.is_perfect
    assert imp.checksum is True
    assert imp.reorder_delay == 0.01
    assert not Impairment(delay=0.1).is_perfect
    assert not Impairment(burst=GilbertElliott(0.1, 0.5)).is_perfect


def test_impairment_is_frozen() -> None:
    imp = Impairment()
    with pytest.raises(AttributeError):
        imp.loss = 0.5  # type: ignore[misc]


# -- perfect link ----------------------------------------------------------------------------


def test_perfect_link_delivers_at_once_unchanged() -> None:
    link = make()
    assert link.transmit(b"hello", 2.5) == [(2.5, b"hello")]
    assert link.transmit(b"", 3.0) == [(3.0, b"")]
    assert link.stats == LinkStats(sent=2, delivered=2, bytes_sent=5, bytes_delivered=5)


# -- loss ------------------------------------------------------------------------------------


def test_independent_loss_rate_matches_configuration() -> None:
    link = make(seed=42, loss=0.1)
    n = 100_000
    dropped = sum(drop_pattern(link, n))
    # sigma = sqrt(0.1 * 0.9 / 1e5) ~= 0.00095; allow ~5 sigma.
    assert abs(dropped / n - 0.1) < 0.005
    assert link.stats.dropped_loss == dropped
    assert link.stats.delivered == n - dropped
    check_conservation(link.stats)


def test_loss_one_drops_everything_and_zero_nothing() -> None:
    assert all(drop_pattern(make(loss=1.0), 1000))
    assert not any(drop_pattern(make(loss=0.0), 1000))


def burst_lengths(pattern: list[bool]) -> list[int]:
    runs: list[int] = []
    run = 0
    for lost in pattern:
        if lost:
            run += 1
        elif run:
            runs.append(run)
            run = 0
    if run:
        runs.append(run)
    return runs


def test_gilbert_elliott_produces_bursts() -> None:
    ge = GilbertElliott(p_good_to_bad=0.01, p_bad_to_good=0.25, loss_in_good=0.0, loss_in_bad=1.0)
    link = make(seed=7, burst=ge)
    n = 100_000
    pattern = drop_pattern(link, n)
    runs = burst_lengths(pattern)
    mean_burst = sum(runs) / len(runs)
    assert mean_burst == pytest.approx(1 / ge.p_bad_to_good, rel=0.08)
    stationary = ge.p_good_to_bad / (ge.p_good_to_bad + ge.p_bad_to_good)
    assert sum(pattern) / n == pytest.approx(stationary, rel=0.1)
    assert link.stats.dropped_burst == sum(pattern)
    assert link.stats.dropped_loss == 0
    check_conservation(link.stats)

    # Independent loss at the same average rate gives bursts of ~1 / (1 - p) ~= 1.04.
    flat = burst_lengths(drop_pattern(make(seed=7, loss=stationary), n))
    assert sum(flat) / len(flat) < 1.1


def test_gilbert_elliott_loss_in_states() -> None:
    # Always bad after the first datagram, losing half there: about half of all datagrams.
    ge = GilbertElliott(p_good_to_bad=1.0, p_bad_to_good=0.0, loss_in_good=0.0, loss_in_bad=0.5)
    pattern = drop_pattern(make(seed=3, burst=ge), 20_000)
    assert pattern[0] is False  # the chain starts good and good loses nothing
    assert sum(pattern) / len(pattern) == pytest.approx(0.5, abs=0.02)


def test_independent_loss_is_counted_before_burst_loss() -> None:
    ge = GilbertElliott(p_good_to_bad=1.0, p_bad_to_good=0.0)
    link = make(loss=1.0, burst=ge)
    drop_pattern(link, 100)
    assert link.stats.dropped_loss == 100
    assert link.stats.dropped_burst == 0


# -- duplication, reordering -------------------------------------------------------------


def test_duplication() -> None:
    link = make(seed=5, duplicate=0.2, delay=0.05)
    n = 20_000
    doubled = 0
    for i in range(n):
        data = numbered(i)
        out = link.transmit(data, 1.0)
        assert 1 <= len(out) <= 2
        assert all(copy == (1.05, data) for copy in out)
        doubled += len(out) == 2
    assert doubled / n == pytest.approx(0.2, abs=0.015)
    assert link.stats.duplicated == doubled
    assert link.stats.delivered == n + doubled
    assert link.stats.bytes_delivered == 8 * (n + doubled)
    check_conservation(link.stats)


def arrival_order(link: LossyLink, n: int, spacing: float) -> list[int]:
    deliveries: list[tuple[float, int, int]] = []
    for i in range(n):
        for arrival, data in link.transmit(numbered(i), i * spacing):
            deliveries.append((arrival, i, int.from_bytes(data[:4], "big")))
    deliveries.sort()
    return [number for _, _, number in deliveries]


def test_reordering_actually_reorders() -> None:
    link = make(seed=9, delay=0.02, reorder=0.1, reorder_delay=0.005)
    order = arrival_order(link, 1000, spacing=0.001)
    assert sorted(order) == list(range(1000))
    inversions = sum(1 for a, b in zip(order, order[1:], strict=False) if a > b)
    assert inversions > 50
    assert link.stats.reordered == pytest.approx(100, abs=35)


def test_no_reordering_without_reorder_or_jitter() -> None:
    link = make(seed=9, delay=0.02, loss=0.1)
    order = arrival_order(link, 1000, spacing=0.001)
    assert order == sorted(order)
    assert link.stats.reordered == 0


def test_reorder_delay_is_added_exactly() -> None:
    link = make(delay=0.125, reorder=1.0, reorder_delay=0.5)
    assert link.transmit(b"x", 1.0) == [(1.625, b"x")]
    assert link.stats.reordered == 1


# -- corruption ----------------------------------------------------------------------------


def test_corruption_with_checksum_never_delivers_changed_datagram() -> None:
    link = make(seed=11, corrupt=0.3)
    originals = [random.Random(i).randbytes(64) for i in range(5000)]
    for data in originals:
        for _, delivered in link.transmit(data, 0.0):
            assert delivered == data
    stats = link.stats
    assert stats.corrupted == pytest.approx(1500, abs=150)
    assert stats.dropped_corrupt == stats.corrupted
    assert stats.delivered == 5000 - stats.corrupted
    check_conservation(stats)


def test_corruption_without_checksum_delivers_one_flipped_byte() -> None:
    link = make(seed=11, corrupt=0.3, checksum=False)
    changed = 0
    for i in range(5000):
        data = random.Random(i).randbytes(64)
        [(_, delivered)] = link.transmit(data, 0.0)
        assert len(delivered) == len(data)
        diffs = [j for j in range(len(data)) if data[j] != delivered[j]]
        assert len(diffs) <= 1
        if diffs:
            assert zlib.crc32(delivered) != zlib.crc32(data)
            changed += 1
    assert changed == link.stats.corrupted
    assert changed == pytest.approx(1500, abs=150)
    assert link.stats.dropped_corrupt == 0


def test_empty_datagram_cannot_be_corrupted() -> None:
    link = make(corrupt=1.0, checksum=False)
    assert link.transmit(b"", 0.0) == [(0.0, b"")]
    assert link.stats.corrupted == 0


# -- delay, jitter ---------------------------------------------------------------------------


def test_delay_is_exact() -> None:
    link = make(delay=0.25)
    assert link.transmit(b"a", 0.0) == [(0.25, b"a")]
    assert link.transmit(b"b", 1.5) == [(1.75, b"b")]


def test_jitter_stays_in_range_and_spreads() -> None:
    link = make(seed=13, delay=0.5, jitter=0.1)
    extra = []
    for i in range(10_000):
        [(arrival, _)] = link.transmit(b"x", float(i))
        extra.append(arrival - i - 0.5)
    assert all(-1e-9 <= e < 0.1 + 1e-9 for e in extra)
    assert sum(extra) / len(extra) == pytest.approx(0.05, abs=0.002)
    assert min(extra) < 0.001 and max(extra) > 0.099


def test_jitter_is_drawn_from_the_given_rng() -> None:
    link = make(seed=21, delay=0.5, jitter=0.1)
    reference = random.Random(21)
    for i in range(100):
        [(arrival, _)] = link.transmit(b"x", float(i))
        assert arrival == float(i) + 0.5 + reference.random() * 0.1


# -- rate and queue --------------------------------------------------------------------------


def test_rate_serialization_times_are_exact() -> None:
    link = make(rate=1000.0, delay=0.125)
    burst = [link.transmit(bytes(250), 0.0) for _ in range(3)]
    assert [d[0][0] for d in burst] == [0.375, 0.625, 0.875]
    # Sent while the queue still holds one datagram: waits behind it.
    assert link.transmit(bytes(500), 0.5) == [(1.375, bytes(500))]
    # An idle link starts serializing at once.
    assert link.transmit(bytes(125), 10.0) == [(10.25, bytes(125))]


def test_queue_drop_tail() -> None:
    link = make(rate=1000.0, queue_limit=1000)
    results = [link.transmit(numbered(i, 250), 0.0) for i in range(10)]
    assert [len(r) for r in results] == [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    assert link.stats.dropped_queue == 6
    assert link.queued_bytes == 1000
    # At t=0.25 the first datagram has left the queue: exactly one more fits.
    assert link.transmit(numbered(10, 250), 0.25) == [(1.25, numbered(10, 250))]
    assert link.transmit(numbered(11, 250), 0.25) == []
    assert link.stats.dropped_queue == 7
    check_conservation(link.stats)


def test_datagram_larger_than_queue_limit_is_dropped() -> None:
    link = make(rate=1000.0, queue_limit=100)
    assert link.transmit(bytes(101), 0.0) == []
    assert link.transmit(bytes(100), 0.0) == [(0.1, bytes(100))]


def test_loss_after_the_queue_still_uses_bandwidth() -> None:
    link = make(rate=1000.0, loss=1.0)
    link.transmit(bytes(500), 0.0)
    link.impairment = Impairment(rate=1000.0)
    assert link.transmit(bytes(500), 0.0) == [(1.0, bytes(500))]


# -- scripted drops --------------------------------------------------------------------------


def test_drop_nth() -> None:
    link = make()
    link.drop_nth(3)
    link.drop_nth(5)
    pattern = drop_pattern(link, 6)
    assert pattern == [False, False, True, False, True, False]
    assert link.stats.dropped_scripted == 2
    with pytest.raises(ValueError):
        link.drop_nth(6)  # already sent
    with pytest.raises(ValueError):
        link.drop_nth(0)


def test_drop_next() -> None:
    link = make()
    assert drop_pattern(link, 2) == [False, False]
    link.drop_next(2)
    link.drop_next()
    assert drop_pattern(link, 5) == [True, True, True, False, False]
    with pytest.raises(ValueError):
        link.drop_next(0)


def test_drop_where_first_match_only() -> None:
    link = make()
    link.drop_where(lambda index, data: data[0] == 0x02, times=1)
    sent = [b"\x01a", b"\x02b", b"\x03c", b"\x02d"]
    out = [link.transmit(d, 0.0) for d in sent]
    assert [len(o) for o in out] == [1, 0, 1, 1]
    assert link.stats.dropped_scripted == 1


def test_drop_where_persistent_sees_index() -> None:
    link = make()
    seen: list[int] = []

    def predicate(index: int, data: bytes) -> bool:
        seen.append(index)
        return index % 2 == 0

    link.drop_where(predicate)
    assert drop_pattern(link, 6) == [False, True, False, True, False, True]
    assert seen == [1, 2, 3, 4, 5, 6]


def test_drop_where_times() -> None:
    link = make()
    link.drop_where(lambda index, data: True, times=3)
    assert drop_pattern(link, 5) == [True, True, True, False, False]
    with pytest.raises(ValueError):
        link.drop_where(lambda index, data: True, times=0)


def test_blackhole_is_half_open_interval() -> None:
    link = make(delay=0.1)
    link.blackhole(1.0, 2.0)
    times = [0.999, 1.0, 1.5, 1.999, 2.0, 3.0]
    assert [len(link.transmit(b"x", t)) for t in times] == [1, 0, 0, 0, 1, 1]
    assert link.stats.dropped_scripted == 3
    with pytest.raises(ValueError):
        link.blackhole(5.0, 4.0)


def test_scripted_drop_happens_before_the_queue_and_rng() -> None:
    plain = make(seed=17, loss=0.5, rate=1000.0)
    scripted = make(seed=17, loss=0.5, rate=1000.0)
    scripted.drop_nth(1)
    assert scripted.transmit(bytes(1000), 0.0) == []
    # The dropped datagram used neither bandwidth nor randomness.
    assert [plain.transmit(bytes(100), 0.0) for _ in range(20)] == [
        scripted.transmit(bytes(100), 0.0) for _ in range(20)
    ]


def test_clear_scripts() -> None:
    link = make()
    link.drop_next(5)
    link.blackhole(0.0, 10.0)
    link.clear_scripts()
    assert not any(drop_pattern(link, 5))


# -- determinism and accounting ------------------------------------------------------------


NOISY = Impairment(
    loss=0.05,
    burst=GilbertElliott(0.02, 0.3),
    duplicate=0.05,
    reorder=0.05,
    corrupt=0.05,
    delay=0.03,
    jitter=0.01,
    rate=1e6,
    queue_limit=20_000,
)


def run_noisy(seed: int) -> list[list[tuple[float, bytes]]]:
    link = LossyLink(NOISY, random.Random(seed))
    return [link.transmit(numbered(i, 1200), i * 0.0005) for i in range(2000)]


def test_same_seed_same_result_different_seed_different_result() -> None:
    assert run_noisy(1) == run_noisy(1)
    assert run_noisy(1) != run_noisy(2)


def test_impairment_can_change_midway() -> None:
    link = make(loss=1.0)
    assert link.transmit(b"x", 0.0) == []
    link.impairment = Impairment()
    assert link.transmit(b"x", 1.0) == [(1.0, b"x")]
    assert link.stats.sent == 2
    with pytest.raises(TypeError):
        link.impairment = None  # type: ignore[assignment]


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    loss=st.floats(0, 1),
    duplicate=st.floats(0, 1),
    corrupt=st.floats(0, 1),
    reorder=st.floats(0, 1),
    checksum=st.booleans(),
    rate=st.none() | st.floats(100, 1e7),
    sizes=st.lists(st.integers(0, 1500), max_size=60),
)
def test_counters_are_conserved_and_arrivals_never_precede_sending(
    seed: int,
    loss: float,
    duplicate: float,
    corrupt: float,
    reorder: float,
    checksum: bool,
    rate: float | None,
    sizes: list[int],
) -> None:
    imp = Impairment(
        loss=loss,
        duplicate=duplicate,
        corrupt=corrupt,
        reorder=reorder,
        checksum=checksum,
        rate=rate,
        queue_limit=4000 if rate is not None else None,
        delay=0.01,
        jitter=0.005,
    )
    link = LossyLink(imp, random.Random(seed))
    link.drop_nth(2)
    for i, size in enumerate(sizes):
        now = i * 0.001
        data = bytes(size)
        for arrival, delivered in link.transmit(data, now):
            assert arrival >= now + 0.01
            assert len(delivered) == size
            if checksum:
                assert delivered == data
    stats = link.stats
    check_conservation(stats)
    assert stats.sent == len(sizes)
    assert stats.bytes_sent == sum(sizes)
