"""LEDBAT (RFC 6817): a less-than-best-effort controller that keeps the queue it builds near
``TARGET`` and yields to loss-based flows, which fill the queue beyond it.

The window follows RFC 6817 §2.4.2: on every ACK

    off_target = (TARGET - queuing_delay) / TARGET
    cwnd += GAIN * off_target * bytes_newly_acked * MSS / cwnd

so an empty queue grows cwnd by about one MSS per RTT (like congestion avoidance), a queue at
``TARGET`` holds it, and a longer queue shrinks it in proportion. cwnd never falls below
``MIN_CWND`` segments on ACKs, and grows at most ``ALLOWED_INCREASE`` segments beyond the flight.

What differs from the RFC's pseudocode, and why:

* **Queuing delay from RTT samples, not one-way delay.** RFC 6817 §2.4.1 measures the one-way
  delay from the receiver's report of when data arrived. rudp's timestamps (RFC 7323) carry no
  such report: the receiver echoes the sender's TSval. The controller gets RTT samples (from
  ACKs that advance ``snd_una``), and queuing delay = FILTER(current RTTs) - min(base RTTs). The
  base history and the filter are the RFC's (``BASE_HISTORY`` one-minute minima, a MIN filter over
  the last ``CURRENT_FILTER`` samples); only the quantity filtered is the round trip, as
  RFC 6817 §4.1 and LEDBAT++ (draft-irtf-iccrg-ledbat-plus-plus §3) discuss. Consequence: a
  queue on the *reverse* path (ACKs queued behind other traffic) also reads as queuing delay,
  so the flow yields to upload traffic too; and a delayed ACK inflates a single sample, which
  the MIN filter removes.
* **The initial window is the connection's** (``Config.initial_window_segments``, IW10 by
  default, RFC 6928) rather than RFC 6817 §3.2's INIT_CWND = 2, so that the knob means the same
  for every controller; set ``initial_window_segments=2`` for the RFC value.
* **ALLOWED_INCREASE bounds growth only**: cwnd may not *grow* beyond flight + 1 MSS, but the
  pseudocode's ``min(cwnd, flightsize + ALLOWED_INCREASE*MSS)`` would also shrink the window of
  an application-limited sender; RFC 7661 argues against that, and NewReno here keeps it too.
* **Loss and timeouts are TCP's** (RFC 6817 §2.4.2 "react to loss like TCP"): loss halves cwnd
  (at least ``MIN_CWND``), at most once per RTT; the sender then runs PRR down to it, as for
  NewReno. A retransmission timeout sets ssthresh = max(FlightSize/2, 2 SMSS) on the first
  expiry and cwnd = 1 SMSS (RFC 5681 §3.1, as RFC 6817's CTO does); afterwards cwnd slow-starts
  back to ssthresh (RFC 5681 §3.1) unless the queuing delay has reached ``TARGET``, and the
  LEDBAT rule takes over from there. LEDBAT has no slow start otherwise.
* Idle restart: cwnd = min(cwnd, initial window) (RFC 5681 §4.1).
"""

from __future__ import annotations

from collections import deque

from .cc_undo import Undoable

__all__ = [
    "ALLOWED_INCREASE",
    "BASE_HISTORY",
    "BASE_INTERVAL",
    "CURRENT_FILTER",
    "GAIN",
    "MIN_CWND",
    "TARGET",
    "Ledbat",
]

TARGET = 0.060
"""Queuing delay in seconds the flow aims for (RFC 6817 §3.2: MUST be 100 ms or less)."""
GAIN = 1.0
"""cwnd gain per off-target fraction (RFC 6817 §3.2: MUST be 1 or less)."""
ALLOWED_INCREASE = 1
"""Segments cwnd may grow beyond the flight (RFC 6817 §3.2: SHOULD be 1)."""
MIN_CWND = 2
"""Smallest cwnd in segments after an ACK or a loss (RFC 6817 §3.2: SHOULD be 2)."""
BASE_HISTORY = 10
"""Base-delay minima kept, one per ``BASE_INTERVAL`` (RFC 6817 §3.2: RECOMMENDED 10)."""
BASE_INTERVAL = 60.0
"""Seconds covered by one base-delay minimum (RFC 6817 §2.4.2: one minute)."""
CURRENT_FILTER = 4
"""Latest delay samples whose minimum is the current delay (RFC 6817 §3.4.2: a MIN filter
over a few samples; the RFC leaves the count to the implementation)."""

_INF = float("inf")


class Ledbat(Undoable):
    """RFC 6817 LEDBAT over RTT-based queuing delay; see the module docstring."""

    __slots__ = (
        "_base",
        "_base_min",
        "_current",
        "_frac",
        "_last_minute",
        "_latest_rtt",
        "_reduced_at",
        "_rto_pending",
        "_slow_start",
        "cwnd",
        "initial_window",
        "queuing_delay",
        "smss",
        "ssthresh",
    )
    UNDO_FIELDS = ("cwnd", "ssthresh", "_frac", "_reduced_at", "_slow_start")

    reduces_on_loss = True
    pacing_rate = 0.0
    cwnd: int
    ssthresh: int
    """The window a loss reduced to (PRR's target), or the slow-start bound after an RTO."""
    queuing_delay: float
    """FILTER(current RTTs) - min(base RTTs) in seconds, 0.0 before the first sample."""

    def __init__(self, *, max_payload: int, initial_window: int) -> None:
        if max_payload < 1 or initial_window < 1:
            raise ValueError("max_payload and initial_window must be >= 1")
        self.smss = max_payload
        self.initial_window = initial_window
        self.cwnd = initial_window
        self.ssthresh = initial_window
        self.queuing_delay = 0.0
        # cwnd's fraction of a byte: growth per ACK is often below one byte.
        self._frac = 0.0
        self._base = [_INF] * BASE_HISTORY  # per-minute minima, oldest first (RFC 6817 §2.4.2)
        self._base_min = _INF
        self._last_minute: int | None = None
        self._current: deque[float] = deque(maxlen=CURRENT_FILTER)
        self._latest_rtt = 0.0
        self._reduced_at = -_INF
        self._rto_pending = False
        self._slow_start = False

    def __repr__(self) -> str:
        return (
            f"<Ledbat cwnd={self.cwnd} ssthresh={self.ssthresh}"
            f" queuing_delay={self.queuing_delay:.4f} smss={self.smss}>"
        )

    @property
    def base_delay(self) -> float:
        """The smallest RTT of the last ``BASE_HISTORY`` minutes (inf before any sample)."""
        return self._base_min

    def in_slow_start(self) -> bool:
        """True only while climbing back to ssthresh after a retransmission timeout."""
        return self._slow_start

    # --- delay -----------------------------------------------------------------------------
    def on_rtt_sample(self, rtt: float, *, now: float) -> None:
        """update_base_delay and update_current_delay of RFC 6817 §2.4.2, for RTTs."""
        self._latest_rtt = rtt
        base = self._base
        minute = int(now // BASE_INTERVAL)
        if minute != self._last_minute:
            # A new minute: drop the oldest minimum and start a new one (one per call, as in
            # the RFC's pseudocode, so an idle gap ages the history by one bucket only).
            self._last_minute = minute
            del base[0]
            base.append(rtt)
            self._base_min = min(base)
        elif rtt < base[-1]:
            base[-1] = rtt
            if rtt < self._base_min:
                self._base_min = rtt
        current = self._current
        current.append(rtt)
        delay = min(current) - self._base_min
        self.queuing_delay = delay if delay > 0.0 else 0.0

    # --- window ----------------------------------------------------------------------------
    def on_ack(self, acked: int, *, bytes_in_flight: int, now: float) -> None:
        """RFC 6817 §2.4.2 "on acknowledgement", or slow start after a timeout."""
        self._rto_pending = False
        if acked <= 0:
            return
        smss = self.smss
        old = self.cwnd
        queuing_delay = self.queuing_delay
        if self._slow_start:
            if old < self.ssthresh and queuing_delay < TARGET:
                # RFC 5681 §3.1 slow start back to ssthresh after a timeout.
                grown = old + acked
                self.cwnd = grown if grown < self.ssthresh else self.ssthresh
                self._frac = 0.0
                if self.cwnd >= self.ssthresh:
                    self._slow_start = False
                return
            self._slow_start = False
        off_target = (TARGET - queuing_delay) / TARGET
        window = old + self._frac + GAIN * off_target * acked * smss / old
        # Growth only up to ALLOWED_INCREASE segments beyond the flight (RFC 6817 §2.4.2).
        allowed = bytes_in_flight + ALLOWED_INCREASE * smss
        if window > old and window > allowed:
            window = allowed if allowed > old else old
        floor = MIN_CWND * smss
        if window < floor:
            window = floor
        cwnd = int(window)
        self.cwnd = cwnd
        self._frac = window - cwnd

    def on_congestion_event(self, *, bytes_in_flight: int, now: float) -> None:
        """Halve cwnd, at least ``MIN_CWND`` segments, at most once per RTT (RFC 6817 §2.4.2).

        A second loss within one RTT of the last reduction keeps the window: ssthresh = cwnd,
        so the sender's PRR does not shrink it again.
        """
        self._rto_pending = False
        self._slow_start = False
        cwnd = self.cwnd
        if now - self._reduced_at < self._latest_rtt:
            self.ssthresh = cwnd
            return
        self._reduced_at = now
        half = cwnd // 2
        floor = MIN_CWND * self.smss
        reduced = half if half > floor else floor
        self.ssthresh = self.cwnd = reduced if reduced < cwnd else cwnd
        self._frac = 0.0

    def on_retransmission_timeout(self, *, bytes_in_flight: int, now: float) -> None:
        """cwnd = 1 SMSS; ssthresh = max(FlightSize/2, 2 SMSS) on the first expiry only
        (RFC 5681 §3.1; RFC 6817 §2.4.2 CTO)."""
        if not self._rto_pending:
            half = bytes_in_flight // 2
            floor = 2 * self.smss
            self.ssthresh = half if half > floor else floor
            self._rto_pending = True
        self.cwnd = self.smss
        self._frac = 0.0
        self._slow_start = True
        self._reduced_at = now  # the timeout is this RTT's reaction to loss

    def on_idle_restart(self, *, now: float) -> None:
        """Restart window after idle: cwnd = min(cwnd, IW) (RFC 5681 §4.1)."""
        if self.cwnd > self.initial_window:
            self.cwnd = self.initial_window
            self._frac = 0.0

    def on_persistent_congestion(self, *, now: float) -> None:
        """cwnd = min(cwnd, MIN_CWND segments) (RFC 9002 §7.6.2 kMinimumWindow)."""
        floor = MIN_CWND * self.smss
        if self.cwnd > floor:
            self.cwnd = floor
        self._frac = 0.0

    def on_bytes_lost(self, lost: int, *, now: float) -> None:
        """LEDBAT reacts once per loss event, in ``on_congestion_event``."""
