"""Rack: RACK.xmit_ts / RACK.rtt, reordering detection and reo_wnd (RFC 8985 §6.2), and the
tail-loss probe timeout (§7.2), as exact numbers."""

from __future__ import annotations

import pytest

from rudp.core.rack import REO_WND_PERSIST, TLP_MIN_PTO, Rack, probe_timeout


def test_the_newest_transmission_wins_and_gives_the_rtt() -> None:
    rack = Rack()
    assert rack.rtt is None
    rack.on_delivered(1.0, 2000, now=1.05)
    assert (rack.xmit_ts, rack.end_seq, rack.rtt) == (1.0, 2000, pytest.approx(0.05))
    rack.on_delivered(0.9, 5000, now=1.2)  # sent earlier: ignored
    assert rack.xmit_ts == 1.0 and rack.rtt == pytest.approx(0.05)
    rack.on_delivered(1.0, 3000, now=1.1)  # same time, higher sequence: later in the flush
    assert rack.end_seq == 3000 and rack.rtt == pytest.approx(0.1)
    assert "reordering=False" in repr(rack)


def test_reordering_is_a_first_transmission_delivered_below_fack() -> None:
    rack = Rack()
    rack.on_original_delivered(0, 1000, retransmitted_below=0)
    rack.on_original_delivered(2000, 3000, retransmitted_below=0)
    assert rack.fack == 3000 and not rack.reordering_seen
    rack.on_original_delivered(1000, 2000, retransmitted_below=1500)  # it was resent
    assert not rack.reordering_seen
    rack.on_original_delivered(1000, 2000, retransmitted_below=1000)
    assert rack.reordering_seen


def test_reo_wnd_is_zero_without_reordering_in_recovery_or_past_dupthresh() -> None:
    rack = Rack()
    kwargs = {"dupthresh": 3, "min_rtt": 0.04, "srtt": 0.05}
    assert rack.reo_wnd(in_recovery=True, sacked_segments=0, **kwargs) == 0.0
    assert rack.reo_wnd(in_recovery=False, sacked_segments=3, **kwargs) == 0.0
    assert rack.reo_wnd(in_recovery=False, sacked_segments=2, **kwargs) == 0.01
    rack.reordering_seen = True
    assert rack.reo_wnd(in_recovery=True, sacked_segments=9, **kwargs) == 0.01


def test_dsack_grows_the_window_once_per_round_and_16_clean_recoveries_reset_it() -> None:
    rack = Rack()
    rack.reordering_seen = True
    kwargs = {"in_recovery": True, "sacked_segments": 0, "dupthresh": 3, "min_rtt": 0.04}
    rack.on_dsack(snd_una=100, snd_nxt=500)
    rack.on_dsack(snd_una=200, snd_nxt=600)  # the same round (snd_una < 500)
    assert rack.reo_wnd_mult == 2
    assert rack.reo_wnd(srtt=0.05, **kwargs) == 0.02
    rack.on_dsack(snd_una=500, snd_nxt=900)  # a new round
    assert rack.reo_wnd_mult == 3
    assert rack.reo_wnd(srtt=0.025, **kwargs) == 0.025  # never more than SRTT
    for _ in range(REO_WND_PERSIST - 1):
        rack.on_recovery_exit()
    assert rack.reo_wnd_mult == 3
    rack.on_recovery_exit()
    assert rack.reo_wnd_mult == 1


def test_probe_timeout() -> None:
    assert probe_timeout(srtt=0.05, one_segment=False, worst_case_ack_delay=0.2) == 0.1
    assert probe_timeout(srtt=0.05, one_segment=True, worst_case_ack_delay=0.2) == pytest.approx(
        0.3
    )
    assert probe_timeout(srtt=0.001, one_segment=False, worst_case_ack_delay=0.2) == TLP_MIN_PTO
