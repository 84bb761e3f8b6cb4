"""A model-based congestion controller in the manner of BBR (draft-ietf-ccwg-bbr).

It estimates the bottleneck bandwidth (a windowed maximum of delivery-rate samples) and the
path's minimum RTT, paces at ``pacing_gain x bandwidth`` and bounds the data in flight by
``cwnd_gain x BDP``. Random loss is not congestion to it: the window is only cut when a round
loses more than ``LOSS_THRESH`` of its data *and* its RTT shows a standing queue.

What differs from BBR, because the sender keeps byte ranges rather than per-packet records:

* Delivery rate is sampled once per round trip instead of per ACK: bytes newly delivered
  (cumulatively ACKed or SACKed) between two ACKs at least one min RTT apart, divided by the
  time between those ACKs. A round is that interval. Samples are not marked app-limited: an
  application-limited round only lowers the estimate once the higher samples age out.
* No PROBE_RTT state: the min RTT filter simply takes the newest sample when its minimum is
  older than ``MIN_RTT_WINDOW``. Pacing at the estimated rate keeps the queue short, and the
  0.75 phase of the gain cycle drains what the 1.25 phase built.
* Loss (BBRv2 ``inflight_hi`` in spirit): lost bytes are the bytes the sender retransmitted.
  A round whose lost share exceeds ``LOSS_THRESH`` while even its smallest RTT sample is
  above ``QUEUE_RTT_FACTOR x min RTT`` (a standing queue; the smallest, because delayed ACKs
  inflate single samples) sets ``inflight_hi`` to ``BETA x`` the largest flight seen in
  the round (and ends STARTUP). The round after a cut, and DRAIN, do not cut again: their
  losses were sent before the cut. ``inflight_hi`` then grows back by 1, 2, 4, ... segments
  per round and is dropped once it no longer binds.
* Retransmission timeout: cwnd falls to one segment until the next ACK that delivers data,
  which restores the previous window. The bandwidth and RTT model is kept, so a spurious
  timeout does not restart STARTUP.
"""

from __future__ import annotations

from collections import deque

from .cc_undo import Undoable

__all__ = [
    "BETA",
    "BW_WINDOW_ROUNDS",
    "CWND_GAIN",
    "DRAIN",
    "LOSS_THRESH",
    "MIN_LOSS_SEGMENTS",
    "MIN_RTT_WINDOW",
    "PROBE_BW",
    "PROBE_GAINS",
    "QUEUE_RTT_FACTOR",
    "STARTUP",
    "STARTUP_GAIN",
    "ModelBased",
]

STARTUP = "startup"
DRAIN = "drain"
PROBE_BW = "probe_bw"

STARTUP_GAIN = 2.885  # 2 / ln 2: doubles the delivery rate per round (BBR draft §4.6.1)
CWND_GAIN = 2.0  # cwnd = 2 x BDP in PROBE_BW (BBR draft §4.6.4)
PROBE_GAINS = (1.25, 0.75, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)  # PROBE_BW gain cycle (BBRv1)
BW_WINDOW_ROUNDS = 10  # max filter length for the bandwidth (BBR draft BBR.MaxBwFilterLen)
MIN_RTT_WINDOW = 10.0  # seconds (BBR draft BBR.MinRTTFilterLen)
FULL_BW_GROWTH = 1.25  # STARTUP ends when the bandwidth grew less than 25 % ...
FULL_BW_ROUNDS = 3  # ... for three rounds in a row (BBR draft §4.6.1.2)
MIN_CWND_SEGMENTS = 4  # BBR draft BBR.MinPipeCwnd
LOSS_THRESH = 0.02  # BBRv2 BBR.LossThresh
BETA = 0.7  # BBRv2 BBR.Beta: inflight_hi = 0.7 x the flight that lost
MIN_LOSS_SEGMENTS = 8  # and at least this many segments lost (BBRv2 full_loss_cnt = 8)
QUEUE_RTT_FACTOR = 1.25  # a round RTT this far above min RTT means a standing queue
_DEFAULT_ROUND = 0.1  # seconds per round before any RTT sample (never with a handshake)
_NO_SSTHRESH = 1 << 62
_INF = float("inf")


class ModelBased(Undoable):
    """Bandwidth and min-RTT model, pacing gain cycle, cwnd = gain x BDP; see the module."""

    __slots__ = (
        "_bw_slots",
        "_marks",
        "_round_max_bw",
        "_cycle_index",
        "_full_bw",
        "_full_bw_count",
        "_hi_rounds",
        "_cut_round",
        "_prior_cwnd",
        "_round_delivered",
        "_round_lost",
        "_round_max_flight",
        "_round_min_rtt",
        "_round_start",
        "_rto_pending",
        "btl_bw",
        "cwnd",
        "cwnd_gain",
        "delivered",
        "filled_pipe",
        "inflight_hi",
        "initial_window",
        "min_rtt",
        "min_rtt_stamp",
        "pacing_gain",
        "pacing_rate",
        "round_count",
        "smss",
        "ssthresh",
        "state",
    )
    # A spurious timeout gives the window back at once rather than at the next ACK.
    UNDO_FIELDS = ("cwnd", "_rto_pending", "_prior_cwnd")

    reduces_on_loss = False
    cwnd: int
    ssthresh: int
    pacing_rate: float
    btl_bw: float
    """Bottleneck bandwidth estimate in bytes/s: the max sample of the last 10 rounds."""
    min_rtt: float | None
    """Smallest RTT sample of the last ``MIN_RTT_WINDOW`` seconds."""
    inflight_hi: int | None
    """Upper bound on cwnd after congestive loss; None when no loss bound applies."""

    def __init__(self, *, max_payload: int, initial_window: int) -> None:
        if max_payload < 1 or initial_window < 1:
            raise ValueError("max_payload and initial_window must be >= 1")
        self.smss = max_payload
        self.initial_window = initial_window
        self.cwnd = initial_window
        self.ssthresh = _NO_SSTHRESH  # unused: this controller does not halve
        self.pacing_rate = 0.0
        self.state = STARTUP
        self.pacing_gain = STARTUP_GAIN
        self.cwnd_gain = STARTUP_GAIN
        self.btl_bw = 0.0
        self._bw_slots = [0.0] * BW_WINDOW_ROUNDS
        self.min_rtt = None
        self.min_rtt_stamp = 0.0
        self.round_count = 0
        self.delivered = 0
        self._round_start: float | None = None
        self._round_max_bw = 0.0
        # (time, delivered) after each ACK of the last min RTT or so, for rate samples.
        self._marks: deque[tuple[float, int]] = deque()
        self._round_delivered = 0
        self._round_lost = 0
        self._round_min_rtt = _INF
        self._round_max_flight = 0
        self.filled_pipe = False
        self._full_bw = 0.0
        self._full_bw_count = 0
        self._cycle_index = 0
        self.inflight_hi = None
        self._hi_rounds = 0
        self._cut_round = -2  # the round whose losses last set inflight_hi
        self._prior_cwnd = 0
        self._rto_pending = False

    def __repr__(self) -> str:
        return (
            f"<ModelBased {self.state} bw={self.btl_bw:.0f} min_rtt={self.min_rtt}"
            f" cwnd={self.cwnd} pacing={self.pacing_rate:.0f}>"
        )

    def in_slow_start(self) -> bool:
        """True in STARTUP, this controller's slow start."""
        return self.state == STARTUP

    @property
    def bdp(self) -> int:
        """Estimated bandwidth-delay product in bytes (0 before the first sample)."""
        return int(self.btl_bw * self.min_rtt) if self.min_rtt is not None else 0

    # --- inputs -----------------------------------------------------------------------------
    def on_rtt_sample(self, rtt: float, *, now: float) -> None:
        """Fold a sample into the min RTT filter and the round's smallest RTT."""
        if self.min_rtt is None or rtt <= self.min_rtt or now - self.min_rtt_stamp > MIN_RTT_WINDOW:
            self.min_rtt = rtt
            self.min_rtt_stamp = now
        if rtt < self._round_min_rtt:
            self._round_min_rtt = rtt
        if self.btl_bw == 0.0 and rtt > 0.0:
            # No bandwidth sample yet: pace the window at the startup gain over one RTT
            # (BBR draft §4.6.2 BBRInitPacingRate).
            self.pacing_rate = STARTUP_GAIN * self.cwnd / rtt

    def on_bytes_lost(self, lost: int, *, now: float) -> None:
        """Count bytes deemed lost (retransmitted) toward this round's loss rate."""
        self._round_lost += lost

    def on_congestion_event(self, *, bytes_in_flight: int, now: float) -> None:
        """Entering fast recovery does not shrink the model; loss counts per round instead."""

    def on_retransmission_timeout(self, *, bytes_in_flight: int, now: float) -> None:
        """One segment until an ACK proves the path works; the model is kept."""
        if not self._rto_pending:
            self._prior_cwnd = self.cwnd
            self._rto_pending = True
        self.cwnd = self.smss

    def restore(self, state: object, *, now: float) -> None:
        """Undo a spurious timeout: the window from before it, with no restore pending."""
        super().restore(state, now=now)
        self._rto_pending = False

    def on_persistent_congestion(self, *, now: float) -> None:
        """The path carried nothing for 3 PTOs (RFC 9002 §7.6): the bandwidth model is stale.
        Forget it and start over in STARTUP from one segment; the timeout's saved window is
        not restored. The min RTT filter is kept (it ages out by itself)."""
        self._rto_pending = False
        self.cwnd = self.smss
        self._bw_slots = [0.0] * BW_WINDOW_ROUNDS
        self.btl_bw = 0.0
        self.inflight_hi = None
        self.filled_pipe = False
        self._full_bw = 0.0
        self._full_bw_count = 0
        self.state = STARTUP
        self.pacing_gain = self.cwnd_gain = STARTUP_GAIN
        self._round_start = None
        self._marks.clear()
        if self.min_rtt:
            self.pacing_rate = STARTUP_GAIN * self.initial_window / self.min_rtt

    def on_idle_restart(self, *, now: float) -> None:
        """The idle gap must not count as a slow round: start a new sample interval."""
        self._round_start = None
        self._marks.clear()

    def on_ack(self, acked: int, *, bytes_in_flight: int, now: float) -> None:
        """Newly delivered bytes: sample the rate once per round, then set cwnd and pacing."""
        if acked <= 0:
            return
        if self._rto_pending:
            self._rto_pending = False
            if self._prior_cwnd > self.cwnd:
                self.cwnd = self._prior_cwnd  # restore the model's window (BBR draft §4.6.4.4)
        delivered = self.delivered = self.delivered + acked
        if bytes_in_flight > self._round_max_flight:
            self._round_max_flight = bytes_in_flight
        interval = self.min_rtt if self.min_rtt is not None else _DEFAULT_ROUND
        # Delivery rate over the shortest span of ACKs at least one min RTT long.
        marks = self._marks
        marks.append((now, delivered))
        while len(marks) > 2 and now - marks[1][0] >= interval:
            marks.popleft()
        then, before = marks[0]
        # now > then: a coarse clock (uvloop's ticks in ms) can make both spans 0 on loopback.
        if now - then >= interval and now > then:
            sample = (delivered - before) / (now - then)
            if sample > self._round_max_bw:
                self._round_max_bw = sample
        start = self._round_start
        if start is None:
            self._start_round(now)
        elif now - start >= interval:
            self._end_round(now)
        if self.state == DRAIN and bytes_in_flight <= self.bdp:
            self._enter_probe_bw()
        self._set_cwnd(acked)
        rate = self.pacing_gain * self.btl_bw
        if rate > 0.0 and (self.filled_pipe or rate > self.pacing_rate):
            self.pacing_rate = rate  # STARTUP never lowers the rate (BBR draft §4.6.2)

    # --- the model ---------------------------------------------------------------------------
    def _start_round(self, now: float) -> None:
        self._round_start = now
        self._round_delivered = self.delivered
        self._round_max_bw = 0.0
        self._round_lost = 0
        self._round_min_rtt = _INF
        self._round_max_flight = 0

    def _end_round(self, now: float) -> None:
        delivered = self.delivered - self._round_delivered
        self.round_count += 1
        slots = self._bw_slots
        slots[self.round_count % BW_WINDOW_ROUNDS] = self._round_max_bw  # the round 10 ago
        self.btl_bw = max(slots)
        self._check_loss(delivered)
        if not self.filled_pipe:
            if self.btl_bw >= self._full_bw * FULL_BW_GROWTH:
                self._full_bw = self.btl_bw
                self._full_bw_count = 0
            else:
                self._full_bw_count += 1
                if self._full_bw_count >= FULL_BW_ROUNDS:
                    self._enter_drain()
        elif self.state == PROBE_BW:
            self._cycle_index = (self._cycle_index + 1) % len(PROBE_GAINS)
            self.pacing_gain = PROBE_GAINS[self._cycle_index]
        self._start_round(now)

    def _check_loss(self, delivered: int) -> None:
        lost = self._round_lost
        min_rtt = self.min_rtt
        if (
            # The losses a round finds were sent a round earlier: in the round after a cut
            # (or in DRAIN, after STARTUP's cut) they are of data sent before the cut, the
            # same overshoot, which must not cut again (it took 2.4 MB to 0.8 MB, below the
            # BDP, at 100 ms; BBRv2 likewise cuts once per probe).
            self.round_count > self._cut_round + 1
            and self.state != DRAIN
            and lost >= MIN_LOSS_SEGMENTS * self.smss
            and lost > LOSS_THRESH * (delivered + lost)
            and min_rtt is not None
            and QUEUE_RTT_FACTOR * min_rtt < self._round_min_rtt < _INF  # a sample, and high
        ):
            floor = MIN_CWND_SEGMENTS * self.smss
            self.inflight_hi = max(int(BETA * self._round_max_flight), floor)
            self._hi_rounds = 0
            self._cut_round = self.round_count
            if not self.filled_pipe:
                self._enter_drain()  # congestive loss in STARTUP: the pipe is full
            return
        hi = self.inflight_hi
        if hi is not None:
            # Probe the bound back up: 1, 2, 4, ... segments per round (BBRv2 PROBE_UP).
            hi += self.smss << min(self._hi_rounds, 16)
            self._hi_rounds += 1
            self.inflight_hi = None if hi >= int(CWND_GAIN * self.bdp) else hi

    def _enter_drain(self) -> None:
        self.filled_pipe = True
        self.state = DRAIN
        self.pacing_gain = 1.0 / STARTUP_GAIN
        self.cwnd_gain = STARTUP_GAIN

    def _enter_probe_bw(self) -> None:
        self.state = PROBE_BW
        self.cwnd_gain = CWND_GAIN
        self._cycle_index = 0
        self.pacing_gain = PROBE_GAINS[0]

    def _set_cwnd(self, acked: int) -> None:
        """BBR draft §4.6.4.6 BBRSetCwnd, bounded by inflight_hi."""
        cwnd = self.cwnd
        target = int(self.cwnd_gain * self.bdp)
        if self.filled_pipe:
            cwnd += acked
            if cwnd > target:
                cwnd = target
        elif cwnd < target or self.delivered < self.initial_window or not target:
            cwnd += acked
        hi = self.inflight_hi
        if hi is not None and cwnd > hi:
            cwnd = hi
        floor = MIN_CWND_SEGMENTS * self.smss
        self.cwnd = cwnd if cwnd > floor else floor
