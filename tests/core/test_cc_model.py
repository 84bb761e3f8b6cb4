"""ModelBased ("bbr"): the bandwidth / min-RTT model, STARTUP -> DRAIN -> PROBE_BW, cwnd and
pacing, and the responses to random loss, congestive loss and timeouts, as exact numbers."""

from __future__ import annotations

import pytest

from rudp.core.cc_model import (
    BETA,
    DRAIN,
    PROBE_BW,
    STARTUP,
    STARTUP_GAIN,
    ModelBased,
)

SMSS = 1200
RTT = 0.125  # binary-exact times: rounds end exactly on the 8th ACK
LINK = 150_000  # bytes per round trip: a 1.2 MB/s bottleneck
ACKS = 8


class Path:
    """Delivers min(cwnd, LINK) bytes per RTT in eight evenly spaced ACKs; a first ACK at
    time 0 opens the first sampling round, so round N ends on the last ACK of ``round()`` N."""

    def __init__(self, cc: ModelBased) -> None:
        self.cc = cc
        self.now = 0.0
        cc.on_rtt_sample(RTT, now=0.0)
        cc.on_ack(SMSS, bytes_in_flight=cc.cwnd, now=0.0)

    def round(self, *, rtt: float = RTT, lost: int = 0, flight: int | None = None) -> None:
        cc = self.cc
        per_ack = min(cc.cwnd, LINK) // ACKS
        if lost:
            cc.on_bytes_lost(lost, now=self.now)
        for _ in range(ACKS):
            self.now += RTT / ACKS
            cc.on_rtt_sample(rtt, now=self.now)
            inflight = flight if flight is not None else min(cc.cwnd, cc.bdp or cc.cwnd)
            cc.on_ack(per_ack, bytes_in_flight=inflight, now=self.now)


def model() -> ModelBased:
    return ModelBased(max_payload=SMSS, initial_window=10 * SMSS)


def in_probe_bw() -> tuple[ModelBased, Path]:
    cc = model()
    path = Path(cc)
    for _ in range(12):
        path.round()
    assert cc.state == PROBE_BW
    return cc, path


def test_initial_state_and_pacing_from_the_handshake_rtt() -> None:
    cc = model()
    assert cc.cwnd == 12_000 and cc.state == STARTUP and cc.in_slow_start()
    assert cc.pacing_rate == 0.0 and not cc.reduces_on_loss
    cc.on_rtt_sample(RTT, now=0.0)
    # BBRInitPacingRate: startup gain x IW / RTT.
    assert cc.pacing_rate == pytest.approx(STARTUP_GAIN * 12_000 / RTT)
    assert cc.min_rtt == RTT
    with pytest.raises(ValueError):
        ModelBased(max_payload=0, initial_window=1)


def test_startup_doubles_the_bandwidth_per_round_then_drains() -> None:
    cc = model()
    path = Path(cc)
    seen = []
    for _ in range(7):
        path.round(flight=300_000)  # a queue builds: the flight stays above the BDP
        seen.append((cc.state, cc.round_count, int(cc.btl_bw), cc.cwnd))
    assert seen == [
        (STARTUP, 1, 105_600, 26_400),  # cwnd += delivered, as slow start
        (STARTUP, 2, 211_200, 42_900),
        (STARTUP, 3, 343_168, 85_796),
        (STARTUP, 4, 686_336, 139_416),
        (STARTUP, 5, 1_115_328, 278_832),
        (STARTUP, 6, 1_200_000, 428_832),  # the bottleneck: 1.2 MB/s
        (STARTUP, 7, 1_200_000, 447_582),  # no 25 % growth: 1 ...
    ]
    # STARTUP paces at 2.885 x bw and never lowers its rate.
    assert cc.pacing_rate == pytest.approx(STARTUP_GAIN * 1_200_000)
    path.round(flight=300_000)  # ... 2, 3 rounds: the pipe is full (BBR draft §4.6.1.2)
    assert cc.state == DRAIN and cc.filled_pipe
    assert cc.cwnd == 432_749  # filled pipe: capped at 2.885 x BDP
    assert cc.pacing_rate == pytest.approx(1_200_000 / STARTUP_GAIN)
    path.round()  # the flight is down to the BDP: PROBE_BW
    assert cc.state == PROBE_BW and not cc.in_slow_start()
    assert cc.bdp == 150_000
    assert cc.cwnd == 300_000  # 2 x BDP


def test_probe_bw_cycles_its_pacing_gain_once_per_round() -> None:
    cc, path = in_probe_bw()
    gains = []
    for _ in range(9):
        gains.append(cc.pacing_gain)
        path.round()
    assert gains == [1.0, 1.0, 1.0, 1.0, 1.25, 0.75, 1.0, 1.0, 1.0]  # 8-round cycle
    assert cc.pacing_rate == pytest.approx(cc.pacing_gain * 1_200_000)


def test_random_loss_does_not_shrink_the_window() -> None:
    cc, path = in_probe_bw()
    cwnd, bw = cc.cwnd, cc.btl_bw
    cc.on_congestion_event(bytes_in_flight=cwnd, now=path.now)
    path.round(lost=SMSS)  # one segment of a 120 kB round: random loss
    path.round(lost=20 * SMSS)  # 20 % lost, but no standing queue: still random loss
    assert cc.cwnd == cwnd and cc.btl_bw == bw and cc.inflight_hi is None


def test_congestive_loss_bounds_the_flight_and_probes_back_up() -> None:
    cc, path = in_probe_bw()
    assert cc.cwnd == 300_000
    # 10 segments lost (> 2 %, >= 8 segments) while every RTT sample shows a queue.
    path.round(lost=10 * SMSS, rtt=1.5 * RTT, flight=200_000)
    assert cc.inflight_hi == int(BETA * 200_000) == 140_000
    assert cc.cwnd == 140_000
    hi = []
    for _ in range(8):  # the bound grows by 1, 2, 4 ... segments per round
        path.round(flight=100_000)
        hi.append(cc.inflight_hi)
    assert hi == [141_200, 143_600, 148_400, 158_000, 177_200, 215_600, 292_400, None]
    assert cc.cwnd == 300_000


def test_timeout_keeps_the_model_and_restores_the_window() -> None:
    cc, path = in_probe_bw()
    cwnd, bw, state = cc.cwnd, cc.btl_bw, cc.state
    cc.on_retransmission_timeout(bytes_in_flight=cwnd, now=path.now)
    cc.on_retransmission_timeout(bytes_in_flight=cwnd, now=path.now + 0.4)  # backed off
    assert cc.cwnd == SMSS
    cc.on_ack(0, bytes_in_flight=0, now=path.now + 0.5)  # nothing delivered: no proof yet
    assert cc.cwnd == SMSS
    cc.on_ack(SMSS, bytes_in_flight=SMSS, now=path.now + 0.5)
    assert cc.cwnd == cwnd and cc.btl_bw == bw and cc.state == state  # no new STARTUP


def test_idle_restart_starts_a_fresh_sample_interval() -> None:
    cc, path = in_probe_bw()
    bw = cc.btl_bw
    cc.on_idle_restart(now=path.now + 5.0)
    path.now += 5.0
    path.round()
    assert cc.btl_bw == bw  # the idle gap did not count as a slow sample
    assert "probe_bw" in repr(cc)


def test_min_rtt_filter_expires_after_ten_seconds() -> None:
    cc = model()
    cc.on_rtt_sample(0.05, now=0.0)
    cc.on_rtt_sample(0.08, now=5.0)
    assert cc.min_rtt == 0.05
    cc.on_rtt_sample(0.08, now=10.5)
    assert cc.min_rtt == 0.08 and cc.min_rtt_stamp == 10.5


def test_throughput_profile_keeps_70_percent_of_a_lossy_50ms_link() -> None:
    """100 Mbit/s, RTT 50 ms, 1-BDP drop-tail queue, 2 % random loss each way: goodput
    after STARTUP (from the 4th MB on) stays above 70 % of the link rate."""
    from rudp.config import Config
    from tests.core.harness import connect, make_pair
    from tests.sim import Impairment

    rate = 12.5e6
    link = Impairment(loss=0.02, delay=0.025, rate=rate, queue_limit=int(rate * 0.05))
    sim, client, server = make_pair(
        client_config=Config.profile("throughput"), impairment=link, seed=3
    )
    conn = connect(sim, client, server)
    log = server.log(server.accepted[0])
    total = 12_000_000
    client.write(conn, bytes(total), eof=True)
    assert sim.run_until(lambda: len(log.received) >= 4_000_000, sim.clock.now + 10)
    t0 = sim.clock.now
    assert sim.run_until(lambda: log.eof, t0 + 10)
    goodput = (len(log.received) - 4_000_000) / (sim.clock.now - t0)
    assert goodput >= 0.7 * rate
    assert conn.stats.rto_timeouts == 0


def test_acks_in_one_clock_tick_with_a_zero_min_rtt_take_no_rate_sample() -> None:
    """uvloop's clock ticks in milliseconds: on loopback an RTT sample is 0 and ACKs share a
    timestamp, so the sampling span is 0 long and must not be divided by."""
    cc = model()
    cc.on_rtt_sample(0.0, now=1.0)
    for _ in range(3):
        cc.on_ack(SMSS, bytes_in_flight=cc.cwnd, now=1.0)
    assert cc.min_rtt == 0.0 and cc.btl_bw == 0.0  # no rate from a zero-length span
    cc.on_ack(SMSS, bytes_in_flight=cc.cwnd, now=1.001)
    assert cc.cwnd >= 12_000
