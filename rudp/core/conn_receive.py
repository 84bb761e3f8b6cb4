"""The receive path: segments and resets from the peer, ACK processing (RTT samples, SACK
scoreboard, loss detection and recovery, congestion window) and reassembly of data.
"""

from __future__ import annotations

from ..errors import (
    ConnectionRefused,
    ConnectionReset,
    DecodeError,
)
from ..wire.datagram import parse_datagram
from ..wire.packet import (
    FLAG_DSACK,
    FLAG_FIN,
    FLAG_PING,
    TYPE_DATA,
    Reset,
    ResetReason,
    parse_segment,
)
from ..wire.seqnum import MASK32, unwrap
from . import recvbuf as rx
from .conn_base import DATA_MARK, PAWS_IDLE, Addr, reason_name, timestamp
from .conn_recovery import RecoveryLayer
from .events import (
    DatagramReceived,
    SendBufferLow,
)
from .sendbuf import FAST_RECOVERY
from .state import ConnState, Trigger

__all__ = ["ReceiveLayer"]


class ReceiveLayer(RecoveryLayer):
    """What the peer sends us."""

    # --- datagrams from the peer --------------------------------------------------------
    def receive_segment(self, data: bytes, *, now: float, new_addr: Addr | None = None) -> None:
        """A DATA or ACK datagram addressed to this connection; ``new_addr`` is its source
        when that is not the peer's address (see ``conn_path``)."""
        try:
            ptype, flags, window, _, seq32, ack32, tsval, tsecr, sacks, off = parse_segment(data)
        except DecodeError:
            self.stats.dropped["decode"] += 1
            return
        rb = self._rb
        if rb is None or not self._synchronized:
            self.stats.dropped["state"] += 1
            return
        stats = self.stats
        stats.datagrams_received += 1
        stats.bytes_received += len(data)
        # PAWS: drop an old duplicate whose timestamp went backwards (RFC 7323 §5.3).
        if ((tsval - self._ts_recent) & MASK32) > 0x80000000 and (
            now - self._ts_recent_time < PAWS_IDLE
        ):
            stats.dropped["paws"] += 1
            self._challenge_ack(now)
            return
        rcv_nxt = rb.rcv_nxt
        delta = (seq32 - rcv_nxt) & MASK32
        seq = rcv_nxt + delta if delta < 0x80000000 else rcv_nxt + delta - 0x100000000
        if seq > rb.read_seq + rb.capacity + 1 or seq < rcv_nxt - rb.capacity:
            # Starts outside anything the window ever allowed (+1: a FIN at the right edge and
            # the ACKs after it): a blind guess, not a segment of the peer's (RFC 9293
            # §3.10.7.4 acceptability, RFC 5961 §5 spirit).
            stats.dropped["seq_out_of_window"] += 1
            self._challenge_ack(now)
            return
        sb = self._sb
        una = sb.snd_una
        delta = (ack32 - una) & MASK32  # unwrap around snd_una (RFC 1982 serial numbers)
        ack = una + delta if delta < 0x80000000 else una + delta - 0x100000000
        if ack > sb.snd_nxt or ack < una - max(self._max_peer_window, 1 << 16):
            # Acknowledges what was never sent, or far too old (RFC 5961 §5.2): ACK, drop.
            stats.dropped["out_of_window"] += 1
            self._challenge_ack(now)
            return
        if new_addr is not None:
            if not self._segment_from_new_address(new_addr, len(data), tsval, now):
                return
        elif self._path is not None:
            self._segment_from_peer_address(tsval)
        self._last_recv = now
        self._probes_unanswered = 0
        self._keepalive_sent = 0
        if self._awaiting_confirm:
            # Any segment confirms the echo, also after a FIN we queued in the meantime.
            self._awaiting_confirm = False
            self._hs_deadline = self._hs_expire = None
            if self._sm.state is ConnState.COOKIE_ECHOED:
                self._transition(Trigger.RECV_CONFIRM)
        if seq <= self._last_ack_sent and ((tsval - self._ts_recent) & MASK32) < 0x80000000:
            self._ts_recent = tsval  # RFC 7323 §4.3
            self._ts_recent_time = now
        if ack == una and not sacks and not sb.outstanding:
            # Nothing of ours in flight: only the peer's window can have news (the common case
            # for the receiving side of a bulk transfer).
            if seq > self._wl1 or (seq == self._wl1 and ack >= self._wl2):
                wnd = window << self._peer_wscale
                self.peer_window = wnd
                self._wl1 = seq
                self._wl2 = ack
                if wnd > self._max_peer_window:
                    self._max_peer_window = wnd
        else:
            self._process_ack(ack, window, seq, sacks, flags, tsecr, len(data) - off, now)
        if ptype == TYPE_DATA:
            self._process_data(seq, data[off:], flags & FLAG_FIN, now)
        if flags & FLAG_PING:
            self._ack_now = True
        self._owner._mark_dirty(self)

    def _process_ack(
        self,
        ack: int,
        window: int,
        seg_seq: int,
        sacks: tuple[tuple[int, int], ...],
        flags: int,
        tsecr: int,
        payload_len: int,
        now: float,
    ) -> None:
        sb = self._sb
        cc = self.cc
        if cc is None:  # pragma: no cover - set up with the receive buffer
            return
        una = sb.snd_una
        pipe_before = sb.pipe
        # Bytes at or above this were never retransmitted (RACK needs first transmissions).
        orig_floor = sb.high_rxt if sb.recovery and sb.high_rxt > una else una
        # Window update only from a newer segment (RFC 9293 §3.10.7.4, SND.WL1/WL2).
        wnd = window << self._peer_wscale
        window_changed = False
        if seg_seq > self._wl1 or (seg_seq == self._wl1 and ack >= self._wl2):
            window_changed = wnd != self.peer_window
            self.peer_window = wnd
            self._wl1 = seg_seq
            self._wl2 = ack
            if wnd > self._max_peer_window:
                self._max_peer_window = wnd
        rack = self._rack
        delivered = 0
        top = 0  # the end of the highest newly delivered byte
        if ack > una:
            delivered = sb.on_ack(ack)
            self._xmit.trim(ack)
            top = ack
            if delivered:
                rack.on_original_delivered(una, ack, retransmitted_below=orig_floor)
        newly_sacked = 0
        if sacks:
            start_index = 0
            if flags & FLAG_DSACK:
                self.stats.dsack_received += 1
                start_index = 1
                left, right = sacks[0]
                dstart = unwrap(left, una)
                self._on_dsack(dstart, dstart + ((right - left) & MASK32), now)
            for left, right in sacks[start_index:]:
                start = unwrap(left, una)
                end = start + ((right - left) & MASK32)
                newly = sb.on_sack(start, end)
                if newly:
                    newly_sacked += newly
                    if end > sb.snd_nxt:
                        end = sb.snd_nxt
                    if end > top:
                        top = end
                    rack.on_original_delivered(start, end, retransmitted_below=orig_floor)
        # RTT: the newest delivered first transmission's own round trip (from the send-time
        # log) when there is one, else the timestamp echo of an ACK that advances snd_una
        # (RFC 7323 §4.1: unambiguous, no Karn needed). A pure SACK's echo is not used: while
        # a hole is open the peer echoes the TSval of its last in-order segment (§4.3).
        sample = self._rack_on_delivery(top, orig_floor, now) if top else None
        if sample is None and ack > una and tsecr:
            echo = (timestamp(now) - tsecr) & MASK32
            if echo < 0x80000000:
                sample = echo / 1e6
        if sample is not None:
            # ExpectedSamples = ceil(FlightSize / (2 SMSS)) (RFC 7323 Appendix G): an ACK
            # per two segments, so the estimator still moves once per round trip.
            self.rtt.on_sample(sample, per_rtt=-(-(self._sb.outstanding) // (2 * self._smss)) or 1)
            cc.on_rtt_sample(sample, now=now)
        if ack > una:
            self._dupacks = 0
            self._rto_count = 0
            self._persistent_declared = False
            # Restart the timer on new data acknowledged, stop it when all is (RFC 6298 §5.2-3).
            self._rto_deadline = now + self.rtt.rto if sb.outstanding else None
            if self._undo_tsval > 0:
                self._eifel_check(ack, tsecr, now)
            if self._tlp_end is not None:
                self._tlp_on_ack(ack, tsecr, now)
        elif sb.outstanding and not payload_len and (newly_sacked or not window_changed):
            self._dupacks += 1
            self.stats.dup_acks_received += 1
        acked = delivered + newly_sacked
        prr = cc.reduces_on_loss
        if sb.recovery:
            if sb.snd_una >= sb.recovery_point:
                if sb.recovery == FAST_RECOVERY and prr:
                    cc.cwnd = cc.ssthresh  # the reduction is complete (RFC 6937 §3.1)
                self._on_recovery_exit()
            elif ack > una and sb.recovery == FAST_RECOVERY and sb.sacked:
                # Partial ACK: the next hole is lost too (RFC 6582 §3.2), when SACKed data
                # above shows it is a hole and not data still in flight.
                sb.mark_head_lost()
        if newly_sacked:
            sb.update_lost_edge()
        if acked and (sb.sacked or sb.rxt_log or self._rack_deadline is not None):
            self._rack_detect(now)
        self._maybe_enter_recovery(now)
        if sb.recovery == FAST_RECOVERY and prr:
            self._prr_update(acked)
        elif acked:
            cc.on_ack(acked, bytes_in_flight=pipe_before, now=now)
        if acked:
            self._arm_tlp(now)
        if ack > una:
            if sb.fin_acked:
                self._on_fin_acked(now)
            if self._write_paused and sb.size <= self.config.send_buffer_low:
                self._write_paused = False
                self._push_event(SendBufferLow())

    def _process_data(self, seq: int, payload: bytes, fin: int, now: float) -> None:
        rb = self._rb
        if rb is None:  # pragma: no cover - set up before any segment is accepted
            return
        before = rb.rcv_nxt
        status = rb.receive(seq, payload, bool(fin))
        stats = self.stats
        if status & (rx.IN_ORDER | rx.FILLED_HOLE):
            # The bytes that became in-order: held out-of-order data included, overlap with
            # what had arrived already (a retransmission straddling it) not, the FIN not.
            stats.payload_bytes_received += (
                rb.rcv_nxt - before - (1 if status & rx.FIN_IN_ORDER else 0)
            )
            if self._app_closed:
                rb.consume(len(rb.take_ready()))  # nobody reads any more: discard
            elif not self._data_marked:
                self._data_marked = True
                self._push_event(DATA_MARK)
        if status & rx.DUPLICATE:
            stats.duplicate_segments += 1
        if status & rx.OUT_OF_WINDOW:
            stats.dropped["out_of_window"] += 1
        if status & rx.AFTER_FIN:
            stats.dropped["after_fin"] += 1
        if status & rx.REASSEMBLY_FULL:
            stats.dropped["reassembly_full"] += 1
        if status & rx.FIN_IN_ORDER:
            self._on_fin_received(now)
        if status & rx.ACK_NOW or self.config.ack_delay == 0:
            self._ack_now = True
        else:
            self._unacked_segments += 1
            if self._unacked_segments >= self.config.ack_every:
                self._ack_now = True  # at least every 2nd segment (RFC 5681 §4.2)
            elif self._ack_deadline is None:
                self._ack_deadline = now + self.config.ack_delay

    def receive_unreliable(self, data: bytes, *, now: float) -> None:
        """A DATAGRAM packet addressed to this connection: queue its payload as an event."""
        stats = self.stats
        try:
            _, number, payload = parse_datagram(data)
        except DecodeError:
            stats.dropped["decode"] += 1
            return
        if not self._synchronized or self._terminated or self._app_closed:
            stats.dropped["state"] += 1
            return
        stats.datagrams_received += 1
        stats.bytes_received += len(data)
        self._last_recv = now  # proof of life for the idle timeout and keepalive
        self._keepalive_sent = 0
        dg = self._dg
        if not dg.replay.accept(number):
            stats.dropped["datagram_duplicate"] += 1
            return
        if dg.pending_events >= dg.recv_limit:
            stats.dropped["datagram_queue_full"] += 1
            return
        dg.pending_events += 1
        stats.unreliable_received += 1
        self._push_event(DatagramReceived(payload))

    def receive_reset(self, reset: Reset, *, now: float) -> None:
        """A RESET for this connection: accepted only at the exact expected sequence number;
        one elsewhere in the window gets a challenge ACK (RFC 5961 §3.2)."""
        state = self._sm.state
        if self._terminated or state is ConnState.CLOSED:
            self.stats.dropped["state"] += 1
            return
        reason = reset.reason
        if state is ConnState.INIT_SENT:
            if reset.seq == self._local_isn & MASK32:
                self._fail(ConnectionRefused("connection refused by peer"), "refused", now)
            else:
                self.stats.dropped["out_of_window"] += 1
            return
        rb = self._rb
        if rb is None:  # pragma: no cover - synchronized states have one
            return
        seq = unwrap(reset.seq, rb.rcv_nxt)
        if self._awaiting_confirm and reason == ResetReason.UNKNOWN_CONNECTION:
            # Our data overtook the echo, or the echo was lost: keep echoing.
            self.stats.dropped["reset_before_confirm"] += 1
            return
        if seq == rb.rcv_nxt:
            if self._awaiting_confirm and reason == ResetReason.REFUSED:
                self._fail(ConnectionRefused("connection refused by peer"), "refused", now)
            else:
                self._fail(
                    ConnectionReset(f"connection reset by peer ({reason_name(reason)})"),
                    "reset",
                    now,
                    by_peer=True,
                )
        elif rb.rcv_nxt < seq < rb.rcv_adv:
            self._challenge_ack(now)
        else:
            self.stats.dropped["out_of_window"] += 1
