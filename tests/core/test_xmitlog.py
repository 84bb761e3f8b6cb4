"""XmitLog: first-transmission times kept as one entry per flush, looked up by sequence."""

from __future__ import annotations

from rudp.core.xmitlog import XmitLog


def test_one_entry_per_flush_merged_while_now_stands_still() -> None:
    log = XmitLog()
    log.record(1200, 0.0)
    log.record(2400, 0.0)  # same flush
    log.record(3600, 0.5)
    assert len(log) == 2
    assert [log.time_of(seq) for seq in (0, 2399, 2400, 3599)] == [0.0, 0.0, 0.5, 0.5]
    assert log.time_of(3600) is None  # not sent yet
    assert "3600" in repr(log)


def test_sent_by_gives_the_end_of_what_left_at_or_before_a_time() -> None:
    log = XmitLog()
    for end, when in ((1000, 1.0), (2000, 2.0), (3000, 3.0)):
        log.record(end, when)
    assert log.sent_by(0.5) is None
    assert log.sent_by(2.0) == 2000
    assert log.sent_by(2.0, strictly=True) == 1000
    assert log.sent_by(9.0) == 3000
    assert log.first_after(1.0) == 2.0
    assert log.first_after(3.0) is None


def test_trim_keeps_the_entry_of_the_last_acknowledged_byte() -> None:
    log = XmitLog()
    for end, when in ((1000, 1.0), (2000, 2.0), (3000, 3.0)):
        log.record(end, when)
    log.trim(2000)  # bytes below 2000 acknowledged: byte 1999 is in the second entry
    assert log.time_of(1999) == 2.0 and len(log) == 2
    log.trim(2001)
    assert len(log) == 1 and log.sent_by(2.5) is None
    log.record(4000, 3.0)  # the newest entry still merges after a trim
    assert len(log) == 1 and log.time_of(3500) == 3.0
    log.clear()
    assert len(log) == 0 and log.time_of(0) is None


def test_compaction_keeps_lookups_right() -> None:
    log = XmitLog()
    for i in range(1, 5001):
        log.record(i * 100, i * 0.001)
    log.trim(400_000)  # 4000 entries acknowledged: the lists are compacted
    assert len(log) == 1001
    assert log.time_of(399_999) == 4.0 and log.time_of(450_050) == 4.501
    assert log.sent_by(4.5) == 450_000
