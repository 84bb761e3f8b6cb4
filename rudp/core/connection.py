"""One reliable connection, sans-I/O: the coordinator of the send and receive sides.

Inputs come from the owning ``Endpoint`` (datagrams, timers) and from the application
(``send``, ``send_eof``, ``close``, ``abort``, ``consume``); every input that depends on time
takes ``now``. Output is pulled: the endpoint drains datagrams with ``flush`` and events with
``next_event``; ``get_timer`` folds every deadline (handshake, RTO, delayed ACK, persist,
keepalive, idle, FIN_WAIT_2, TIME_WAIT) into one.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Protocol

from ..config import Config
from ..errors import (
    ConnectionRefused,
    ConnectionReset,
    ConnectionTimeout,
    DecodeError,
    HandshakeTimeout,
    InvalidStateError,
    SendBufferFull,
)
from ..wire.packet import (
    SEGMENT,
    Cookie,
    CookieEcho,
    Flags,
    Init,
    PacketType,
    Reset,
    ResetReason,
    pack_segment,
    parse_segment,
)
from ..wire.seqnum import MASK32, seq_lt, unwrap
from . import recvbuf as rx
from .congestion import CongestionController, make_controller
from .events import (
    Connected,
    ConnectionTerminated,
    DataReceived,
    EndOfStream,
    Event,
    SendBufferLow,
)
from .recvbuf import RecvBuffer
from .rtt import RttEstimator
from .sendbuf import FAST_RECOVERY, RTO_RECOVERY, SendBuffer
from .state import RECEIVING, SENDABLE, SYNCHRONIZED, ConnState, StateMachine, Trigger
from .stats import ConnectionStats

__all__ = ["Connection"]

Addr = tuple[Any, ...]

_DATA = int(PacketType.DATA)
_ACK = int(PacketType.ACK)
_FIN = int(Flags.FIN)
_PING = int(Flags.PING)
_DSACK = int(Flags.DSACK)
_HEADER = SEGMENT.size
# PAWS is not applied to a connection idle this long: 2**31 microsecond ticks is ~35 min
# (RFC 7323 §5.5 uses 24 days for 1 ms ticks).
_PAWS_IDLE = 1000.0
_DATA_MARK = object()  # queued where a DataReceived event belongs in the event order


class Owner(Protocol):
    """What a connection needs from its endpoint: to be flushed and to have events read."""

    def _mark_dirty(self, conn: Connection) -> None: ...

    def _mark_events(self, conn: Connection) -> None: ...


class Connection:
    """The sans-I/O engine of one connection. Created by ``Endpoint``, never directly."""

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
        self._local_isn = local_isn
        self._peer_wscale = 0
        self.peer_window = 0
        self._max_peer_window = 0
        self._wl1 = 0
        self._wl2 = 0
        self._dupacks = 0
        self._retransmit_head = False
        self._rto_count = 0
        self._ts_recent = 0
        self._ts_recent_time = 0.0
        self._last_ack_sent = 0
        self._last_recv = 0.0
        self._last_data_sent = 0.0
        self._unacked_segments = 0
        self._ack_now = False
        self._ping = False
        self._control: list[bytes] = []
        # Deadlines (absolute, None when not armed).
        self._rto_deadline: float | None = None
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
    def max_payload(self) -> int:
        """Payload bytes per segment agreed with the peer."""
        return self._smss

    @property
    def is_terminated(self) -> bool:
        return self._terminated

    # --- handshake ------------------------------------------------------------------------
    def start_client(self, *, now: float) -> None:
        """Send INIT (called by ``Endpoint.connect``)."""
        self._transition(Trigger.CONNECT)
        self._hs_expire = now + self.config.handshake_timeout
        self._send_init(now)

    def _send_init(self, now: float) -> None:
        cfg = self.config
        init = Init(
            client_cid=self.local_cid,
            client_isn=self._local_isn & MASK32,
            max_payload=cfg.max_payload,
            window_scale=cfg.window_scale,
            window=cfg.recv_buffer_size,
            tsval=_ts(now),
            pad_to=_HEADER + cfg.max_payload,  # RFC 9000 §8.1: room for the 3x reply budget
        )
        self._control.append(init.encode())
        self._hs_deadline = now + self._hs_rto
        self._owner._mark_dirty(self)

    def receive_cookie(self, cookie: Cookie, *, now: float) -> None:
        """A COOKIE answered our INIT: set up, report ``Connected`` and echo it."""
        if self.state is not ConnState.INIT_SENT:
            self.stats.dropped["unexpected_cookie"] += 1
            return
        if cookie.client_isn != self._local_isn & MASK32:
            self.stats.dropped["bad_cookie_reply"] += 1
            return
        self._last_recv = now
        self._hs_cookie = cookie
        self.peer_cid = cookie.server_cid
        self._setup_peer(
            peer_isn=cookie.server_isn,
            max_payload=cookie.max_payload,
            window_scale=cookie.window_scale,
            window=cookie.window,
            tsval=cookie.tsval,
            tsecr=cookie.tsecr,
            now=now,
        )
        self._transition(Trigger.RECV_COOKIE)
        self._push_event(Connected())
        self._hs_retries = 0
        self._hs_rto = self.rtt.rto
        self._send_echo(now)

    def _send_echo(self, now: float) -> None:
        cookie = self._hs_cookie
        if cookie is None:  # pragma: no cover - guarded by state
            return
        echo = CookieEcho(
            server_cid=cookie.server_cid,
            client_cid=self.local_cid,
            tsval=_ts(now),
            tsecr=self._ts_recent,
            cookie=cookie.cookie,
        )
        self._control.append(echo.encode())
        self._hs_deadline = now + self._hs_rto
        self._owner._mark_dirty(self)

    def start_server(
        self,
        *,
        peer_cid: int,
        peer_isn: int,
        max_payload: int,
        window_scale: int,
        window: int,
        tsval: int,
        tsecr: int,
        now: float,
    ) -> None:
        """A valid COOKIE-ECHO created this connection: confirm it with an ACK."""
        self.peer_cid = peer_cid
        self._last_recv = now
        self._setup_peer(
            peer_isn=peer_isn,
            max_payload=max_payload,
            window_scale=window_scale,
            window=window,
            tsval=tsval,
            tsecr=tsecr,
            now=now,
        )
        self._transition(Trigger.ACCEPT_ECHO)
        self._push_event(Connected())
        self._ack_now = True
        self._owner._mark_dirty(self)

    def echo_repeated(self, *, now: float) -> None:
        """The client repeated its echo: our confirmation was lost, send another."""
        self._last_recv = now
        self._ack_now = True
        self._owner._mark_dirty(self)

    def _setup_peer(
        self,
        *,
        peer_isn: int,
        max_payload: int,
        window_scale: int,
        window: int,
        tsval: int,
        tsecr: int,
        now: float,
    ) -> None:
        cfg = self.config
        self._smss = min(cfg.max_payload, max_payload)
        self._sb.smss = self._smss
        self._sb.set_dupthresh(cfg.dupack_threshold)
        self._rb = RecvBuffer(
            peer_isn,
            capacity=cfg.recv_buffer_size,
            max_payload=self._smss,
            window_scale=cfg.window_scale,
        )
        self._last_ack_sent = peer_isn
        self._peer_wscale = window_scale
        self.peer_window = self._max_peer_window = window
        self._wl1 = peer_isn
        self._wl2 = self._local_isn
        self._ts_recent = tsval
        self._ts_recent_time = now
        self.cc = make_controller(
            cfg.congestion_control,
            max_payload=self._smss,
            initial_window_segments=cfg.initial_window_segments,
        )
        sample = (_ts(now) - tsecr) & MASK32
        if tsecr and sample < 0x80000000:
            self.rtt.on_sample(sample / 1e6)
        if self._hs_retries:
            # A lost handshake datagram: start with one segment (RFC 6928 §2, RFC 5681 §3.1).
            self.cc.cwnd = self._smss

    # --- datagrams from the peer --------------------------------------------------------
    def receive_segment(self, data: bytes, *, now: float) -> None:
        """A DATA or ACK datagram addressed to this connection."""
        try:
            ptype, flags, window, _, seq32, ack32, tsval, tsecr, sacks, off = parse_segment(data)
        except DecodeError:
            self.stats.dropped["decode"] += 1
            return
        state = self._sm.state
        rb = self._rb
        if rb is None or state not in SYNCHRONIZED:
            self.stats.dropped["state"] += 1
            return
        stats = self.stats
        stats.datagrams_received += 1
        stats.bytes_received += len(data)
        # PAWS: drop an old duplicate whose timestamp went backwards (RFC 7323 §5.3).
        if seq_lt(tsval, self._ts_recent) and now - self._ts_recent_time < _PAWS_IDLE:
            stats.dropped["paws"] += 1
            self._ack_now = True
            self._owner._mark_dirty(self)
            return
        sb = self._sb
        ack = unwrap(ack32, sb.snd_una)
        if ack > sb.snd_nxt or ack < sb.snd_una - max(self._max_peer_window, 1 << 16):
            # Acknowledges what was never sent, or far too old (RFC 5961 §5.2): ACK, drop.
            stats.dropped["out_of_window"] += 1
            self._ack_now = True
            self._owner._mark_dirty(self)
            return
        self._last_recv = now
        self._probes_unanswered = 0
        self._keepalive_sent = 0
        if state is ConnState.COOKIE_ECHOED:
            self._transition(Trigger.RECV_CONFIRM)  # any segment confirms the echo
            self._hs_deadline = self._hs_expire = None
        seq = unwrap(seq32, rb.rcv_nxt)
        if seq <= self._last_ack_sent and not seq_lt(tsval, self._ts_recent):
            self._ts_recent = tsval  # RFC 7323 §4.3
            self._ts_recent_time = now
        payload_len = len(data) - off
        self._process_ack(ack, window, seq, sacks, flags, tsecr, payload_len, now)
        if ptype == _DATA:
            self._process_data(seq, data[off:], flags & _FIN, now)
        if flags & _PING:
            self._ack_now = True
        self._owner._mark_dirty(self)

    def _process_ack(
        self,
        ack: int,
        window: int,
        seg_seq: int,
        sacks: tuple[tuple[int, int], ...],
        flags: int,
        tsecr: int,
        payload_len: int,
        now: float,
    ) -> None:
        sb = self._sb
        cc = self.cc
        if cc is None:  # pragma: no cover - set up with the receive buffer
            return
        una = sb.snd_una
        pipe_before = sb.pipe
        # Window update only from a newer segment (RFC 9293 §3.10.7.4, SND.WL1/WL2).
        wnd = window << self._peer_wscale
        window_changed = False
        if seg_seq > self._wl1 or (seg_seq == self._wl1 and ack >= self._wl2):
            window_changed = wnd != self.peer_window
            self.peer_window = wnd
            self._wl1 = seg_seq
            self._wl2 = ack
            if wnd > self._max_peer_window:
                self._max_peer_window = wnd
        delivered = sb.on_ack(ack) if ack > una else 0
        newly_sacked = 0
        if sacks:
            start_index = 0
            if flags & _DSACK:
                self.stats.dsack_received += 1
                start_index = 1
            for left, right in sacks[start_index:]:
                start = unwrap(left, una)
                newly_sacked += sb.on_sack(start, start + ((right - left) & MASK32))
        if (delivered or newly_sacked) and tsecr:
            sample = (_ts(now) - tsecr) & MASK32
            if sample < 0x80000000:
                self.rtt.on_sample(sample / 1e6)  # RFC 7323 §4: unambiguous, no Karn needed
        if ack > una:
            self._dupacks = 0
            self._rto_count = 0
            # Restart the timer on new data acknowledged, stop it when all is (RFC 6298 §5.2-3).
            self._rto_deadline = now + self.rtt.rto if sb.outstanding else None
        elif sb.outstanding and not payload_len and (newly_sacked or not window_changed):
            self._dupacks += 1
            self.stats.dup_acks_received += 1
        if sb.recovery:
            if sb.snd_una >= sb.recovery_point:
                if sb.recovery == FAST_RECOVERY:
                    # Deflate any inflation on the full ACK (RFC 6582 §3.2 step 5, option 1).
                    cc.cwnd = min(cc.ssthresh, max(sb.pipe, self._smss) + self._smss)
                sb.exit_recovery()
            elif ack > una and sb.recovery == FAST_RECOVERY:
                sb.mark_head_lost()  # partial ACK: the next hole is lost too (RFC 6582 §3.2)
        if newly_sacked:
            sb.update_lost_edge()
        if not sb.recovery and sb.outstanding:
            if self._dupacks >= self.config.dupack_threshold or sb.lost_edge > sb.snd_una:
                # Fast retransmit and SACK-based recovery (RFC 5681 §3.2, RFC 6675 §5).
                cc.on_congestion_event(bytes_in_flight=self._flight_size(), now=now)
                sb.mark_head_lost()
                sb.enter_recovery(FAST_RECOVERY)
                self._retransmit_head = True  # whatever pipe says (RFC 6675 §5 step 4.3)
                self.stats.fast_retransmits += 1
                self.stats.recoveries += 1
        acked = delivered + newly_sacked
        if acked and sb.recovery != FAST_RECOVERY:
            cc.on_ack(acked, bytes_in_flight=pipe_before, now=now)
        if ack > una:
            if sb.fin_acked:
                self._on_fin_acked(now)
            if self._write_paused and sb.size <= self.config.send_buffer_low:
                self._write_paused = False
                self._push_event(SendBufferLow())

    def _process_data(self, seq: int, payload: bytes, fin: int, now: float) -> None:
        rb = self._rb
        if rb is None:  # pragma: no cover - set up before any segment is accepted
            return
        status = rb.receive(seq, payload, bool(fin))
        stats = self.stats
        if status & (rx.IN_ORDER | rx.FILLED_HOLE):
            stats.payload_bytes_received += len(payload)
            if self._app_closed:
                rb.consume(len(rb.take_ready()))  # nobody reads any more: discard
            elif not self._data_marked:
                self._data_marked = True
                self._push_event(_DATA_MARK)
        if status & rx.DUPLICATE:
            stats.duplicate_segments += 1
        if status & rx.OUT_OF_WINDOW:
            stats.dropped["out_of_window"] += 1
        if status & rx.AFTER_FIN:
            stats.dropped["after_fin"] += 1
        if status & rx.FIN_IN_ORDER:
            self._on_fin_received(now)
        if status & rx.ACK_NOW or self.config.ack_delay == 0:
            self._ack_now = True
        else:
            self._unacked_segments += 1
            if self._unacked_segments >= self.config.ack_every:
                self._ack_now = True  # at least every 2nd segment (RFC 5681 §4.2)
            elif self._ack_deadline is None:
                self._ack_deadline = now + self.config.ack_delay

    def receive_reset(self, reset: Reset, *, now: float) -> None:
        """A RESET for this connection: accepted only at the exact expected sequence number;
        one elsewhere in the window gets a challenge ACK (RFC 5961 §3.2)."""
        state = self._sm.state
        if self._terminated or state is ConnState.CLOSED:
            self.stats.dropped["state"] += 1
            return
        reason = reset.reason
        if state is ConnState.INIT_SENT:
            if reset.seq == self._local_isn & MASK32:
                self._fail(ConnectionRefused("connection refused by peer"), "refused", now)
            else:
                self.stats.dropped["out_of_window"] += 1
            return
        rb = self._rb
        if rb is None:  # pragma: no cover - synchronized states have one
            return
        seq = unwrap(reset.seq, rb.rcv_nxt)
        if state is ConnState.COOKIE_ECHOED and reason == ResetReason.UNKNOWN_CONNECTION:
            # Our data overtook the echo, or the echo was lost: keep echoing.
            self.stats.dropped["reset_before_confirm"] += 1
            return
        if seq == rb.rcv_nxt:
            if state is ConnState.COOKIE_ECHOED and reason == ResetReason.REFUSED:
                self._fail(ConnectionRefused("connection refused by peer"), "refused", now)
            else:
                self._fail(
                    ConnectionReset(f"connection reset by peer ({_reason_name(reason)})"),
                    "reset",
                    now,
                    by_peer=True,
                )
        elif rb.rcv_nxt < seq < rb.rcv_adv:
            self.stats.challenge_acks_sent += 1
            self._ack_now = True
            self._owner._mark_dirty(self)
        else:
            self.stats.dropped["out_of_window"] += 1

    # --- state changes ----------------------------------------------------------------------
    def _transition(self, trigger: Trigger) -> ConnState:
        return self._sm.process(trigger)

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
        self._close_deadline = now + self.config.time_wait

    def _terminate(self, reason: str, error: Exception | None, by_peer: bool) -> None:
        if self._terminated:
            return
        self._terminated = True
        self._push_event(ConnectionTerminated(reason=reason, error=error, by_peer=by_peer))
        self._rto_deadline = self._persist_deadline = self._ack_deadline = None
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

    # --- application calls -------------------------------------------------------------
    def send(self, data: bytes | bytearray | memoryview) -> None:
        """Queue bytes for the peer. Raises ``InvalidStateError`` once the sending side is
        closed, ``SendBufferFull`` past ``Config.send_buffer_max``."""
        if self._sm.state not in SENDABLE or self._sb.fin_queued:
            raise InvalidStateError(f"cannot send in state {self._sm.state.value}")
        if not data:
            return
        sb = self._sb
        if sb.size + len(data) > self.config.send_buffer_max:
            raise SendBufferFull(
                f"send buffer holds {sb.size} bytes; {len(data)} more exceed "
                f"send_buffer_max={self.config.send_buffer_max}"
            )
        sb.write(data)
        if sb.size > self.config.send_buffer_high:
            self._write_paused = True
        self._owner._mark_dirty(self)

    def send_eof(self) -> None:
        """Half-close: send FIN after the queued data; data from the peer still arrives."""
        state = self._sm.state
        if self._sb.fin_queued:
            return
        if state not in SENDABLE:
            raise InvalidStateError(f"cannot send EOF in state {state.value}")
        self._sb.queue_fin()
        self._transition(Trigger.SEND_FIN)
        self._owner._mark_dirty(self)

    def close(self, *, now: float) -> None:
        """Graceful close: FIN after the queued data; later incoming data is discarded."""
        if self._app_closed or self._terminated:
            self._app_closed = True
            return
        self._app_closed = True
        state = self._sm.state
        if state is ConnState.INIT_SENT:
            self._fail(
                ConnectionReset("connection closed before it was established"), "closed", now
            )
            return
        if self._rb is not None:
            pending = self._rb.take_ready()
            if pending:
                self._rb.consume(len(pending))
        if not self._sb.fin_queued and state in SENDABLE:
            self.send_eof()
        if self._sm.state is ConnState.FIN_WAIT_2:
            self._close_deadline = now + self.config.fin_wait2_timeout
        self._owner._mark_dirty(self)

    def abort(self, *, now: float) -> None:
        """Abortive close: send RESET and drop everything (``SO_LINGER`` 0)."""
        if self._terminated:
            return
        if self._sm.state in SYNCHRONIZED:
            self._queue_reset(ResetReason.ABORT)
        self._fail(ConnectionReset("connection aborted"), "aborted", now)

    def _queue_reset(self, reason: ResetReason) -> None:
        reset = Reset(cid=self.peer_cid, seq=self._sb.snd_nxt & MASK32, reason=int(reason))
        self._control.append(reset.encode())
        self._owner._mark_dirty(self)

    def consume(self, nbytes: int) -> None:
        """The application took ``nbytes`` of received data: reopen the window by that much."""
        rb = self._rb
        if rb is None:
            raise InvalidStateError("nothing was received yet")
        rb.consume(nbytes)
        if rb.window_update_due() and not self._terminated:
            self._ack_now = True  # tell the peer the window reopened
            self._owner._mark_dirty(self)

    def next_event(self) -> Event | None:
        """The next event, or None when there is none."""
        events = self._events
        while events:
            event = events.popleft()
            if event is _DATA_MARK:
                self._data_marked = False
                rb = self._rb
                data = rb.take_ready() if rb is not None else b""
                if data:
                    return DataReceived(data)
                continue
            if isinstance(event, Event):
                return event
        return None

    # --- timers ---------------------------------------------------------------------------
    def get_timer(self) -> float | None:
        """The earliest armed deadline, or None."""
        deadline: float | None = None
        for value in (
            self._rto_deadline,
            self._ack_deadline,
            self._persist_deadline,
            self._close_deadline,
            self._hs_deadline,
            self._hs_expire,
            self._liveness_deadline(),
        ):
            if value is not None and (deadline is None or value < deadline):
                deadline = value
        return deadline

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
        if self._ack_deadline is not None and now >= self._ack_deadline:
            self._ack_deadline = None
            self._ack_now = True
            self._owner._mark_dirty(self)

    def _flight_size(self) -> int:
        """FlightSize for the loss response (RFC 5681 §3.1 eq. 4): data sent and not yet
        acknowledged, less what the peer SACKed (it left the network), at most cwnd, so a
        long run of SACKed data behind a lost head does not inflate ssthresh."""
        flight = self._sb.outstanding - self._sb.sacked_bytes
        cwnd = self.cwnd
        return flight if flight < cwnd else cwnd

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
        cc.on_retransmission_timeout(bytes_in_flight=self._flight_size(), now=now)
        self.rtt.on_timeout()
        if sb.recovery != RTO_RECOVERY:
            self.stats.recoveries += 1
        sb.enter_recovery(RTO_RECOVERY)
        self._dupacks = 0
        self._rto_deadline = now + self.rtt.rto  # RFC 6298 §5.6
        self._owner._mark_dirty(self)

    # --- output -------------------------------------------------------------------------
    def flush(self, out: list[tuple[bytes, Addr]], *, now: float) -> None:
        """Append every datagram due now to ``out``."""
        addr = self.peer_addr
        stats = self.stats
        if self._control:
            for datagram in self._control:
                out.append((datagram, addr))
                stats.datagrams_sent += 1
                stats.bytes_sent += len(datagram)
            self._control.clear()
        if self._terminated and self._sm.state is not ConnState.TIME_WAIT:
            return
        rb = self._rb
        if rb is None or self._sm.state not in SYNCHRONIZED:
            return
        sent = self._send_data(out, now) if self._sm.state not in _NO_DATA else 0
        if not sent and (self._ack_now or self._ping):
            self._send_ack(out, now)

    def _send_data(self, out: list[tuple[bytes, Addr]], now: float) -> int:
        sb = self._sb
        cc = self.cc
        rb = self._rb
        if cc is None or rb is None:  # pragma: no cover - set up together
            return 0
        if not sb.unsent and sb.lost_edge <= max(sb.high_rxt, sb.snd_una):
            self._persist_deadline = None
            return 0
        smss = self._smss
        cfg = self.config
        if not sb.outstanding and now - self._last_data_sent > self.rtt.rto:
            cc.on_idle_restart(now=now)  # RFC 5681 §4.1 restart window
        addr = self.peer_addr
        stats = self.stats
        tsval = _ts(now)
        ack32 = rb.rcv_nxt & MASK32
        window = rb.window_field()
        sacks, dsack = self._sack_blocks()
        tsecr = self._ts_recent
        cid = self.peer_cid
        sent = 0
        view = sb.view()
        try:
            while True:
                room = cc.cwnd - sb.pipe
                retransmit = sb.peek_retransmission(smss)
                if retransmit is not None:
                    seq, end = retransmit
                    if self._retransmit_head:
                        # The first retransmission goes whatever pipe says (RFC 6675 §5 step
                        # 4.3); the window is inflated to cover it, as RFC 5681 §3.2 step 3
                        # inflates by the segments that left, so pipe <= cwnd still holds.
                        self._retransmit_head = False
                        if end - seq > room:
                            cc.cwnd += end - seq - room
                            room = end - seq
                    if end - seq > room:
                        if not (sb.fin_queued and end == sb.fin_seq + 1 and end - 1 - seq > 0):
                            break
                        if end - 1 - seq > room:
                            break
                        end -= 1  # the data now, its FIN once the window has room
                    sb.high_rxt = end
                    fin = sb.fin_queued and end > sb.fin_seq
                    stats.segments_retransmitted += 1
                    stats.bytes_retransmitted += end - seq
                else:
                    data_unsent = sb.end_seq - sb.snd_nxt
                    fin_only = data_unsent <= 0 and sb.unsent > 0
                    usable = sb.snd_una + self.peer_window - sb.snd_nxt
                    if fin_only:
                        n = 0
                    elif data_unsent <= 0 or usable <= 0:
                        break
                    else:
                        n = min(smss, data_unsent, usable)
                        if n < smss and sb.outstanding:
                            # Sender SWS avoidance (RFC 9293 §3.8.6.2.1) and Nagle (§3.7.4).
                            if n < data_unsent and n < self._max_peer_window // 2:
                                break
                            if n == data_unsent and cfg.nagle:
                                break
                    # The FIN occupies a sequence number of its own, counted in flight too;
                    # with no room for it, the data goes now and the FIN after an ACK.
                    fin_rides = sb.fin_queued and sb.snd_nxt + n == sb.fin_seq
                    if n > room or (fin_only and room < 1):
                        break
                    seq, end, fin_flag = sb.take_new(n, with_fin=n + fin_rides <= room)
                    fin = fin_flag
                    self._last_data_sent = now
                payload = sb.payload_view(view, seq, end)
                flags = (_FIN if fin else 0) | (_DSACK if dsack else 0)
                if self._ping:
                    flags |= _PING
                    self._ping = False
                length = _HEADER + 8 * len(sacks) + len(payload)
                buf = bytearray(length)
                offset = pack_segment(
                    buf, 0, _DATA, flags, window, cid, seq & MASK32, ack32, tsval, tsecr, sacks
                )
                buf[offset:] = payload
                out.append((bytes(buf), addr))
                stats.datagrams_sent += 1
                stats.bytes_sent += length
                stats.payload_bytes_sent += len(payload)
                sent += 1
                if sacks:
                    sacks, dsack = [], False  # SACK blocks ride on the first datagram only
                if self._rto_deadline is None:
                    self._rto_deadline = now + self.rtt.rto  # RFC 6298 §5.1
        finally:
            view.release()
        if sent:
            self._acked_now(rb)
        # Zero window with data waiting and nothing in flight: probe (RFC 9293 §3.8.6.1).
        if sb.unsent and not sb.outstanding and sb.snd_una + self.peer_window <= sb.snd_nxt:
            if self._persist_deadline is None:
                self._persist_interval = max(self.rtt.rto, cfg.min_rto)
                self._persist_deadline = now + self._persist_interval
        else:
            self._persist_deadline = None
        return sent

    def _send_ack(self, out: list[tuple[bytes, Addr]], now: float) -> None:
        rb = self._rb
        if rb is None:  # pragma: no cover - guarded by flush
            return
        sacks, dsack = self._sack_blocks()
        flags = (_DSACK if dsack else 0) | (_PING if self._ping else 0)
        self._ping = False
        length = _HEADER + 8 * len(sacks)
        buf = bytearray(length)
        pack_segment(
            buf,
            0,
            _ACK,
            flags,
            rb.window_field(),
            self.peer_cid,
            self._sb.snd_nxt & MASK32,
            rb.rcv_nxt & MASK32,
            _ts(now),
            self._ts_recent,
            sacks,
        )
        out.append((bytes(buf), self.peer_addr))
        stats = self.stats
        stats.datagrams_sent += 1
        stats.bytes_sent += length
        stats.acks_sent += 1
        if dsack:
            stats.dsack_sent += 1
        self._acked_now(rb)

    def _sack_blocks(self) -> tuple[list[tuple[int, int]], bool]:
        rb = self._rb
        if rb is None:  # pragma: no cover
            return [], False
        blocks, dsack = rb.sack_blocks(self.config.max_sack_blocks)
        return [(s & MASK32, e & MASK32) for s, e in blocks], dsack

    def _acked_now(self, rb: RecvBuffer) -> None:
        self._ack_now = False
        self._ack_deadline = None
        self._unacked_segments = 0
        self._last_ack_sent = rb.rcv_nxt


# States in which nothing new is sent: the handshake is not done, or we are only lingering.
_NO_DATA = frozenset({ConnState.TIME_WAIT, ConnState.FIN_WAIT_2})


def _ts(now: float) -> int:
    """A 32-bit microsecond timestamp (RFC 7323 §3 TSval) from the caller's clock. Never 0:
    a TSecr of 0 means "no timestamp to echo"."""
    return (int(now * 1_000_000) & MASK32) or 1


def _reason_name(reason: int) -> str:
    try:
        return ResetReason(reason).name.lower()
    except ValueError:
        return f"reason {reason}"
