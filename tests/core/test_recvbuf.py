"""RecvBuffer: reassembly, D-SACK and SACK blocks, the advertised window, receiver SWS, FIN."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rudp.core.recvbuf import (
    ACK_NOW,
    AFTER_FIN,
    DUPLICATE,
    FILLED_HOLE,
    FIN_IN_ORDER,
    IN_ORDER,
    OUT_OF_ORDER,
    OUT_OF_ORDER_TAIL,
    OUT_OF_WINDOW,
    REASSEMBLY_FULL,
    RecvBuffer,
)

S = 2**32 - 100  # sequence numbers are unbounded ints: no wrap at 2**32
DATA = bytes(range(256)) * 8  # 2048 distinct-looking bytes


def make(
    initial_seq: int = S, *, capacity: int = 1000, max_payload: int = 100, window_scale: int = 0
) -> RecvBuffer:
    return RecvBuffer(
        initial_seq, capacity=capacity, max_payload=max_payload, window_scale=window_scale
    )


def seg(rb: RecvBuffer, lo: int, hi: int, *, fin: bool = False, base: int = S) -> int:
    """Deliver DATA[lo:hi] at its sequence numbers."""
    return rb.receive(base + lo, DATA[lo:hi], fin)


# --- flags ----------------------------------------------------------------------------------


def test_flag_values_are_distinct_bits() -> None:
    flags = [IN_ORDER, OUT_OF_ORDER, FILLED_HOLE, DUPLICATE, OUT_OF_WINDOW, FIN_IN_ORDER, AFTER_FIN]
    assert flags == [1, 2, 4, 8, 16, 32, 64]
    assert REASSEMBLY_FULL == 128 and OUT_OF_ORDER_TAIL == 256
    assert not ACK_NOW & OUT_OF_ORDER_TAIL
    assert (
        ACK_NOW
        == (OUT_OF_ORDER | FILLED_HOLE | DUPLICATE | OUT_OF_WINDOW | FIN_IN_ORDER | AFTER_FIN)
        | REASSEMBLY_FULL
    )
    assert not ACK_NOW & IN_ORDER


# --- in-order delivery ----------------------------------------------------------------------


def test_initial_state() -> None:
    rb = make()
    assert rb.rcv_nxt == S
    assert rb.read_seq == S
    assert rb.rcv_adv == S + 1000
    assert rb.buffered == 0
    assert not rb.has_ready
    assert rb.take_ready() == b""
    assert rb.fin_seq is None
    assert rb.fin_received is False
    assert rb.sack_blocks(4) == ([], False)


def test_in_order_delivery_and_take_ready() -> None:
    rb = make()
    assert seg(rb, 0, 3) == IN_ORDER
    assert rb.rcv_nxt == S + 3
    assert rb.has_ready
    assert rb.buffered == 3
    assert seg(rb, 3, 10) == IN_ORDER
    assert rb.take_ready() == DATA[0:10]
    assert not rb.has_ready
    assert rb.take_ready() == b""
    assert rb.buffered == 10  # handed out, not yet consumed
    rb.consume(4)
    assert rb.read_seq == S + 4
    assert rb.buffered == 6
    rb.consume(6)
    assert rb.buffered == 0
    assert rb.sack_blocks(4) == ([], False)


def test_single_ready_chunk_is_returned_as_is() -> None:
    rb = make()
    payload = DATA[:50]
    rb.receive(S, payload, False)
    assert rb.take_ready() is payload


def test_sequence_numbers_cross_2_to_the_32_without_wrapping() -> None:
    rb = make()
    assert seg(rb, 0, 150) == IN_ORDER
    assert rb.rcv_nxt == 2**32 + 50
    assert seg(rb, 150, 250) == IN_ORDER
    assert rb.take_ready() == DATA[:250]


# --- out of order -------------------------------------------------------------------------


def test_continuing_the_highest_block_is_not_a_new_hole() -> None:
    """SACK compression: only a segment that shows a new hole needs an immediate ACK."""
    rb = make()
    assert seg(rb, 10, 20) == OUT_OF_ORDER  # a hole at [0, 10)
    assert seg(rb, 20, 30) == OUT_OF_ORDER_TAIL  # extends the highest block
    assert seg(rb, 40, 50) == OUT_OF_ORDER  # a second hole at [30, 40)
    assert seg(rb, 50, 60) == OUT_OF_ORDER_TAIL
    assert seg(rb, 30, 40) == OUT_OF_ORDER  # fills the upper hole: the SACK blocks change
    assert rb.sack_blocks(4)[0][0] == (S + 10, S + 60)


def test_out_of_order_then_fill() -> None:
    rb = make()
    assert seg(rb, 3, 6) == OUT_OF_ORDER
    assert rb.rcv_nxt == S
    assert not rb.has_ready
    assert rb.take_ready() == b""
    assert rb.buffered == 3
    assert rb.sack_blocks(4) == ([(S + 3, S + 6)], False)
    assert seg(rb, 0, 3) == FILLED_HOLE
    assert rb.rcv_nxt == S + 6
    assert rb.take_ready() == DATA[0:6]
    assert rb.buffered == 6
    assert rb.sack_blocks(4) == ([], False)


def test_several_holes_filled_in_reverse_order() -> None:
    rb = make()
    assert seg(rb, 40, 50) == OUT_OF_ORDER
    assert seg(rb, 20, 30) == OUT_OF_ORDER
    assert seg(rb, 30, 40) == OUT_OF_ORDER  # joins the two blocks
    assert rb.sack_blocks(4) == ([(S + 20, S + 50)], False)
    assert seg(rb, 10, 20) == OUT_OF_ORDER
    # Filling part of a gap counts as filling it: ACK at once (RFC 5681 §4.2).
    assert seg(rb, 0, 5) == FILLED_HOLE
    assert rb.take_ready() == DATA[0:5]
    assert rb.sack_blocks(4) == ([(S + 10, S + 50)], False)
    assert seg(rb, 5, 10) == FILLED_HOLE
    assert rb.rcv_nxt == S + 50
    assert rb.take_ready() == DATA[5:50]
    assert rb.buffered == 50


def test_fill_that_reaches_only_the_first_block() -> None:
    rb = make()
    seg(rb, 10, 20)
    seg(rb, 30, 40)
    assert seg(rb, 0, 10) == FILLED_HOLE
    assert rb.rcv_nxt == S + 20
    assert rb.take_ready() == DATA[0:20]
    assert rb.sack_blocks(4) == ([(S + 30, S + 40)], False)
    assert rb.buffered == 30


def test_overlapping_retransmission_stores_only_new_pieces() -> None:
    rb = make()
    assert seg(rb, 10, 20) == OUT_OF_ORDER
    # A re-segmented retransmission over the stored piece: its bytes in [10, 20) are
    # garbled here, so the final stream shows that only the holes were taken from it.
    garbled = DATA[5:10] + b"X" * 10 + DATA[20:25]
    assert rb.receive(S + 5, garbled, False) == OUT_OF_ORDER
    assert rb.buffered == 20
    assert rb.sack_blocks(4) == ([(S + 5, S + 25)], False)
    assert seg(rb, 0, 5) == FILLED_HOLE
    assert rb.take_ready() == DATA[0:25]
    assert rb.rcv_nxt == S + 25


def test_in_order_segment_overlapping_stored_data_keeps_stored_bytes() -> None:
    rb = make()
    seg(rb, 0, 10)
    seg(rb, 15, 20)
    seg(rb, 30, 35)
    garbled = DATA[5:15] + b"Y" * 5 + DATA[20:28]
    status = rb.receive(S + 5, garbled, False)
    assert status == FILLED_HOLE
    assert rb.rcv_nxt == S + 28
    assert rb.take_ready() == DATA[0:28]
    # The part below rcv_nxt was a duplicate: D-SACK [5, 10); then the remaining block.
    assert rb.sack_blocks(4) == ([(S + 5, S + 10), (S + 30, S + 35)], True)
    assert rb.buffered == 28 + 5


# --- duplicates and D-SACK ----------------------------------------------------------------


def test_duplicate_below_rcv_nxt_gives_dsack_block() -> None:
    rb = make()
    seg(rb, 0, 10)
    assert seg(rb, 2, 6) == DUPLICATE
    assert rb.rcv_nxt == S + 10
    assert rb.take_ready() == DATA[0:10]
    assert rb.sack_blocks(4) == ([(S + 2, S + 6)], True)
    assert rb.sack_blocks(4) == ([], False)  # cleared once reported


def test_exact_duplicate_of_consumed_data_gives_dsack_block() -> None:
    rb = make()
    seg(rb, 0, 10)
    rb.consume(len(rb.take_ready()))
    assert seg(rb, 0, 10) == DUPLICATE
    assert not rb.has_ready
    assert rb.sack_blocks(4) == ([(S, S + 10)], True)


def test_empty_segment_below_rcv_nxt_is_duplicate_without_dsack() -> None:
    rb = make()
    seg(rb, 0, 10)
    assert rb.receive(S + 4, b"", False) == DUPLICATE
    assert rb.sack_blocks(4) == ([], False)


def test_duplicate_inside_stored_out_of_order_data_gives_dsack() -> None:
    rb = make()
    seg(rb, 10, 20)
    assert seg(rb, 12, 16) == DUPLICATE
    assert rb.buffered == 10
    assert rb.sack_blocks(4) == ([(S + 12, S + 16), (S + 10, S + 20)], True)
    assert rb.sack_blocks(4) == ([(S + 10, S + 20)], False)


def test_dsack_is_followed_by_the_block_that_contains_it() -> None:
    rb = make()
    seg(rb, 10, 20)
    seg(rb, 30, 40)  # the most recently stored block
    assert seg(rb, 12, 16) == DUPLICATE
    blocks, dsack = rb.sack_blocks(4)
    assert dsack is True
    assert blocks == [(S + 12, S + 16), (S + 10, S + 20), (S + 30, S + 40)]


def test_dsack_and_its_block_respect_the_cap() -> None:
    rb = make()
    seg(rb, 10, 20)
    assert seg(rb, 12, 16) == DUPLICATE
    assert rb.sack_blocks(1) == ([(S + 12, S + 16)], True)


def test_dsack_block_and_its_containing_block_with_cap_two() -> None:
    rb = make()
    seg(rb, 10, 20)
    seg(rb, 30, 40)
    seg(rb, 12, 16)
    assert rb.sack_blocks(2) == ([(S + 12, S + 16), (S + 10, S + 20)], True)


def test_partial_overlap_below_rcv_nxt_dsacks_only_the_old_part() -> None:
    rb = make()
    seg(rb, 0, 10)
    assert seg(rb, 5, 15) == IN_ORDER
    assert rb.rcv_nxt == S + 15
    assert rb.take_ready() == DATA[0:15]
    assert rb.sack_blocks(4) == ([(S + 5, S + 10)], True)


def test_a_new_dsack_replaces_an_unreported_one() -> None:
    rb = make()
    seg(rb, 0, 10)
    seg(rb, 1, 2)
    seg(rb, 3, 7)
    assert rb.sack_blocks(4) == ([(S + 3, S + 7)], True)


# --- SACK blocks --------------------------------------------------------------------------


def five_blocks() -> RecvBuffer:
    rb = make()
    for lo in (10, 30, 50, 70, 90):
        assert seg(rb, lo, lo + 5) == OUT_OF_ORDER
    return rb


def test_sack_blocks_most_recent_first_and_capped() -> None:
    rb = five_blocks()
    newest_four = [(S + 90, S + 95), (S + 70, S + 75), (S + 50, S + 55), (S + 30, S + 35)]
    assert rb.sack_blocks(4) == (newest_four, False)
    assert rb.sack_blocks(3) == (newest_four[:3], False)
    assert rb.sack_blocks(1) == (newest_four[:1], False)
    assert rb.buffered == 25


def test_sack_block_extended_by_new_data_moves_to_front() -> None:
    rb = five_blocks()
    assert seg(rb, 15, 20) == OUT_OF_ORDER  # extends the oldest block [10, 15)
    assert rb.sack_blocks(4) == (
        [(S + 10, S + 20), (S + 90, S + 95), (S + 70, S + 75), (S + 50, S + 55)],
        False,
    )


def test_sack_blocks_fill_up_with_older_blocks_in_ascending_order() -> None:
    rb = five_blocks()
    seg(rb, 35, 50)  # merges [30, 35) and [50, 55) into one block: recent points collapse
    blocks, _ = rb.sack_blocks(4)
    assert blocks == [(S + 30, S + 55), (S + 90, S + 95), (S + 70, S + 75), (S + 10, S + 15)]


def test_dsack_comes_first_and_counts_toward_the_cap() -> None:
    rb = make()
    seg(rb, 0, 5)
    for lo in (10, 30, 50, 70):
        seg(rb, lo, lo + 5)
    assert seg(rb, 1, 3) == DUPLICATE
    assert rb.sack_blocks(4) == (
        [(S + 1, S + 3), (S + 70, S + 75), (S + 50, S + 55), (S + 30, S + 35)],
        True,
    )
    assert rb.sack_blocks(4) == (
        [(S + 70, S + 75), (S + 50, S + 55), (S + 30, S + 35), (S + 10, S + 15)],
        False,
    )


def test_dsack_alone_when_cap_is_one() -> None:
    rb = make()
    seg(rb, 0, 5)
    seg(rb, 10, 15)
    seg(rb, 0, 5)
    assert rb.sack_blocks(1) == ([(S, S + 5)], True)
    assert rb.sack_blocks(1) == ([(S + 10, S + 15)], False)


# --- the advertised window ----------------------------------------------------------------


def test_window_field_with_window_scale_exact() -> None:
    capacity = 4 * 1024 * 1024
    rb = make(capacity=capacity, max_payload=1200, window_scale=7)
    assert rb.window_field() == capacity >> 7 == 32768
    rb.receive(S, bytes(1200), False)
    assert rb.window_field() == (capacity - 1200) >> 7 == 32758
    rb.receive(S + 1200, bytes(1200), False)
    assert rb.window_field() == (capacity - 2400) >> 7 == 32749


def test_window_field_is_capped_at_16_bits() -> None:
    rb = make(capacity=100_000, max_payload=1200, window_scale=0)
    assert rb.window_field() == 0xFFFF
    rb.receive(S, bytes(40_000), False)
    assert rb.window_field() == 60_000


def test_window_shrinks_while_data_is_held_unconsumed() -> None:
    rb = make()
    assert rb.window_field() == 1000
    seg(rb, 0, 300)
    assert rb.window_field() == 700
    assert rb.take_ready() == DATA[0:300]
    assert rb.window_field() == 700  # handed out but not consumed: still held
    seg(rb, 500, 600)  # out-of-order data does not move rcv_nxt
    assert rb.window_field() == 700
    assert rb.buffered == 400


def test_window_zero_when_full_and_consume_reopens() -> None:
    rb = make()
    assert rb.receive(S, DATA[:1000], False) == IN_ORDER
    assert rb.window_field() == 0
    assert rb.buffered == 1000
    assert rb.take_ready() == DATA[:1000]
    assert rb.window_field() == 0
    assert not rb.window_update_due()
    rb.consume(1000)
    assert rb.window_update_due()
    assert rb.window_field() == 1000
    assert rb.rcv_adv == S + 2000
    assert not rb.window_update_due()


def test_data_beyond_the_window_is_dropped() -> None:
    rb = make()
    assert rb.receive(S + 1000, b"z", False) == OUT_OF_WINDOW
    assert rb.receive(S + 5000, b"zz", False) == OUT_OF_WINDOW
    assert rb.buffered == 0
    assert rb.sack_blocks(4) == ([], False)


def test_out_of_order_tail_beyond_the_window_is_trimmed() -> None:
    rb = make()
    assert seg(rb, 900, 1100) == OUT_OF_ORDER | OUT_OF_WINDOW
    assert rb.buffered == 100
    assert rb.sack_blocks(4) == ([(S + 900, S + 1000)], False)
    assert seg(rb, 0, 900) == FILLED_HOLE
    assert rb.take_ready() == DATA[:1000]


def test_in_order_tail_beyond_the_window_is_trimmed() -> None:
    rb = make()
    assert seg(rb, 0, 1200) == IN_ORDER | OUT_OF_WINDOW
    assert rb.rcv_nxt == S + 1000
    assert rb.take_ready() == DATA[:1000]
    rb.consume(1000)
    assert seg(rb, 1000, 1200) == IN_ORDER
    assert rb.take_ready() == DATA[1000:1200]


def test_window_limit_follows_read_seq_not_rcv_adv() -> None:
    rb = make()
    seg(rb, 0, 1000)
    rb.take_ready()
    rb.consume(10)  # not enough to move the advertised edge (SWS) ...
    assert rb.rcv_adv == S + 1000
    assert seg(rb, 1000, 1020) == IN_ORDER | OUT_OF_WINDOW  # ... but the space is accepted
    assert rb.rcv_nxt == S + 1010


# --- receiver silly window syndrome avoidance ----------------------------------------------


def test_receiver_sws_right_edge_moves_only_by_threshold() -> None:
    # threshold = min(capacity // 2, max_payload) = min(500, 300) = 300
    rb = make(capacity=1000, max_payload=300)
    seg(rb, 0, 600)
    assert rb.window_field() == 400
    rb.take_ready()
    rb.consume(299)
    assert rb.window_field() == 400  # edge would move by 299 < 300: kept
    assert rb.rcv_adv == S + 1000
    rb.consume(1)
    assert rb.window_field() == 700  # moves by exactly 300
    assert rb.rcv_adv == S + 1300


def test_receiver_sws_threshold_is_half_the_buffer_when_smaller() -> None:
    # threshold = min(capacity // 2, max_payload) = min(200, 1200) = 200
    rb = make(capacity=400, max_payload=1200)
    seg(rb, 0, 300)
    assert rb.window_field() == 100
    rb.take_ready()
    rb.consume(199)
    assert rb.window_field() == 100
    rb.consume(1)
    assert rb.window_field() == 300


def test_receiver_sws_holds_a_zero_window_until_threshold() -> None:
    rb = make(capacity=1000, max_payload=300)
    seg(rb, 0, 1000)
    assert rb.window_field() == 0
    rb.take_ready()
    rb.consume(1)
    assert rb.window_field() == 0  # a 1-byte window is exactly the silly window
    rb.consume(298)
    assert rb.window_field() == 0
    rb.consume(1)
    assert rb.window_field() == 300


def test_right_edge_never_moves_left() -> None:
    rb = make(capacity=1000, max_payload=300)
    assert rb.window_field() == 1000
    seg(rb, 0, 1000)
    assert rb.window_field() == 0
    assert rb.rcv_adv == S + 1000


def test_window_update_due_exact() -> None:
    rb = make(capacity=1000, max_payload=300)
    seg(rb, 0, 600)
    assert rb.window_field() == 400
    rb.take_ready()
    assert not rb.window_update_due()
    rb.consume(299)
    assert not rb.window_update_due()  # the edge could move by 299 < 300
    rb.consume(1)
    assert rb.window_update_due()  # by 300, and 400 advertised < capacity // 2
    rb.window_field()
    assert not rb.window_update_due()


def test_window_update_not_due_while_half_the_buffer_is_advertised() -> None:
    rb = make(capacity=1000, max_payload=300)
    seg(rb, 0, 400)
    assert rb.window_field() == 600
    rb.take_ready()
    rb.consume(400)  # the edge could move by 400, but 600 >= 500 is still advertised
    assert not rb.window_update_due()
    assert rb.window_field() == 1000  # the next segment still carries the update


@pytest.mark.parametrize(("received", "due"), [(500, False), (501, True)])
def test_window_update_due_boundary_at_half_the_buffer(received: int, due: bool) -> None:
    rb = make(capacity=1000, max_payload=300)
    seg(rb, 0, received)
    assert rb.window_field() == 1000 - received
    rb.take_ready()
    rb.consume(received)
    assert rb.window_update_due() is due  # advertised 500 is not under half; 499 is


# --- FIN ------------------------------------------------------------------------------------


def test_fin_in_order_with_data() -> None:
    rb = make()
    assert seg(rb, 0, 3, fin=True) == IN_ORDER | FIN_IN_ORDER
    assert rb.fin_seq == S + 3
    assert rb.fin_received is True
    assert rb.rcv_nxt == S + 4
    assert rb.take_ready() == DATA[0:3]
    assert rb.buffered == 3
    rb.consume(3)
    assert rb.buffered == 0
    with pytest.raises(ValueError, match=r"^consume\(1\) but only 0 bytes were handed out$"):
        rb.consume(1)


def test_bare_fin_in_order_is_not_a_duplicate() -> None:
    rb = make()
    seg(rb, 0, 10)
    assert rb.receive(S + 10, b"", True) == FIN_IN_ORDER
    assert rb.rcv_nxt == S + 11


def test_bare_fin_in_order_advances_rcv_nxt_by_one() -> None:
    rb = make()
    seg(rb, 0, 10)
    status = rb.receive(S + 10, b"", True)
    assert status & FIN_IN_ORDER
    assert not status & (IN_ORDER | OUT_OF_ORDER | AFTER_FIN)
    assert rb.rcv_nxt == S + 11
    assert rb.fin_received
    assert rb.sack_blocks(4) == ([], False)
    assert rb.take_ready() == DATA[0:10]
    rb.consume(10)
    assert rb.buffered == 0


def test_fin_before_missing_data_waits_for_the_hole() -> None:
    rb = make()
    assert seg(rb, 3, 6, fin=True) == OUT_OF_ORDER
    assert rb.fin_seq == S + 6
    assert rb.fin_received is False
    assert rb.rcv_nxt == S
    assert seg(rb, 0, 2) == FILLED_HOLE  # part of the gap (RFC 5681 §4.2)
    assert rb.fin_received is False
    assert seg(rb, 2, 3) == FILLED_HOLE | FIN_IN_ORDER
    assert rb.fin_received is True
    assert rb.rcv_nxt == S + 7
    assert rb.take_ready() == DATA[0:6]


def test_bare_fin_out_of_order_completes_when_the_data_arrives() -> None:
    rb = make()
    status = rb.receive(S + 5, b"", True)
    assert status & ACK_NOW
    assert not status & (IN_ORDER | FIN_IN_ORDER | AFTER_FIN)
    assert rb.fin_seq == S + 5
    assert rb.fin_received is False
    assert rb.rcv_nxt == S
    assert rb.buffered == 0
    assert seg(rb, 0, 5) == IN_ORDER | FIN_IN_ORDER
    assert rb.rcv_nxt == S + 6
    assert rb.take_ready() == DATA[0:5]


def test_bare_fin_out_of_order_is_not_a_duplicate_and_sends_no_dsack() -> None:
    rb = make()
    assert rb.receive(S + 5, b"", True) == OUT_OF_ORDER
    assert rb.sack_blocks(4) == ([], False)


def test_data_past_fin_is_rejected() -> None:
    rb = make()
    seg(rb, 0, 5, fin=True)
    assert seg(rb, 5, 6) == AFTER_FIN
    assert seg(rb, 3, 8) == AFTER_FIN
    assert rb.receive(S + 20, b"x", False) == AFTER_FIN
    assert rb.rcv_nxt == S + 6
    assert rb.take_ready() == DATA[0:5]


def test_data_past_a_pending_fin_is_rejected() -> None:
    rb = make()
    seg(rb, 5, 10, fin=True)
    assert seg(rb, 8, 12) == AFTER_FIN
    assert rb.buffered == 5


def test_second_fin_at_another_place_is_rejected() -> None:
    rb = make()
    seg(rb, 5, 10, fin=True)
    assert seg(rb, 5, 12, fin=True) == AFTER_FIN
    assert seg(rb, 5, 8, fin=True) == AFTER_FIN
    assert rb.fin_seq == S + 10


def test_fin_below_received_data_is_rejected() -> None:
    rb = make()
    seg(rb, 0, 10)
    assert seg(rb, 0, 5, fin=True) == AFTER_FIN
    seg(rb, 20, 30)
    assert seg(rb, 10, 15, fin=True) == AFTER_FIN
    assert rb.fin_seq is None


def test_retransmitted_fin_is_duplicate() -> None:
    rb = make()
    seg(rb, 0, 5, fin=True)
    assert rb.receive(S + 5, b"", True) == DUPLICATE
    assert seg(rb, 0, 5, fin=True) == DUPLICATE
    assert rb.sack_blocks(4) == ([(S, S + 5)], True)
    assert rb.rcv_nxt == S + 6
    assert rb.take_ready() == DATA[0:5]


def test_fin_at_the_window_edge_is_accepted() -> None:
    rb = make()
    assert seg(rb, 0, 1000, fin=True) == IN_ORDER | FIN_IN_ORDER
    assert rb.rcv_nxt == S + 1001
    assert rb.buffered == 1000


def test_out_of_window_fin_leaves_no_trace() -> None:
    rb = make()
    assert rb.receive(S + 2000, b"", True) == OUT_OF_WINDOW
    assert rb.fin_seq is None
    assert seg(rb, 0, 500, fin=True) == IN_ORDER | FIN_IN_ORDER


# --- consume --------------------------------------------------------------------------------


def test_consume_more_than_handed_out_raises() -> None:
    rb = make()
    seg(rb, 0, 10)
    with pytest.raises(ValueError, match=r"^consume\(1\) but only 0 bytes were handed out$"):
        rb.consume(1)  # ready but not yet taken
    rb.take_ready()
    with pytest.raises(ValueError, match=r"^consume\(11\) but only 10 bytes were handed out$"):
        rb.consume(11)
    with pytest.raises(ValueError, match=r"^consume\(-1\) but only 10 bytes were handed out$"):
        rb.consume(-1)
    assert rb.read_seq == S
    rb.consume(0)
    rb.consume(10)
    assert rb.read_seq == S + 10
    with pytest.raises(ValueError, match=r"^consume\(1\) but only 0 bytes were handed out$"):
        rb.consume(1)


# --- property: any segmentation, any order, duplicates ----------------------------------


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[int, bytes, int, bool, list[tuple[int, int, bool]]]:
    data = draw(st.binary(min_size=1, max_size=1500))
    n = len(data)
    start = draw(st.sampled_from([0, 1000, 2**32 - 100, 2**40 + 7]))
    capacity = draw(st.integers(min_value=16, max_value=700))
    with_fin = draw(st.booleans())
    cuts = sorted(draw(st.sets(st.integers(min_value=1, max_value=max(1, n - 1)), max_size=20)))
    cuts = [cut for cut in cuts if cut < n]
    bounds = [0, *cuts, n]
    segments = [(lo, hi) for lo, hi in zip(bounds, bounds[1:], strict=False)]
    # Overlapping re-segmentation: retransmissions cut at other boundaries.
    extra = draw(
        st.lists(
            st.tuples(st.integers(0, n - 1), st.integers(1, 300)).map(
                lambda t: (t[0], min(n, t[0] + t[1]))
            ),
            max_size=10,
        )
    )
    dups = draw(st.lists(st.sampled_from(segments), max_size=10))
    order = draw(st.permutations(segments + extra + dups))
    script = [(lo, hi, with_fin and hi == n) for lo, hi in order]
    return start, data, capacity, with_fin, script


@settings(max_examples=150, deadline=None)
@given(deliveries())
def test_reassembly_of_any_segmentation(
    case: tuple[int, bytes, int, bool, list[tuple[int, int, bool]]],
) -> None:
    start, data, capacity, with_fin, script = case
    n = len(data)
    rb = RecvBuffer(start, capacity=capacity, max_payload=100, window_scale=0)
    out = bytearray()

    def deliver(lo: int, hi: int, fin: bool) -> None:
        status = rb.receive(start + lo, data[lo:hi], fin)
        assert not status & AFTER_FIN
        assert 0 <= rb.buffered <= capacity
        chunk = rb.take_ready()
        assert data[len(out) : len(out) + len(chunk)] == chunk
        out.extend(chunk)
        rb.consume(len(chunk))
        assert rb.buffered <= capacity
        assert rb.rcv_nxt - start == len(out) + (1 if rb.fin_received else 0)
        blocks, dsack = rb.sack_blocks(4)
        assert len(blocks) <= 4
        for block_lo, block_hi in blocks:
            assert block_lo < block_hi  # never an empty block
        sacked = blocks[1:] if dsack else blocks
        for block_lo, block_hi in sacked:
            # Out-of-order data lies above a hole at rcv_nxt and inside the buffer.
            assert rb.rcv_nxt < block_lo < block_hi <= rb.read_seq + capacity
        assert len(set(sacked)) == len(sacked)
        assert sum(hi - lo for lo, hi in sacked) <= rb.buffered

    for lo, hi, fin in script:
        deliver(lo, hi, fin)
    # Then the sender retransmits whatever is still missing, in order, window by window.
    while len(out) < n:
        lo = len(out)
        hi = min(n, lo + capacity)
        deliver(lo, hi, with_fin and hi == n)
    if with_fin and not rb.fin_received:
        deliver(n, n, True)  # the FIN rode on a trimmed tail: it is retransmitted alone
    assert bytes(out) == data
    assert rb.buffered == 0
    assert rb.sack_blocks(4) == ([], False)
    assert rb.fin_received is with_fin
    assert rb.rcv_nxt == start + n + (1 if with_fin else 0)


def test_out_of_order_pieces_stop_at_max_pieces() -> None:
    rb = RecvBuffer(S, capacity=4096, max_payload=100, window_scale=0, max_pieces=3)
    assert [seg(rb, lo, lo + 1) for lo in (10, 20, 30)] == [OUT_OF_ORDER] * 3
    assert seg(rb, 40, 41) == REASSEMBLY_FULL
    assert seg(rb, 11, 12) == REASSEMBLY_FULL  # adjacent, but still a piece of its own
    assert rb.buffered == 3
    assert seg(rb, 0, 50) == FILLED_HOLE  # the hole fills: the pieces are taken, room again
    assert rb.rcv_nxt == S + 50 and rb.take_ready() == DATA[:50]
    assert seg(rb, 60, 61) == OUT_OF_ORDER
