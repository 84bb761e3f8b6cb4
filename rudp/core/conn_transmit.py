"""The transmit path: retransmissions and new data within the congestion and peer windows,
sender silly-window avoidance, Nagle, ACKs with SACK blocks, and window probes.
"""

from __future__ import annotations

from ..wire.packet import (
    FLAG_DSACK,
    FLAG_FIN,
    FLAG_PING,
    HEADER_SIZE,
    SEGMENT,
    TYPE_ACK,
    TYPE_DATA,
    VERSION,
    pack_segment,
)
from ..wire.seqnum import MASK32
from .conn_base import Addr
from .conn_timers import TimerLayer
from .recvbuf import RecvBuffer
from .sendbuf import FAST_RECOVERY
from .state import SYNCHRONIZED, ConnState

__all__ = ["TransmitLayer"]

_pack_header = SEGMENT.pack
PACING_SS_GAIN = 2.0  # pacing rate / (cwnd / SRTT) in slow start (Linux tcp_pacing_ss_ratio)
PACING_CA_GAIN = 1.2  # ... in congestion avoidance (Linux tcp_pacing_ca_ratio)
# Window-based controllers are paced only on paths with at least this min RTT: the event loop
# wakes about once a millisecond, so below a few ms pacing cannot spread a window over the
# round trip, and it costs a wake-up per burst per connection (100 loopback connections ran
# 4x slower paced).
PACING_MIN_RTT = 0.004
# At most this many extra ACKs per flush carry SACK blocks the first ACK had no room for.
# Four made an ACK storm under heavy loss (the out-of-order receiver ACKs every batch): on the
# emulated 100 Mbit/s, 20 ms link at 5 % loss, 4 / 1 / 0 extra ACKs gave 6.2 / 9.1 / 8.2 MB/s
# (0 resent 1.22 segments per segment lost, RACK deciding on incomplete SACK information).
_EXTRA_SACK_ACKS = 1
_VT_DATA = (VERSION << 4) | TYPE_DATA

# States in which nothing new is sent: we are only lingering for the peer.
_NO_DATA = frozenset({ConnState.TIME_WAIT, ConnState.FIN_WAIT_2})


class TransmitLayer(TimerLayer):
    """Datagrams to the peer."""

    # --- output -------------------------------------------------------------------------
    def flush(self, out: list[tuple[bytes, Addr]], *, now: float) -> None:
        """Append every datagram due now to ``out``."""
        addr = self.peer_addr
        stats = self.stats
        if self._control:
            for datagram in self._control:
                out.append((datagram, addr))
                stats.datagrams_sent += 1
                stats.bytes_sent += len(datagram)
            self._control.clear()
        if self._terminated and self._sm.state is not ConnState.TIME_WAIT:
            return
        rb = self._rb
        if rb is None or self._sm.state not in SYNCHRONIZED:
            return
        dg = self._dg
        if dg.recent_bytes:
            dg.expire(now, self._datagram_horizon())
        if dg.queued and self._sm.state not in _NO_DATA and self.cc is not None:
            room = self.cc.cwnd - self._sb.pipe - dg.recent_bytes
            taken = dg.take(self.peer_cid, room, now)
            for datagram in taken:
                out.append((datagram, addr))
                stats.datagrams_sent += 1
                stats.bytes_sent += len(datagram)
            stats.unreliable_sent += len(taken)
        sent = self._send_data(out, now) if self._sm.state not in _NO_DATA else 0
        if not sent and (self._ack_now or self._ping):
            self._send_ack(out, now)

    def _send_data(self, out: list[tuple[bytes, Addr]], now: float) -> int:
        sb = self._sb
        cc = self.cc
        rb = self._rb
        if cc is None or rb is None:  # pragma: no cover - set up together
            return 0
        self._pacing_deadline = None
        probes = 0
        if self._tlp_due:
            self._tlp_due = False
            probes = self._send_probe(out, now)
        if not sb.unsent and sb.lost_edge <= max(sb.high_rxt, sb.snd_una) and not sb.relost:
            self._persist_deadline = None
            return probes
        smss = self._smss
        cfg = self.config
        if not sb.outstanding and now - self._last_data_sent > self.rtt.rto:
            cc.on_idle_restart(now=now)  # RFC 5681 §4.1 restart window
        addr = self.peer_addr
        stats = self.stats
        cwnd = cc.cwnd - self._dg.recent_bytes  # datagrams sent in the last RTT share it
        tsval = self._tsval(now)
        ack32 = rb.rcv_nxt & MASK32
        window = rb.window_field()
        sacks: list[tuple[int, int]] | None = None  # taken when the first datagram goes
        dsack = False
        tsecr = self._ts_recent
        cid = self.peer_cid
        sent = 0
        pacer = None
        rate = cc.pacing_rate
        if not rate and cfg.pacing:
            srtt = self.rtt.srtt
            min_rtt = self.rtt.min_rtt
            if srtt and min_rtt is not None and min_rtt >= PACING_MIN_RTT:
                # Linux tcp_update_pacing_rate: 200 % of cwnd per SRTT in slow start, 120 %
                # after, so the window drains within the round trip but never in one burst.
                gain = PACING_SS_GAIN if cc.in_slow_start() else PACING_CA_GAIN
                rate = gain * cc.cwnd / srtt
        if rate:
            pacer = self._pacer
            pacer.set_rate(rate)
        undo = self._undo_active
        nxt_before = sb.snd_nxt
        view = sb.view()
        try:
            while True:
                una = sb.snd_una
                if sb.lost_edge > (sb.high_rxt if sb.high_rxt > una else una) or sb.relost:
                    room = cwnd - sb.pipe
                    retransmit = sb.peek_retransmission(smss)
                else:  # nothing deemed lost: pipe is what is out less what was SACKed
                    room = cwnd - (sb.snd_nxt - una - sb.sacked_bytes)
                    retransmit = None
                if retransmit is not None:
                    seq, end = retransmit
                    if end - seq > room:
                        if not (sb.fin_queued and end == sb.fin_seq + 1 and end - 1 - seq > 0):
                            break
                        if end - 1 - seq > room:
                            break
                        end -= 1  # the data now, its FIN once the window has room
                    if pacer is not None and not pacer.can_send(now):
                        self._pacing_deadline = pacer.wake_time
                        break
                    if seq == sb.snd_una:
                        # The oldest outstanding byte left again: the timer measures from it
                        # (as Linux re-arms the RTO on retransmitting the head), so a hole
                        # RACK is still repairing round by round does not also time out.
                        self._rto_deadline = now + self.rtt.rto
                    sb.on_retransmitted(seq, end, now)
                    cc.on_bytes_lost(end - seq, now=now)
                    if undo:
                        self._note_retransmission(seq, end, tsval)
                    fin = sb.fin_queued and end > sb.fin_seq
                    span = end - seq  # sequence numbers sent, the FIN's included
                    stats.segments_retransmitted += 1
                    stats.bytes_retransmitted += end - seq
                else:
                    data_unsent = sb.end_seq - sb.snd_nxt
                    fin_only = data_unsent <= 0 and sb.unsent > 0
                    usable = sb.snd_una + self.peer_window - sb.snd_nxt
                    if fin_only:
                        n = 0
                    elif data_unsent <= 0 or usable <= 0:
                        break
                    else:
                        n = min(smss, data_unsent, usable)
                        if n < smss and sb.outstanding:
                            # Sender SWS avoidance (RFC 9293 §3.8.6.2.1) and Nagle (§3.7.4).
                            if n < data_unsent and n < self._max_peer_window // 2:
                                break
                            if n == data_unsent and cfg.nagle:
                                break
                    # The FIN occupies a sequence number of its own, counted in flight too;
                    # with no room for it, the data goes now and the FIN after an ACK.
                    fin_rides = sb.fin_queued and sb.snd_nxt + n == sb.fin_seq
                    if n > room or (fin_only and room < 1):
                        break
                    if pacer is not None and not pacer.can_send(now):
                        self._pacing_deadline = pacer.wake_time
                        break
                    seq, end, fin_flag = sb.take_new(n, with_fin=n + fin_rides <= room)
                    fin = fin_flag
                    span = end - seq + fin
                    self._last_data_sent = now
                if sacks is None:
                    sacks, dsack = self._sack_blocks()
                payload = sb.payload_view(view, seq, end)
                flags = (FLAG_FIN if fin else 0) | (FLAG_DSACK if dsack else 0)
                if self._ping:
                    flags |= FLAG_PING
                    self._ping = False
                if sacks:
                    length = HEADER_SIZE + 8 * len(sacks) + len(payload)
                    buf = bytearray(length)
                    offset = pack_segment(
                        buf,
                        0,
                        TYPE_DATA,
                        flags,
                        window,
                        cid,
                        seq & MASK32,
                        ack32,
                        tsval,
                        tsecr,
                        sacks,
                    )
                    buf[offset:] = payload
                    datagram = bytes(buf)
                else:  # the common case: one header pack and one copy of the payload
                    datagram = (
                        _pack_header(
                            _VT_DATA, flags, window, cid, seq & MASK32, ack32, tsval, tsecr
                        )
                        + payload
                    )
                    length = len(datagram)
                out.append((datagram, addr))
                stats.datagrams_sent += 1
                stats.bytes_sent += length
                stats.payload_bytes_sent += len(payload)
                sent += 1
                if pacer is not None:
                    pacer.on_sent(len(payload), now)
                if sb.recovery == FAST_RECOVERY:
                    self._prr_out += span  # RFC 6937 prr_out
                if sacks:
                    sacks, dsack = [], False  # SACK blocks ride on the first datagram only
                if self._rto_deadline is None:
                    self._rto_deadline = now + self.rtt.rto  # RFC 6298 §5.1
        finally:
            view.release()
        if sent:
            self._acked_now(rb)
            self._last_xmit = now
            if sb.snd_nxt > nxt_before:
                self._xmit.record(sb.snd_nxt, now)
            self._arm_tlp(now)
        sent += probes
        # Zero window with data waiting and nothing in flight: probe (RFC 9293 §3.8.6.1).
        if sb.unsent and not sb.outstanding and sb.snd_una + self.peer_window <= sb.snd_nxt:
            if self._persist_deadline is None:
                self._persist_interval = max(self.rtt.rto, cfg.min_rto)
                self._persist_deadline = now + self._persist_interval
        else:
            self._persist_deadline = None
        return sent

    def _send_probe(self, out: list[tuple[bytes, Addr]], now: float) -> int:
        """The tail-loss probe (RFC 8985 §7.3): one segment of new data if the peer's window
        takes it, else the last segment sent again, whatever cwnd says. Returns 1 if sent."""
        sb = self._sb
        rb = self._rb
        if rb is None or not sb.outstanding:  # pragma: no cover - checked when armed
            return 0
        smss = self._smss
        usable = sb.snd_una + self.peer_window - sb.snd_nxt
        data_unsent = sb.end_seq - sb.snd_nxt
        tsval = self._tsval(now)
        if data_unsent > 0 and usable > 0:
            seq, end, fin = sb.take_new(min(smss, data_unsent, usable))
            self._xmit.record(sb.snd_nxt, now)
            self._last_data_sent = now
            self._tlp_tsval = 0
        else:
            end = sb.snd_nxt
            seq = end - smss - (1 if sb.fin_sent else 0)
            if seq < sb.snd_una:
                seq = sb.snd_una
            if sb.sacked and sb.sacked.covers(seq, end):
                return 0  # the tail arrived: holes below it are RACK's to find
            fin = sb.fin_sent and end > sb.fin_seq
            self._tlp_tsval = tsval
            self.stats.segments_retransmitted += 1
            self.stats.bytes_retransmitted += end - seq
        self._tlp_end = sb.snd_nxt
        self._tlp_seq = seq
        sacks, dsack = self._sack_blocks()
        view = sb.view()
        try:
            payload = bytes(sb.payload_view(view, seq, end))
        finally:
            view.release()
        flags = (FLAG_FIN if fin else 0) | (FLAG_DSACK if dsack else 0)
        buf = bytearray(HEADER_SIZE + 8 * len(sacks) + len(payload))
        offset = pack_segment(
            buf,
            0,
            TYPE_DATA,
            flags,
            rb.window_field(),
            self.peer_cid,
            seq & MASK32,
            rb.rcv_nxt & MASK32,
            tsval,
            self._ts_recent,
            sacks,
        )
        buf[offset:] = payload
        out.append((bytes(buf), self.peer_addr))
        stats = self.stats
        stats.datagrams_sent += 1
        stats.bytes_sent += len(buf)
        stats.payload_bytes_sent += len(payload)
        stats.tlp_probes += 1
        self._last_xmit = now
        self._acked_now(rb)
        return 1

    def _send_ack(self, out: list[tuple[bytes, Addr]], now: float) -> None:
        rb = self._rb
        if rb is None:  # pragma: no cover - guarded by flush
            return
        blocks, dsack = rb.sack_blocks(self.config.max_sack_blocks)
        flags = (FLAG_DSACK if dsack else 0) | (FLAG_PING if self._ping else 0)
        self._ping = False
        self._pack_ack(out, rb, flags, blocks, now)
        if dsack:
            self.stats.dsack_sent += 1
        # A batch of arrivals is answered by one ACK, but it may have opened more holes than
        # one ACK's SACK blocks describe; received data the sender never hears of is resent
        # spuriously. Extra ACKs carry the remaining blocks, as the per-segment duplicate
        # ACKs of RFC 5681 §4.2 would have, a bounded number of them.
        rest = rb.unreported_blocks(blocks)
        per_ack = self.config.max_sack_blocks
        for start in range(0, min(len(rest), per_ack * _EXTRA_SACK_ACKS), per_ack):
            self._pack_ack(out, rb, 0, rest[start : start + per_ack], now)
        self._acked_now(rb)

    def _pack_ack(
        self,
        out: list[tuple[bytes, Addr]],
        rb: RecvBuffer,
        flags: int,
        blocks: list[tuple[int, int]],
        now: float,
    ) -> None:
        sacks = [(s & MASK32, e & MASK32) for s, e in blocks]
        length = HEADER_SIZE + 8 * len(sacks)
        buf = bytearray(length)
        pack_segment(
            buf,
            0,
            TYPE_ACK,
            flags,
            rb.window_field(),
            self.peer_cid,
            self._sb.snd_nxt & MASK32,
            rb.rcv_nxt & MASK32,
            self._tsval(now),
            self._ts_recent,
            sacks,
        )
        out.append((bytes(buf), self.peer_addr))
        stats = self.stats
        stats.datagrams_sent += 1
        stats.bytes_sent += length
        stats.acks_sent += 1

    def _sack_blocks(self) -> tuple[list[tuple[int, int]], bool]:
        rb = self._rb
        if rb is None:  # pragma: no cover
            return [], False
        blocks, dsack = rb.sack_blocks(self.config.max_sack_blocks)
        return [(s & MASK32, e & MASK32) for s, e in blocks], dsack

    def _acked_now(self, rb: RecvBuffer) -> None:
        self._ack_now = False
        self._ack_deadline = None
        self._unacked_segments = 0
        self._last_ack_sent = rb.rcv_nxt
