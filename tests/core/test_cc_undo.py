"""Undoable: every controller gives back a spurious reduction exactly, and falls to its
minimum on persistent congestion."""

from __future__ import annotations

import pytest

from rudp.core.cc_cubic import Cubic
from rudp.core.cc_ledbat import Ledbat
from rudp.core.cc_model import STARTUP, ModelBased
from rudp.core.congestion import CONTROLLERS, CongestionController, NewReno, make_controller

SMSS = 1200


def grown(name: str) -> CongestionController:
    cc = make_controller(name, max_payload=SMSS, initial_window_segments=10)
    now = 0.0
    for _ in range(200):
        now += 0.005
        cc.on_rtt_sample(0.04, now=now)
        cc.on_ack(SMSS, bytes_in_flight=cc.cwnd, now=now)
    return cc


@pytest.mark.parametrize("name", sorted(CONTROLLERS))
def test_restore_gives_back_a_spurious_congestion_event(name: str) -> None:
    cc = grown(name)
    before = (cc.cwnd, cc.ssthresh)
    state = cc.snapshot()
    cc.on_congestion_event(bytes_in_flight=cc.cwnd, now=2.0)
    cc.on_retransmission_timeout(bytes_in_flight=cc.cwnd, now=2.5)
    assert cc.cwnd == SMSS
    cc.restore(state, now=3.0)
    assert (cc.cwnd, cc.ssthresh) == before


@pytest.mark.parametrize("name", sorted(CONTROLLERS))
def test_restore_keeps_a_window_that_grew_since(name: str) -> None:
    cc = grown(name)
    state = cc.snapshot()
    cc.cwnd = 10 * cc.cwnd
    cc.restore(state, now=3.0)
    assert cc.cwnd > 9 * SMSS * 10


def test_cubic_restores_its_curve() -> None:
    cc = grown("cubic")
    assert isinstance(cc, Cubic)
    cc.on_congestion_event(bytes_in_flight=cc.cwnd, now=1.0)  # a first, real loss
    for step in range(1, 50):
        cc.on_ack(SMSS, bytes_in_flight=cc.cwnd, now=1.0 + step * 0.01)
    curve = (cc.w_max, cc.k, cc.epoch_start, cc.w_est, cc.cwnd_prior)
    state = cc.snapshot()
    cc.on_congestion_event(bytes_in_flight=cc.cwnd, now=2.0)
    assert (cc.w_max, cc.epoch_start) != curve[:1] + curve[2:3]
    cc.restore(state, now=2.1)
    assert (cc.w_max, cc.k, cc.epoch_start, cc.w_est, cc.cwnd_prior) == curve  # RFC 9438 §4.9


@pytest.mark.parametrize(
    ("factory", "floor"),
    [
        (lambda: NewReno(max_payload=SMSS), 2 * SMSS),
        (lambda: Cubic(max_payload=SMSS, initial_window=12_000), 2 * SMSS),
        (lambda: Ledbat(max_payload=SMSS, initial_window=12_000), 2 * SMSS),
    ],
)
def test_persistent_congestion_leaves_the_minimum_window(factory: object, floor: int) -> None:
    cc = factory()  # type: ignore[operator]
    cc.cwnd = 100 * SMSS
    cc.on_persistent_congestion(now=1.0)
    assert cc.cwnd == floor
    cc.cwnd = SMSS  # the RTO's loss window is below the floor: kept
    cc.on_persistent_congestion(now=2.0)
    assert cc.cwnd == SMSS


def test_persistent_congestion_restarts_the_model() -> None:
    cc = grown("bbr")
    assert isinstance(cc, ModelBased) and cc.btl_bw > 0 and cc.state != STARTUP
    cc.on_retransmission_timeout(bytes_in_flight=cc.cwnd, now=2.0)
    cc.on_persistent_congestion(now=2.5)
    assert (cc.cwnd, cc.btl_bw, cc.state, cc.filled_pipe) == (SMSS, 0.0, STARTUP, False)
    assert cc.pacing_rate == pytest.approx(2.885 * 12_000 / 0.04)
    cc.on_ack(SMSS, bytes_in_flight=SMSS, now=2.6)
    assert cc.cwnd < 10 * SMSS  # the window from before the timeout is not restored
