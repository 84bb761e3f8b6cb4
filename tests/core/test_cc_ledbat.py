"""Ledbat ("ledbat", RFC 6817): the delay-based window rule, the base-delay history, loss and
timeouts as exact numbers, then a LEDBAT flow on a simulated bottleneck, alone and beside
NewReno."""

from __future__ import annotations

import pytest

from rudp.config import Config
from rudp.core.cc_ledbat import BASE_INTERVAL, TARGET, Ledbat
from rudp.core.congestion import make_controller
from rudp.core.connection import Addr, Connection
from tests.core.harness import SERVER_ADDR, ConnLog, Peer, connect, make_pair
from tests.sim import Impairment, Simulator

SMSS = 1200
IW = 12_000
BASE = 0.03125  # binary-exact, so BASE + TARGET - BASE == TARGET exactly


def ledbat(rtt: float = BASE) -> Ledbat:
    cc = Ledbat(max_payload=SMSS, initial_window=IW)
    cc.on_rtt_sample(rtt, now=0.0)
    return cc


def acks(cc: Ledbat, count: int, *, rtt: float | None = None, now: float = 1.0) -> list[int]:
    """``count`` one-segment ACKs with the window full; returns cwnd after each."""
    seen = []
    for _ in range(count):
        if rtt is not None:
            cc.on_rtt_sample(rtt, now=now)
        cc.on_ack(SMSS, bytes_in_flight=cc.cwnd, now=now)
        seen.append(cc.cwnd)
    return seen


def test_registered_and_initial_state() -> None:
    cc = make_controller("ledbat", max_payload=SMSS, initial_window_segments=10)
    assert isinstance(cc, Ledbat)
    assert cc.cwnd == IW and cc.reduces_on_loss and cc.pacing_rate == 0.0
    assert not cc.in_slow_start()
    assert cc.queuing_delay == 0.0 and cc.base_delay == float("inf")
    assert make_controller("ledbat", max_payload=SMSS, initial_window_segments=2).cwnd == 2400
    with pytest.raises(ValueError):
        Ledbat(max_payload=0, initial_window=1)
    assert "Ledbat cwnd=12000" in repr(cc)


def test_empty_queue_grows_about_one_segment_per_window() -> None:
    cc = ledbat()
    # off_target = 1: cwnd += 1200 * 1200 / cwnd per segment ACKed (RFC 6817 §2.4.2).
    assert acks(cc, 10) == [
        12_120,
        12_238,
        12_356,
        12_473,
        12_588,
        12_702,
        12_816,
        12_928,
        13_039,
        13_150,
    ]
    assert cc.queuing_delay == 0.0


def test_growth_is_proportional_to_the_distance_from_target() -> None:
    cc = ledbat()
    cc.on_rtt_sample(BASE + TARGET / 2, now=0.5)  # the MIN filter still holds BASE
    assert cc.queuing_delay == 0.0
    for _ in range(3):
        cc.on_rtt_sample(BASE + TARGET / 2, now=0.5)  # four samples: the filter is full
    assert cc.queuing_delay == pytest.approx(TARGET / 2)
    assert acks(cc, 2) == [12_060, 12_119]  # off_target = 1/2: half the growth


def test_no_growth_at_exactly_target() -> None:
    cc = ledbat()
    for _ in range(4):  # fill the MIN filter
        cc.on_rtt_sample(BASE + TARGET, now=0.5)
    assert cc.queuing_delay == TARGET
    assert acks(cc, 20, rtt=BASE + TARGET) == [IW] * 20


def test_queue_beyond_target_shrinks_the_window_down_to_two_segments() -> None:
    cc = ledbat()
    for _ in range(4):
        cc.on_rtt_sample(BASE + 2 * TARGET, now=0.5)
    # Queuing delay 2 x TARGET: off_target = -1, cwnd -= 1200 * 1200 / cwnd per segment.
    assert acks(cc, 4) == [11_880, 11_758, 11_636, 11_512]
    assert cc.queuing_delay == pytest.approx(2 * TARGET)
    acks(cc, 400)
    assert cc.cwnd == 2 * SMSS  # MIN_CWND (RFC 6817 §3.2)


def test_growth_stops_one_segment_beyond_the_flight() -> None:
    cc = ledbat()
    cc.on_ack(SMSS, bytes_in_flight=4800, now=1.0)  # application-limited
    assert cc.cwnd == IW  # 4800 + ALLOWED_INCREASE * 1200 < cwnd: no growth, no shrink
    cc.on_ack(SMSS, bytes_in_flight=11_000, now=1.0)
    assert cc.cwnd == 12_120  # growth capped at 11000 + 1200, cwnd + 120 is below it
    cc.on_ack(SMSS, bytes_in_flight=11_000, now=1.0)
    assert cc.cwnd == 12_200  # capped at the flight + one segment


def test_loss_halves_once_per_rtt() -> None:
    cc = ledbat(0.04)
    cc.on_congestion_event(bytes_in_flight=IW, now=1.0)
    assert (cc.cwnd, cc.ssthresh) == (6000, 6000)
    cc.on_congestion_event(bytes_in_flight=6000, now=1.03)  # within one RTT: no second cut
    assert (cc.cwnd, cc.ssthresh) == (6000, 6000)
    cc.on_congestion_event(bytes_in_flight=6000, now=1.04)  # one RTT later: halve again
    assert (cc.cwnd, cc.ssthresh) == (3000, 3000)
    cc.on_congestion_event(bytes_in_flight=3000, now=1.08)
    assert (cc.cwnd, cc.ssthresh) == (2400, 2400)  # never below MIN_CWND
    cc.on_bytes_lost(SMSS, now=1.09)  # the retransmission itself changes nothing
    assert cc.cwnd == 2400
    assert not cc.in_slow_start()
    assert acks(cc, 2) == [3000, 3480]  # then the LEDBAT rule, no slow start


def test_base_delay_keeps_ten_one_minute_minima() -> None:
    cc = Ledbat(max_payload=SMSS, initial_window=IW)
    cc.on_rtt_sample(0.05, now=0.0)
    cc.on_rtt_sample(0.04, now=30.0)  # the same minute: its minimum falls
    assert cc.base_delay == 0.04
    for minute in range(1, 10):
        cc.on_rtt_sample(0.07, now=minute * BASE_INTERVAL)
        assert cc.base_delay == 0.04  # minute 0 is still one of the last ten
    for _ in range(3):
        cc.on_rtt_sample(0.07, now=9.5 * BASE_INTERVAL)
    assert cc.queuing_delay == pytest.approx(0.03)
    cc.on_rtt_sample(0.08, now=10 * BASE_INTERVAL)  # minute 0 rolls out
    assert cc.base_delay == 0.07
    assert cc.queuing_delay == 0.0  # min(last four) = 0.07: no queue against the new base
    # An idle gap ages the history by one bucket, as the RFC's pseudocode does.
    cc.on_rtt_sample(0.09, now=500 * BASE_INTERVAL)
    assert cc.base_delay == 0.07


def test_timeout_collapses_then_slow_starts_back_to_ssthresh() -> None:
    cc = ledbat()
    cc.on_retransmission_timeout(bytes_in_flight=IW, now=1.0)
    assert (cc.cwnd, cc.ssthresh) == (SMSS, 6000) and cc.in_slow_start()
    cc.on_retransmission_timeout(bytes_in_flight=SMSS, now=1.4)  # backed off: ssthresh kept
    assert (cc.cwnd, cc.ssthresh) == (SMSS, 6000)
    cc.on_ack(0, bytes_in_flight=SMSS, now=1.5)
    assert cc.cwnd == SMSS
    assert acks(cc, 5) == [2400, 3600, 4800, 6000, 6240]  # RFC 5681 slow start, then LEDBAT
    assert not cc.in_slow_start()
    # A loss right after the timeout does not cut again in the same RTT.
    cc.on_congestion_event(bytes_in_flight=6240, now=1.0 + BASE / 2)
    assert cc.cwnd == 6240


def test_timeout_slow_start_ends_at_target_delay() -> None:
    cc = ledbat()
    cc.on_retransmission_timeout(bytes_in_flight=24_000, now=1.0)
    assert acks(cc, 2) == [2400, 3600]
    for _ in range(4):
        cc.on_rtt_sample(BASE + 2 * TARGET, now=1.1)  # the queue is back: leave slow start
    assert acks(cc, 1) == [3200]  # 3600 - 1200 * 1200 / 3600
    assert not cc.in_slow_start()


def test_idle_restart_caps_the_window_at_iw() -> None:
    cc = ledbat()
    acks(cc, 30)
    assert cc.cwnd > IW
    cc.on_idle_restart(now=5.0)
    assert cc.cwnd == IW
    cc.on_retransmission_timeout(bytes_in_flight=IW, now=6.0)
    cc.on_idle_restart(now=7.0)
    assert cc.cwnd == SMSS  # below IW: unchanged


# --- on the simulated bottleneck ---------------------------------------------------------------

RATE = 2.5e6  # 20 Mbit/s
DEEP = Impairment(delay=0.02, rate=RATE, queue_limit=500_000)  # 200 ms of queue
BACK = Impairment(delay=0.02)  # RTT 40 ms


def test_alone_keeps_the_queue_near_target_and_fills_the_link() -> None:
    sim, client, server = make_pair(
        client_config=Config.profile("background"), impairment=DEEP, back=BACK, seed=1
    )
    conn = connect(sim, client, server)
    log = server.log(server.accepted[0])
    client.write(conn, bytes(30_000_000), eof=True)
    sim.run_for(4.0)  # warm-up: additive increase from IW to the BDP (~83 segments)
    cc = conn.cc
    assert isinstance(cc, Ledbat)
    base = cc.base_delay
    assert base == pytest.approx(0.0405, abs=0.001)  # 40 ms + serialization
    start, t0 = len(log.received), sim.clock.now
    worst = 0.0
    for _ in range(40):
        sim.run_for(0.25)
        srtt = conn.srtt
        assert srtt is not None
        worst = max(worst, srtt)
    goodput = (len(log.received) - start) / (sim.clock.now - t0)
    assert worst < base + 2 * TARGET
    assert worst == pytest.approx(0.0842, abs=0.002)  # a ~44 ms queue, approaching TARGET
    assert goodput >= 0.8 * RATE
    assert goodput / RATE == pytest.approx(0.956, abs=0.005)  # at most 1200 / 1224 = 0.98
    assert conn.stats.rto_timeouts == 0 and conn.stats.fast_retransmits == 0


def _open(sim: Simulator, peer: Peer, server: Peer) -> tuple[Connection, ConnLog]:
    conn = peer.endpoint.connect(SERVER_ADDR, now=sim.clock.now)
    peer.log(conn)
    known = len(server.accepted)
    assert sim.run_until(lambda: len(server.accepted) > known, sim.clock.now + 5.0)
    return conn, server.log(server.accepted[-1])


def test_yields_to_newreno_on_a_shared_bottleneck() -> None:
    """LEDBAT runs alone for 4 s, then a NewReno flow joins through the same drop-tail queue
    (one ``LossyLink`` serves both client -> server paths). NewReno fills the queue to ~190 ms;
    LEDBAT's window shrinks by |off_target| ~ 2.2 segments per (now ~230 ms) RTT, the RFC's
    linear decrease, and reaches its two-segment minimum about 7 s after NewReno joined."""
    sim = Simulator(seed=2)
    background: Addr = ("10.0.0.1", 5000)
    fair: Addr = ("10.0.0.3", 5000)
    ledbat_peer = Peer(Config.profile("background"), seed=11)
    reno_peer = Peer(Config(congestion_control="newreno"), seed=12)
    server = Peer(None, seed=13, listening=True)
    sim.add_node(ledbat_peer, background)
    sim.add_node(reno_peer, fair)
    sim.add_node(server, SERVER_ADDR)
    bottleneck = sim.link(background, SERVER_ADDR, DEEP, both_ways=False)
    sim.links[(fair, SERVER_ADDR)] = bottleneck  # the same queue for both flows
    sim.link(SERVER_ADDR, background, BACK, both_ways=False)
    sim.link(SERVER_ADDR, fair, BACK, both_ways=False)

    lconn, llog = _open(sim, ledbat_peer, server)
    ledbat_peer.write(lconn, bytes(60_000_000), eof=True)
    sim.run_for(4.0)
    assert lconn.cwnd > 100_000  # it had the link to itself
    rconn, rlog = _open(sim, reno_peer, server)
    reno_peer.write(rconn, bytes(60_000_000), eof=True)
    shares = []
    for _ in range(12):
        l0, r0 = len(llog.received), len(rlog.received)
        sim.run_for(1.0)
        ledbat_bytes = len(llog.received) - l0
        shares.append(ledbat_bytes / (ledbat_bytes + len(rlog.received) - r0))
    assert sum(shares) / len(shares) < 0.2
    # The first second is NewReno's slow start; then LEDBAT's share falls second by second.
    assert [round(share, 2) for share in shares] == [
        0.44,
        0.12,
        0.09,
        0.07,
        0.05,
        0.03,
        0.01,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
    ]
    assert lconn.cwnd == 2 * SMSS
    assert bottleneck.stats.dropped_queue > 0  # NewReno filled the shared queue
