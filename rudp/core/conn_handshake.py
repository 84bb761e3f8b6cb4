"""The handshake of a connection: INIT and COOKIE-ECHO with retransmission, and set-up from
the peer's parameters (the stateless server side lives in ``endpoint.py``).
"""

from __future__ import annotations

from ..wire.packet import (
    HEADER_SIZE,
    Cookie,
    CookieEcho,
    Init,
)
from ..wire.seqnum import MASK32
from .congestion import make_controller
from .conn_base import timestamp
from .conn_path import PathLayer
from .events import (
    Connected,
)
from .recvbuf import RecvBuffer
from .state import ConnState, Trigger

__all__ = ["HandshakeLayer"]


class HandshakeLayer(PathLayer):
    """Client INIT/echo and server set-up."""

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
            tsval=self._tsval(now),
            pad_to=HEADER_SIZE + cfg.max_payload,  # RFC 9000 §8.1: room for the 3x reply budget
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
        self._awaiting_confirm = True
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
            tsval=self._tsval(now),
            # A repeated echo echoes no timestamp: the server's first RTT sample would include
            # our retransmission timeout (Karn's rule, RFC 6298 §3).
            tsecr=0 if self._hs_retries else self._ts_recent,
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
        self._pacer.smss = self._smss
        self._sb.set_dupthresh(cfg.dupack_threshold)
        self._rb = RecvBuffer(
            peer_isn,
            capacity=cfg.recv_buffer_size,
            max_payload=self._smss,
            window_scale=cfg.window_scale,
            max_pieces=cfg.max_reassembly_segments,
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
        self._sb.rack_enabled = cfg.rack  # log retransmissions for RACK (RFC 8985 §6.2)
        sample = (timestamp(now) - tsecr) & MASK32
        if tsecr and sample < 0x80000000:
            self.rtt.on_sample(sample / 1e6)
            self.cc.on_rtt_sample(sample / 1e6, now=now)
            self._rack.rtt = sample / 1e6  # RACK.rtt until data is delivered
        if self._hs_retries:
            # A lost handshake datagram: start with one segment (RFC 6928 §2, RFC 5681 §3.1).
            self.cc.cwnd = self._smss
