"""The send side of a connection: queued bytes, the SACK scoreboard and what to send next.

Bookkeeping is by byte ranges, not per-segment records (RFC 6675 allows either): the queue is
one ``bytearray`` compacted lazily, SACKed data is a ``RangeSet``, and loss recovery tracks
three edges: ``lost_edge`` (unSACKed bytes below it are deemed lost), ``high_rxt`` (the highest
byte retransmitted in this recovery) and ``recovery_point``. RTT samples come from timestamps,
so no per-segment send time is needed. Sequence numbers are unbounded ints.

Retransmissions alone are logged with their send time (they are few), so a lost
retransmission is found the RACK way (RFC 8985 §6.2) instead of waiting for the RTO: once data
first sent after it is SACKed and an RTT plus a reordering window has passed, its unSACKed
bytes go to ``relost`` and are sent again before anything else.
"""

from __future__ import annotations

from collections import deque

from ..wire.ranges import RangeSet

__all__ = ["MAX_SACK_RANGES", "SendBuffer"]

_COMPACT_AT = 256 * 1024  # compact the queue once this many acked bytes sit at its head
MAX_SACK_RANGES = 2048  # separate SACKed ranges kept (10 % loss of 4 MiB in flight: ~350)

NOT_IN_RECOVERY = 0
FAST_RECOVERY = 1  # entered on duplicate ACKs / SACK loss marking (RFC 6675 §5)
RTO_RECOVERY = 2  # entered on a retransmission timeout (RFC 6298 §5.4, RFC 6675 §5.1)


class SendBuffer:
    """Bytes the application wrote and the peer has not yet acknowledged."""

    __slots__ = (
        "snd_una",
        "snd_nxt",
        "_buf",
        "_head",
        "end_seq",
        "fin_queued",
        "fin_seq",
        "sacked",
        "sacked_bytes",
        "recovery",
        "recovery_point",
        "lost_edge",
        "high_rxt",
        "smss",
        "_lost_threshold",
        "_dupthresh",
        "rxt_log",
        "relost",
        "rack_ts",
        "rack_enabled",
        "sack_ignored",
    )

    def __init__(self, initial_seq: int, *, smss: int, dupthresh: int) -> None:
        self.snd_una = initial_seq  # oldest unacknowledged sequence number
        self.snd_nxt = initial_seq  # next new sequence number to send (HighData + 1)
        self._buf = bytearray()
        self._head = 0  # index in _buf of snd_una's byte
        self.end_seq = initial_seq  # sequence number after the last queued byte
        self.fin_queued = False
        self.fin_seq = 0  # valid when fin_queued: the FIN's own sequence number
        self.sacked = RangeSet()
        self.sacked_bytes = 0
        self.recovery = NOT_IN_RECOVERY
        self.recovery_point = initial_seq
        self.lost_edge = initial_seq
        self.high_rxt = initial_seq
        self.smss = smss
        # IsLost: more than (DupThresh - 1) * SMSS bytes SACKed above (RFC 6675 §4).
        self._dupthresh = dupthresh
        self._lost_threshold = (dupthresh - 1) * smss
        # Retransmissions in flight, in send order: (seq, end, sent_at, snd_nxt then).
        self.rxt_log: deque[tuple[int, int, float, int]] = deque()
        # Retransmitted ranges found lost again (RACK), to be sent before anything else.
        self.relost: list[tuple[int, int]] = []
        self.rack_ts = float("-inf")  # RACK.xmit_ts: newest delivered retransmission's send
        self.rack_enabled = False  # log retransmissions for RACK (set by the connection)
        self.sack_ignored = 0  # SACK blocks ignored because the scoreboard was full

    @property
    def dupthresh(self) -> int:
        """DupThresh in force: the configured one, raised after reordering was seen."""
        return self._dupthresh

    def set_dupthresh(self, dupthresh: int) -> None:
        """Recompute the IsLost byte threshold once the segment size is agreed."""
        self._dupthresh = dupthresh
        self._lost_threshold = (dupthresh - 1) * self.smss

    # --- application side -----------------------------------------------------------------
    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._buf += data
        self.end_seq += len(data)

    def queue_fin(self) -> None:
        self.fin_queued = True
        self.fin_seq = self.end_seq

    @property
    def size(self) -> int:
        """Bytes queued and not yet acknowledged (what the writer's watermarks measure)."""
        return self.end_seq - self.snd_una if self.snd_una < self.end_seq else 0

    @property
    def outstanding(self) -> int:
        """Sequence space sent and not cumulatively acknowledged (FlightSize)."""
        return self.snd_nxt - self.snd_una

    @property
    def unsent(self) -> int:
        """Sequence space not yet sent, counting a queued FIN as one."""
        unsent = self.end_seq - self.snd_nxt
        if unsent < 0:
            unsent = 0
        if self.fin_queued and self.snd_nxt <= self.fin_seq:
            unsent += 1
        return unsent

    @property
    def fin_sent(self) -> bool:
        return self.fin_queued and self.snd_nxt > self.fin_seq

    @property
    def fin_acked(self) -> bool:
        return self.fin_queued and self.snd_una > self.fin_seq

    # --- payload access -------------------------------------------------------------------
    def view(self) -> memoryview:
        """A view of the queue for building datagrams; release it before the next write."""
        return memoryview(self._buf)

    def payload_view(self, view: memoryview, seq: int, end: int) -> memoryview:
        """The queued bytes of [seq, end) as a slice of ``view`` (a FIN carries no byte)."""
        if self.fin_queued and end > self.fin_seq:
            end = self.fin_seq
        if end < seq:
            end = seq
        start = self._head + (seq - self.snd_una)
        return view[start : start + (end - seq)]

    def take_new(self, max_len: int, *, with_fin: bool = True) -> tuple[int, int, bool]:
        """Claim up to ``max_len`` bytes of new data: returns (seq, end, fin), where end
        excludes the FIN's sequence number and fin says the FIN rides on this segment
        (only if ``with_fin``: a window with no room for the FIN's own number sends it later)."""
        seq = self.snd_nxt
        end = self.end_seq
        if end < seq:  # the data and the FIN were all sent already
            end = seq
        if end - seq > max_len:
            end = seq + max_len
        fin = with_fin and self.fin_queued and end == self.fin_seq
        self.snd_nxt = end + 1 if fin else end
        return seq, end, fin

    # --- acknowledgements ---------------------------------------------------------------
    def on_ack(self, ack: int) -> int:
        """Apply a cumulative ACK (already checked: snd_una < ack <= snd_nxt); return the
        bytes newly delivered: acknowledged now and not SACKed before."""
        acked = ack - self.snd_una
        if self.sacked:
            was_sacked = self.sacked.overlap(self.snd_una, ack)
            self.sacked_bytes -= was_sacked
            acked -= was_sacked
            self.sacked.discard_below(ack)
        data_end = self.end_seq
        freed = (ack if ack <= data_end else data_end) - self.snd_una
        if freed > 0:
            self._head += freed
            if self._head >= _COMPACT_AT and self._head * 2 >= len(self._buf):
                del self._buf[: self._head]
                self._head = 0
        self.snd_una = ack
        if self.lost_edge < ack:
            self.lost_edge = ack
        if self.high_rxt < ack:
            self.high_rxt = ack
        if self.relost:
            self.relost = [(s if s > ack else ack, e) for s, e in self.relost if e > ack]
        return acked

    def on_sack(self, start: int, end: int) -> int:
        """Record a SACK block; return the bytes newly SACKed (clipped to what is in flight).

        The scoreboard holds at most ``MAX_SACK_RANGES`` separate ranges: past that a block
        that would start a new one is ignored (RFC 2018 §8 lets a sender ignore SACK
        information; the data then counts as unSACKed and may be resent), so a receiver that
        SACKs every other byte cannot grow it without bound."""
        if start < self.snd_una:
            start = self.snd_una
        if end > self.snd_nxt:
            end = self.snd_nxt
        if end <= start:
            return 0
        sacked = self.sacked
        overlap = sacked.overlap(start, end)
        newly = (end - start) - overlap
        if newly:
            if (
                len(sacked) >= MAX_SACK_RANGES
                and not overlap
                and (start - 1) not in sacked
                and end not in sacked
            ):
                self.sack_ignored += 1
                return 0
            sacked.add(start, end)
            self.sacked_bytes += newly
        return newly

    def update_lost_edge(self) -> None:
        """Deem lost every unSACKed byte below the SACKed range at which more than
        (DupThresh - 1) * SMSS bytes, or DupThresh separate SACKed ranges, lie above
        (RFC 6675 §4 IsLost; separate ranges stand for discontiguous segments, which catches
        losses among small segments that the byte rule alone would leave to the RTO)."""
        if not self.sacked:
            return
        above = 0
        count = 0
        threshold = self._lost_threshold
        dupthresh = self._dupthresh
        for start, end in reversed(list(self.sacked)):
            above += end - start
            count += 1
            if above > threshold or count >= dupthresh:
                if start > self.lost_edge:
                    self.lost_edge = start
                return

    def mark_head_lost(self) -> None:
        """Deem lost the first segment's worth of the hole at snd_una: fast retransmit
        (RFC 6675 §5 step 4) and NewReno partial ACKs (RFC 6582 §3.2 step 3)."""
        end = self.snd_una + self.smss
        if self.sacked:
            first = self.sacked.bounds()[0]
            if first < end:
                end = first
        if end > self.snd_nxt:
            end = self.snd_nxt
        if end > self.lost_edge:
            self.lost_edge = end

    # --- recovery -----------------------------------------------------------------------
    def enter_recovery(self, kind: int) -> None:
        self.recovery = kind
        self.recovery_point = self.snd_nxt
        if self.high_rxt < self.snd_una or kind == RTO_RECOVERY:
            self.high_rxt = self.snd_una
        # Otherwise retransmissions of the last recovery are still in flight above snd_una
        # (holes found beyond its recovery point): they are not sent a second time.
        if kind == RTO_RECOVERY:
            # After a timeout every unSACKed byte in flight is presumed lost (RFC 6675 §5.1).
            self.lost_edge = self.snd_nxt
            self.rxt_log.clear()
            self.relost.clear()

    def exit_recovery(self) -> None:
        self.recovery = NOT_IN_RECOVERY

    def forget_losses(self) -> None:
        """A recovery proved spurious: nothing beyond what was already retransmitted is lost,
        and no retransmission in flight is to be sent again."""
        edge = self.high_rxt if self.high_rxt > self.snd_una else self.snd_una
        if self.lost_edge > edge:
            self.lost_edge = edge
        self.relost.clear()

    def _lost_pending(self) -> int:
        """Bytes deemed lost and not yet retransmitted."""
        start = self.high_rxt if self.high_rxt > self.snd_una else self.snd_una
        edge = self.lost_edge
        if edge <= start:
            return 0
        return (edge - start) - self.sacked.overlap(start, edge)

    @property
    def pipe(self) -> int:
        """Bytes estimated in the network (RFC 6675 §4 SetPipe): outstanding, less SACKed,
        less lost-and-not-retransmitted (retransmitted bytes count once, as sent again)."""
        pipe = self.snd_nxt - self.snd_una - self.sacked_bytes
        if self.lost_edge > self.snd_una:
            pipe -= self._lost_pending()
        if self.relost:
            sacked = self.sacked
            for seq, end in self.relost:
                pipe -= (end - seq) - sacked.overlap(seq, end)
        return pipe

    def peek_retransmission(self, max_len: int) -> tuple[int, int] | None:
        """The next range to retransmit: first what RACK found lost again, then RFC 6675
        NextSeg rule 1, the lowest lost, unSACKed, not yet retransmitted bytes; at most
        ``max_len`` (+1 for a FIN). The caller reports what it sent to ``on_retransmitted``."""
        relost = self.relost
        while relost:
            seq, end = relost[0]
            holes = self.sacked.holes(seq, end) if self.sacked else [(seq, end)]
            if holes:
                seq = holes[0][0]
                relost[0] = (seq, end)
                end = holes[0][1]
                return self._clip(seq, end, max_len)
            del relost[0]
        start = self.high_rxt if self.high_rxt > self.snd_una else self.snd_una
        edge = self.lost_edge
        if edge <= start:
            return None
        if self.sacked:
            holes = self.sacked.holes(start, edge)
            if not holes:
                self.high_rxt = edge
                return None
            seq, end = holes[0]
        else:
            seq, end = start, edge
        return self._clip(seq, end, max_len)

    def _clip(self, seq: int, end: int, max_len: int) -> tuple[int, int]:
        limit = seq + max_len
        if self.fin_queued and limit >= self.fin_seq:
            limit = self.fin_seq + 1  # the FIN rides with the last bytes
        if end > limit:
            end = limit
        return seq, end

    def on_retransmitted(self, seq: int, end: int, now: float) -> None:
        """[seq, end) from ``peek_retransmission`` was sent at ``now``: advance ``high_rxt``
        (HighRxt) or the ``relost`` queue, and log it for RACK."""
        relost = self.relost
        if relost and relost[0][0] == seq:
            if end >= relost[0][1]:
                del relost[0]
            else:
                relost[0] = (end, relost[0][1])
        elif end > self.high_rxt:
            self.high_rxt = end
        if self.rack_enabled:
            self.rxt_log.append((seq, end, now, self.snd_nxt))

    def detect_lost_retransmissions(self, now: float, wait: float) -> int:
        """RACK for retransmissions (RFC 8985 §6.2): a logged retransmission is lost when
        something sent after it was delivered (new data first sent after it SACKed, or a
        later retransmission SACKed or cumulatively ACKed) and it went out at least ``wait``
        (RACK.rtt plus the reordering window) ago. Its unSACKed bytes join ``relost``;
        returns how many bytes that is."""
        log = self.rxt_log
        sacked = self.sacked
        una = self.snd_una
        rack_ts = self.rack_ts
        while log:  # delivered entries at the head only move RACK.xmit_ts
            seq, end, sent_at, _ = log[0]
            if end <= una or sacked.covers(seq if seq > una else una, end):
                log.popleft()
                if sent_at > rack_ts:
                    rack_ts = sent_at
                continue
            break
        if not log or now - log[0][2] < wait:
            self.rack_ts = rack_ts
            return 0  # the oldest retransmission in flight is not overdue yet
        for seq, end, sent_at, _ in reversed(log):  # the newest delivered retransmission
            if sent_at <= rack_ts:
                break
            if end <= una or sacked.covers(seq if seq > una else una, end):
                rack_ts = sent_at
                break
        self.rack_ts = rack_ts
        highest = sacked.bounds()[1] if sacked else una
        found = 0
        while log:
            seq, end, sent_at, nxt = log[0]
            if now - sent_at < wait or (highest <= nxt and rack_ts <= sent_at):
                break  # the log is in send order: every later entry fails as well
            log.popleft()
            if end <= una:
                continue
            for hole in sacked.holes(seq if seq > una else una, end):
                self.relost.append(hole)
                found += hole[1] - hole[0]
        return found
