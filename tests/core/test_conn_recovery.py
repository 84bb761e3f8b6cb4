"""Loss detection and the window's answer, on scripted drops with exact times: RACK
(RFC 8985 §6), tail-loss probes (§7), undo of spurious recoveries (RFC 3522, RFC 3708),
persistent congestion (RFC 9002 §7.6) and pacing for window-based controllers."""

from __future__ import annotations

import pytest

from rudp.config import Config
from rudp.core.cc_model import STARTUP
from rudp.core.connection import Connection
from rudp.wire.packet import PacketType
from tests.core.harness import CLIENT_ADDR, SERVER_ADDR, connect, make_pair
from tests.sim import Impairment, Simulator, TraceRecord

DATA = 0x10 | PacketType.DATA
DELAY = 0.01  # one way: RTT 20 ms
UNPACED = Config(pacing=False)


def data_sends(trace: list[TraceRecord], since: float) -> list[float]:
    """Offsets from ``since`` of every DATA datagram the client sent."""
    return [
        round(t - since, 6)
        for t, kind, src, _, _, first in trace
        if kind == "send" and src == CLIENT_ADDR and first == DATA and t >= since
    ]


def drop_data(sim: Simulator, *numbers: int) -> None:
    """Drop the client's DATA datagrams with these 1-based numbers (counted from now)."""
    seen = {"n": 0}
    wanted = set(numbers)

    def predicate(_index: int, data: bytes) -> bool:
        if data[0] != DATA:
            return False
        seen["n"] += 1
        return seen["n"] in wanted

    sim.links[(CLIENT_ADDR, SERVER_ADDR)].drop_where(predicate)


# --- tail-loss probes (RFC 8985 §7) -------------------------------------------------------------


def test_a_probe_reveals_a_two_segment_tail_loss_and_rack_repairs_it() -> None:
    """Segments 9 and 10 of 10 are lost: no SACK can arrive. The ACK of 1-8 (20 ms) re-arms
    the probe timeout at 2 x SRTT = 40 ms; the probe resends segment 10, its SACK shows 9
    was sent before a delivered segment and more than RACK.rtt ago, so 9 is resent at once.
    The RTO (200 ms) never fires."""
    trace: list[TraceRecord] = []
    sim, client, server = make_pair(
        client_config=UNPACED, impairment=Impairment(delay=DELAY), trace=trace
    )
    conn = connect(sim, client, server)
    srv = server.accepted[0]
    start = sim.clock.now
    drop_data(sim, 9, 10)
    client.write(conn, bytes(10 * 1200), eof=False)
    sim.flush()
    assert conn.get_timer() == pytest.approx(start + 2 * 0.02, abs=1e-5)  # PTO, not RTO
    assert sim.run_until(lambda: len(server.log(srv).received) == 12_000, start + 5)
    assert sim.clock.now - start == pytest.approx(0.09, abs=1e-5)
    assert data_sends(trace, start) == pytest.approx([0.0] * 10 + [0.06, 0.08], abs=1e-5)
    stats = conn.stats
    assert (stats.tlp_probes, stats.rto_timeouts, stats.fast_retransmits) == (1, 0, 1)
    assert stats.rack_marked == 1 and stats.segments_retransmitted == 2
    assert srv.stats.duplicate_segments == 0


def test_a_probe_that_repairs_the_loss_itself_still_halves_the_window() -> None:
    """Only the last segment is lost: the probe fills the hole, the ACK echoes the probe's
    own timestamp, so a loss was repaired and NewReno halves (RFC 8985 §7.4.2)."""
    trace: list[TraceRecord] = []
    sim, client, server = make_pair(
        client_config=UNPACED, impairment=Impairment(delay=DELAY), trace=trace
    )
    conn = connect(sim, client, server)
    srv = server.accepted[0]
    start = sim.clock.now
    drop_data(sim, 10)
    client.write(conn, bytes(10 * 1200), eof=False)
    assert sim.run_until(lambda: len(server.log(srv).received) == 12_000, start + 5)
    # Segment 9 is ACKed alone after the 25 ms delayed-ACK timer (45 ms): one segment left in
    # flight, so PTO = min(2 x SRTT + WCDelAckT, RTO) = the RTO, SRTT + 200 ms = 223 ms later.
    assert sim.clock.now - start == pytest.approx(0.045 + 0.223124 + 0.01, abs=1e-5)
    assert sim.run_until(lambda: conn.bytes_acked == 12_000, start + 5)
    stats = conn.stats
    assert (stats.tlp_probes, stats.tlp_recoveries, stats.rto_timeouts) == (1, 1, 0)
    assert stats.fast_retransmits == 0 and not conn.probe_outstanding
    # Halved from the window (slow start had grown it from 12,000 to 16,800 B), not from the
    # flight, which is empty by the time the probe's ACK tells of the loss.
    assert conn.cc is not None and conn.cc.ssthresh == conn.cwnd == 8400


def test_one_segment_in_flight_probes_at_the_rto_instead_of_timing_out() -> None:
    """A lone segment: PTO = 2 x SRTT + WCDelAckT (240 ms) is later than the RTO (SRTT + the
    200 ms variance floor = 220 ms), so the probe takes the RTO's place (PTO = min(PTO, RTO))
    and the window does not collapse."""
    trace: list[TraceRecord] = []
    sim, client, server = make_pair(
        client_config=UNPACED, impairment=Impairment(delay=DELAY), trace=trace
    )
    conn = connect(sim, client, server)
    srv = server.accepted[0]
    sim.run_for(0.5)
    start = sim.clock.now
    drop_data(sim, 1)
    client.write(conn, b"q" * 100, eof=False)
    sim.flush()
    rto = conn.rtt.rto
    assert rto == pytest.approx(0.22, abs=1e-5) and conn.get_timer() == pytest.approx(start + rto)
    assert sim.run_until(lambda: conn.bytes_acked == 100, start + 5)
    assert len(server.log(srv).received) == 100
    assert data_sends(trace, start) == pytest.approx([0.0, 0.22], abs=1e-5)
    assert (conn.stats.tlp_probes, conn.stats.rto_timeouts, conn.stats.tlp_recoveries) == (1, 0, 1)
    assert conn.cwnd >= 2 * conn.max_payload  # halved at most, never the 1-segment loss window


def test_probes_can_be_turned_off() -> None:
    trace: list[TraceRecord] = []
    sim, client, server = make_pair(
        client_config=UNPACED.replace(tail_loss_probe=False),
        impairment=Impairment(delay=DELAY),
        trace=trace,
    )
    conn = connect(sim, client, server)
    srv = server.accepted[0]
    start = sim.clock.now
    drop_data(sim, 10)
    client.write(conn, bytes(10 * 1200), eof=False)
    assert sim.run_until(lambda: len(server.log(srv).received) == 12_000, start + 5)
    assert conn.stats.tlp_probes == 0 and conn.stats.rto_timeouts == 1
    # The RTO (SRTT + 200 ms) restarts at the ACK of segment 9 (45 ms, after the delayed-ACK
    # timer).
    assert data_sends(trace, start)[-1] == pytest.approx(0.045 + 0.223124, abs=1e-5)


# --- spurious recoveries (RFC 3522, RFC 3708, RFC 4015) -----------------------------------


def grown(config: Config) -> tuple[Simulator, Connection, Connection]:
    """A connection whose window slow start grew to 40,800 B (48 KB moved, all ACKed)."""
    sim, client, server = make_pair(client_config=config, impairment=Impairment(delay=DELAY))
    conn = connect(sim, client, server)
    client.write(conn, bytes(40 * 1200), eof=False)
    assert sim.run_until(lambda: conn.bytes_acked == 48_000, sim.clock.now + 5)
    assert conn.cwnd == 40_800
    return sim, conn, server.accepted[0]


NO_PROBES = UNPACED.replace(tail_loss_probe=False)


def test_a_timeout_from_a_delay_spike_is_undone_by_the_timestamps() -> None:
    """The ACK path's delay jumps to 300 ms: the RTO (220 ms) fires and resends the head,
    then the delayed ACKs echo the originals' timestamps, older than the retransmission's
    (Eifel, RFC 3522): the timeout was spurious. The window comes back whole (still slow
    start: ssthresh was unset), the backoff goes, and nothing else is resent."""
    sim, conn, srv = grown(NO_PROBES)
    ssthresh = conn.cc.ssthresh if conn.cc is not None else 0
    start = sim.clock.now
    sim.link(SERVER_ADDR, CLIENT_ADDR, Impairment(delay=0.3), both_ways=False)
    conn.send(bytes(10 * 1200))
    assert sim.run_until(lambda: conn.stats.rto_timeouts == 1, start + 5)
    assert sim.clock.now - start == pytest.approx(0.22, abs=1e-5)
    assert conn.cwnd == 1200 and conn.rtt.backoff_count == 1
    assert sim.run_until(lambda: conn.bytes_acked == 60_000, start + 5)
    stats = conn.stats
    assert (stats.spurious_by_timestamps, stats.spurious_by_dsack, stats.undone_recoveries) == (
        1,
        0,
        1,
    )
    assert conn.cc is not None and (conn.cwnd, conn.cc.ssthresh) == (40_800, ssthresh)
    assert conn.rtt.backoff_count == 0 and stats.segments_retransmitted == 1
    assert srv.stats.duplicate_segments == 1


def test_a_timeout_is_undone_by_a_dsack_when_the_retransmission_is_acked_first() -> None:
    """As above, but the ACK path recovers right after the timeout: the retransmission's ACK
    (a D-SACK: the original had arrived) overtakes the delayed ones. Every byte the episode
    resent came back as a duplicate (RFC 3708), so the timeout is undone."""
    sim, conn, srv = grown(NO_PROBES)
    start = sim.clock.now
    sim.link(SERVER_ADDR, CLIENT_ADDR, Impairment(delay=0.3), both_ways=False)
    conn.send(bytes(10 * 1200))
    assert sim.run_until(lambda: conn.stats.rto_timeouts == 1, start + 5)
    sim.link(SERVER_ADDR, CLIENT_ADDR, Impairment(delay=DELAY), both_ways=False)
    assert sim.run_until(lambda: conn.stats.undone_recoveries == 1, start + 5)
    assert sim.clock.now - start == pytest.approx(0.24, abs=1e-5)  # the D-SACK, an RTT later
    stats = conn.stats
    assert (stats.spurious_by_dsack, stats.spurious_retransmit_bytes) == (1, 1200)
    assert conn.cwnd == 40_800
    assert sim.run_until(lambda: conn.bytes_acked == 60_000, start + 5)
    assert stats.segments_retransmitted == 1 and srv.stats.dsack_sent == 1


def test_a_loss_that_is_real_is_not_undone() -> None:
    sim, conn, _ = grown(NO_PROBES)
    start = sim.clock.now
    drop_data(sim, 3)
    conn.send(bytes(20 * 1200))
    assert sim.run_until(lambda: conn.bytes_acked == 72_000, start + 5)
    stats = conn.stats
    assert stats.fast_retransmits == 1 and stats.undone_recoveries == 0
    assert conn.cc is not None and conn.cc.ssthresh < 40_800


def hold_and_release(sim: Simulator, nth: int) -> list[bytes]:
    """Take the client's ``nth`` next DATA datagram off the link; the caller re-sends it."""
    held: list[bytes] = []
    seen = {"n": 0}

    def predicate(_index: int, data: bytes) -> bool:
        if data[0] != DATA:
            return False
        seen["n"] += 1
        if seen["n"] == nth:
            held.append(data)
            return True
        return False

    sim.links[(CLIENT_ADDR, SERVER_ADDR)].drop_where(predicate)
    return held


def reorder_round(sim: Simulator, conn: Connection, late: float) -> None:
    """Send 20 segments with the 3rd held back ``late`` seconds (reordered, not lost)."""
    start = sim.clock.now
    held = hold_and_release(sim, 3)
    goal = conn.bytes_acked + 24_000
    conn.send(bytes(20 * 1200))
    assert sim.run_until(lambda: bool(held), start + 1)
    sim.run_until(lambda: False, sim.clock.now + late)
    sim.inject(held[0], CLIENT_ADDR, SERVER_ADDR)
    assert sim.run_until(lambda: conn.bytes_acked >= goal, start + 5)
    sim.run_for(0.05)  # the D-SACK of a spurious retransmission, if any, arrives


def test_reordering_is_learnt_once_then_tolerated() -> None:
    """The 3rd of 20 segments arrives 3 ms late, behind 17 others: DupThresh (3) fires, the
    late original's ACK shows the retransmission was spurious and it is undone. From then on
    DupThresh is 18 (the reordering seen) and RACK's window min_RTT / 4 x 2 (one D-SACK
    round) = 10 ms, so the same reordering costs nothing."""
    sim, conn, srv = grown(UNPACED)
    reorder_round(sim, conn, 0.003)
    stats = conn.stats
    assert (stats.fast_retransmits, stats.undone_recoveries, stats.spurious_by_timestamps) == (
        1,
        1,
        1,
    )
    assert conn.dupthresh == 18 and conn.reordering_window_multiplier == 2
    cwnd = conn.cwnd
    for _ in range(3):
        reorder_round(sim, conn, 0.003)
    assert stats.fast_retransmits == 1 and stats.segments_retransmitted == 1
    assert srv.stats.duplicate_segments == 1
    assert conn.cwnd > cwnd


def test_the_reordering_window_grows_one_step_per_dsack_round() -> None:
    """15 ms of reordering: each spurious retransmission's D-SACK adds min_RTT / 4 = 5 ms to
    RACK's window (RFC 8985 §6.2 step 4) until it covers the delay."""
    sim, conn, _ = grown(UNPACED)
    mults = []
    for _ in range(5):
        reorder_round(sim, conn, 0.015)
        mults.append(conn.reordering_window_multiplier)
    assert mults == [2, 3, 4, 4, 4]
    assert conn.stats.segments_retransmitted == 3 and conn.stats.undone_recoveries == 3


# --- persistent congestion (RFC 9002 §7.6) -------------------------------------------------------

SLOW = Impairment(delay=DELAY, rate=1.25e6, queue_limit=25_000)  # 10 Mbit/s, 20 ms of queue


@pytest.mark.parametrize("profile", ["throughput", "fair"])
def test_a_partition_is_persistent_congestion_and_the_controller_starts_over(
    profile: str,
) -> None:
    """A one-second partition: the first timeout (200 ms of silence) is not yet persistent;
    by the second, the lost transmissions span more than 3 x (SRTT + 4 RTTVAR + 25 ms), so
    the window falls to its minimum and the model-based controller forgets its bandwidth
    and starts over in STARTUP. Once the path returns the transfer completes intact."""
    sim, client, server = make_pair(
        client_config=Config.profile(profile), impairment=SLOW, back=Impairment(delay=DELAY)
    )
    conn = connect(sim, client, server)
    srv = server.accepted[0]
    data = bytes(range(256)) * 12_000
    client.write(conn, data, eof=True)
    sim.run_for(1.0)
    start = sim.clock.now
    sim.links[(CLIENT_ADDR, SERVER_ADDR)].blackhole(start, start + 1.0)
    assert sim.run_until(lambda: conn.stats.rto_timeouts == 1, start + 2)
    assert conn.stats.persistent_congestion == 0
    assert sim.run_until(lambda: conn.stats.persistent_congestion == 1, start + 2)
    assert conn.stats.rto_timeouts == 2 and conn.cwnd == conn.max_payload
    if profile == "throughput":
        assert getattr(conn.cc, "state", None) == STARTUP
    assert sim.run_until(lambda: server.log(srv).eof, start + 20)
    assert bytes(server.log(srv).received) == data
    assert conn.stats.persistent_congestion == 1 and conn.stats.undone_recoveries == 0


# --- pacing for window-based controllers -----------------------------------------------------


def test_slow_start_paces_the_initial_window_at_twice_cwnd_per_srtt() -> None:
    """After the handshake (SRTT 20 ms) NewReno's 12,000 B window goes out at 2 x cwnd /
    SRTT = 1.2 MB/s in 2-segment bursts (the pacer's floor; 1 ms of the rate is one
    segment): a burst now, the next when the bucket is full again 2 ms later, each departure
    an exact deadline of the connection's single timer."""
    trace: list[TraceRecord] = []
    sim, client, server = make_pair(impairment=Impairment(delay=DELAY), trace=trace)
    conn = connect(sim, client, server)
    srtt = conn.srtt
    assert srtt == pytest.approx(0.02, abs=1e-5)
    start = sim.clock.now
    conn.send(bytes(10 * 1200))
    sim.flush()
    burst_gap = 2 * 1200 / (2 * 12_000 / srtt)
    assert conn.get_timer() == pytest.approx(start + burst_gap, abs=1e-9)
    sim.run_until(lambda: conn.stats.payload_bytes_sent == 12_000, start + 1)
    expected = [round(burst_gap * (i // 2), 6) for i in range(10)]
    assert data_sends(trace, start) == pytest.approx(expected, abs=2e-6)


def test_congestion_avoidance_paces_at_1_2_cwnd_per_srtt_and_pacing_can_be_off() -> None:
    sim, client, server = make_pair(impairment=Impairment(delay=DELAY))
    conn = connect(sim, client, server)
    assert conn.cc is not None
    conn.cc.ssthresh = conn.cc.cwnd  # leave slow start
    conn.send(bytes(10 * 1200))
    out = client.endpoint.datagrams_to_send(now=sim.clock.now)
    assert len(out) == 2  # the burst; the next when the bucket is full at 1.2 x cwnd / SRTT
    srtt = conn.srtt
    assert srtt is not None
    assert conn.get_timer() == pytest.approx(sim.clock.now + 2 * 1200 / (1.2 * 12_000 / srtt))
    sim2, client2, server2 = make_pair(client_config=UNPACED, impairment=Impairment(delay=DELAY))
    conn2 = connect(sim2, client2, server2)
    conn2.send(bytes(10 * 1200))
    assert len(client2.endpoint.datagrams_to_send(now=sim2.clock.now)) == 10


def test_no_window_pacing_on_a_path_of_a_few_milliseconds() -> None:
    """Min RTT 2 ms, below PACING_MIN_RTT: a 1 ms timer could not spread the window anyway."""
    sim, client, server = make_pair(impairment=Impairment(delay=0.001))
    conn = connect(sim, client, server)
    conn.send(bytes(10 * 1200))
    assert len(client.endpoint.datagrams_to_send(now=sim.clock.now)) == 10


@pytest.mark.parametrize(
    ("controller", "gain"),
    [("newreno", 2.0), ("cubic", 2.0), ("ledbat", 1.2), ("bbr", None)],
)
def test_every_controller_is_paced(controller: str, gain: float | None) -> None:
    """The first flush after the handshake sends one 2-segment burst and sleeps until the
    bucket is full again: 2 segments at the controller's rate (window-based: gain x cwnd /
    SRTT, 2 in slow start and 1.2 after, LEDBAT having no slow start; the model: its own
    startup rate, 2.885 x cwnd / min RTT)."""
    sim, client, server = make_pair(
        client_config=Config(congestion_control=controller), impairment=Impairment(delay=DELAY)
    )
    conn = connect(sim, client, server)
    cc = conn.cc
    srtt = conn.srtt
    assert cc is not None and srtt is not None
    rate = cc.pacing_rate if gain is None else gain * cc.cwnd / srtt
    if gain is None:
        assert rate == pytest.approx(2.885 * 12_000 / srtt, rel=1e-6)
    conn.send(bytes(10 * 1200))
    now = sim.clock.now
    assert len(client.endpoint.datagrams_to_send(now=now)) == 2
    assert conn.get_timer() == pytest.approx(now + 2 * 1200 / rate, abs=1e-9)
