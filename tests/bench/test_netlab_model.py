"""The WAN emulator's packet model: exact delivery times, queue bounds and drop counts."""

from __future__ import annotations

import random

import pytest

from bench.netlab.model import (
    MIN_QUEUE_LIMIT,
    DelayLine,
    GilbertElliott,
    LinkDirection,
    LinkParams,
)


def _link(**kwargs: object) -> LinkDirection:
    return LinkDirection(LinkParams(**kwargs), random.Random(7))  # type: ignore[arg-type]


def test_fixed_delay_without_rate() -> None:
    link = _link(delay=0.01)
    assert link.admit(1500, 1.0) == pytest.approx(1.01)
    assert link.admit(1500, 1.0) == pytest.approx(1.01)
    assert link.counters.packets_in == 2
    assert link.counters.dropped == 0


def test_rate_serializes_back_to_back_packets() -> None:
    link = _link(delay=0.01, rate=1_000_000.0, queue_limit=10_000)
    # Each 1000 B packet takes 1 ms on a 1 MB/s link; three arrive at once.
    times = [link.admit(1000, 0.0) for _ in range(3)]
    assert times == [pytest.approx(0.011), pytest.approx(0.012), pytest.approx(0.013)]
    assert link.queued_bytes(0.0) == 3000
    assert link.queued_bytes(0.0015) == 1500
    assert link.queued_bytes(0.01) == 0
    assert link.counters.max_queue_bytes == 3000


def test_drop_tail_queue_drops_what_overflows_and_recovers() -> None:
    link = _link(rate=1000.0, queue_limit=2500)
    assert link.admit(1000, 0.0) is not None
    assert link.admit(1000, 0.0) is not None
    assert link.admit(1000, 0.0) is None  # 2000 queued + 1000 > 2500
    assert link.counters.queue_drops == 1
    assert link.counters.queue_drop_bytes == 1000
    # One packet has left after a second: room again.
    assert link.admit(1000, 1.0) == pytest.approx(3.0)
    assert link.counters.dropped_bytes == 1000


def test_default_queue_is_one_bdp_with_a_floor() -> None:
    assert LinkParams(rate=12.5e6, delay=0.01).effective_queue_limit == 250_000
    assert LinkParams(rate=12.5e6).effective_queue_limit == MIN_QUEUE_LIMIT
    assert LinkParams().effective_queue_limit is None


def test_random_loss_rate_and_counts() -> None:
    link = _link(loss=0.05)
    delivered = sum(link.admit(100, 0.0) is not None for _ in range(20_000))
    assert link.counters.random_drops == 20_000 - delivered
    assert 0.04 < link.counters.random_drops / 20_000 < 0.06
    assert link.counters.loss_drop_bytes == 100 * link.counters.random_drops


def test_loss_is_reproducible_from_the_seed() -> None:
    def pattern() -> list[bool]:
        link = LinkDirection(LinkParams(loss=0.3), random.Random(42))
        return [link.admit(10, 0.0) is None for _ in range(200)]

    assert pattern() == pattern()


def test_gilbert_elliott_drops_in_bursts() -> None:
    link = _link(burst=GilbertElliott(p_good_to_bad=0.01, p_bad_to_good=0.25))
    lost = [link.admit(100, 0.0) is None for _ in range(50_000)]
    rate = sum(lost) / len(lost)
    assert 0.025 < rate < 0.05  # long-run 0.01 / 0.26 = 3.8 %
    runs = []
    length = 0
    for drop in lost:
        if drop:
            length += 1
        elif length:
            runs.append(length)
            length = 0
    assert sum(runs) / len(runs) > 3  # mean burst 1 / 0.25 = 4
    assert link.counters.burst_drops == sum(lost)


def test_jitter_never_reorders() -> None:
    link = _link(delay=0.02, jitter=0.01)
    times = [link.admit(100, i * 0.001) for i in range(500)]
    assert all(t is not None for t in times)
    assert times == sorted(times)
    assert min(t - i * 0.001 for i, t in enumerate(times) if t is not None) >= 0.01 - 1e-9


def test_reordered_packets_are_overtaken() -> None:
    link = _link(delay=0.01, reorder=1.0, reorder_delay=0.005)
    first = link.admit(100, 0.0)
    assert first == pytest.approx(0.015)
    assert link.counters.reordered == 1


def test_invalid_params_are_refused() -> None:
    with pytest.raises(ValueError):
        LinkParams(loss=1.5)
    with pytest.raises(ValueError):
        LinkParams(queue_limit=1000)  # no rate
    with pytest.raises(ValueError):
        LinkParams(delay=-1.0)


def test_delay_line_pops_due_items_in_time_then_arrival_order() -> None:
    line: DelayLine[str] = DelayLine()
    line.push(2.0, "late")
    line.push(1.0, "first")
    line.push(1.0, "second")
    assert line.next_deadline() == 1.0
    assert line.pop_due(0.5) == []
    assert line.pop_due(1.0) == [(1.0, "first"), (1.0, "second")]
    assert len(line) == 1
    assert line.pop_due(5.0) == [(2.0, "late")]
    assert line.next_deadline() is None
