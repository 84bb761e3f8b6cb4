"""Congestion control: a small pluggable interface, NewReno (RFC 5681, RFC 6582, RFC 6928) and
the registry of controllers (``"bbr"``, the model-based one, lives in ``cc_model.py``).

Loss recovery (which segment to resend, when recovery ends) lives in the sender, which uses
SACK-based recovery (RFC 6675). A controller only answers "how big is the window": it sees ACKed
bytes outside recovery, congestion events, retransmission timeouts and idle restarts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from .cc_cubic import Cubic
from .cc_ledbat import Ledbat
from .cc_model import ModelBased
from .cc_undo import Undoable

__all__ = [
    "CONTROLLERS",
    "INITIAL_SSTHRESH",
    "CongestionController",
    "NewReno",
    "initial_window",
    "make_controller",
]

INITIAL_SSTHRESH = 1 << 62
"""Initial ssthresh, "arbitrarily high" (RFC 5681 §3.1)."""

_IW10_SEGMENTS = 10  # RFC 6928 §2
_IW10_BYTES = 14600  # RFC 6928 §2: IW = min(10*MSS, max(2*MSS, 14600))


class CongestionController(Protocol):
    """What the sender asks of a congestion controller. All sizes are bytes."""

    cwnd: int
    ssthresh: int
    reduces_on_loss: bool
    """True: the sender runs PRR during fast recovery and sets cwnd = ssthresh when it ends,
    and calls ``on_ack`` outside fast recovery only. False: the controller owns cwnd at all
    times and sees every ACK (a model-based controller)."""
    pacing_rate: float
    """Bytes per second the sender paces DATA at; 0.0 sends as the window allows."""

    def on_ack(self, acked: int, *, bytes_in_flight: int, now: float) -> None:
        """Newly acknowledged bytes (cumulative plus newly SACKed) arrived outside recovery.

        ``bytes_in_flight`` is the flight size before this ACK was processed. The sender must
        also call this for ACKs that make progress after a retransmission timeout.
        """
        ...

    def on_congestion_event(self, *, bytes_in_flight: int, now: float) -> None:
        """Loss was detected by duplicate ACKs or SACK; the sender enters fast recovery."""
        ...

    def on_retransmission_timeout(self, *, bytes_in_flight: int, now: float) -> None:
        """The retransmission timer expired."""
        ...

    def on_idle_restart(self, *, now: float) -> None:
        """The sender was idle for longer than an RTO and is about to send again."""
        ...

    def on_rtt_sample(self, rtt: float, *, now: float) -> None:
        """An RTT measurement in seconds (from timestamps, so never ambiguous)."""
        ...

    def on_bytes_lost(self, lost: int, *, now: float) -> None:
        """Bytes deemed lost were retransmitted (a byte-range stand-in for lost packets)."""
        ...

    def in_slow_start(self) -> bool:
        """True while cwnd < ssthresh."""
        ...

    def on_persistent_congestion(self, *, now: float) -> None:
        """Every datagram sent over a span of 3 PTOs was lost (RFC 9002 §7.6): fall back to
        the minimum window and forget what the path could carry."""
        ...

    def snapshot(self) -> object:
        """The window state just before a reduction, for ``restore`` if it was spurious."""
        ...

    def restore(self, state: object, *, now: float) -> None:
        """Undo a spurious reduction: put back a ``snapshot`` (cwnd only grows)."""
        ...


def initial_window(max_payload: int, initial_window_segments: int = _IW10_SEGMENTS) -> int:
    """The initial window in bytes for an SMSS of ``max_payload``.

    With the default 10 segments this is RFC 6928's IW = min(10*SMSS, max(2*SMSS, 14600)).
    Any other segment count is taken literally as N*SMSS (at least one SMSS): a configured IW
    is a deliberate departure from the RFC, so it is not capped by the 14600 B rule.
    """
    if max_payload < 1:
        raise ValueError(f"max_payload must be >= 1, got {max_payload}")
    if initial_window_segments < 1:
        raise ValueError(f"initial_window_segments must be >= 1, got {initial_window_segments}")
    if initial_window_segments == _IW10_SEGMENTS:
        return min(_IW10_SEGMENTS * max_payload, max(2 * max_payload, _IW10_BYTES))
    return initial_window_segments * max_payload


class NewReno(Undoable):
    """RFC 5681 slow start and congestion avoidance with byte counting (RFC 3465).

    Two refinements over the plain RFC 5681 text:

    * Congestion avoidance counts bytes: an accumulator collects ACKed bytes and cwnd grows by
      exactly one SMSS per cwnd of ACKed bytes (RFC 3465 §2.1), with no rounding drift.
    * The window only grows while the sender uses it (in the spirit of RFC 7661): an ACK that
      finds less than half the window in flight is application-limited and leaves cwnd as is,
      so an idle or slow writer cannot inflate cwnd it never tested.

    Dup-ACK window inflation (RFC 5681 §3.2) is absent on purpose: the sender runs RFC 6675
    SACK recovery, which bounds sending by ``pipe`` instead.
    """

    __slots__ = ("_ca_acked", "_rto_pending", "cwnd", "initial_window", "smss", "ssthresh")
    UNDO_FIELDS = ("cwnd", "ssthresh", "_ca_acked")

    reduces_on_loss = True
    pacing_rate = 0.0
    cwnd: int
    ssthresh: int
    smss: int
    """Sender maximum segment size (the connection's max payload)."""
    initial_window: int
    """IW in bytes, also the restart window bound after idle (RFC 5681 §4.1)."""

    def __init__(self, *, max_payload: int, initial_window_segments: int = _IW10_SEGMENTS) -> None:
        self.initial_window = initial_window(max_payload, initial_window_segments)
        self.smss = max_payload
        self.cwnd = self.initial_window
        self.ssthresh = INITIAL_SSTHRESH
        # Bytes ACKed in congestion avoidance not yet turned into cwnd growth (RFC 3465 §2.1).
        self._ca_acked = 0
        # True from an RTO until the next ACK: a repeated RTO keeps ssthresh (RFC 5681 §3.1).
        self._rto_pending = False

    def __repr__(self) -> str:
        return f"<NewReno cwnd={self.cwnd} ssthresh={self.ssthresh} smss={self.smss}>"

    def in_slow_start(self) -> bool:
        """True while cwnd < ssthresh (RFC 5681 §3.1)."""
        return self.cwnd < self.ssthresh

    def on_ack(self, acked: int, *, bytes_in_flight: int, now: float) -> None:
        """Grow cwnd for ``acked`` newly acknowledged bytes."""
        self._rto_pending = False
        if acked <= 0:
            return
        cwnd = self.cwnd
        # RFC 7661 spirit: no growth while less than half the window is in use.
        if bytes_in_flight < cwnd // 2:
            return
        ssthresh = self.ssthresh
        if cwnd < ssthresh:
            # Slow start grows by every byte acknowledged (RFC 9002 §7.3.1, as Linux does).
            # RFC 3465 §2.2 caps it at 2 SMSS per ACK, but a batched receiver acknowledges
            # hundreds of segments per ACK: the cap would starve slow start on such paths.
            grown = cwnd + acked
            if grown <= ssthresh:
                self.cwnd = grown
                return
            # The ACK crosses ssthresh: bytes beyond it count toward congestion avoidance.
            acked -= ssthresh - cwnd
            cwnd = ssthresh
        # RFC 5681 §3.1 congestion avoidance, byte counted (RFC 3465 §2.1): +1 SMSS per cwnd.
        counted = self._ca_acked + acked
        while counted >= cwnd:
            counted -= cwnd
            cwnd += self.smss
        self._ca_acked = counted
        self.cwnd = cwnd

    def _halved_flight(self, bytes_in_flight: int) -> int:
        # RFC 5681 §3.1 eq. 4: ssthresh = max(FlightSize / 2, 2*SMSS).
        half = bytes_in_flight // 2
        floor = 2 * self.smss
        return half if half > floor else floor

    def on_congestion_event(self, *, bytes_in_flight: int, now: float) -> None:
        """Halve the window on entering SACK recovery (RFC 6675 §5: ssthresh = cwnd = flight/2)."""
        self._rto_pending = False
        self.ssthresh = self._halved_flight(bytes_in_flight)
        self.cwnd = self.ssthresh
        self._ca_acked = 0

    def on_retransmission_timeout(self, *, bytes_in_flight: int, now: float) -> None:
        """Collapse to the loss window of one SMSS (RFC 5681 §3.1).

        ssthresh is halved from the flight size only on the first RTO; while the retransmitted
        data times out again it is held constant, as RFC 5681 §3.1 requires.
        """
        if not self._rto_pending:
            self.ssthresh = self._halved_flight(bytes_in_flight)
            self._rto_pending = True
        self.cwnd = self.smss  # RFC 5681 §3.1: loss window LW = 1 SMSS
        self._ca_acked = 0

    def on_idle_restart(self, *, now: float) -> None:
        """Restart window after idle: cwnd = min(cwnd, IW) (RFC 5681 §4.1)."""
        if self.cwnd > self.initial_window:
            self.cwnd = self.initial_window
            self._ca_acked = 0

    def on_persistent_congestion(self, *, now: float) -> None:
        """cwnd = min(cwnd, kMinimumWindow = 2 SMSS) (RFC 9002 §7.6.2); the RTO that found
        it has already set ssthresh."""
        floor = 2 * self.smss
        if self.cwnd > floor:
            self.cwnd = floor
        self._ca_acked = 0

    def on_rtt_sample(self, rtt: float, *, now: float) -> None:
        """NewReno does not use RTT samples."""

    def on_bytes_lost(self, lost: int, *, now: float) -> None:
        """NewReno reacts once per recovery, in ``on_congestion_event``."""


def _model_based(*, max_payload: int, initial_window_segments: int = _IW10_SEGMENTS) -> ModelBased:
    return ModelBased(
        max_payload=max_payload,
        initial_window=initial_window(max_payload, initial_window_segments),
    )


def _ledbat(*, max_payload: int, initial_window_segments: int = _IW10_SEGMENTS) -> Ledbat:
    return Ledbat(
        max_payload=max_payload,
        initial_window=initial_window(max_payload, initial_window_segments),
    )


def _cubic(*, max_payload: int, initial_window_segments: int = _IW10_SEGMENTS) -> Cubic:
    return Cubic(
        max_payload=max_payload,
        initial_window=initial_window(max_payload, initial_window_segments),
    )


CONTROLLERS: dict[str, Callable[..., CongestionController]] = {
    "newreno": NewReno,
    "bbr": _model_based,  # cc_model.py
    "cubic": _cubic,  # cc_cubic.py
    "ledbat": _ledbat,  # cc_ledbat.py
}
"""Known controllers by ``Config.congestion_control`` name; extended only by editing this dict."""


def make_controller(
    name: str, *, max_payload: int, initial_window_segments: int
) -> CongestionController:
    """Build the controller called ``name``; ``ValueError`` lists the known names otherwise."""
    factory = CONTROLLERS.get(name)
    if factory is None:
        known = ", ".join(sorted(CONTROLLERS))
        raise ValueError(f"unknown congestion controller {name!r} (known: {known})")
    return factory(max_payload=max_payload, initial_window_segments=initial_window_segments)
