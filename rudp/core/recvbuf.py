"""The receive side of a connection: reassembly, the advertised window, SACK and D-SACK blocks.

Sequence numbers here are unbounded ints (unwrapped by the caller). In-order bytes wait in
``ready`` until the engine hands them out; out-of-order bytes are kept as non-overlapping pieces
keyed by their first sequence number, with a ``RangeSet`` of what they cover. Memory is bounded
by ``capacity``: nothing is accepted beyond ``read_seq + capacity``.
"""

from __future__ import annotations

from ..wire.ranges import RangeSet

__all__ = ["RecvBuffer"]

# What a received segment did; the engine decides from these whether to ACK at once.
IN_ORDER = 1
OUT_OF_ORDER = 2  # stored above a hole: ACK at once (RFC 5681 §4.2)
FILLED_HOLE = 4  # advanced rcv_nxt past stored data: ACK at once (RFC 5681 §4.2)
DUPLICATE = 8  # nothing new: ACK at once with a D-SACK block (RFC 2883 §4)
OUT_OF_WINDOW = 16  # outside the window: dropped, answered with an ACK (RFC 9293 §3.10.7.4)
FIN_IN_ORDER = 32  # the peer's FIN was reached
AFTER_FIN = 64  # data past the peer's FIN: a protocol violation, dropped
REASSEMBLY_FULL = 128  # out of order, but max_pieces are held already: dropped
OUT_OF_ORDER_TAIL = 256  # out of order, but only extends the highest block: no new hole

ACK_NOW = (
    OUT_OF_ORDER | FILLED_HOLE | DUPLICATE | OUT_OF_WINDOW | FIN_IN_ORDER | AFTER_FIN
) | REASSEMBLY_FULL


class RecvBuffer:
    """Reassembles the peer's byte stream and says what window and SACK blocks to advertise."""

    __slots__ = (
        "rcv_nxt",
        "read_seq",
        "capacity",
        "max_pieces",
        "window_scale",
        "_sws_threshold",
        "rcv_adv",
        "_ready",
        "_ready_bytes",
        "_pieces",
        "_ooo",
        "_recent",
        "_dsack",
        "_dsack_in_ooo",
        "fin_seq",
        "fin_received",
    )

    def __init__(
        self,
        initial_seq: int,
        *,
        capacity: int,
        max_payload: int,
        window_scale: int,
        max_pieces: int = 1 << 30,
    ) -> None:
        self.rcv_nxt = initial_seq
        self.read_seq = initial_seq  # everything below was consumed by the application
        self.capacity = capacity
        # Out-of-order pieces held at most: ``capacity`` bounds their bytes, this bounds their
        # number, and so the per-piece overhead when a peer sends tiny segments.
        self.max_pieces = max_pieces
        self.window_scale = window_scale
        # Receiver SWS avoidance: move the right edge by at least min(RCV.BUFF/2, MSS)
        # (RFC 9293 §3.8.6.2.2).
        self._sws_threshold = min(capacity // 2, max_payload)
        self.rcv_adv = initial_seq + capacity  # the right edge we advertised last
        self._ready: list[bytes] = []
        self._ready_bytes = 0
        self._pieces: dict[int, bytes] = {}
        self._ooo = RangeSet()
        self._recent: list[int] = []  # first seq of recently stored pieces, newest first
        self._dsack: tuple[int, int] | None = None
        self._dsack_in_ooo: int | None = None  # where a D-SACKed duplicate sits above rcv_nxt
        self.fin_seq: int | None = None
        self.fin_received = False

    # --- input -----------------------------------------------------------------------------
    def receive(self, seq: int, payload: bytes, fin: bool) -> int:
        """Take one segment [seq, seq+len) (+FIN); return a mask of the flags above."""
        end = seq + len(payload)
        if seq == self.rcv_nxt and not fin and not self._pieces and self.fin_seq is None:
            if end <= self.read_seq + self.capacity:  # the common case: next in order, fits
                self._ready.append(payload)
                self._ready_bytes += end - seq
                self.rcv_nxt = end
                return IN_ORDER
        status = 0
        limit = self.read_seq + self.capacity
        if end > limit:
            if seq >= limit:
                return OUT_OF_WINDOW
            payload = payload[: limit - seq]  # keep what fits; the tail and any FIN are dropped
            end = limit
            fin = False
            status |= OUT_OF_WINDOW
        if fin:
            if self.fin_seq is None:
                if end < self.rcv_nxt or (self._ooo and end < self._ooo.bounds()[1]):
                    return AFTER_FIN  # a FIN below data we already hold is bogus
                self.fin_seq = end
            elif end != self.fin_seq:
                return AFTER_FIN
        if self.fin_seq is not None and end > self.fin_seq:
            return AFTER_FIN
        rcv_nxt = self.rcv_nxt
        if seq == end:
            # A bare FIN (the codec admits no other empty DATA): a retransmission once we
            # have it, else it waits for missing data or is taken in order just below.
            if self.fin_received or (not fin and seq <= rcv_nxt):
                status |= DUPLICATE
            elif seq > rcv_nxt:
                status |= OUT_OF_ORDER
        elif end <= rcv_nxt:
            self._dsack = (seq, end)
            self._dsack_in_ooo = None
            status |= DUPLICATE  # old data, or data with a retransmitted FIN: re-ACK at once
        elif seq <= rcv_nxt:
            if seq < rcv_nxt:
                self._dsack = (seq, rcv_nxt)  # the part we already had (RFC 2883 §4.1.1)
                self._dsack_in_ooo = None
            status |= self._accept_in_order(seq, end, payload)
        else:
            status |= self._store_out_of_order(seq, end, payload)
        if self.fin_seq is not None and not self.fin_received and self.rcv_nxt == self.fin_seq:
            self.rcv_nxt += 1  # FIN occupies one sequence number
            self.fin_received = True
            status |= FIN_IN_ORDER
        return status

    def _accept_in_order(self, seq: int, end: int, payload: bytes) -> int:
        had_ooo = bool(self._ooo)
        ready = self._ready
        pieces = self._pieces
        while True:
            rcv_nxt = self.rcv_nxt
            stop = end
            if self._ooo:
                first = self._ooo.bounds()[0]
                if first < stop:
                    stop = first
            if stop > rcv_nxt:
                chunk = payload[rcv_nxt - seq : stop - seq]
                ready.append(chunk)
                self._ready_bytes += stop - rcv_nxt
                rcv_nxt = stop
            while rcv_nxt in pieces:
                piece = pieces.pop(rcv_nxt)
                ready.append(piece)
                self._ready_bytes += len(piece)
                rcv_nxt += len(piece)
            self.rcv_nxt = rcv_nxt
            if had_ooo:
                self._ooo.discard_below(rcv_nxt)
            if end <= rcv_nxt:
                break
        if had_ooo:
            self._recent = [p for p in self._recent if p >= self.rcv_nxt]
            return FILLED_HOLE
        return IN_ORDER

    def _store_out_of_order(self, seq: int, end: int, payload: bytes) -> int:
        ooo = self._ooo
        if ooo.covers(seq, end):
            self._dsack = (seq, end)
            self._dsack_in_ooo = seq
            return DUPLICATE
        holes = ooo.holes(seq, end)
        if len(self._pieces) + len(holes) > self.max_pieces:
            return REASSEMBLY_FULL
        for start, stop in holes:
            self._pieces[start] = payload[start - seq : stop - seq]
        # Continuing the highest block opens no new hole and tells the sender nothing the
        # last SACK did not: it is ACKed like in-order data, every 2nd segment (SACK
        # compression, as Linux's tcp_comp_sack; RFC 5681 §4.2's immediate ACK is for
        # segments that show a new hole). Anything else is ACKed at once.
        tail = bool(ooo) and seq == ooo.bounds()[1]
        ooo.add(seq, end)
        recent = self._recent
        if seq in recent:
            recent.remove(seq)
        recent.insert(0, seq)
        del recent[4:]
        return OUT_OF_ORDER_TAIL if tail else OUT_OF_ORDER

    # --- output ----------------------------------------------------------------------------
    def take_ready(self) -> bytes:
        """Hand out the in-order bytes received since the last call."""
        ready = self._ready
        if not ready:
            return b""
        data = ready[0] if len(ready) == 1 else b"".join(ready)
        ready.clear()
        self._ready_bytes = 0
        return data

    @property
    def has_ready(self) -> bool:
        return bool(self._ready)

    def consume(self, nbytes: int) -> None:
        """The application has taken ``nbytes`` more; their buffer space is free again."""
        delivered = self.rcv_nxt - self.read_seq - self._ready_bytes
        if self.fin_received:
            delivered -= 1
        if nbytes < 0 or nbytes > delivered:
            raise ValueError(f"consume({nbytes}) but only {delivered} bytes were handed out")
        self.read_seq += nbytes

    @property
    def buffered(self) -> int:
        """Bytes held: in order but not consumed, plus out of order."""
        inorder = self.rcv_nxt - self.read_seq - (1 if self.fin_received else 0)
        return inorder + self._ooo.total()

    def window_field(self) -> int:
        """The 16-bit scaled window to put in an outgoing segment; moves ``rcv_adv``."""
        potential = self.read_seq + self.capacity
        adv = self.rcv_adv
        # Move the right edge only by a worthwhile amount (SWS avoidance), never left.
        if potential - adv >= self._sws_threshold:
            adv = self.rcv_adv = potential
        window = adv - self.rcv_nxt
        if window <= 0:
            return 0
        field = window >> self.window_scale
        return field if field <= 0xFFFF else 0xFFFF

    def window_update_due(self) -> bool:
        """True when consuming opened the window enough that the peer should hear now: the
        edge can move by the SWS threshold and what we last advertised is under half."""
        potential = self.read_seq + self.capacity
        return (
            potential - self.rcv_adv >= self._sws_threshold
            and (self.rcv_adv - self.rcv_nxt) < self.capacity // 2
        )

    def unreported_blocks(self, reported: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """Stored blocks not in ``reported``, highest first: what one ACK could not carry."""
        ooo = self._ooo
        if len(ooo) <= len(reported):
            return []
        return [block for block in reversed(list(ooo)) if block not in reported]

    def sack_blocks(self, max_blocks: int) -> tuple[list[tuple[int, int]], bool]:
        """SACK blocks for the next ACK, most recent first (RFC 2018 §4), and whether the
        first one is a D-SACK block (RFC 2883). Clears the pending D-SACK."""
        blocks: list[tuple[int, int]] = []
        dsack = self._dsack is not None
        if self._dsack is not None:
            blocks.append(self._dsack)
            self._dsack = None
        elif self._dsack_in_ooo is not None:
            self._dsack_in_ooo = None
        ooo = self._ooo
        if ooo:
            if self._dsack_in_ooo is not None:
                # The stored block that holds the duplicate follows it (RFC 2883 §4 rule 2).
                block = ooo.range_containing(self._dsack_in_ooo)
                if block is not None and len(blocks) < max_blocks:
                    blocks.append(block)
                self._dsack_in_ooo = None
            for point in self._recent:
                if len(blocks) >= max_blocks:
                    break
                block = ooo.range_containing(point)
                if block is not None and block not in blocks:
                    blocks.append(block)
            if len(blocks) < max_blocks:
                for block in ooo:
                    if block not in blocks:
                        blocks.append(block)
                        if len(blocks) >= max_blocks:
                            break
        return blocks, dsack
