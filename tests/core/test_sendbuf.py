"""SendBuffer: queueing, FIN, the SACK scoreboard, RFC 6675 pipe and loss marking, compaction.

Sequence numbers start just below 2**32 in most tests: the engine uses unbounded ints.
"""

from __future__ import annotations

import random

import pytest

from rudp.core.sendbuf import (
    FAST_RECOVERY,
    NOT_IN_RECOVERY,
    RTO_RECOVERY,
    SendBuffer,
)

S = 2**32 - 100
DATA = random.Random(7).randbytes(4096)


def make(initial_seq: int = S, *, smss: int = 100, dupthresh: int = 3) -> SendBuffer:
    return SendBuffer(initial_seq, smss=smss, dupthresh=dupthresh)


def sent(n: int, *, smss: int = 100, dupthresh: int = 3) -> SendBuffer:
    """A buffer with DATA[:n] written and all of it sent."""
    sb = make(smss=smss, dupthresh=dupthresh)
    sb.write(DATA[:n])
    assert sb.take_new(n) == (S, S + n, False)
    return sb


def payload(sb: SendBuffer, seq: int, end: int) -> bytes:
    view = sb.view()
    try:
        return bytes(sb.payload_view(view, seq, end))
    finally:
        view.release()


def walk_retransmissions(sb: SendBuffer, max_len: int) -> list[tuple[int, int]]:
    """Every range peek_retransmission offers, sending each (high_rxt = end) as the caller does."""
    out = []
    while (rng := sb.peek_retransmission(max_len)) is not None:
        out.append((rng[0] - S, rng[1] - S))
        sb.high_rxt = rng[1]
        assert len(out) < 100
    return out


# --- queueing ---------------------------------------------------------------------------------


def test_initial_state() -> None:
    sb = make()
    assert (sb.snd_una, sb.snd_nxt, sb.end_seq) == (S, S, S)
    assert (sb.size, sb.outstanding, sb.unsent) == (0, 0, 0)
    assert sb.pipe == 0
    assert not sb.sacked
    assert sb.sacked_bytes == 0
    assert sb.recovery == NOT_IN_RECOVERY
    assert (sb.lost_edge, sb.high_rxt, sb.recovery_point) == (S, S, S)
    assert sb.fin_queued is False
    assert sb.fin_sent is False
    assert sb.fin_acked is False
    assert sb.peek_retransmission(100) is None
    assert sb.take_new(100) == (S, S, False)
    assert sb.snd_nxt == S


def test_recovery_kinds_are_distinct() -> None:
    assert (NOT_IN_RECOVERY, FAST_RECOVERY, RTO_RECOVERY) == (0, 1, 2)


def test_write_take_new_and_payload_view() -> None:
    sb = make()
    sb.write(b"hello ")
    sb.write(bytearray(b"world"))
    sb.write(memoryview(b"!"))
    assert sb.end_seq == S + 12
    assert (sb.size, sb.outstanding, sb.unsent) == (12, 0, 12)
    assert sb.take_new(5) == (S, S + 5, False)
    assert (sb.size, sb.outstanding, sb.unsent) == (12, 5, 7)
    assert sb.take_new(100) == (S + 5, S + 12, False)
    assert (sb.size, sb.outstanding, sb.unsent) == (12, 12, 0)
    assert sb.take_new(100) == (S + 12, S + 12, False)  # nothing new
    assert sb.snd_nxt == S + 12
    view = sb.view()
    assert bytes(sb.payload_view(view, S, S + 5)) == b"hello"
    assert bytes(sb.payload_view(view, S + 5, S + 12)) == b" world!"
    assert bytes(sb.payload_view(view, S + 3, S + 3)) == b""
    view.release()


def test_view_must_be_released_before_the_next_write() -> None:
    sb = make()
    sb.write(b"abc")
    view = sb.view()
    with pytest.raises(BufferError):
        sb.write(b"def")
    view.release()
    sb.write(b"def")
    assert payload(sb, S, S + 6) == b"abcdef"
    assert sb.size == 6


def test_payload_view_after_partial_ack() -> None:
    sb = sent(300)
    assert sb.on_ack(S + 120) == 120
    assert payload(sb, S + 120, S + 300) == DATA[120:300]
    assert payload(sb, S + 200, S + 250) == DATA[200:250]
    assert (sb.size, sb.outstanding, sb.unsent) == (180, 180, 0)


def test_write_after_partial_send() -> None:
    sb = sent(50)
    sb.write(DATA[50:80])
    assert (sb.size, sb.outstanding, sb.unsent) == (80, 50, 30)
    assert sb.take_new(100) == (S + 50, S + 80, False)
    assert payload(sb, S + 40, S + 80) == DATA[40:80]


# --- FIN ------------------------------------------------------------------------------------


def test_fin_rides_on_the_last_segment() -> None:
    sb = make()
    sb.write(DATA[:10])
    sb.queue_fin()
    assert sb.fin_queued
    assert sb.fin_seq == S + 10
    assert (sb.size, sb.outstanding, sb.unsent) == (10, 0, 11)
    assert sb.take_new(4) == (S, S + 4, False)
    assert sb.fin_sent is False
    assert sb.take_new(6) == (S + 4, S + 10, True)
    assert sb.snd_nxt == S + 11
    assert sb.fin_sent is True
    assert sb.fin_acked is False
    assert (sb.size, sb.outstanding, sb.unsent) == (10, 11, 0)
    assert payload(sb, S + 4, S + 11) == DATA[4:10]  # the FIN carries no byte
    assert sb.on_ack(S + 10) == 10
    assert sb.fin_acked is False
    assert (sb.size, sb.outstanding) == (0, 1)
    assert sb.on_ack(S + 11) == 1  # the FIN's own sequence number
    assert sb.fin_acked is True
    assert (sb.size, sb.outstanding, sb.unsent) == (0, 0, 0)


def test_fin_does_not_ride_when_the_segment_stops_short() -> None:
    sb = make()
    sb.write(DATA[:10])
    sb.queue_fin()
    assert sb.take_new(9) == (S, S + 9, False)
    assert sb.unsent == 2
    assert sb.take_new(9) == (S + 9, S + 10, True)


def test_fin_held_back_with_with_fin_false() -> None:
    sb = make()
    sb.write(DATA[:10])
    sb.queue_fin()
    assert sb.take_new(10, with_fin=False) == (S, S + 10, False)
    assert sb.snd_nxt == S + 10
    assert sb.fin_sent is False
    assert sb.unsent == 1
    assert sb.take_new(0) == (S + 10, S + 10, True)
    assert sb.snd_nxt == S + 11
    assert sb.fin_sent is True
    assert sb.unsent == 0


def test_take_new_with_nothing_unsent_claims_an_empty_range() -> None:
    sb = sent(10)
    assert sb.take_new(100) == (S + 10, S + 10, False)
    assert sb.snd_nxt == S + 10


def test_take_new_after_the_fin_was_sent_claims_nothing() -> None:
    sb = make()
    sb.write(DATA[:10])
    sb.queue_fin()
    assert sb.take_new(100) == (S, S + 10, True)
    assert sb.take_new(100) == (S + 11, S + 11, False)
    assert sb.snd_nxt == S + 11


def test_bare_fin() -> None:
    sb = make()
    sb.queue_fin()
    assert sb.fin_seq == S
    assert (sb.size, sb.unsent) == (0, 1)
    assert sb.take_new(1200) == (S, S, True)
    assert sb.outstanding == 1
    assert payload(sb, S, S + 1) == b""
    assert sb.on_ack(S + 1) == 1
    assert sb.fin_acked


def test_fin_queued_after_the_data_was_sent() -> None:
    sb = sent(5)
    sb.queue_fin()
    assert sb.fin_seq == S + 5
    assert sb.unsent == 1
    assert sb.take_new(100) == (S + 5, S + 5, True)
    assert sb.outstanding == 6


# --- ACK and SACK -------------------------------------------------------------------------


def test_on_ack_returns_bytes_newly_delivered_excluding_sacked() -> None:
    sb = sent(1000)
    assert sb.on_sack(S + 300, S + 400) == 100
    assert sb.on_sack(S + 500, S + 600) == 100
    assert sb.sacked_bytes == 200
    # [0, 550) minus the 100 + 50 SACKed bytes in it
    assert sb.on_ack(S + 550) == 400
    assert sb.snd_una == S + 550
    assert sb.sacked_bytes == 50
    assert list(sb.sacked) == [(S + 550, S + 600)]
    assert (sb.size, sb.outstanding) == (450, 450)
    assert sb.pipe == 400
    assert sb.on_ack(S + 1000) == 400
    assert sb.sacked_bytes == 0
    assert not sb.sacked
    assert (sb.size, sb.outstanding, sb.pipe) == (0, 0, 0)


def test_on_ack_without_sacks_returns_the_acked_span() -> None:
    sb = sent(1000)
    assert sb.on_ack(S + 1) == 1
    assert sb.on_ack(S + 999) == 998
    assert sb.on_ack(S + 1000) == 1


def test_on_ack_raises_lost_edge_and_high_rxt_to_the_ack() -> None:
    sb = sent(1000)
    sb.on_ack(S + 250)
    assert sb.lost_edge == S + 250
    assert sb.high_rxt == S + 250


def test_on_sack_clips_to_what_is_in_flight() -> None:
    sb = sent(1000)
    sb.on_ack(S + 100)
    assert sb.on_sack(S + 50, S + 150) == 50  # clipped below at snd_una
    assert sb.on_sack(S + 900, S + 2000) == 100  # clipped above at snd_nxt
    assert sb.on_sack(S + 1000, S + 1100) == 0  # entirely above
    assert sb.on_sack(S, S + 100) == 0  # entirely below (a D-SACK, say)
    assert sb.on_sack(S + 400, S + 400) == 0  # empty
    assert list(sb.sacked) == [(S + 100, S + 150), (S + 900, S + 1000)]
    assert sb.sacked_bytes == 150


def test_on_sack_counts_only_newly_sacked_bytes() -> None:
    sb = sent(1000)
    assert sb.on_sack(S + 300, S + 400) == 100
    assert sb.on_sack(S + 300, S + 400) == 0
    assert sb.on_sack(S + 350, S + 450) == 50
    assert sb.on_sack(S + 200, S + 500) == 150
    assert sb.on_sack(S + 600, S + 700) == 100
    assert sb.on_sack(S + 100, S + 800) == 300  # 700 minus the 400 already SACKed
    assert list(sb.sacked) == [(S + 100, S + 800)]
    assert sb.sacked_bytes == 700


# --- pipe (RFC 6675 §4 SetPipe) -----------------------------------------------------------


def test_pipe_hand_computed() -> None:
    sb = sent(1000)  # SMSS 100, DupThresh 3: IsLost above 200 SACKed bytes
    assert sb.pipe == 1000
    sb.on_sack(S + 300, S + 400)
    sb.update_lost_edge()
    assert sb.lost_edge == S
    assert sb.pipe == 900
    sb.on_sack(S + 500, S + 600)
    sb.update_lost_edge()
    assert sb.lost_edge == S
    assert sb.pipe == 800
    sb.on_sack(S + 700, S + 800)
    sb.update_lost_edge()
    # 300 bytes SACKed above [0, 300): lost. [400, 500) has 200 above: not lost.
    assert sb.lost_edge == S + 300
    # 1000 outstanding - 300 SACKed - 300 lost = 400
    assert sb.pipe == 400


def test_pipe_counts_retransmitted_lost_bytes_once() -> None:
    sb = sent(1000)
    for lo in (300, 500, 700):
        sb.on_sack(S + lo, S + lo + 100)
    sb.update_lost_edge()
    sb.enter_recovery(FAST_RECOVERY)
    pipes = []
    while (rng := sb.peek_retransmission(100)) is not None:
        sb.high_rxt = rng[1]
        pipes.append(sb.pipe)
    # Each retransmitted 100 bytes of the lost 300 go back into the pipe.
    assert pipes == [500, 600, 700]
    assert sb.high_rxt == S + 300


def test_pipe_excludes_sacked_bytes_inside_the_lost_region() -> None:
    sb = sent(1000)
    sb.on_sack(S + 100, S + 150)
    sb.on_sack(S + 600, S + 1000)
    sb.update_lost_edge()
    assert sb.lost_edge == S + 600
    # lost, not retransmitted: [0, 600) minus the 50 SACKed = 550
    assert sb.pipe == 1000 - 450 - 550 == 0
    sb.high_rxt = S + 100  # [0, 100) retransmitted
    assert sb.pipe == 100


# --- IsLost and loss marking --------------------------------------------------------------


@pytest.mark.parametrize(
    ("sacks", "dupthresh", "edge"),
    [
        ([(500, 700)], 3, 0),  # exactly (3 - 1) * 100 SACKed above: not lost
        ([(500, 701)], 3, 500),  # one byte more: everything below 500 is lost
        ([(300, 400), (500, 650)], 3, 300),  # 150 above 400, 250 above 300
        ([(300, 400), (500, 600)], 3, 0),
        ([(100, 400), (500, 600)], 3, 100),
        ([(500, 601)], 2, 500),  # DupThresh 2: more than 100
        ([(500, 600)], 2, 0),
        ([(100, 200), (300, 400), (500, 600), (700, 800)], 3, 300),
        ([(900, 1000)], 1, 900),  # DupThresh 1: any SACKed byte above
    ],
)
def test_update_lost_edge_is_lost_threshold(
    sacks: list[tuple[int, int]], dupthresh: int, edge: int
) -> None:
    sb = sent(1000, dupthresh=dupthresh)
    for lo, hi in sacks:
        sb.on_sack(S + lo, S + hi)
    sb.update_lost_edge()
    assert sb.lost_edge == S + edge


def test_update_lost_edge_without_sacks_and_never_lowers() -> None:
    sb = sent(1000)
    sb.update_lost_edge()
    assert sb.lost_edge == S
    sb.enter_recovery(RTO_RECOVERY)
    assert sb.lost_edge == S + 1000
    sb.on_sack(S + 100, S + 400)
    sb.update_lost_edge()
    assert sb.lost_edge == S + 1000


def test_set_dupthresh_changes_the_threshold() -> None:
    sb = sent(1000)
    sb.on_sack(S + 800, S + 950)
    sb.update_lost_edge()
    assert sb.lost_edge == S
    sb.set_dupthresh(2)  # (2 - 1) * 100 = 100 < 150
    sb.update_lost_edge()
    assert sb.lost_edge == S + 800


def test_set_dupthresh_uses_the_current_smss() -> None:
    sb = sent(1000)
    sb.smss = 50
    sb.set_dupthresh(3)  # (3 - 1) * 50 = 100
    sb.on_sack(S + 800, S + 901)
    sb.update_lost_edge()
    assert sb.lost_edge == S + 800


def test_mark_head_lost_one_segment() -> None:
    sb = sent(1000)
    sb.mark_head_lost()
    assert sb.lost_edge == S + 100
    assert sb.pipe == 900


def test_mark_head_lost_stops_at_the_first_sacked_byte() -> None:
    sb = sent(1000)
    sb.on_sack(S + 60, S + 200)
    sb.mark_head_lost()
    assert sb.lost_edge == S + 60


def test_mark_head_lost_stops_at_snd_nxt() -> None:
    sb = sent(30)
    sb.mark_head_lost()
    assert sb.lost_edge == S + 30
    assert sb.pipe == 0


def test_mark_head_lost_after_a_partial_ack() -> None:
    sb = sent(1000)
    sb.mark_head_lost()
    sb.on_ack(S + 100)  # NewReno partial ACK: the next hole is lost too
    sb.mark_head_lost()
    assert sb.lost_edge == S + 200


def test_mark_head_lost_never_lowers() -> None:
    sb = sent(1000)
    sb.enter_recovery(RTO_RECOVERY)
    sb.mark_head_lost()
    assert sb.lost_edge == S + 1000


# --- recovery -------------------------------------------------------------------------------


def test_enter_fast_recovery() -> None:
    sb = sent(1000)
    sb.high_rxt = S + 50
    sb.on_sack(S + 400, S + 700)
    sb.update_lost_edge()
    assert sb.lost_edge == S + 400
    sb.enter_recovery(FAST_RECOVERY)
    assert sb.recovery == FAST_RECOVERY
    assert sb.recovery_point == S + 1000
    # What an earlier recovery retransmitted above snd_una is still in flight: kept.
    assert sb.high_rxt == S + 50
    assert sb.lost_edge == S + 400  # unchanged by a fast recovery
    assert sb.pipe == 1000 - 300 - 350  # [S, S + 50) was sent again: in flight
    sb.exit_recovery()
    assert sb.recovery == NOT_IN_RECOVERY


def test_a_new_fast_recovery_does_not_resend_what_the_last_one_sent() -> None:
    sb = sent(1000)
    sb.on_sack(S + 100, S + 200)
    sb.update_lost_edge()
    sb.mark_head_lost()
    sb.enter_recovery(FAST_RECOVERY)
    seq, end = sb.peek_retransmission(1000) or (0, 0)
    assert (seq, end) == (S, S + 100)
    sb.on_retransmitted(seq, end, 0.0)
    sb.exit_recovery()  # e.g. the recovery point was reached by a partial view of the ACKs
    sb.enter_recovery(FAST_RECOVERY)
    assert sb.high_rxt == S + 100
    assert sb.peek_retransmission(1000) is None  # [S, S + 100) is in flight already
    sb.on_ack(S + 150)
    sb.enter_recovery(FAST_RECOVERY)
    assert sb.high_rxt == S + 150  # never below snd_una


def test_forget_losses_stops_retransmitting_beyond_what_was_sent_again() -> None:
    sb = sent(1000)
    sb.on_sack(S + 500, S + 1000)
    sb.update_lost_edge()
    sb.enter_recovery(FAST_RECOVERY)
    sb.on_retransmitted(S, S + 100, 0.0)
    sb.relost.append((S, S + 100))
    sb.forget_losses()
    assert sb.lost_edge == S + 100 and sb.relost == []
    assert sb.peek_retransmission(1000) is None
    assert sb.pipe == 500  # the 400 bytes no longer deemed lost count as in flight again


def test_rto_recovery_deems_the_whole_unsacked_flight_lost() -> None:
    sb = sent(1000)
    sb.on_sack(S + 300, S + 400)
    sb.on_sack(S + 600, S + 650)
    sb.high_rxt = S + 200  # a fast recovery had retransmitted some
    sb.enter_recovery(RTO_RECOVERY)
    assert sb.recovery == RTO_RECOVERY
    assert sb.recovery_point == S + 1000
    assert sb.lost_edge == S + 1000
    assert sb.high_rxt == S
    assert sb.pipe == 0
    ranges = walk_retransmissions(sb, 100)
    assert ranges == [
        (0, 100),
        (100, 200),
        (200, 300),
        (400, 500),
        (500, 600),
        (650, 750),
        (750, 850),
        (850, 950),
        (950, 1000),
    ]
    assert sb.pipe == 1000 - 150  # every unSACKed byte sent again, counted once


def test_peek_retransmission_walks_holes_in_order_and_respects_high_rxt() -> None:
    sb = sent(1000)
    sb.on_sack(S + 300, S + 400)
    sb.on_sack(S + 500, S + 600)
    sb.on_sack(S + 700, S + 800)
    sb.on_sack(S + 900, S + 1000)
    sb.update_lost_edge()
    assert sb.lost_edge == S + 500
    sb.enter_recovery(FAST_RECOVERY)
    assert sb.peek_retransmission(1000) == (S, S + 300)
    assert sb.peek_retransmission(1000) == (S, S + 300)  # peeking does not advance
    sb.high_rxt = S + 300
    assert sb.peek_retransmission(1000) == (S + 400, S + 500)
    sb.high_rxt = S + 500
    assert sb.peek_retransmission(1000) is None
    # Splitting by max_len, from a fresh recovery:
    sb.exit_recovery()
    sb.high_rxt = S
    sb.enter_recovery(FAST_RECOVERY)
    assert walk_retransmissions(sb, 120) == [(0, 120), (120, 240), (240, 300), (400, 500)]


def test_peek_retransmission_starts_after_a_retransmission_inside_a_hole() -> None:
    sb = sent(1000)
    sb.on_sack(S + 500, S + 1000)
    sb.update_lost_edge()
    sb.enter_recovery(FAST_RECOVERY)
    sb.high_rxt = S + 130
    assert sb.peek_retransmission(100) == (S + 130, S + 230)


def test_peek_retransmission_skips_a_sacked_tail_and_advances_high_rxt() -> None:
    sb = sent(1000)
    sb.on_sack(S + 900, S + 1000)
    sb.enter_recovery(RTO_RECOVERY)
    sb.high_rxt = S + 900
    assert sb.peek_retransmission(100) is None
    assert sb.high_rxt == S + 1000
    assert sb.pipe == 900 - 0


def test_peek_retransmission_after_cumulative_ack_moves_past_high_rxt() -> None:
    sb = sent(1000)
    sb.enter_recovery(RTO_RECOVERY)
    sb.high_rxt = S + 100
    sb.on_ack(S + 300)  # the receiver had [100, 300) after all
    assert sb.peek_retransmission(100) == (S + 300, S + 400)


def test_peek_retransmission_includes_the_fin() -> None:
    sb = make()
    sb.write(DATA[:10])
    sb.queue_fin()
    assert sb.take_new(100) == (S, S + 10, True)
    sb.enter_recovery(RTO_RECOVERY)
    assert sb.lost_edge == S + 11
    assert sb.pipe == 0
    assert sb.peek_retransmission(100) == (S, S + 11)
    assert sb.peek_retransmission(10) == (S, S + 11)  # the FIN rides with the last bytes
    assert sb.peek_retransmission(4) == (S, S + 4)
    sb.high_rxt = S + 4
    assert sb.peek_retransmission(6) == (S + 4, S + 11)
    assert payload(sb, S + 4, S + 11) == DATA[4:10]


def test_peek_retransmission_bare_fin() -> None:
    sb = sent(10)
    sb.queue_fin()
    assert sb.take_new(100) == (S + 10, S + 10, True)
    sb.on_ack(S + 10)
    sb.enter_recovery(RTO_RECOVERY)
    assert sb.peek_retransmission(100) == (S + 10, S + 11)
    assert sb.pipe == 0


def test_peek_retransmission_never_includes_an_unsent_fin() -> None:
    sb = make()
    sb.write(DATA[:10])
    sb.queue_fin()
    assert sb.take_new(10, with_fin=False) == (S, S + 10, False)
    sb.enter_recovery(RTO_RECOVERY)
    assert sb.lost_edge == S + 10
    assert sb.peek_retransmission(100) == (S, S + 10)


# --- lazy compaction ----------------------------------------------------------------------

MIB = 1024 * 1024
COMPACT_AT = 256 * 1024


def test_compaction_keeps_payload_bytes_correct() -> None:
    big = random.Random(11).randbytes(MIB + 300_000)
    sb = make(smss=1200)
    sb.write(big[:MIB])
    written = MIB
    seq, end, fin = sb.take_new(MIB)
    assert (seq, end, fin) == (S, S + MIB, False)
    acked = 0
    compacted = False
    for step in range(1, 15):
        acked = min(step * 100_000, written)
        sb.on_ack(S + acked)
        if step == 5:
            sb.write(big[MIB:])  # more data arrives mid-way
            written += 300_000
            assert sb.take_new(300_000) == (S + MIB, S + written, False)
        assert sb.size == written - acked
        assert sb.outstanding == written - acked
        view = sb.view()
        try:
            held = len(view)
            # Bounded: the acked head is dropped once it passes 256 KiB and half the buffer.
            assert held < sb.size + COMPACT_AT or held < 2 * sb.size
            assert held >= sb.size
            compacted = compacted or held < written
            if sb.size:
                mid = (acked + written) // 2
                for lo, hi in (
                    (acked, min(acked + 5000, written)),
                    (written - 777, written),
                    (mid, mid + 1200),
                ):
                    # Slices are exports too: release each before the next write.
                    with sb.payload_view(view, S + lo, S + hi) as piece:
                        assert bytes(piece) == big[lo:hi]
        finally:
            view.release()
    assert compacted
    assert acked == written == MIB + 300_000
    assert sb.size == 0
    view = sb.view()
    assert len(view) < COMPACT_AT  # at most a lazily kept dead head remains
    view.release()


def test_compaction_with_sacks_and_retransmission_payloads() -> None:
    big = random.Random(12).randbytes(MIB)
    sb = make(smss=1000)
    sb.write(big)
    sb.take_new(MIB)
    sb.on_ack(S + 600_000)  # head of 600 000 acked bytes: compacted
    view = sb.view()
    assert len(view) < MIB
    view.release()
    sb.on_sack(S + 700_000, S + 800_000)
    sb.update_lost_edge()
    assert sb.lost_edge == S + 700_000
    sb.enter_recovery(FAST_RECOVERY)
    rng = sb.peek_retransmission(1000)
    assert rng == (S + 600_000, S + 601_000)
    assert payload(sb, *rng) == big[600_000:601_000]
    sb.high_rxt = S + 699_500
    rng = sb.peek_retransmission(1000)
    assert rng == (S + 699_500, S + 700_000)
    assert payload(sb, *rng) == big[699_500:700_000]
    assert sb.on_ack(S + 900_000) == 200_000  # 300 000 acked minus 100 000 SACKed before
    assert payload(sb, S + 900_000, S + MIB) == big[900_000:]


def test_three_separate_sacked_small_segments_mark_the_hole_below_lost() -> None:
    # Five 100-byte segments; 1 is lost, 2 and 4 and 5 arrive out of order: only 300 bytes
    # are SACKed (the byte rule wants more than 2 * 1200), but three separate SACKed ranges lie
    # above segment 1 (RFC 6675 §4 IsLost, DupThresh discontiguous segments).
    sb = SendBuffer(S, smss=1200, dupthresh=3)
    sb.write(b"m" * 500)
    for _ in range(5):
        sb.take_new(100)
    sb.on_sack(S + 100, S + 200)
    sb.on_sack(S + 300, S + 400)
    sb.update_lost_edge()
    assert sb.lost_edge == S  # two ranges: not yet
    sb.on_sack(S + 400, S + 500)  # merges with the range before it: still two ranges
    sb.update_lost_edge()
    assert sb.lost_edge == S
    sb2 = SendBuffer(S, smss=1200, dupthresh=3)
    sb2.write(b"m" * 600)
    for _ in range(6):
        sb2.take_new(100)
    for start in (100, 300, 500):
        sb2.on_sack(S + start, S + start + 100)
    sb2.update_lost_edge()
    assert sb2.lost_edge == S + 100  # everything unSACKed below the third range from the top


def test_the_scoreboard_is_bounded_against_a_receiver_that_sacks_every_other_byte() -> None:
    from rudp.core.sendbuf import MAX_SACK_RANGES

    sb = make(smss=100, dupthresh=3)
    sb.write(bytes(3 * MAX_SACK_RANGES))
    sb.take_new(3 * MAX_SACK_RANGES)
    for i in range(MAX_SACK_RANGES + 10):
        sb.on_sack(S + 2 * i + 1, S + 2 * i + 2)
    assert len(sb.sacked) == MAX_SACK_RANGES and sb.sack_ignored == 10
    assert sb.sacked_bytes == MAX_SACK_RANGES
    # A block that touches a kept range still counts: it adds no range.
    assert sb.on_sack(S + 2, S + 3) == 1 and len(sb.sacked) == MAX_SACK_RANGES - 1
