from __future__ import annotations

import pytest

from rudp.config import Config
from rudp.core.rtt import FALLBACK_RTO, RttEstimator


def make(**changes: object) -> RttEstimator:
    return RttEstimator(Config().replace(**changes))


def test_initial_state_uses_config_initial_rto() -> None:
    est = make(initial_rto=1.5)
    assert est.srtt is None
    assert est.rttvar == 0.0
    assert est.min_rtt is None
    assert est.latest_rtt is None
    assert est.rto == 1.5
    assert est.base_rto == 1.5
    assert est.backoff_count == 0


def test_first_sample_exact() -> None:
    est = make()
    est.on_sample(1.0)
    assert est.srtt == 1.0
    assert est.rttvar == 0.5
    assert est.rto == 3.0  # 1 + max(0.001, 4 * 0.5)
    assert est.min_rtt == 1.0
    assert est.latest_rtt == 1.0


def test_second_sample_updates_rttvar_with_old_srtt() -> None:
    est = make()
    est.on_sample(1.0)
    est.on_sample(2.0)
    # RTTVAR = 3/4 * 0.5 + 1/4 * |1.0 - 2.0| = 0.625, using SRTT before its update.
    assert est.rttvar == 0.625
    # SRTT = 7/8 * 1.0 + 1/8 * 2.0 = 1.125
    assert est.srtt == 1.125
    assert est.rto == 1.125 + 4 * 0.625
    assert est.min_rtt == 1.0
    assert est.latest_rtt == 2.0


def test_third_sample_tracks_min_rtt() -> None:
    est = make()
    for sample in (0.5, 0.25, 0.75):
        est.on_sample(sample)
    assert est.min_rtt == 0.25
    assert est.latest_rtt == 0.75


def test_clamped_to_min_rto() -> None:
    est = make(min_rto=0.2, rto_variance_floor=0.0)
    est.on_sample(0.01)
    assert est.srtt == 0.01
    assert est.rto == 0.2
    assert est.base_rto == 0.2


def test_the_variance_term_has_a_floor() -> None:
    """RTO = SRTT + max(G, 4 RTTVAR, rto_variance_floor), as Linux's TCP_RTO_MIN: on a path
    of steady delay the RTO stays 200 ms beyond the RTT instead of sinking onto it."""
    est = make(min_rto=0.05)
    est.on_sample(0.3)  # 4 x RTTVAR = 0.6 dominates
    assert est.rto == pytest.approx(0.9)
    for _ in range(60):
        est.on_sample(0.3)  # RTTVAR decays towards 0
    assert est.rttvar < 0.001
    assert est.rto == pytest.approx(0.5)  # 0.3 + the 0.2 s floor, not 0.3 + 4 x RTTVAR


def test_clamped_to_max_rto() -> None:
    est = make(max_rto=60.0)
    est.on_sample(30.0)  # 30 + 4 * 15 = 90
    assert est.rto == 60.0


def test_granularity_floor() -> None:
    est = make(clock_granularity=0.5, min_rto=0.01)
    est.on_sample(0.1)  # 4 * RTTVAR = 0.2 < G
    assert est.rto == pytest.approx(0.6)
    for _ in range(50):
        est.on_sample(0.1)
    assert est.rto == pytest.approx(0.6)


def test_backoff_doubles_and_caps_at_max_rto() -> None:
    est = make(initial_rto=1.0, max_rto=60.0)
    seen = []
    for _ in range(8):
        est.on_timeout()
        seen.append(est.rto)
    assert seen == [2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]
    assert est.backoff_count == 8
    assert est.base_rto == 1.0


def test_gentle_backoff_multiplies_by_its_factor() -> None:
    est = make(initial_rto=0.3, min_rto=0.03, max_rto=1.0, rto_backoff=1.5)
    seen = []
    for _ in range(4):
        est.on_timeout()
        seen.append(est.rto)
    assert seen == pytest.approx([0.45, 0.675, 1.0, 1.0])


@pytest.mark.parametrize("factor", [1.0, 0.5, 4.5])
def test_backoff_factor_outside_its_range_is_refused(factor: float) -> None:
    with pytest.raises(ValueError, match="rto_backoff"):
        Config(rto_backoff=factor)


def test_sample_after_backoff_resets_it() -> None:
    est = make()
    est.on_sample(1.0)
    est.on_timeout()
    est.on_timeout()
    assert est.rto == 12.0
    est.on_sample(1.0)
    assert est.backoff_count == 0
    assert est.rto == est.base_rto == pytest.approx(1.0 + 4 * 0.375)


def test_reset_backoff() -> None:
    est = make()
    est.on_sample(0.5)
    est.on_timeout()
    assert est.rto == 3.0
    est.reset_backoff()
    assert est.backoff_count == 0
    assert est.rto == 1.5


def test_negative_and_non_finite_samples_ignored() -> None:
    est = make()
    for bad in (-0.1, float("nan"), float("inf")):
        est.on_sample(bad)
    assert est.srtt is None
    assert est.rto == 1.0
    est.on_sample(0.0)
    assert est.srtt == 0.0
    assert est.rto == 0.2  # 0 + max(0.001, 0) clamped to min_rto


def test_handshake_fallback_without_sample() -> None:
    est = make()
    est.on_timeout()
    est.on_timeout()
    est.on_handshake_timeout_fallback()
    assert est.rto == est.base_rto == FALLBACK_RTO == 3.0
    assert est.backoff_count == 0


def test_handshake_fallback_keeps_larger_rto_and_clamps() -> None:
    est = make(initial_rto=5.0)
    est.on_handshake_timeout_fallback()
    assert est.rto == 5.0
    est = make(initial_rto=1.0, max_rto=2.0)
    est.on_handshake_timeout_fallback()
    assert est.rto == 2.0


def test_handshake_fallback_ignored_after_a_sample() -> None:
    est = make()
    est.on_sample(0.1)
    rto = est.rto
    est.on_handshake_timeout_fallback()
    assert est.rto == rto


def test_rttvar_rises_at_once_and_decays_per_round_trip() -> None:
    """RFC 7323 Appendix G for the decay only: with N samples per RTT a smaller deviation
    enters with beta / N, a larger one with the full beta; SRTT takes every sample."""
    est = RttEstimator(Config())
    est.on_sample(0.1)
    assert est.rttvar == pytest.approx(0.05)
    est.on_sample(0.3, per_rtt=10)  # |0.1 - 0.3| = 0.2 > RTTVAR: full beta
    assert est.rttvar == pytest.approx(0.75 * 0.05 + 0.25 * 0.2)
    assert est.srtt == pytest.approx(0.875 * 0.1 + 0.125 * 0.3)
    before = est.rttvar
    srtt = est.srtt
    assert srtt is not None
    est.on_sample(srtt, per_rtt=10)  # no deviation: decays by beta / 10 only
    assert est.rttvar == pytest.approx(before * (1 - 0.025))
    for _ in range(9):
        est.on_sample(srtt, per_rtt=10)
    assert est.rttvar == pytest.approx(before * (1 - 0.025) ** 10)  # ~ one RFC 6298 step
