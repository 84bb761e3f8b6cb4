"""RACK-TLP state (RFC 8985): the newest delivered transmission, the reordering window and
the tail-loss probe's bookkeeping. The scoreboard work (which bytes are lost) stays in the
send buffer and the connection; this module holds the rules that are plain arithmetic.
"""

from __future__ import annotations

__all__ = ["REO_WND_PERSIST", "TLP_MIN_PTO", "Rack", "probe_timeout"]

REO_WND_PERSIST = 16  # recoveries a grown reordering window lasts (RFC 8985 §6.2 step 4)
TLP_MIN_PTO = 0.01  # seconds: a floor under 2 x SRTT on very short paths (Linux: 10 ms)
_NEG_INF = float("-inf")


class Rack:
    """RACK.xmit_ts / RACK.end_seq / RACK.rtt, reordering detection and reo_wnd."""

    __slots__ = (
        "dsack_round",
        "end_seq",
        "fack",
        "reo_wnd_mult",
        "reo_wnd_persist",
        "reordering_seen",
        "rtt",
        "xmit_ts",
    )

    def __init__(self) -> None:
        self.xmit_ts = _NEG_INF  # RACK.xmit_ts: send time of the newest delivered segment
        self.end_seq = 0  # RACK.end_seq: its end, to order segments sent at the same time
        self.rtt: float | None = None  # RACK.rtt: the RTT of that delivery
        self.fack = 0  # highest delivered sequence number of a first transmission
        self.reordering_seen = False  # RACK.reordering_seen (RFC 8985 §6.2 step 3)
        self.reo_wnd_mult = 1  # RACK.reo_wnd_mult
        self.reo_wnd_persist = REO_WND_PERSIST  # RACK.reo_wnd_persist
        self.dsack_round: int | None = None  # RACK.dsack_round: snd_nxt when it last grew

    def __repr__(self) -> str:
        return (
            f"<Rack xmit_ts={self.xmit_ts} end_seq={self.end_seq} rtt={self.rtt}"
            f" reo_mult={self.reo_wnd_mult} reordering={self.reordering_seen}>"
        )

    def on_delivered(self, xmit_ts: float, end_seq: int, now: float) -> None:
        """A segment first sent at ``xmit_ts`` and ending at ``end_seq`` was delivered
        (RFC 8985 §6.2 step 2: RACK_update, for a transmission known to be the one that got
        through)."""
        if xmit_ts > self.xmit_ts or (xmit_ts == self.xmit_ts and end_seq > self.end_seq):
            self.xmit_ts = xmit_ts
            self.end_seq = end_seq
            self.rtt = now - xmit_ts

    def on_original_delivered(self, start: int, end: int, *, retransmitted_below: int) -> None:
        """First-transmission bytes [start, end) were newly delivered: advance FACK, and mark
        reordering when they lie below it without ever having been retransmitted
        (RFC 8985 §6.2 step 3, RACK_detect_reordering)."""
        if end > self.fack:
            self.fack = end
        elif start >= retransmitted_below:
            self.reordering_seen = True

    def on_dsack(self, *, snd_una: int, snd_nxt: int) -> None:
        """A D-SACK arrived: grow the reordering window, at most once per round trip
        (RFC 8985 §6.2 step 4)."""
        if self.dsack_round is not None and snd_una >= self.dsack_round:
            self.dsack_round = None
        if self.dsack_round is None:
            self.dsack_round = snd_nxt
            self.reo_wnd_mult += 1
            self.reo_wnd_persist = REO_WND_PERSIST

    def on_recovery_exit(self) -> None:
        """A fast or RTO recovery ended: a grown window shrinks back after 16 clean ones."""
        self.reo_wnd_persist -= 1
        if self.reo_wnd_persist <= 0:
            self.reo_wnd_mult = 1

    def reo_wnd(
        self,
        *,
        in_recovery: bool,
        sacked_segments: int,
        dupthresh: int,
        min_rtt: float,
        srtt: float,
    ) -> float:
        """RACK.reo_wnd (RFC 8985 §6.2 step 4): zero while no reordering was seen and the
        sender is in recovery or has DupThresh segments SACKed, else
        min(reo_wnd_mult x min_RTT / 4, SRTT)."""
        if not self.reordering_seen and (in_recovery or sacked_segments >= dupthresh):
            return 0.0
        wnd = self.reo_wnd_mult * min_rtt / 4.0
        return wnd if wnd < srtt else srtt


def probe_timeout(*, srtt: float, one_segment: bool, worst_case_ack_delay: float) -> float:
    """The tail-loss probe timeout (RFC 8985 §7.2): 2 x SRTT, plus the peer's worst-case
    delayed-ACK time when a single segment is in flight (nothing else can make it ACK)."""
    pto = 2.0 * srtt
    if pto < TLP_MIN_PTO:
        pto = TLP_MIN_PTO
    if one_segment:
        pto += worst_case_ack_delay
    return pto
