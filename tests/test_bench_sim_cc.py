"""The shape of ``bench/sim_cc.py``'s goodput table, on short deterministic runs: the
model-based profile keeps most of a lossy link, CUBIC follows its response function, LEDBAT
yields to a loss-based flow, and two CUBIC flows share a bottleneck fairly."""

from __future__ import annotations

import pytest

from bench.sim_cc import (
    PAYLOAD_RATE,
    jain_index,
    response_function,
    run_case,
    run_request_response,
    run_shared,
)


def test_jain_index() -> None:
    assert jain_index([1.0, 1.0]) == 1.0
    assert jain_index([1.0, 0.0]) == 0.5
    assert jain_index([0.0, 0.0]) == 0.0


def test_response_function() -> None:
    # Reno's 1.22 / sqrt(p) segments per RTT wins at 1 % and 50 ms: sqrt(150) x 1200 B / 50 ms.
    assert response_function(0.01, 0.05) == pytest.approx(0.2939, abs=1e-4)
    assert response_function(0.0, 0.05) == PAYLOAD_RATE / 1e6
    # At a long RTT CUBIC's own curve is the larger: 1.054 x (RTT / p)^0.75 segments.
    assert response_function(0.001, 0.5) == pytest.approx(0.2674, abs=1e-4)


def test_throughput_profile_keeps_most_of_a_2_percent_lossy_50ms_link() -> None:
    result = run_case("throughput", 2.0, 0.05, duration=3.5, warmup=2.0)
    assert result.share >= 0.7
    assert result.retx_per_lost <= 1.02  # retransmits what was lost, not more
    assert result.spurious == 0 and result.rto_timeouts == 0


@pytest.mark.parametrize("loss", [1.0, 2.0])
def test_fair_profile_follows_the_cubic_response_function(loss: float) -> None:
    """Where the response function holds: losses are repaired by fast recovery. At 5 % the
    window is ~5 segments, a few losses a minute leave nothing to SACK and wait for a probe
    or the RTO (which the response function leaves out), and goodput falls ~26 % below it."""
    result = run_case("fair", loss, 0.05, duration=62.5, warmup=2.5)
    assert result.goodput == pytest.approx(result.model, rel=0.25)


def test_background_yields_to_a_fair_flow() -> None:
    """10 Mbit/s, RTT 40 ms and a 100 ms queue, deeper than LEDBAT's 60 ms target (with a
    shallower one it cannot see the queue it should yield to); measured over the second
    half of a minute (over the last 15 s of a 30 s run it was 23 %: the share swings with
    CUBIC's cycle)."""
    shared = run_shared("fair", "background", rtt=0.04, duration=60.0, rate=1.25e6, queue=0.1)
    assert 1 - shared.share_first < 0.2


def test_two_fair_flows_converge_to_a_fair_share() -> None:
    shared = run_shared("fair", "fair", rtt=0.04, duration=30.0, rate=1.25e6)
    assert shared.jain >= 0.9


def test_the_latency_profile_repairs_a_lost_request_within_one_short_timeout() -> None:
    """1 KiB each way over a 40 ms path, 5 % loss each way: a lost request or reply waits for
    the latency profile's short RTO (max(30 ms, SRTT + max(4 RTTVAR, 10 ms))) instead of the
    fair profile's SRTT + 200 ms, so p99 is one RTT plus ~50 ms (KCP's fast settings: 98 ms on a
    40 ms path, FIELD.md)."""
    fair = run_request_response("fair", 5.0, 0.04, rounds=2000)
    fast = run_request_response("latency", 5.0, 0.04, rounds=2000)
    assert fast.p50 == pytest.approx(0.0402, abs=0.001)
    assert fast.p99 <= 0.095 < 0.2 < fair.p99
