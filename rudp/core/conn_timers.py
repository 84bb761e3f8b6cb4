"""Timers: one folded deadline (RTO, pacing, delayed ACK, persist, keepalive, idle, handshake,
FIN_WAIT_2, TIME_WAIT) and what happens when each comes due.
"""

from __future__ import annotations

from ..errors import (
    ConnectionTimeout,
    HandshakeTimeout,
)
from .conn_receive import ReceiveLayer
from .sendbuf import RTO_RECOVERY
from .state import RECEIVING, SYNCHRONIZED, ConnState, Trigger

__all__ = ["TimerLayer"]


class TimerLayer(ReceiveLayer):
    """Deadlines and their expiry."""

    # --- timers ---------------------------------------------------------------------------
    def get_timer(self) -> float | None:
        """The earliest armed deadline, or None."""
        deadline: float | None = None
        for value in (
            self._rto_deadline,
            self._tlp_deadline,
            self._rack_deadline,
            self._pacing_deadline,
            self._ack_deadline,
            self._persist_deadline,
            self._close_deadline,
            self._hs_deadline,
            self._hs_expire,
            self._liveness_deadline(),
            self._datagram_deadline(),
        ):
            if value is not None and (deadline is None or value < deadline):
                deadline = value
        return deadline

    def _datagram_horizon(self) -> float:
        """How long a sent datagram's bytes count against cwnd: one smoothed RTT."""
        srtt = self.rtt.srtt
        return srtt if srtt is not None else self.config.initial_rto

    def _datagram_deadline(self) -> float | None:
        """When the datagram charge on cwnd next shrinks, if something waits for window."""
        dg = self._dg
        if not dg.recent_bytes or self._terminated or not (dg.queued or self._sb.unsent):
            return None
        return dg.next_expiry(self._datagram_horizon())

    def _liveness_deadline(self) -> float | None:
        if self._terminated or self._sm.state not in SYNCHRONIZED:
            return None
        cfg = self.config
        deadline: float | None = None
        if cfg.idle_timeout is not None:
            deadline = self._last_recv + cfg.idle_timeout
        if cfg.keepalive_idle is not None and self._sm.state in RECEIVING:
            keep = (
                self._last_recv
                + cfg.keepalive_idle
                + self._keepalive_sent * (cfg.keepalive_interval)
            )
            if deadline is None or keep < deadline:
                deadline = keep
        return deadline

    def handle_timer(self, *, now: float) -> None:
        """Act on every deadline that is due; does nothing when none is."""
        cfg = self.config
        if self._close_deadline is not None and now >= self._close_deadline:
            self._close_deadline = None
            if self._sm.state is ConnState.FIN_WAIT_2:
                self._transition(Trigger.TIMER)
                self._terminate("fin_wait2_timeout", None, False)
            elif self._sm.state is ConnState.TIME_WAIT:
                self._transition(Trigger.TIMER)
            self._owner._mark_dirty(self)
        if self._terminated:
            return
        if self._hs_expire is not None and now >= self._hs_expire:
            self._fail(HandshakeTimeout("handshake timed out"), "handshake_timeout", now)
            return
        if self._hs_deadline is not None and now >= self._hs_deadline:
            self._hs_retries += 1
            if self._hs_retries > cfg.handshake_retries:
                self._fail(
                    HandshakeTimeout(f"no answer after {cfg.handshake_retries} retransmissions"),
                    "handshake_timeout",
                    now,
                )
                return
            self.stats.handshake_retransmits += 1
            self._hs_rto = min(self._hs_rto * 2, cfg.max_rto)  # backoff (RFC 6298 §5.5)
            if self._sm.state is ConnState.INIT_SENT:
                self._send_init(now)
            else:
                self._send_echo(now)
        liveness = self._liveness_deadline()
        if liveness is not None and now >= liveness:
            if cfg.idle_timeout is not None and now >= self._last_recv + cfg.idle_timeout:
                self._fail(ConnectionTimeout("idle timeout"), "idle_timeout", now)
                return
            if self._keepalive_sent >= cfg.keepalive_probes:
                self._fail(ConnectionTimeout("keepalive: peer not answering"), "keepalive", now)
                return
            self._keepalive_sent += 1
            self.stats.keepalives_sent += 1
            self._ping = True
            self._owner._mark_dirty(self)
        if self._rack_deadline is not None and now >= self._rack_deadline:
            self._on_rack_timer(now)
        if self._tlp_deadline is not None and now >= self._tlp_deadline:
            self._on_tlp_timer(now)  # re-arms the RTO behind the probe
        if self._rto_deadline is not None and now >= self._rto_deadline:
            self._on_rto(now)
            if self._terminated:
                return
        if self._persist_deadline is not None and now >= self._persist_deadline:
            if self._probes_unanswered >= cfg.max_retransmits:
                self._fail(ConnectionTimeout("zero-window probes unanswered"), "persist", now)
                return
            self._probes_unanswered += 1
            self.stats.window_probes_sent += 1
            self._ping = True
            # Probe backoff (RFC 9293 §3.8.6.1), bounded by persist_max.
            self._persist_interval = min(self._persist_interval * 2, cfg.persist_max)
            self._persist_deadline = now + self._persist_interval
            self._owner._mark_dirty(self)
        if self._pacing_deadline is not None and now >= self._pacing_deadline:
            self._pacing_deadline = None
            self._owner._mark_dirty(self)  # the pacer has credit again: flush sends
        datagram_due = self._datagram_deadline()
        if datagram_due is not None and now >= datagram_due:
            self._owner._mark_dirty(self)  # flush expires the charge and sends what now fits
        if self._ack_deadline is not None and now >= self._ack_deadline:
            self._ack_deadline = None
            self._ack_now = True
            self._owner._mark_dirty(self)

    def _on_rto(self, now: float) -> None:
        sb = self._sb
        cc = self.cc
        if not sb.outstanding or cc is None:
            self._rto_deadline = None
            return
        self._rto_count += 1
        if self._rto_count > self.config.max_retransmits:
            self._fail(
                ConnectionTimeout(f"no ACK after {self.config.max_retransmits} retransmissions"),
                "retransmission_limit",
                now,
            )
            return
        self.stats.rto_timeouts += 1
        self._begin_undo_episode()
        cc.on_retransmission_timeout(bytes_in_flight=self._flight_size(), now=now)
        self._check_persistent_congestion(now)
        self.rtt.on_timeout()
        if sb.recovery != RTO_RECOVERY:
            self.stats.recoveries += 1
        sb.enter_recovery(RTO_RECOVERY)
        self._dupacks = 0
        self._tlp_deadline = self._rack_deadline = None
        self._tlp_end = None
        self._tlp_due = False
        sb.set_dupthresh(self.config.dupack_threshold)  # reordering estimates start over
        self._rto_deadline = now + self.rtt.rto  # RFC 6298 §5.6
        self._owner._mark_dirty(self)
