"""CUBIC congestion control (RFC 9438) with HyStart++ slow start (RFC 9406).

Windows in the CUBIC formulas are in segments of SMSS (floats); ``cwnd`` and ``ssthresh``
are bytes like every controller's. The sender calls ``on_ack`` outside fast recovery only
and runs PRR during it (``reduces_on_loss`` True), as for NewReno.

Choices where the RFCs leave room or the controller interface is narrower than they assume:

* Slow start grows by every byte acknowledged, without RFC 9406's L limit, as NewReno does
  here (a batched receiver acknowledges hundreds of segments per ACK).
* HyStart++ rounds are approximated by time: the interface carries no sequence numbers, so
  a round ends at the first RTT sample at least one min RTT (the smallest sample so far)
  after the round began, instead of when the ACK covering the round's ``snd_nxt`` arrives.
  HyStart++ runs only in the initial slow start, while ssthresh is still "arbitrarily high"
  (RFC 9406 §4.3); after a loss or a timeout slow start is the standard one.
* RTT in the target W_cubic(t + RTT) (RFC 9438 §4.4) is a smoothed RTT kept here
  (RFC 6298 §2.3 gain 1/8) from the samples the sender reports.
* Application-limited ACKs (flight before the ACK below half of cwnd) do not grow the window
  and their time is taken out of t (RFC 9438 §5.8). Idle restart applies RFC 5681 §4.1
  (cwnd = min(cwnd, IW)); if that cuts cwnd the congestion avoidance epoch restarts.
"""

from __future__ import annotations

from .cc_undo import Undoable

__all__ = [
    "ALPHA_CUBIC",
    "BETA_CUBIC",
    "C",
    "CSS_GROWTH_DIVISOR",
    "CSS_ROUNDS",
    "MAX_RTT_THRESH",
    "MIN_RTT_DIVISOR",
    "MIN_RTT_THRESH",
    "N_RTT_SAMPLE",
    "Cubic",
]

C = 0.4  # RFC 9438 §5.1: segments / s^3
BETA_CUBIC = 0.7  # RFC 9438 §4.6
ALPHA_CUBIC = 3 * (1 - BETA_CUBIC) / (1 + BETA_CUBIC)  # RFC 9438 §4.3: ~0.53

MIN_RTT_THRESH = 0.004  # RFC 9406 §4.3: seconds
MAX_RTT_THRESH = 0.016  # RFC 9406 §4.3: seconds
MIN_RTT_DIVISOR = 8  # RFC 9406 §4.3
N_RTT_SAMPLE = 8  # RFC 9406 §4.3
CSS_GROWTH_DIVISOR = 4  # RFC 9406 §4.3
CSS_ROUNDS = 5  # RFC 9406 §4.3

_INITIAL_SSTHRESH = 1 << 62  # as congestion.INITIAL_SSTHRESH (RFC 5681 §3.1)
_DEFAULT_RTT = 0.1  # seconds, for the target before any RTT sample (never with a handshake)
_INF = float("inf")


class Cubic(Undoable):
    """RFC 9438 CUBIC window growth and reduction, HyStart++ in the first slow start."""

    __slots__ = (
        "_acked_rem",
        "_css_rounds",
        "_growth",
        "_last_ack",
        "_reset_w_max",
        "_round_start",
        "_rto_pending",
        "css",
        "css_baseline",
        "cur_round_min_rtt",
        "cwnd",
        "cwnd_epoch",
        "cwnd_prior",
        "epoch_start",
        "initial_window",
        "k",
        "last_round_min_rtt",
        "min_rtt",
        "round_count",
        "rtt_sample_count",
        "smss",
        "srtt",
        "ssthresh",
        "w_est",
        "w_max",
    )
    # RFC 9438 §4.9: what a spurious congestion event restores.
    UNDO_FIELDS = (
        "cwnd",
        "ssthresh",
        "cwnd_prior",
        "w_max",
        "k",
        "epoch_start",
        "cwnd_epoch",
        "w_est",
        "_growth",
        "_reset_w_max",
    )

    reduces_on_loss = True
    pacing_rate = 0.0
    cwnd: int
    ssthresh: int
    w_max: float
    """Window (segments) just before the last reduction, after fast convergence (§4.7)."""
    k: float
    """Seconds from the epoch start until W_cubic reaches W_max again (§4.2 eq. 2)."""
    epoch_start: float | None
    """Start of the current congestion avoidance stage (t_epoch); None outside one."""
    w_est: float
    """The Reno-friendly estimate in segments (§4.3)."""
    css: bool
    """True in HyStart++ conservative slow start (RFC 9406 §4.2)."""

    def __init__(self, *, max_payload: int, initial_window: int) -> None:
        if max_payload < 1 or initial_window < 1:
            raise ValueError("max_payload and initial_window must be >= 1")
        self.smss = max_payload
        self.initial_window = initial_window
        self.cwnd = initial_window
        self.ssthresh = _INITIAL_SSTHRESH
        self.w_max = 0.0
        self.k = 0.0
        self.epoch_start = None
        self.cwnd_epoch = 0.0
        self.cwnd_prior = 0.0
        self.w_est = 0.0
        self.srtt: float | None = None
        self.min_rtt = _INF
        # HyStart++ (RFC 9406 §4.2).
        self.round_count = 0
        self._round_start: float | None = None
        self.last_round_min_rtt = _INF
        self.cur_round_min_rtt = _INF
        self.rtt_sample_count = 0
        self.css = False
        self.css_baseline = _INF
        self._css_rounds = 0
        # Fractional bytes of congestion avoidance growth not yet added to cwnd.
        self._growth = 0.0
        # Bytes of CSS growth below CSS_GROWTH_DIVISOR, so that no byte is lost to rounding.
        self._acked_rem = 0
        self._last_ack: float | None = None
        # After an RTO (§4.8) or a HyStart++ exit (§4.10): W_max = cwnd at the epoch, K = 0.
        self._reset_w_max = False
        self._rto_pending = False

    def __repr__(self) -> str:
        return (
            f"<Cubic cwnd={self.cwnd} ssthresh={self.ssthresh} w_max={self.w_max:.2f}"
            f" k={self.k:.3f} css={self.css}>"
        )

    def in_slow_start(self) -> bool:
        """True while cwnd < ssthresh, conservative slow start included."""
        return self.cwnd < self.ssthresh

    def w_cubic(self, t: float) -> float:
        """W_cubic(t) = C (t - K)^3 + W_max in segments, t seconds into the epoch (§4.2)."""
        d = t - self.k
        return C * d * d * d + self.w_max

    # --- RTT samples and HyStart++ rounds --------------------------------------------------
    def on_rtt_sample(self, rtt: float, *, now: float) -> None:
        """Smoothed RTT for the target, and HyStart++'s per-round minimum."""
        srtt = self.srtt
        self.srtt = rtt if srtt is None else srtt + (rtt - srtt) / 8  # RFC 6298 §2.3
        if rtt < self.min_rtt:
            self.min_rtt = rtt
        if self.ssthresh != _INITIAL_SSTHRESH:
            return  # HyStart++ only in the initial slow start (RFC 9406 §4.3)
        start = self._round_start
        if start is None or now - start >= self.min_rtt:
            self._start_round(now)
            if self.ssthresh != _INITIAL_SSTHRESH:
                return
        if rtt < self.cur_round_min_rtt:
            self.cur_round_min_rtt = rtt
        self.rtt_sample_count += 1

    def _start_round(self, now: float) -> None:
        # RFC 9406 §4.2: at the start of each round.
        self._round_start = now
        self.round_count += 1
        self.last_round_min_rtt = self.cur_round_min_rtt
        self.cur_round_min_rtt = _INF
        self.rtt_sample_count = 0
        if self.css:
            self._css_rounds += 1
            if self._css_rounds >= CSS_ROUNDS:
                # RFC 9406 §4.2: CSS_ROUNDS rounds of CSS: enter congestion avoidance.
                self.css = False
                self.ssthresh = self.cwnd
                self.cwnd_prior = self.cwnd / self.smss  # RFC 9438 §4.10
                self._reset_w_max = True
                self.epoch_start = None

    def _hystart(self) -> None:
        """RFC 9406 §4.2 checks after the slow start growth of one ACK."""
        if self.rtt_sample_count < N_RTT_SAMPLE:
            return
        cur = self.cur_round_min_rtt
        if self.css:
            if cur < self.css_baseline:
                self.css = False  # a spurious exit: resume slow start
                self.css_baseline = _INF
            return
        last = self.last_round_min_rtt
        if cur == _INF or last == _INF:
            return
        thresh = last / MIN_RTT_DIVISOR
        if thresh < MIN_RTT_THRESH:
            thresh = MIN_RTT_THRESH
        elif thresh > MAX_RTT_THRESH:
            thresh = MAX_RTT_THRESH
        if cur >= last + thresh:
            self.css = True
            self.css_baseline = cur
            self._css_rounds = 0
            self._acked_rem = 0

    # --- ACKs ----------------------------------------------------------------------------
    def on_ack(self, acked: int, *, bytes_in_flight: int, now: float) -> None:
        """Grow cwnd for ``acked`` newly acknowledged bytes."""
        self._rto_pending = False
        if acked <= 0:
            return
        last = self._last_ack
        self._last_ack = now
        cwnd = self.cwnd
        if bytes_in_flight < cwnd // 2:
            # Application-limited: no growth, and t must not include this time (§5.8).
            if self.epoch_start is not None and last is not None:
                self.epoch_start += now - last
            return
        ssthresh = self.ssthresh
        if cwnd < ssthresh:
            if self.css:
                # RFC 9406 §4.2: CSS grows by a quarter of what slow start would.
                counted = self._acked_rem + acked
                self._acked_rem = counted % CSS_GROWTH_DIVISOR
                grown = cwnd + counted // CSS_GROWTH_DIVISOR
            else:
                grown = cwnd + acked  # slow start (RFC 5681 §3.1, RFC 9438 §4.10)
            if grown < ssthresh:
                self.cwnd = grown
                if ssthresh == _INITIAL_SSTHRESH:
                    self._hystart()
                return
            # The ACK crosses ssthresh: the rest counts toward congestion avoidance.
            acked -= ssthresh - cwnd
            cwnd = self.cwnd = ssthresh
            if acked <= 0:
                return
        self._avoid(acked, now)

    def _start_epoch(self, now: float) -> None:
        smss = self.smss
        cwnd_epoch = self.cwnd_epoch = self.cwnd / smss
        self.epoch_start = now
        if self._reset_w_max or self.w_max <= cwnd_epoch:
            # §4.8 / §4.10: W_max = cwnd at the start of the stage, K = 0.
            self._reset_w_max = False
            self.w_max = cwnd_epoch
            self.k = 0.0
        else:
            self.k = ((self.w_max - cwnd_epoch) / C) ** (1.0 / 3.0)  # §4.2 eq. 2
        self.w_est = cwnd_epoch  # §4.3
        self._growth = 0.0

    def _avoid(self, acked: int, now: float) -> None:
        """Congestion avoidance for ``acked`` bytes (RFC 9438 §4.2-4.5)."""
        if self.epoch_start is None:
            self._start_epoch(now)
        epoch = self.epoch_start
        if epoch is None:  # pragma: no cover - set just above
            return
        smss = self.smss
        cwnd = self.cwnd
        cwnd_seg = cwnd / smss
        segments = acked / smss
        # §4.3 Reno-friendly estimate: alpha_cubic until W_est reaches cwnd_prior, then 1.
        alpha = 1.0 if self.w_est >= self.cwnd_prior else ALPHA_CUBIC
        self.w_est += alpha * segments / cwnd_seg
        t = now - epoch
        if self.w_cubic(t) < self.w_est:
            est = int(self.w_est * smss)  # §4.3: Reno-friendly region, cwnd = W_est
            if est > cwnd:
                self.cwnd = est
            self._growth = 0.0
            return
        # §4.4-4.5: target = W_cubic(t + RTT) clamped to [cwnd, 1.5 cwnd]; per ACKed segment
        # cwnd grows by (target - cwnd) / cwnd segments.
        rtt = self.srtt if self.srtt is not None else _DEFAULT_RTT
        target = self.w_cubic(t + rtt)
        if target < cwnd_seg:
            target = cwnd_seg
        elif target > 1.5 * cwnd_seg:
            target = 1.5 * cwnd_seg
        growth = self._growth + (target - cwnd_seg) * acked / cwnd_seg
        whole = int(growth)
        self._growth = growth - whole
        self.cwnd = cwnd + whole

    # --- reductions ------------------------------------------------------------------------
    def _reduced_ssthresh(self, bytes_in_flight: int) -> int:
        # §4.6: ssthresh = flight_size * beta_cubic, at least 2 SMSS.
        reduced = int(bytes_in_flight * BETA_CUBIC)
        floor = 2 * self.smss
        return reduced if reduced > floor else floor

    def on_congestion_event(self, *, bytes_in_flight: int, now: float) -> None:
        """Multiplicative decrease by beta_cubic (§4.6) with fast convergence (§4.7)."""
        self._rto_pending = False
        cwnd_seg = self.cwnd / self.smss
        if cwnd_seg < self.w_max:
            self.w_max = cwnd_seg * (1.0 + BETA_CUBIC) / 2.0  # §4.7 fast convergence
        else:
            self.w_max = cwnd_seg
        self.cwnd_prior = cwnd_seg
        self.ssthresh = self._reduced_ssthresh(bytes_in_flight)
        self.cwnd = self.ssthresh
        self._end_slow_start()

    def on_retransmission_timeout(self, *, bytes_in_flight: int, now: float) -> None:
        """§4.8: ssthresh from beta_cubic (first timeout only, RFC 5681 §3.1), cwnd = 1 SMSS;
        the next congestion avoidance stage starts with W_max = its cwnd and K = 0."""
        if not self._rto_pending:
            self.cwnd_prior = self.cwnd / self.smss
            self.ssthresh = self._reduced_ssthresh(bytes_in_flight)
            self._rto_pending = True
        self.cwnd = self.smss  # RFC 5681 §3.1: loss window LW = 1 SMSS
        self._reset_w_max = True
        self._end_slow_start()

    def _end_slow_start(self) -> None:
        self.epoch_start = None
        self._growth = 0.0
        self.css = False
        self.css_baseline = _INF
        self._acked_rem = 0

    def on_idle_restart(self, *, now: float) -> None:
        """Restart window cwnd = min(cwnd, IW) (RFC 5681 §4.1); the idle time is not part of t
        (RFC 9438 §5.8), and a cut window starts a new epoch."""
        last = self._last_ack
        if self.epoch_start is not None and last is not None:
            self.epoch_start += now - last
        self._last_ack = now
        if self.cwnd > self.initial_window:
            self.cwnd = self.initial_window
            self.epoch_start = None
            self._growth = 0.0

    def on_persistent_congestion(self, *, now: float) -> None:
        """cwnd = min(cwnd, 2 SMSS) (RFC 9002 §7.6.2) and, as after a timeout (§4.8), the
        next epoch starts from W_max = its cwnd."""
        floor = 2 * self.smss
        if self.cwnd > floor:
            self.cwnd = floor
        self._reset_w_max = True
        self._end_slow_start()

    def on_bytes_lost(self, lost: int, *, now: float) -> None:
        """CUBIC reacts once per recovery, in ``on_congestion_event``."""
