"""Loss detection and the congestion response around it: entering fast recovery, RACK
(RFC 8985 §6), tail-loss probes (RFC 8985 §7), Proportional Rate Reduction (RFC 6937),
undo of spurious recoveries (RFC 3522, RFC 3708, RFC 4015) and persistent congestion
(RFC 9002 §7.6).

The receive path calls in here once per ACK; the timers call ``_on_rack_timer`` and
``_on_tlp_timer``; the transmit path sends what ``_tlp_due`` asks for.
"""

from __future__ import annotations

from ..wire.ranges import RangeSet
from ..wire.seqnum import MASK32
from .conn_handshake import HandshakeLayer
from .rack import probe_timeout
from .sendbuf import FAST_RECOVERY, NOT_IN_RECOVERY

__all__ = ["PERSISTENT_CONGESTION_THRESHOLD", "RecoveryLayer"]

PERSISTENT_CONGESTION_THRESHOLD = 3  # RFC 9002 §7.6.1 kPersistentCongestionThreshold
MAX_DUPTHRESH = 300  # segments: the most reordering DupThresh adapts to (Linux TCP_MAX_REORDERING)
_EPSILON = 1e-9  # seconds: a RACK deadline that came due tests as due at that very now


class RecoveryLayer(HandshakeLayer):
    """Which bytes are lost, when to probe, and how the window answers."""

    # --- entering recovery ----------------------------------------------------------------
    def _maybe_enter_recovery(self, now: float) -> None:
        """Fast retransmit and SACK-based recovery (RFC 5681 §3.2, RFC 6675 §5) once
        DupThresh duplicate ACKs arrived or bytes were deemed lost (IsLost or RACK)."""
        sb = self._sb
        cc = self.cc
        if sb.recovery or not sb.outstanding or cc is None:
            return
        if self._dupacks < sb.dupthresh and sb.lost_edge <= sb.snd_una:
            return
        self._begin_undo_episode()
        cc.on_congestion_event(bytes_in_flight=self._flight_size(), now=now)
        self._prr_delivered = self._prr_out = 0
        self._recover_fs = sb.outstanding or 1
        sb.mark_head_lost()
        sb.enter_recovery(FAST_RECOVERY)
        self._tlp_end = None  # the recovery repairs whatever a probe revealed
        self._tlp_deadline = None
        self.stats.fast_retransmits += 1
        self.stats.recoveries += 1

    def _on_recovery_exit(self) -> None:
        self._sb.exit_recovery()
        self._rack.on_recovery_exit()

    def _prr_update(self, delivered: int) -> None:
        """Proportional Rate Reduction (RFC 6937 §3.1): during fast recovery set cwnd to pipe
        plus what may be sent for this ACK, so the window falls to ssthresh over one round
        trip in step with deliveries, pipe never exceeds cwnd, and the first retransmission
        leaves at once (Linux forces one segment when nothing was sent yet)."""
        cc = self.cc
        if cc is None:  # pragma: no cover - set up with the receive buffer
            return
        self._prr_delivered += delivered
        pipe = self._sb.pipe
        ssthresh = cc.ssthresh
        if pipe > ssthresh:
            # Proportional part: CEIL(prr_delivered * ssthresh / RecoverFS) - prr_out.
            sndcnt = -(-self._prr_delivered * ssthresh // self._recover_fs) - self._prr_out
        else:
            # Slow-start reduction bound (PRR-SSRB).
            limit = max(self._prr_delivered - self._prr_out, delivered) + self._smss
            sndcnt = min(ssthresh - pipe, limit)
        if sndcnt < 0:
            sndcnt = 0
        if not self._prr_out and sndcnt < self._smss + 1:
            sndcnt = self._smss + 1  # the fast retransmit itself (+1: it may carry the FIN)
        cc.cwnd = pipe + sndcnt

    # --- RACK (RFC 8985 §6) -----------------------------------------------------------------
    def _rack_on_delivery(self, top: int, orig_floor: int, now: float) -> float | None:
        """Newly delivered bytes reach up to ``top``; those at or above ``orig_floor`` were
        never retransmitted, so their first-transmission time is when they left: RACK.xmit_ts
        and RACK.rtt come from it (RFC 8985 §6.2 step 2). Returns RACK.rtt when this delivery
        is the newest yet: an exact round trip, also from an ACK that only SACKs."""
        if top <= orig_floor:
            return None
        if self._tlp_tsval and self._tlp_end is not None and top > self._tlp_seq:
            return None  # the original or the probe: which one left when is not known
        sent_at = self._xmit.time_of(top - 1)
        if sent_at is None:
            return None
        rack = self._rack
        before = rack.xmit_ts
        rack.on_delivered(sent_at, top, now)
        if rack.xmit_ts == before or rack.rtt is None:
            return None
        granularity = self.config.clock_granularity
        return rack.rtt if rack.rtt > granularity else granularity

    def _rack_detect(self, now: float) -> None:
        """Deem lost every first transmission sent before the newest delivered one and more
        than RACK.rtt + reo_wnd ago (RFC 8985 §6.2 step 5), find lost retransmissions the same
        way, and arm the reordering timer for the oldest candidate not yet overdue."""
        self._rack_deadline = None
        sb = self._sb
        rack = self._rack
        rtt = rack.rtt
        if rtt is None or not sb.outstanding or not self.config.rack:
            return
        est = self.rtt
        min_rtt = est.min_rtt if est.min_rtt is not None else rtt
        srtt = est.srtt if est.srtt is not None else rtt
        reo_wnd = rack.reo_wnd(
            in_recovery=sb.recovery != NOT_IN_RECOVERY,
            sacked_segments=sb.sacked_bytes // self._smss,
            dupthresh=sb.dupthresh,
            min_rtt=min_rtt,
            srtt=srtt,
        )
        wait = rtt + reo_wnd
        granularity = self.config.clock_granularity
        if wait < granularity:
            wait = (
                granularity  # a coarse clock (uvloop ticks in ms) can measure 0 (RFC 9002 §6.1.2)
            )
        deadline: float | None = None
        xmit = self._xmit
        una = sb.snd_una
        # Candidates: first transmissions below the highest delivered one (sent no later),
        # and those sent strictly before the newest delivered transmission.
        candidates = rack.fack
        before = xmit.sent_by(rack.xmit_ts, strictly=True)
        if before is not None and before > candidates:
            candidates = before
        floor = sb.high_rxt if sb.recovery and sb.high_rxt > una else una
        if candidates > floor and sb.lost_edge < candidates:
            overdue = xmit.sent_by(now - wait + _EPSILON)  # first sent long enough ago
            if overdue is not None:
                lost_end = overdue if overdue < candidates else candidates
                if lost_end > sb.lost_edge:
                    sb.lost_edge = lost_end
                    self.stats.rack_marked += 1
            start = sb.lost_edge if sb.lost_edge > floor else floor
            if start < candidates:
                holes = sb.sacked.holes(start, candidates) if sb.sacked else [(start, candidates)]
                if holes:
                    sent_at = xmit.time_of(holes[0][0])
                    if sent_at is not None:
                        deadline = sent_at + wait
        if sb.rxt_log:
            sb.rack_ts = max(sb.rack_ts, rack.xmit_ts)
            if sb.detect_lost_retransmissions(now, wait - _EPSILON):
                self.stats.lost_retransmissions += 1
                self._undo_blocked = True  # a retransmission was lost: the loss was real
            log = sb.rxt_log
            if log and log[0][2] < sb.rack_ts:
                due = log[0][2] + wait
                if deadline is None or due < deadline:
                    deadline = due
        self._rack_deadline = deadline

    def _on_rack_timer(self, now: float) -> None:
        """The reordering window of the oldest candidate ran out (RFC 8985 §6.3)."""
        self._rack_detect(now)
        self._maybe_enter_recovery(now)
        self._owner._mark_dirty(self)

    # --- tail-loss probe (RFC 8985 §7) ---------------------------------------------------
    def _arm_tlp(self, now: float) -> None:
        """(Re)schedule the probe timeout after sending new data or an ACK that left data in
        flight outside recovery (RFC 8985 §7.2). The probe never comes after the RTO would:
        PTO = min(PTO, time to the RTO), and the probe then replaces that timeout."""
        sb = self._sb
        srtt = self.rtt.srtt
        if (
            self._tlp_end is not None
            or sb.recovery
            or not sb.outstanding
            or srtt is None
            or not self.config.tail_loss_probe
        ):
            self._tlp_deadline = None
            return
        deadline = now + probe_timeout(
            srtt=srtt,
            one_segment=sb.outstanding <= self._smss + 1,
            worst_case_ack_delay=self.config.worst_case_ack_delay,
        )
        rto = self._rto_deadline
        if rto is not None and rto < deadline:
            deadline = rto
        self._tlp_deadline = deadline

    def _on_tlp_timer(self, now: float) -> None:
        """Send one probe at the next flush and re-arm the RTO behind it (RFC 8985 §7.3)."""
        self._tlp_deadline = None
        sb = self._sb
        if sb.recovery or not sb.outstanding or self._tlp_end is not None:
            return
        self._tlp_due = True
        self._rto_deadline = now + self.rtt.rto
        self._owner._mark_dirty(self)

    def _tlp_on_ack(self, ack: int, tsecr: int, now: float) -> None:
        """An ACK covered the probe (RFC 8985 §7.4): if it echoes the probe's own timestamp, a
        retransmitted probe is what repaired a tail loss, so the window answers as it would
        have in fast recovery; an older echo means the original had arrived."""
        end = self._tlp_end
        if end is None or ack < end:
            return
        self._tlp_end = None
        tsval = self._tlp_tsval
        if not tsval or not tsecr or ((tsecr - tsval) & MASK32) >= 0x80000000:
            return
        cc = self.cc
        if cc is None or self._sb.recovery:  # pragma: no cover - guarded by the caller
            return
        self._begin_undo_episode()
        # The loss is found after the fact, with little or nothing left in flight: reduce
        # from the window (as Linux's tcp_process_tlp_ack does), not from today's flight.
        cc.on_congestion_event(bytes_in_flight=max(self._flight_size(), cc.cwnd), now=now)
        if cc.reduces_on_loss:
            cc.cwnd = cc.ssthresh
        self._undo_tsval = -1  # the probe's echo already told: not spurious
        self.stats.tlp_recoveries += 1

    # --- spurious recoveries ------------------------------------------------------------
    def _begin_undo_episode(self) -> None:
        """A window reduction is about to happen: keep what to restore if it was spurious.
        A timeout inside an ongoing recovery belongs to the same episode."""
        cc = self.cc
        if cc is None or (self._undo_active and self._sb.recovery):
            return
        self._undo_active = self.config.undo_spurious
        self._undo_state = cc.snapshot()
        self._undo_tsval = 0
        self._undo_seq = 0
        self._undo_ranges = RangeSet()
        self._undo_blocked = False
        self._undo_sacked = self._sb.sacked_bytes // self._smss
        self._persistent_declared = False

    def _note_retransmission(self, seq: int, end: int, tsval: int) -> None:
        """[seq, end) was retransmitted with ``tsval``: the first one of an episode is the one
        the timestamps test (RFC 3522 §3.2); every one must be D-SACKed for a D-SACK undo."""
        if not self._undo_tsval:
            self._undo_tsval = tsval
            self._undo_seq = seq
        self._undo_ranges.add(seq, end)

    def _eifel_check(self, ack: int, tsecr: int, now: float) -> None:
        """The first ACK covering the episode's first retransmission: an echo older than that
        retransmission's TSval means the original got there (Eifel, RFC 3522 §2)."""
        if self._undo_tsval <= 0 or ack <= self._undo_seq:
            return
        older = tsecr and ((tsecr - self._undo_tsval) & MASK32) >= 0x80000000
        self._undo_tsval = -1
        if older and not self._undo_blocked:
            self.stats.spurious_by_timestamps += 1
            self._undo(now)

    def _on_dsack(self, start: int, end: int, now: float) -> None:
        """A D-SACK for [start, end): grow RACK's reordering window, clear a probe it covers,
        and undo the episode once every byte it retransmitted came back as a duplicate."""
        sb = self._sb
        self._rack.on_dsack(snd_una=sb.snd_una, snd_nxt=sb.snd_nxt)
        tlp_end = self._tlp_end
        if tlp_end is not None and self._tlp_tsval and start < tlp_end <= end + 1:
            self._tlp_end = None  # the original had arrived: the probe was not needed
        ranges = self._undo_ranges
        if not ranges:
            return
        spurious = ranges.overlap(start, end)
        if not spurious:
            return
        ranges.subtract(start, end)
        self.stats.spurious_retransmit_bytes += spurious
        if not ranges and self._undo_active and not self._undo_blocked:
            self.stats.spurious_by_dsack += 1
            self._undo(now)

    def _undo(self, now: float) -> None:
        """Give back the reduction and stop retransmitting what was not lost (RFC 4015 §2,
        Linux ``tcp_try_undo_*``): restore the controller, leave recovery, drop the loss
        marks and the RTO backoff."""
        cc = self.cc
        if cc is None or not self._undo_active:  # pragma: no cover - guarded by callers
            return
        self._undo_active = False
        cc.restore(self._undo_state, now=now)
        sb = self._sb
        if sb.recovery:
            self._on_recovery_exit()
        sb.forget_losses()
        if self._rto_count:
            self.rtt.reset_backoff()
            self._rto_count = 0
        self._dupacks = 0
        # The path reorders (or delays) by that much: RACK's window may open from now on, and
        # DupThresh rises above the SACKed segments that set off the false alarm (RFC 4653
        # spirit, as Linux adapts tp->reordering); a timeout puts it back.
        self._rack.reordering_seen = True
        # Reordering degree: segments delivered above the first retransmitted one.
        degree = (self._rack.fack - self._undo_seq) // self._smss - 1 if self._undo_seq else 0
        dupthresh = (degree if degree > self._undo_sacked else self._undo_sacked) + 1
        if dupthresh > sb.dupthresh:
            sb.set_dupthresh(dupthresh if dupthresh < MAX_DUPTHRESH else MAX_DUPTHRESH)
        self.stats.undone_recoveries += 1
        self._owner._mark_dirty(self)

    # --- persistent congestion (RFC 9002 §7.6) ---------------------------------------------
    def _check_persistent_congestion(self, now: float) -> None:
        """At a timeout: every transmission since the newest delivered one is taken as lost
        (nothing was ACKed for an RTO); if they span more than 3 x (SRTT + max(4 RTTVAR, G)
        + max_ack_delay), the path is congested persistently (RFC 9002 §7.6.2) and the
        controller restarts from its minimum. ``Config.ack_delay`` stands in for the peer's
        max_ack_delay."""
        if self._persistent_declared:
            return
        est = self.rtt
        if est.srtt is None:
            return
        delivered = self._rack.xmit_ts
        first = self._xmit.first_after(delivered)
        for _, _, sent_at, _ in self._sb.rxt_log:
            if sent_at > delivered:
                if first is None or sent_at < first:
                    first = sent_at
                break  # the log is in send order
        if first is None:
            return
        cfg = self.config
        pto = est.srtt + max(4.0 * est.rttvar, cfg.clock_granularity) + cfg.ack_delay
        if self._last_xmit - first <= PERSISTENT_CONGESTION_THRESHOLD * pto:
            return
        cc = self.cc
        if cc is None:  # pragma: no cover - set up with the receive buffer
            return
        self._persistent_declared = True
        self._undo_blocked = True
        cc.on_persistent_congestion(now=now)
        self.stats.persistent_congestion += 1
