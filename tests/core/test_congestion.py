from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rudp.core.cc_model import ModelBased
from rudp.core.congestion import (
    CONTROLLERS,
    INITIAL_SSTHRESH,
    CongestionController,
    NewReno,
    initial_window,
    make_controller,
)

SMSS = 1200


def in_ca(cwnd: int) -> NewReno:
    """A controller in congestion avoidance with the given window."""
    cc = NewReno(max_payload=SMSS)
    cc.on_congestion_event(bytes_in_flight=2 * cwnd, now=0.0)
    assert cc.cwnd == cwnd
    assert not cc.in_slow_start()
    return cc


@pytest.mark.parametrize(
    ("payload", "expected"),
    [(1200, 12000), (1460, 14600), (1000, 10000), (536, 5360), (16, 160), (9000, 18000)],
)
def test_initial_window_rfc6928(payload: int, expected: int) -> None:
    assert initial_window(payload) == expected
    cc = NewReno(max_payload=payload)
    assert cc.cwnd == expected
    assert cc.initial_window == expected


def test_initial_window_other_segment_counts_are_literal() -> None:
    assert NewReno(max_payload=1200, initial_window_segments=1).cwnd == 1200
    assert NewReno(max_payload=1200, initial_window_segments=4).cwnd == 4800
    assert NewReno(max_payload=9000, initial_window_segments=20).cwnd == 180000


@pytest.mark.parametrize(("payload", "segments"), [(0, 10), (1200, 0), (-1, 4)])
def test_constructor_rejects_bad_arguments(payload: int, segments: int) -> None:
    with pytest.raises(ValueError):
        NewReno(max_payload=payload, initial_window_segments=segments)


def test_initial_ssthresh_is_arbitrarily_high() -> None:
    cc = NewReno(max_payload=SMSS)
    assert cc.ssthresh == INITIAL_SSTHRESH
    assert cc.in_slow_start()


def test_slow_start_doubles_per_round() -> None:
    cc = NewReno(max_payload=SMSS)
    for expected in (24000, 48000, 96000):
        start = cc.cwnd
        for _ in range(start // SMSS):
            # The sender keeps the window full, so the flight before each ACK is cwnd.
            cc.on_ack(SMSS, bytes_in_flight=cc.cwnd, now=0.0)
        assert cc.cwnd == expected


def test_slow_start_counts_every_acked_byte_even_on_stretch_acks() -> None:
    cc = NewReno(max_payload=SMSS)
    cc.on_ack(5 * SMSS, bytes_in_flight=cc.cwnd, now=0.0)  # one ACK for five segments
    assert cc.cwnd == 12000 + 5 * SMSS
    cc.on_ack(700, bytes_in_flight=cc.cwnd, now=0.0)
    assert cc.cwnd == 12000 + 5 * SMSS + 700


def test_slow_start_stops_at_ssthresh_and_leftover_counts_in_ca() -> None:
    cc = NewReno(max_payload=SMSS)
    cc.ssthresh = 12000 + 1000
    cc.on_ack(2 * SMSS, bytes_in_flight=cc.cwnd, now=0.0)
    # 1000 bytes reach ssthresh; the remaining 1400 go to the CA accumulator.
    assert cc.cwnd == 13000
    assert not cc.in_slow_start()
    cc.on_ack(13000 - 1400 - 1, bytes_in_flight=cc.cwnd, now=0.0)
    assert cc.cwnd == 13000
    cc.on_ack(1, bytes_in_flight=cc.cwnd, now=0.0)
    assert cc.cwnd == 13000 + SMSS


def test_congestion_avoidance_one_smss_per_window() -> None:
    cc = in_ca(24000)
    for expected in (25200, 26400, 27600):
        window = cc.cwnd
        for _ in range(window // SMSS):
            cc.on_ack(SMSS, bytes_in_flight=cc.cwnd, now=0.0)
        assert cc.cwnd == expected


def test_congestion_avoidance_exact_accumulator() -> None:
    cc = in_ca(24000)
    cc.on_ack(23999, bytes_in_flight=24000, now=0.0)
    assert cc.cwnd == 24000
    cc.on_ack(1, bytes_in_flight=24000, now=0.0)
    assert cc.cwnd == 25200
    # Leftover is exact: odd-sized ACKs totalling one window give exactly one SMSS.
    for chunk in (1, 7, 25192):
        cc.on_ack(chunk, bytes_in_flight=25200, now=0.0)
    assert cc.cwnd == 26400


def test_congestion_avoidance_stretch_ack_spanning_windows() -> None:
    cc = in_ca(24000)
    cc.on_ack(24000 + 25200, bytes_in_flight=60000, now=0.0)
    assert cc.cwnd == 26400


def test_app_limited_no_growth() -> None:
    cc = NewReno(max_payload=SMSS)
    cc.on_ack(SMSS, bytes_in_flight=cc.cwnd // 2 - 1, now=0.0)
    assert cc.cwnd == 12000
    cc.on_ack(SMSS, bytes_in_flight=cc.cwnd // 2, now=0.0)
    assert cc.cwnd == 13200
    ca = in_ca(24000)
    for _ in range(100):
        ca.on_ack(SMSS, bytes_in_flight=11999, now=0.0)
    assert ca.cwnd == 24000
    # App-limited bytes are not banked in the accumulator either.
    ca.on_ack(SMSS, bytes_in_flight=24000, now=0.0)
    assert ca.cwnd == 24000


def test_zero_or_negative_ack_is_ignored() -> None:
    cc = NewReno(max_payload=SMSS)
    cc.on_ack(0, bytes_in_flight=cc.cwnd, now=0.0)
    cc.on_ack(-5, bytes_in_flight=cc.cwnd, now=0.0)
    assert cc.cwnd == 12000


def test_congestion_event_halves_flight() -> None:
    cc = NewReno(max_payload=SMSS)
    cc.on_congestion_event(bytes_in_flight=100001, now=0.0)
    assert cc.ssthresh == 50000
    assert cc.cwnd == 50000
    assert not cc.in_slow_start()


def test_congestion_event_floor_two_smss() -> None:
    cc = NewReno(max_payload=SMSS)
    cc.on_congestion_event(bytes_in_flight=3000, now=0.0)
    assert cc.ssthresh == 2 * SMSS
    assert cc.cwnd == 2 * SMSS


def test_retransmission_timeout_loss_window() -> None:
    cc = NewReno(max_payload=SMSS)
    cc.on_retransmission_timeout(bytes_in_flight=12000, now=0.0)
    assert cc.cwnd == SMSS
    assert cc.ssthresh == 6000
    assert cc.in_slow_start()
    cc2 = NewReno(max_payload=SMSS)
    cc2.on_retransmission_timeout(bytes_in_flight=1000, now=0.0)
    assert cc2.ssthresh == 2 * SMSS


def test_repeated_timeout_holds_ssthresh_until_an_ack() -> None:
    cc = NewReno(max_payload=SMSS)
    cc.on_retransmission_timeout(bytes_in_flight=48000, now=0.0)
    cc.on_retransmission_timeout(bytes_in_flight=SMSS, now=1.0)
    assert cc.ssthresh == 24000
    assert cc.cwnd == SMSS
    cc.on_ack(SMSS, bytes_in_flight=SMSS, now=2.0)
    assert cc.cwnd == 2 * SMSS
    cc.on_retransmission_timeout(bytes_in_flight=2 * SMSS, now=3.0)
    assert cc.ssthresh == 2 * SMSS


def test_slow_start_after_timeout_reaches_ssthresh() -> None:
    cc = NewReno(max_payload=SMSS)
    cc.on_retransmission_timeout(bytes_in_flight=12000, now=0.0)
    while cc.in_slow_start():
        cc.on_ack(SMSS, bytes_in_flight=cc.cwnd, now=0.0)
    assert cc.cwnd == 6000


def test_idle_restart() -> None:
    cc = NewReno(max_payload=SMSS)
    for _ in range(20):
        cc.on_ack(SMSS, bytes_in_flight=cc.cwnd, now=0.0)
    assert cc.cwnd == 36000
    cc.on_idle_restart(now=10.0)
    assert cc.cwnd == 12000
    cc.on_retransmission_timeout(bytes_in_flight=12000, now=11.0)
    cc.on_idle_restart(now=20.0)
    assert cc.cwnd == SMSS


def test_registry_and_factory() -> None:
    assert set(CONTROLLERS) == {"newreno", "bbr", "cubic", "ledbat"}
    cc = make_controller("newreno", max_payload=1460, initial_window_segments=10)
    assert isinstance(cc, NewReno)
    assert cc.cwnd == 14600
    assert cc.reduces_on_loss and cc.pacing_rate == 0.0
    model = make_controller("bbr", max_payload=1460, initial_window_segments=10)
    assert isinstance(model, ModelBased)
    assert model.cwnd == 14600 and not model.reduces_on_loss


def test_unknown_controller_lists_known_names() -> None:
    with pytest.raises(ValueError, match="bbr, cubic, ledbat, newreno"):
        make_controller("vegas", max_payload=SMSS, initial_window_segments=10)


events = st.one_of(
    st.tuples(st.just("ack"), st.integers(-10, 100_000), st.integers(0, 200_000)),
    st.tuples(st.just("loss"), st.just(0), st.integers(0, 200_000)),
    st.tuples(st.just("rto"), st.just(0), st.integers(0, 200_000)),
    st.tuples(st.just("idle"), st.just(0), st.just(0)),
)


@given(st.integers(16, 9000), st.lists(events, max_size=60))
def test_window_invariants(payload: int, script: list[tuple[str, int, int]]) -> None:
    cc: CongestionController = NewReno(max_payload=payload)
    for kind, acked, flight in script:
        if kind == "ack":
            cc.on_ack(acked, bytes_in_flight=flight, now=0.0)
        elif kind == "loss":
            cc.on_congestion_event(bytes_in_flight=flight, now=0.0)
        elif kind == "rto":
            cc.on_retransmission_timeout(bytes_in_flight=flight, now=0.0)
        else:
            cc.on_idle_restart(now=0.0)
        assert cc.cwnd >= payload
        assert cc.ssthresh >= 2 * payload
        assert cc.in_slow_start() == (cc.cwnd < cc.ssthresh)
