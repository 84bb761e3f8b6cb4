"""Pacer: token bucket with exact deadlines; a sender out of credit wakes to a full bucket."""

from __future__ import annotations

import pytest

from rudp.core.pacer import BURST_SEGMENTS, BURST_TIME, Pacer

SMSS = 1200


def test_burst_is_two_segments_or_one_millisecond() -> None:
    pacer = Pacer(SMSS)
    pacer.set_rate(1_200_000.0)  # 1.2 kB per ms: the segment floor dominates
    assert BURST_SEGMENTS == 2 and pacer.burst == 2 * SMSS
    pacer.set_rate(12_000_000.0)  # 12 kB per ms
    assert pacer.burst == int(12_000_000.0 * BURST_TIME) == 12_000


def test_a_fresh_bucket_sends_a_burst_then_wakes_when_it_is_full_again() -> None:
    pacer = Pacer(SMSS)
    pacer.set_rate(1_200_000.0)  # one segment per 1 ms, bursts of 2
    now = 5.0
    sent = 0
    while pacer.can_send(now):
        pacer.on_sent(SMSS, now)
        sent += 1
    assert sent == 2
    assert pacer.next_time == pytest.approx(5.001, abs=1e-12)  # one segment's credit
    assert pacer.wake_time == pytest.approx(5.002, abs=1e-12)  # the whole burst's
    bursts = []
    for _ in range(3):
        now = pacer.wake_time  # the fake clock jumps to the deadline
        count = 0
        while pacer.can_send(now):
            pacer.on_sent(SMSS, now)
            count += 1
        bursts.append((round(now, 9), count))
    assert bursts == [(5.002, 2), (5.004, 2), (5.006, 2)]  # 1.2 MB/s on average


def test_idle_time_earns_at_most_one_burst() -> None:
    pacer = Pacer(SMSS)
    pacer.set_rate(12_000_000.0)  # burst 12,000 B = 10 segments
    pacer.on_sent(SMSS, 0.0)
    now = 10.0  # long idle
    sent = 0
    while pacer.can_send(now):
        pacer.on_sent(SMSS, now)
        sent += 1
    assert sent == 10
    assert pacer.next_time == pytest.approx(now + SMSS / 12_000_000.0, abs=1e-12)
    assert pacer.wake_time == pytest.approx(now + 0.001, abs=1e-12)


def test_a_rate_change_keeps_the_earned_credit() -> None:
    pacer = Pacer(SMSS)
    pacer.set_rate(1_200_000.0)
    for _ in range(3):
        pacer.on_sent(SMSS, 0.0)  # one segment beyond the 2-segment bucket
    assert pacer.next_time == pytest.approx(0.002)
    pacer.set_rate(2_400_000.0)
    assert pacer.rate == 2_400_000.0
    assert pacer.next_time == pytest.approx(0.002)  # already owed at the old rate
    pacer.on_sent(SMSS, 0.002)
    assert pacer.next_time == pytest.approx(0.0025)
    assert "rate=2400000" in repr(pacer)


def test_the_connection_folds_the_pacing_deadline_into_its_timer() -> None:
    from rudp.config import Config
    from rudp.wire.packet import PacketType
    from tests.core.harness import CLIENT_ADDR, connect, make_pair
    from tests.sim import Impairment, TraceRecord

    trace: list[TraceRecord] = []
    config = Config(congestion_control="bbr", min_rto=1.0)
    sim, client, server = make_pair(
        client_config=config, impairment=Impairment(delay=0.01), trace=trace
    )
    conn = connect(sim, client, server)
    assert conn.cc is not None
    rate = conn.cc.pacing_rate
    assert rate == pytest.approx(2.885 * 12_000 / conn.cc.min_rtt)  # type: ignore[attr-defined]
    start = sim.clock.now
    client.write(conn, bytes(10 * SMSS), eof=False)
    sim.flush()
    data = 0x10 | PacketType.DATA
    sent = [
        t
        for t, kind, src, _, _, first in trace
        if kind == "send" and src == CLIENT_ADDR and first == data
    ]
    assert len(sent) == 2  # the two-segment burst
    gap = SMSS / rate
    assert conn.get_timer() == pytest.approx(start + 2 * gap, abs=1e-12)  # a full bucket
    sim.run_until(lambda: len(server.log(server.accepted[0]).received) == 10 * SMSS, start + 1)
    sent = [
        round(t - start, 9)
        for t, kind, src, _, _, first in trace
        if kind == "send" and src == CLIENT_ADDR and first == data
    ]
    expected = [2 * gap * (i // 2) for i in range(10)]  # two segments per wake-up
    assert sent == pytest.approx(expected, abs=1e-9)
