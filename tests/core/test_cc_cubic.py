"""Cubic ("cubic"): RFC 9438 window growth after a loss, beta_cubic reduction, fast
convergence, the Reno-friendly region, timeouts, idle restart and HyStart++ (RFC 9406), as
exact numbers; then goodput on a simulated 100 Mbit/s, 50 ms path against NewReno."""

from __future__ import annotations

import pytest

from rudp.config import Config
from rudp.core.cc_cubic import (
    ALPHA_CUBIC,
    BETA_CUBIC,
    CSS_GROWTH_DIVISOR,
    Cubic,
)
from rudp.core.congestion import INITIAL_SSTHRESH, make_controller
from tests.core.harness import SERVER_ADDR, make_pair
from tests.sim import Impairment

SMSS = 1200
IW = 12_000


def grown(cwnd: int) -> Cubic:
    """A controller grown by slow start (no RTT samples, so no HyStart++) to ``cwnd``."""
    cc = Cubic(max_payload=SMSS, initial_window=IW)
    cc.on_ack(cwnd - IW, bytes_in_flight=IW, now=0.0)
    assert cc.cwnd == cwnd and cc.in_slow_start()
    return cc


def after_loss(segments: int, *, now: float = 0.0) -> Cubic:
    """A controller that lost at a window (and flight) of ``segments``."""
    cc = grown(segments * SMSS)
    cc.on_congestion_event(bytes_in_flight=segments * SMSS, now=now)
    return cc


def test_initial_state_and_registry() -> None:
    cc = make_controller("cubic", max_payload=SMSS, initial_window_segments=10)
    assert isinstance(cc, Cubic)
    assert cc.cwnd == IW and cc.ssthresh == INITIAL_SSTHRESH and cc.in_slow_start()
    assert cc.reduces_on_loss and cc.pacing_rate == 0.0
    assert ALPHA_CUBIC == pytest.approx(0.5294117647)  # 3 (1 - 0.7) / (1 + 0.7)
    with pytest.raises(ValueError):
        Cubic(max_payload=0, initial_window=IW)
    assert Config.profile("fair").congestion_control == "cubic"


def test_congestion_event_reduces_to_beta() -> None:
    cc = after_loss(100)
    # RFC 9438 §4.6: ssthresh = flight * 0.7; cwnd = ssthresh; W_max = cwnd before the loss.
    assert (cc.ssthresh, cc.cwnd) == (84_000, 84_000)
    assert cc.w_max == 100.0 and cc.cwnd_prior == 100.0
    assert not cc.in_slow_start() and cc.epoch_start is None
    # The floor is 2 SMSS.
    small = grown(IW)
    small.on_congestion_event(bytes_in_flight=SMSS, now=0.0)
    assert (small.ssthresh, small.cwnd) == (2 * SMSS, 2 * SMSS)


def test_k_and_w_cubic_after_a_loss_at_scripted_times() -> None:
    cc = after_loss(100, now=5.0)
    cc.on_rtt_sample(0.1, now=10.0)
    cc.on_ack(SMSS, bytes_in_flight=84_000, now=10.0)  # the epoch starts at the first CA ACK
    assert cc.epoch_start == 10.0 and cc.cwnd_epoch == 70.0
    # K = cbrt(W_max (1 - beta) / C) = cbrt(100 x 0.3 / 0.4) = cbrt(75).
    assert cc.k == pytest.approx(75 ** (1 / 3)) and cc.k == pytest.approx(4.2171633265)
    assert cc.w_cubic(0.0) == pytest.approx(70.0)
    assert cc.w_cubic(1.0) == pytest.approx(86.6807638351)
    assert cc.w_cubic(2.0) == pytest.approx(95.6403356866)
    assert cc.w_cubic(cc.k) == 100.0
    assert cc.w_cubic(cc.k + 1.0) == pytest.approx(100.4)
    # At t = 0 W_cubic = 70 < W_est = 70 + alpha/70: Reno-friendly for that one ACK.
    assert cc.cwnd == 84_009 and cc.w_est == pytest.approx(70 + ALPHA_CUBIC / 70)
    seen = []
    for now in (11.0, 12.0, 14.0, 14.5, 16.0):
        before = cc.cwnd
        cc.on_ack(SMSS, bytes_in_flight=cc.cwnd, now=now)
        # Per ACKed segment cwnd grows by (W_cubic(t + RTT) - cwnd) / cwnd (§4.4-4.5); the
        # fraction of a byte is carried to the next ACK.
        target = min(max(cc.w_cubic(now - 10.0 + 0.1), before / SMSS), 1.5 * before / SMSS)
        step = (target - before / SMSS) * SMSS / (before / SMSS)
        assert step - 1 < cc.cwnd - before < step + 1
        seen.append(cc.cwnd)
    # Concave (fast, then flat near W_max at t = K ~ 4.2 s), then convex beyond it.
    assert seen == [84_315, 84_758, 85_257, 85_746, 86_271]


def test_fast_convergence() -> None:
    cc = after_loss(100)
    cc.on_ack(SMSS, bytes_in_flight=84_000, now=1.0)
    cc.cwnd = 96_000  # grown to 80 segments, below W_max = 100, when the next loss comes
    cc.on_congestion_event(bytes_in_flight=96_000, now=2.0)
    # §4.7: W_max = cwnd (1 + beta) / 2 = 80 x 0.85 = 68, cwnd = 80 x 0.7 = 56 segments.
    assert cc.w_max == pytest.approx(68.0)
    assert (cc.ssthresh, cc.cwnd) == (67_200, 67_200)
    cc.on_ack(SMSS, bytes_in_flight=67_200, now=3.0)
    assert cc.k == pytest.approx(30 ** (1 / 3))  # cbrt((68 - 56) / 0.4)
    # A loss above W_max sets W_max to cwnd itself.
    cc.cwnd = 120_000
    cc.on_congestion_event(bytes_in_flight=120_000, now=4.0)
    assert cc.w_max == 100.0 and cc.cwnd == 84_000


def test_reno_friendly_region_at_small_rtt() -> None:
    cc = after_loss(20)
    assert cc.cwnd == 16_800
    rtt = 1 / 1024  # ~1 ms: W_cubic barely moves within a few rounds, W_est leads
    now = 1.0
    cc.on_rtt_sample(rtt, now=now)
    seen = []
    for rounds in range(1, 21):
        per = cc.cwnd // 4
        for _ in range(4):
            now += rtt / 4
            cc.on_ack(per, bytes_in_flight=cc.cwnd, now=now)
        epoch = cc.epoch_start
        assert epoch is not None
        assert cc.w_cubic(now - epoch) < cc.w_est
        assert cc.cwnd == int(cc.w_est * SMSS)  # §4.3: cwnd = W_est
        seen.append((rounds, cc.cwnd, cc.w_est >= cc.cwnd_prior))
    # alpha_cubic ~0.53 segments per round until W_est reaches cwnd_prior = 20, then 1.
    assert seen[0] == (1, 17_426, False)
    assert seen[10] == (11, 23_705, False)
    assert seen[11] == (12, 24_610, True)
    assert seen[19] == (20, 34_062, True)
    assert cc.epoch_start is not None
    assert cc.w_cubic(now - cc.epoch_start) == pytest.approx(14.1397, abs=1e-4)


def test_retransmission_timeout() -> None:
    cc = after_loss(100)
    cc.on_rtt_sample(0.1, now=1.0)
    cc.on_ack(SMSS, bytes_in_flight=84_000, now=1.0)
    cc.on_retransmission_timeout(bytes_in_flight=100_000, now=2.0)
    # §4.8: ssthresh = flight x beta_cubic, cwnd = 1 SMSS, the epoch ends.
    assert (cc.ssthresh, cc.cwnd, cc.epoch_start) == (70_000, SMSS, None)
    cc.on_retransmission_timeout(bytes_in_flight=SMSS, now=3.0)  # repeated: ssthresh kept
    assert (cc.ssthresh, cc.cwnd) == (70_000, SMSS)
    cc.on_ack(SMSS, bytes_in_flight=SMSS, now=3.1)
    assert cc.cwnd == 2 * SMSS and cc.in_slow_start()
    cc.on_ack(68_400, bytes_in_flight=2 * SMSS, now=3.2)  # crosses ssthresh by 800 B
    # The first stage after a timeout: W_max = cwnd at its start, K = 0, W_est = that cwnd.
    assert cc.epoch_start == 3.2 and cc.k == 0.0
    assert cc.w_max == pytest.approx(70_000 / SMSS) and cc.cwnd == 70_007
    cc.on_ack(SMSS, bytes_in_flight=70_000, now=4.2)
    assert cc.cwnd == 70_017  # convex from the start: W_cubic(1.1) = W_max + 0.4 x 1.1^3


def test_idle_restart_and_application_limited_time() -> None:
    cc = after_loss(100)
    cc.on_ack(SMSS, bytes_in_flight=84_000, now=1.0)
    assert cc.epoch_start == 1.0
    # RFC 5681 §4.1: cwnd = min(cwnd, IW); a cut window ends the epoch.
    cc.on_idle_restart(now=5.0)
    assert cc.cwnd == IW and cc.epoch_start is None and cc.in_slow_start()
    # A window at or below IW keeps its epoch, shifted by the idle time (RFC 9438 §5.8).
    small = grown(IW)
    small.on_congestion_event(bytes_in_flight=IW, now=0.0)
    assert small.cwnd == 8_400
    small.on_ack(SMSS, bytes_in_flight=8_400, now=1.0)
    small.on_ack(SMSS, bytes_in_flight=8_400, now=2.0)
    cwnd = small.cwnd
    small.on_idle_restart(now=7.0)
    assert small.epoch_start == 6.0 and small.cwnd == cwnd
    # Application-limited ACKs (flight < cwnd / 2) do not grow cwnd and shift t too.
    small.on_ack(SMSS, bytes_in_flight=SMSS, now=7.5)
    assert small.epoch_start == 6.5 and small.cwnd == cwnd


RTT = 0.125  # binary-exact: each HyStart++ round (one min RTT of ACK time) is 8 ACKs
ACKS = 8


class Path:
    """Acknowledges one window per round trip in eight evenly spaced ACKs, each with an RTT
    sample, as the sender reports them (sample first, then the ACK)."""

    def __init__(self, cc: Cubic, base_rtt: float = RTT) -> None:
        self.cc = cc
        self.now = 0.0
        self.step = base_rtt / ACKS

    def round(self, rtt: float) -> None:
        cc = self.cc
        per_ack = cc.cwnd // ACKS
        for _ in range(ACKS):
            self.now += self.step
            cc.on_rtt_sample(rtt, now=self.now)
            cc.on_ack(per_ack, bytes_in_flight=cc.cwnd, now=self.now)


def test_hystart_exits_on_rtt_rise_then_css_then_avoidance() -> None:
    cc = Cubic(max_payload=SMSS, initial_window=IW)
    path = Path(cc)
    seen = []
    # Three rounds at the base RTT, then the queue adds 1/64 s = lastRoundMinRTT / 8.
    for rtt in [RTT] * 3 + [RTT + 1 / 64] * 8:
        path.round(rtt)
        seen.append((cc.round_count, cc.cwnd, cc.css, cc.in_slow_start()))
    assert seen == [
        (1, 24_000, False, True),  # slow start doubles per round
        (2, 48_000, False, True),
        (3, 96_000, False, True),
        (4, 192_000, True, True),  # 8th sample of round 4: 0.140625 >= 0.125 + 0.015625
        (5, 240_000, True, True),  # CSS: + acked / 4, so x1.25 per round
        (6, 300_000, True, True),
        (7, 375_000, True, True),
        (8, 468_750, True, True),
        (9, 469_948, False, False),  # 5th CSS round starts: ssthresh = cwnd, then CA
        (9, 471_147, False, False),  # rounds are no longer counted
        (9, 472_345, False, False),
    ]
    assert cc.ssthresh == 468_750 and CSS_GROWTH_DIVISOR == 4
    # RFC 9438 §4.10: no loss yet, so W_max = cwnd at the start of CA and K = 0.
    assert cc.k == 0.0 and cc.w_max == pytest.approx(468_750 / SMSS)


def test_hystart_css_returns_to_slow_start_when_rtt_falls() -> None:
    cc = Cubic(max_payload=SMSS, initial_window=IW)
    path = Path(cc)
    for rtt in [RTT] * 3 + [RTT + 0.02] * 2:
        path.round(rtt)
    assert cc.css and cc.cwnd == 240_000 and cc.css_baseline == RTT + 0.02
    path.round(RTT + 0.01)  # below the CSS baseline: a spurious exit, resume slow start
    assert not cc.css and cc.cwnd == 300_000
    path.round(RTT)
    assert cc.cwnd == 600_000 and cc.ssthresh == INITIAL_SSTHRESH


@pytest.mark.parametrize(
    ("base", "rise", "exits"),
    [
        (1 / 32, 1 / 256, False),  # lastRoundMinRTT / 8 = 3.9 ms -> MIN_RTT_THRESH 4 ms
        (1 / 32, 0.004, True),
        (0.25, 1 / 64, False),  # lastRoundMinRTT / 8 = 31 ms -> MAX_RTT_THRESH 16 ms
        (0.25, 0.016, True),
    ],
)
def test_hystart_rtt_threshold_is_clamped(base: float, rise: float, exits: bool) -> None:
    cc = Cubic(max_payload=SMSS, initial_window=IW)
    path = Path(cc, base)
    for rtt in (base, base, base + rise):
        path.round(rtt)
    assert cc.round_count == 3 and cc.css is exits


def test_no_hystart_after_a_loss() -> None:
    cc = after_loss(10)
    cc.on_retransmission_timeout(bytes_in_flight=12_000, now=1.0)
    path = Path(cc)
    for rtt in (RTT, RTT, RTT + 0.1):
        path.round(rtt)
    assert not cc.css and cc.round_count == 0
    assert BETA_CUBIC == 0.7 and cc.ssthresh == 8_400


# --- simulated goodput ----------------------------------------------------------------------

LINK_RATE = 12.5e6  # bytes/s: 100 Mbit/s
ONE_WAY = 0.025  # RTT 50 ms


def goodput(controller: str, loss: float, total: int) -> float:
    """Payload bytes per simulated second of one transfer over the link (seed 1)."""
    impairment = Impairment(
        loss=loss, delay=ONE_WAY, rate=LINK_RATE, queue_limit=int(LINK_RATE * 2 * ONE_WAY)
    )
    config = Config(congestion_control=controller)
    sim, client, server = make_pair(impairment=impairment, seed=1, client_config=config)
    conn = client.endpoint.connect(SERVER_ADDR, now=sim.now)
    clog = client.log(conn)
    assert sim.run_until(lambda: clog.connected and bool(server.accepted), 10.0)
    slog = server.log(server.accepted[0])
    start = sim.now
    payload = bytes(range(256)) * (total // 256)
    client.write(conn, payload, eof=True)
    assert sim.run_until(lambda: slog.eof, start + 300.0)
    assert bytes(slog.received) == payload
    return total / (sim.now - start)


def test_goodput_at_no_loss_fills_the_link() -> None:
    total = 24 * 1024 * 1024
    for controller in ("cubic", "newreno"):
        assert goodput(controller, 0.0, total) >= 0.8 * LINK_RATE


def test_goodput_at_one_percent_loss_not_below_newreno() -> None:
    total = 4 * 1024 * 1024
    cubic = goodput("cubic", 0.01, total)
    newreno = goodput("newreno", 0.01, total)
    assert cubic >= newreno
    assert (round(cubic), round(newreno)) == (387_077, 340_857)  # ~3.1 % and 2.7 % of the link
