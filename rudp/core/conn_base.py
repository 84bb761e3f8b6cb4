"""Shared state of a connection: its fields, read-only views, events and state changes.

The connection is built as a chain of layers, one job per module, each adding methods to the
one before: ``ConnectionBase`` -> path validation -> handshake -> receive path -> timers ->
transmit path -> ``Connection`` (the application calls). The public class is
``rudp.core.connection.Connection``.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Protocol

from ..config import Config
from ..wire.datagram import DATAGRAM_HEADER_SIZE
from ..wire.packet import (
    HEADER_SIZE,
    Cookie,
    Reset,
    ResetReason,
)
from ..wire.ranges import RangeSet
from ..wire.seqnum import MASK32
from .congestion import CongestionController
from .datagrams import DatagramChannel
from .events import (
    ConnectionTerminated,
    EndOfStream,
)
from .pacer import Pacer
from .rack import Rack
from .ratelimit import TokenBucket
from .recvbuf import RecvBuffer
from .rtt import RttEstimator
from .sendbuf import SendBuffer
from .state import SYNCHRONIZED, ConnState, StateMachine, Trigger
from .stats import ConnectionStats
from .xmitlog import XmitLog

__all__ = [
    "DATA_MARK",
    "PAWS_IDLE",
    "Addr",
    "ConnectionBase",
    "Owner",
    "reason_name",
    "timestamp",
]

Addr = tuple[Any, ...]

# PAWS is not applied to a connection idle this long: 2**31 microsecond ticks is ~35 min
# (RFC 7323 §5.5 uses 24 days for 1 ms ticks).
PAWS_IDLE = 1000.0
# A DATAGRAM packet may be as large as a DATA packet with a full payload and no SACK blocks.
_DATAGRAM_ROOM = HEADER_SIZE - DATAGRAM_HEADER_SIZE
DATA_MARK = object()  # queued where a DataReceived event belongs in the event order


class Owner(Protocol):
    """What a connection needs from its endpoint: to be flushed and to have events read, and,
    for path validation, entropy, a datagram to an address other than its peer's, and to hear
    that the peer's address changed."""

    def _mark_dirty(self, conn: Any) -> None: ...

    def _mark_events(self, conn: Any) -> None: ...

    def _random_bytes(self, n: int) -> bytes: ...

    def _send_to(self, datagram: bytes, addr: Addr) -> None: ...

    def _peer_address_changed(self, conn: Any, old: Addr) -> None: ...


class ConnectionBase:
    """Fields every layer shares; created by ``Endpoint``, never directly."""

    def __init__(
        self,
        owner: Owner,
        config: Config,
        *,
        local_cid: int,
        peer_addr: Addr,
        is_client: bool,
        local_isn: int,
    ) -> None:
        self._owner = owner
        self.config = config
        self.stats = ConnectionStats()
        self.local_cid = local_cid
        self.peer_cid = 0
        self.peer_addr = peer_addr
        self.is_client = is_client
        self._sm = StateMachine()
        self._synchronized = False
        self._awaiting_confirm = False  # client: echo sent, no segment from the server yet
        self._events: deque[Any] = deque()
        self._data_marked = False
        self._terminated = False
        self._app_closed = False  # close() called: incoming data is discarded
        self._peer_closed_first = False
        self._write_paused = False
        self.rtt = RttEstimator(config)
        self.cc: CongestionController | None = None
        self._smss = config.max_payload
        self._sb = SendBuffer(local_isn, smss=config.max_payload, dupthresh=config.dupack_threshold)
        self._rb: RecvBuffer | None = None
        self._dg = DatagramChannel(
            send_queue=config.datagram_send_queue, recv_queue=config.datagram_recv_queue
        )
        self._local_isn = local_isn
        self._peer_wscale = 0
        self.peer_window = 0
        self._max_peer_window = 0
        self._wl1 = 0
        self._wl2 = 0
        self._dupacks = 0
        # Proportional Rate Reduction state (RFC 6937): delivered, sent, FlightSize at entry.
        self._prr_delivered = 0
        self._prr_out = 0
        self._recover_fs = 1
        self._rto_count = 0
        self._ts_recent = 0
        self._ts_recent_time = 0.0
        self._last_tsval = 0  # the newest TSval sent: TSvals never go backwards
        self._last_ack_sent = 0
        self._last_recv = 0.0
        self._last_data_sent = 0.0
        self._unacked_segments = 0
        self._ack_now = False
        self._ping = False
        self._control: list[bytes] = []
        # Deadlines (absolute, None when not armed).
        self._rto_deadline: float | None = None
        self._pacing_deadline: float | None = None  # the pacer's next credit, data waiting
        self._pacer = Pacer(config.max_payload)
        # Loss detection (RFC 8985): first-transmission times, RACK state and its timer.
        self._xmit = XmitLog()
        self._rack = Rack()
        self._rack_deadline: float | None = None
        self._last_xmit = 0.0  # when DATA (new or retransmitted) last left
        # Tail-loss probe (RFC 8985 §7): its deadline, a probe due at the next flush, and the
        # outstanding probe's end and TSval (0 for a probe of new data).
        self._tlp_deadline: float | None = None
        self._tlp_due = False
        self._tlp_end: int | None = None
        self._tlp_seq = 0  # where the probe's retransmitted range begins
        self._tlp_tsval = 0
        # Spurious-recovery undo (RFC 3522, RFC 3708, RFC 4015): the controller's state from
        # before the episode's reduction, the first retransmission's TSval and sequence
        # number, and the episode's retransmitted bytes not yet reported as duplicates.
        self._undo_active = False
        self._undo_state: object = None
        self._undo_tsval = 0  # 0: nothing retransmitted yet; -1: timestamps decided
        self._undo_seq = 0
        self._undo_ranges = RangeSet()
        self._undo_blocked = False  # a real loss was shown: the episode cannot be undone
        self._undo_sacked = 0  # segments SACKed when the episode began (reordering degree)
        self._persistent_declared = False
        self._ack_deadline: float | None = None
        self._persist_deadline: float | None = None
        self._persist_interval = 0.0
        self._probes_unanswered = 0
        self._keepalive_sent = 0
        self._close_deadline: float | None = None  # TIME_WAIT or FIN_WAIT_2
        self._hs_deadline: float | None = None  # next handshake retransmission
        self._hs_expire: float | None = None  # overall handshake timeout
        self._hs_retries = 0
        self._hs_rto = config.initial_rto
        self._hs_cookie: Cookie | None = None
        self._challenge_bucket: TokenBucket | None = None  # made on first use

    # --- read-only views ----------------------------------------------------------------
    @property
    def state(self) -> ConnState:
        return self._sm.state

    @property
    def bytes_in_flight(self) -> int:
        """RFC 6675 pipe: bytes estimated to be in the network."""
        return self._sb.pipe

    @property
    def cwnd(self) -> int:
        return self.cc.cwnd if self.cc is not None else 0

    @property
    def srtt(self) -> float | None:
        return self.rtt.srtt

    @property
    def send_buffer_size(self) -> int:
        """Bytes written and not yet acknowledged by the peer."""
        return self._sb.size

    @property
    def bytes_acked(self) -> int:
        """Bytes of the stream the peer has acknowledged (the FIN not counted)."""
        sb = self._sb
        return (sb.snd_una if sb.snd_una < sb.end_seq else sb.end_seq) - self._local_isn

    @property
    def bytes_written(self) -> int:
        """Bytes the application has queued on the stream since the connection began."""
        return self._sb.end_seq - self._local_isn

    @property
    def max_datagram_payload(self) -> int:
        """The largest unreliable datagram payload: what fits a full-sized packet."""
        return self._smss + _DATAGRAM_ROOM

    @property
    def max_payload(self) -> int:
        """Payload bytes per segment agreed with the peer."""
        return self._smss

    @property
    def dupthresh(self) -> int:
        """Duplicate ACKs (or SACKed segments) that mean loss: ``Config.dupack_threshold``,
        raised to the reordering the path has shown."""
        return self._sb.dupthresh

    @property
    def reordering_window_multiplier(self) -> int:
        """RACK.reo_wnd_mult (RFC 8985 §6.2): the reordering window in quarters of min RTT."""
        return self._rack.reo_wnd_mult

    @property
    def probe_outstanding(self) -> bool:
        """A tail-loss probe is in flight: it may take pipe one segment past cwnd
        (RFC 8985 §7.3 sends it whatever the window says)."""
        return self._tlp_end is not None

    @property
    def is_terminated(self) -> bool:
        return self._terminated

    # --- state changes ----------------------------------------------------------------------
    def _transition(self, trigger: Trigger) -> ConnState:
        state = self._sm.process(trigger)
        self._synchronized = state in SYNCHRONIZED  # read per datagram: keep it a bool
        return state

    def _on_fin_received(self, now: float) -> None:
        if not self._sb.fin_queued:
            self._peer_closed_first = True
        if not self._app_closed:
            self._push_event(EndOfStream())
        new = self._transition(Trigger.RECV_FIN)
        if new is ConnState.TIME_WAIT:
            self._enter_time_wait(now)

    def _on_fin_acked(self, now: float) -> None:
        state = self._sm.state
        if state not in (ConnState.FIN_WAIT_1, ConnState.CLOSING, ConnState.LAST_ACK):
            return
        new = self._transition(Trigger.FIN_ACKED)
        if new is ConnState.FIN_WAIT_2:
            if self._app_closed:
                self._close_deadline = now + self.config.fin_wait2_timeout  # tcp_fin_timeout
        elif new is ConnState.TIME_WAIT:
            self._enter_time_wait(now)
        elif new is ConnState.CLOSED:
            self._terminate("closed", None, self._peer_closed_first)

    def _enter_time_wait(self, now: float) -> None:
        self._terminate("closed", None, self._peer_closed_first)
        # Linger through the peer's first two FIN retransmissions (1 and 3 RTOs after the
        # original), so a lost last ACK is repaired (cf. RFC 9000 §10.2: 3 PTOs). Shorter, a
        # client endpoint closes its socket first and the peer's FIN retransmits into the void.
        self._close_deadline = now + max(self.config.time_wait, 4.0 * self.rtt.base_rto)

    def _terminate(self, reason: str, error: Exception | None, by_peer: bool) -> None:
        if self._terminated:
            return
        self._terminated = True
        self._dg.clear()
        self._push_event(ConnectionTerminated(reason=reason, error=error, by_peer=by_peer))
        self._rto_deadline = self._persist_deadline = self._ack_deadline = None
        self._pacing_deadline = self._rack_deadline = self._tlp_deadline = None
        self._hs_deadline = self._hs_expire = None
        self._owner._mark_dirty(self)

    def _fail(self, error: Exception, reason: str, now: float, *, by_peer: bool = False) -> None:
        if self._sm.state is not ConnState.CLOSED:
            self._transition(Trigger.RESET if by_peer else Trigger.FAIL)
        self._close_deadline = None
        self._terminate(reason, error, by_peer)

    def _push_event(self, event: Any) -> None:
        self._events.append(event)
        self._owner._mark_events(self)

    def _queue_reset(self, reason: ResetReason) -> None:
        reset = Reset(cid=self.peer_cid, seq=self._sb.snd_nxt & MASK32, reason=int(reason))
        self._control.append(reset.encode())
        self._owner._mark_dirty(self)

    def _challenge_ack(self, now: float) -> None:
        """Answer a segment we do not act on with an ACK, so that a genuine peer that lost
        track of us learns where we are; at most ``challenge_ack_rate`` per second, so that a
        blind attacker cannot make us send at its rate (RFC 5961 §7)."""
        bucket = self._challenge_bucket
        if bucket is None:
            rate = self.config.challenge_ack_rate
            bucket = self._challenge_bucket = TokenBucket(rate=rate, burst=max(1.0, rate))
        if bucket.allow(now):
            self.stats.challenge_acks_sent += 1
            self._ack_now = True
            self._owner._mark_dirty(self)
        else:
            self.stats.challenge_acks_limited += 1

    def challenge_peer(self, *, now: float) -> None:
        """An INIT came from our peer's address: if the peer restarted, the challenge ACK
        draws an UNKNOWN_CONNECTION reset that ends this stale connection (RFC 5961 §4)."""
        if self._synchronized and not self._terminated:
            self._challenge_ack(now)

    def _flight_size(self) -> int:
        """FlightSize for the loss response: data sent and not cumulatively acknowledged
        (RFC 5681 §3.1 eq. 4), but no more than cwnd. In a long recovery the pipe-limited
        sender keeps sending new data while holes stay open, so what is outstanding grows far
        past what the path holds; halving that raised ssthresh from one recovery to the next
        (a lone CUBIC flow on a 10 Mbit/s, 40 ms path climbed to a 340 kB window over a
        100 kB path). Linux and QUIC (RFC 9002 §7.3.2) reduce from cwnd."""
        outstanding = self._sb.outstanding
        cc = self.cc
        if cc is not None and cc.cwnd < outstanding:
            return cc.cwnd
        return outstanding

    def _tsval(self, now: float) -> int:
        """The TSval for a segment sent at ``now``, never older than the last one sent.

        RFC 7323 §5.3 PAWS drops a segment whose TSval is older than the newest in-order one,
        so a clock that steps back (an event loop that acts at a timer's deadline and then at
        its own coarser time: uvloop's clock ticks in milliseconds) would make the receiver
        drop new data as old duplicates; each such drop looked like a loss and cut the window.
        """
        tsval = timestamp(now)
        last = self._last_tsval
        if last and ((tsval - last) & MASK32) >= 0x80000000:
            return last
        self._last_tsval = tsval
        return tsval


def timestamp(now: float) -> int:
    """A 32-bit microsecond timestamp (RFC 7323 §3 TSval) from the caller's clock. Never 0:
    a TSecr of 0 means "no timestamp to echo"."""
    return (int(now * 1_000_000) & MASK32) or 1


def reason_name(reason: int) -> str:
    try:
        return ResetReason(reason).name.lower()
    except ValueError:
        return f"reason {reason}"
