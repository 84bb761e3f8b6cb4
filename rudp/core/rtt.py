"""Retransmission timer estimation (RFC 6298).

The estimator only does arithmetic. The caller owns the timer, applies Karn's rule (no sample
from a retransmitted segment unless timestamps disambiguate, RFC 6298 §3) and decides when a
timeout happened.
"""

from __future__ import annotations

from ..config import Config

__all__ = ["FALLBACK_RTO", "RttEstimator"]

_ALPHA = 0.125  # RFC 6298 §2.3: alpha = 1/8
_BETA = 0.25  # RFC 6298 §2.3: beta = 1/4
_K = 4.0  # RFC 6298 §2.2: K = 4
_INF = float("inf")

FALLBACK_RTO = 3.0
"""RTO once data starts when the handshake timed out and gave no sample (RFC 6298 §5 note)."""


class RttEstimator:
    """Smoothed RTT, RTT variance and the retransmission timeout of one connection.

    Every field is a plain attribute kept up to date on each input, because ``on_sample`` runs
    once per ACK and the sender reads ``rto`` whenever it re-arms the timer. Treat the attributes
    as read-only.
    """

    __slots__ = (
        "_granularity",
        "_max_rto",
        "_backoff",
        "_min_rto",
        "backoff_count",
        "base_rto",
        "latest_rtt",
        "min_rtt",
        "rto",
        "rttvar",
        "srtt",
    )

    srtt: float | None
    """Smoothed RTT in seconds; None until the first sample."""
    rttvar: float
    """RTT variance in seconds; 0.0 until the first sample."""
    min_rtt: float | None
    """Smallest sample seen, for loss detection (RFC 8985 reo_wnd, RFC 9002 §5.2)."""
    latest_rtt: float | None
    """Most recent sample."""
    base_rto: float
    """RTO without backoff, clamped to [min_rto, max_rto]."""
    rto: float
    """Current timeout: ``base_rto`` doubled once per backoff, clamped to [min_rto, max_rto]."""
    backoff_count: int
    """Timeouts since the last sample or ``reset_backoff``."""

    def __init__(self, config: Config) -> None:
        self._min_rto = config.min_rto
        self._max_rto = config.max_rto
        self._backoff = config.rto_backoff
        # The variance term never falls below G nor below rto_variance_floor (Linux: the
        # RTO is SRTT + max(4 RTTVAR, TCP_RTO_MIN)).
        self._granularity = max(config.clock_granularity, config.rto_variance_floor)
        self.srtt = None
        self.rttvar = 0.0
        self.min_rtt = None
        self.latest_rtt = None
        # RFC 6298 §2.1: before any sample, RTO = 1 s (Config.initial_rto).
        self.base_rto = self._clamp(config.initial_rto)
        self.rto = self.base_rto
        self.backoff_count = 0

    def __repr__(self) -> str:
        return (
            f"<RttEstimator srtt={self.srtt} rttvar={self.rttvar} rto={self.rto}"
            f" backoff={self.backoff_count}>"
        )

    def _clamp(self, value: float) -> float:
        # RFC 6298 §2.4 lower bound (Config.min_rto), §2.5 upper bound (Config.max_rto).
        if value < self._min_rto:
            return self._min_rto
        if value > self._max_rto:
            return self._max_rto
        return value

    def on_sample(self, rtt: float, *, per_rtt: int = 1) -> None:
        """Fold in one RTT measurement (seconds); negative or non-finite samples are ignored.

        ``per_rtt`` is how many samples a round trip brings (RFC 7323 Appendix G's
        ExpectedSamples). RTTVAR decays with beta / per_rtt, so it shrinks per round trip as
        RFC 6298 intends for one sample per RTT, but a deviation larger than RTTVAR enters
        with the full beta, and SRTT takes every sample with the full alpha (in the manner of
        Linux's mdev_max): with the plain gains on every ACK RTTVAR decayed to nothing within a
        round trip while a queue built, and with App. G's gains on both SRTT lagged a rising
        RTT, so either way the RTO fired before ACKs that were merely late.
        """
        if not 0.0 <= rtt < _INF:
            return
        self.latest_rtt = rtt
        if self.min_rtt is None or rtt < self.min_rtt:
            self.min_rtt = rtt
        srtt = self.srtt
        if srtt is None:
            # RFC 6298 §2.2: first sample.
            srtt = rtt
            rttvar = rtt * 0.5
        else:
            # RFC 6298 §2.3: RTTVAR uses the old SRTT, so it is updated first.
            diff = srtt - rtt
            if diff < 0.0:
                diff = -diff
            # RTTVAR rises at once but decays only per round trip; SRTT moves per sample.
            beta = _BETA if diff > self.rttvar else _BETA / per_rtt
            rttvar = (1.0 - beta) * self.rttvar + beta * diff
            srtt = (1.0 - _ALPHA) * srtt + _ALPHA * rtt
        self.srtt = srtt
        self.rttvar = rttvar
        # RFC 6298 §2.2-2.3: RTO = SRTT + max(G, K*RTTVAR), G raised to rto_variance_floor.
        variance = _K * rttvar
        if variance < self._granularity:
            variance = self._granularity
        self.base_rto = self._clamp(srtt + variance)
        # RFC 6298 §5.7: a new sample after backoff recomputes the RTO from scratch.
        self.rto = self.base_rto
        self.backoff_count = 0

    def on_timeout(self) -> None:
        """Back the timer off after it expired: RTO doubles (RFC 6298 §5.5; Config.rto_backoff)
        up to max_rto."""
        self.backoff_count += 1
        rto = self.rto * self._backoff
        self.rto = self._max_rto if rto > self._max_rto else rto

    def reset_backoff(self) -> None:
        """Return to the unbacked RTO, e.g. when new data is acknowledged without a sample."""
        self.backoff_count = 0
        self.rto = self.base_rto

    def on_handshake_timeout_fallback(self) -> None:
        """Apply RFC 6298 §5's last rule once data transfer starts after a retransmitted handshake.

        Without any RTT sample an RTO below 3 s is raised to 3 s (clamped to [min_rto, max_rto]),
        and the handshake's backoff is dropped. With a sample the estimate is kept as it is.
        """
        if self.srtt is not None:
            return
        base = self.base_rto if self.base_rto > FALLBACK_RTO else FALLBACK_RTO
        self.base_rto = self._clamp(base)
        self.rto = self.base_rto
        self.backoff_count = 0
