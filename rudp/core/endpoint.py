"""One UDP socket's worth of connections, sans-I/O.

The endpoint demultiplexes datagrams by connection id, answers INIT statelessly with a cookie
(RFC 9260 §5.1.3, RFC 4987 §3.6), creates a connection only on a valid COOKIE-ECHO, keeps the
accept queue bounded by ``Config.backlog`` and the connection table by
``Config.max_connections``, limits the replies it sends without state per source prefix
(``ratelimit.py``), and folds every connection's deadline into one timer. Inputs take
``now``; output is pulled with ``datagrams_to_send``, ``next_event`` and ``get_timer``.
Randomness (connection ids, initial sequence numbers, cookie secrets, path challenges) comes
from the injected ``token_bytes``.
"""

from __future__ import annotations

import heapq
import struct
from collections import OrderedDict, deque
from collections.abc import Callable

from ..config import Config
from ..errors import DecodeError, TooManyConnections
from ..wire.packet import (
    Cookie,
    CookieEcho,
    PacketType,
    PathChallenge,
    PathResponse,
    Reset,
    ResetReason,
    encode_cookie,
    parse_init,
    parse_segment,
)
from .conn_base import Addr, timestamp
from .connection import Connection
from .cookie import CookieError, CookieJar
from .events import Event
from .ratelimit import PrefixRateLimiter
from .state import ConnState
from .stats import EndpointStats

__all__ = ["Endpoint"]

_PREFIX = struct.Struct("!BBHI")  # version|type, flags, u16, destination connection id
# What the server keeps of a handshake, inside the MACed cookie: client cid, client ISN,
# server cid, server ISN, client max payload, client window scale, client window.
_COOKIE_STATE = struct.Struct("!IIIIHBI")
_VERSION = 1
_DATA = int(PacketType.DATA)
_ACK = int(PacketType.ACK)
_INIT = int(PacketType.INIT)
_COOKIE = int(PacketType.COOKIE)
_ECHO = int(PacketType.COOKIE_ECHO)
_RESET = int(PacketType.RESET)
_DATAGRAM = int(PacketType.DATAGRAM)
_PATH_CHALLENGE = int(PacketType.PATH_CHALLENGE)
_PATH_RESPONSE = int(PacketType.PATH_RESPONSE)
# Before the peer's address is validated, send at most 3x what it sent (RFC 9000 §8.1).
_AMPLIFICATION_FACTOR = 3
# Connections of an address challenged per INIT from that address (restart detection).
_RESTART_CHALLENGES = 2


class Endpoint:
    """Connections sharing one local address; a server when ``listening``."""

    def __init__(
        self,
        config: Config | None = None,
        *,
        token_bytes: Callable[[int], bytes],
        listening: bool = False,
    ) -> None:
        self.config = config if config is not None else Config()
        self.stats = EndpointStats()
        self.listening = listening
        self._token_bytes = token_bytes
        self._cookies = CookieJar(
            token_bytes,
            lifetime=self.config.cookie_lifetime,
            rotation=self.config.cookie_secret_rotation,
        )
        cfg = self.config
        self._limiter: PrefixRateLimiter | None = None
        if cfg.stateless_reply_rate is not None:
            self._limiter = PrefixRateLimiter(
                rate=cfg.stateless_reply_rate,
                burst=cfg.stateless_reply_burst,
                max_prefixes=cfg.stateless_reply_prefixes,
                ipv4_prefix=cfg.stateless_reply_ipv4_prefix,
                ipv6_prefix=cfg.stateless_reply_ipv6_prefix,
            )
        self._window_scale = cfg.window_scale
        # Cookies that made a connection, until they expire: (server ISN, server cid) -> when.
        self._used_cookies: OrderedDict[int, float] = OrderedDict()
        self._conns: dict[int, Connection] = {}
        self._by_peer: dict[tuple[Addr, int], Connection] = {}
        # Peer address -> its connections, in the order they were last challenged.
        self._by_addr: dict[Addr, OrderedDict[Connection, None]] = {}
        self._accept_queue: deque[Connection] = deque()
        self._dirty: dict[Connection, None] = {}
        self._event_conns: deque[Connection] = deque()
        self._event_set: set[Connection] = set()
        self._out: list[tuple[bytes, Addr]] = []
        self._deadlines: dict[int, float] = {}
        self._heap: list[tuple[float, int, int]] = []
        self._heap_counter = 0

    # --- owner hooks used by Connection ------------------------------------------------
    def _mark_dirty(self, conn: Connection) -> None:
        self._dirty[conn] = None

    def _mark_events(self, conn: Connection) -> None:
        if conn not in self._event_set:
            self._event_set.add(conn)
            self._event_conns.append(conn)

    def _random_bytes(self, n: int) -> bytes:
        return self._token_bytes(n)

    def _send_to(self, datagram: bytes, addr: Addr) -> None:
        self._queue_reply(datagram, addr)

    def _peer_address_changed(self, conn: Connection, old: Addr) -> None:
        key = (old, conn.peer_cid)
        if self._by_peer.get(key) is conn:
            del self._by_peer[key]
        self._by_peer[(conn.peer_addr, conn.peer_cid)] = conn
        self._index_remove(conn, old)
        self._by_addr.setdefault(conn.peer_addr, OrderedDict())[conn] = None

    # --- application calls -------------------------------------------------------------
    @property
    def connections(self) -> dict[int, Connection]:
        """Live connections (and those lingering in TIME_WAIT) by local connection id."""
        return dict(self._conns)

    @property
    def reply_limiter(self) -> PrefixRateLimiter | None:
        """The per-prefix limiter of stateless replies (None when disabled)."""
        return self._limiter

    def connect(self, addr: Addr, *, now: float) -> Connection:
        """Open a connection to ``addr``: INIT goes out on the next ``datagrams_to_send``.
        Raises ``TooManyConnections`` when the endpoint holds ``max_connections``."""
        if len(self._conns) >= self.config.max_connections:
            raise TooManyConnections(
                f"endpoint holds {len(self._conns)} connections "
                f"(max_connections={self.config.max_connections})"
            )
        conn = Connection(
            self,
            self.config,
            local_cid=self._new_cid(),
            peer_addr=addr,
            is_client=True,
            local_isn=self._random32(),
        )
        self._register(conn)
        conn.start_client(now=now)
        return conn

    def accept(self) -> Connection | None:
        """Take the oldest established connection not yet accepted, if any."""
        if not self._accept_queue:
            return None
        self.stats.connections_accepted += 1
        return self._accept_queue.popleft()

    @property
    def accept_queue_length(self) -> int:
        return len(self._accept_queue)

    # --- input ----------------------------------------------------------------------------
    def receive_datagram(self, data: bytes, addr: Addr, *, now: float) -> None:
        """Handle one datagram from ``addr``. Never raises for what the network sends:
        anything unusable is dropped and counted in ``stats.dropped`` by reason."""
        stats = self.stats
        stats.datagrams_received += 1
        stats.bytes_received += len(data)
        if len(data) < 8:
            stats.dropped["decode"] += 1
            return
        first, _, _, cid = _PREFIX.unpack_from(data)
        if first >> 4 != _VERSION:
            stats.dropped["decode"] += 1
            return
        ptype = first & 0x0F
        if ptype == _DATA or ptype == _ACK:
            conn = self._conns.get(cid)
            if conn is None:
                self._unknown_connection(data, addr, now)
            elif conn.peer_addr == addr:
                conn.receive_segment(data, now=now)
            else:
                conn.receive_segment(data, now=now, new_addr=addr)  # path validation
            return
        if ptype == _INIT:
            self._on_init(data, addr, now)
            return
        if ptype == _DATAGRAM:
            conn = self._conns.get(cid)
            if conn is None:
                # Nothing to reset against: a DATAGRAM carries no acknowledgment to echo.
                stats.dropped["unknown_connection"] += 1
            elif conn.peer_addr != addr:
                stats.dropped["wrong_address"] += 1
            else:
                conn.receive_unreliable(data, now=now)
            return
        try:
            if ptype == _ECHO:
                self._on_echo(CookieEcho.decode(data), addr, now)
            elif ptype == _COOKIE:
                self._on_cookie(Cookie.decode(data), addr, now)
            elif ptype == _RESET:
                self._on_reset(Reset.decode(data), addr, now)
            elif ptype == _PATH_CHALLENGE:
                challenge = PathChallenge.decode(data)
                conn = self._conns.get(challenge.cid)
                if conn is None:
                    stats.dropped["unknown_connection"] += 1
                else:
                    conn.receive_path_challenge(challenge.token, addr, now=now)
            elif ptype == _PATH_RESPONSE:
                response = PathResponse.decode(data)
                conn = self._conns.get(response.cid)
                if conn is None:
                    stats.dropped["unknown_connection"] += 1
                else:
                    conn.receive_path_response(response.token, addr, now=now)
            else:
                stats.dropped["decode"] += 1
        except DecodeError:
            stats.dropped["decode"] += 1

    def _reply_allowed(self, addr: Addr, now: float) -> bool:
        """May a reply go to ``addr``, not validated by anything? (``stateless_reply_rate``)"""
        limiter = self._limiter
        if limiter is None or limiter.allow(addr, now):
            return True
        self.stats.dropped["rate_limited"] += 1
        return False

    def _unknown_connection(self, data: bytes, addr: Addr, now: float) -> None:
        """Tell the sender the connection it names does not exist here (TCP answers a segment
        for no connection with RST, RFC 9293 §3.10.7.1). The reset carries the id the sender
        used and echoes its ACK field, which the sender checks against its rcv_nxt."""
        stats = self.stats
        stats.dropped["unknown_connection"] += 1
        stats.stateless_bytes_received += len(data)
        if not self._reply_allowed(addr, now):
            return
        try:
            _, _, _, cid, _, ack, _, _, _, _ = parse_segment(data)
        except DecodeError:
            return
        reset = Reset(cid=cid, seq=ack, reason=int(ResetReason.UNKNOWN_CONNECTION)).encode()
        stats.stateless_bytes_sent += len(reset)
        self._send_stateless(reset, addr)

    def _on_init(self, data: bytes, addr: Addr, now: float) -> None:
        """An INIT: answer with a cookie and keep nothing. The rate limit comes first, so an
        INIT beyond it costs only the prefix lookup (no decode, no MAC)."""
        stats = self.stats
        stats.inits_received += 1
        stats.stateless_bytes_received += len(data)
        if not self._reply_allowed(addr, now):
            return
        try:
            client_cid, client_isn, max_payload, wscale, window, tsval = parse_init(data)
        except DecodeError:
            stats.dropped["decode"] += 1
            return
        peers = self._by_addr.get(addr)
        if peers:
            # Our peer at that address may have restarted: challenge its old connections. One
            # socket can carry many live connections, so only a few per INIT, taken in turn:
            # a client opening thousands from one port must not cost thousands of ACKs each.
            for _ in range(min(len(peers), _RESTART_CHALLENGES)):
                conn = peers.popitem(last=False)[0]
                peers[conn] = None
                conn.challenge_peer(now=now)
        if not self.listening:
            stats.dropped["not_listening"] += 1
            refuse = Reset(cid=client_cid, seq=client_isn, reason=ResetReason.REFUSED).encode()
            stats.stateless_bytes_sent += len(refuse)
            self._send_stateless(refuse, addr)
            return
        cfg = self.config
        server_cid = self._new_cid()
        server_isn = self._random32()
        state = _COOKIE_STATE.pack(
            client_cid, client_isn, server_cid, server_isn, max_payload, wscale, window
        )
        reply = encode_cookie(
            client_cid,
            server_cid,
            server_isn,
            client_isn,
            cfg.max_payload,
            self._window_scale,
            cfg.recv_buffer_size,
            timestamp(now),
            tsval,
            self._cookies.make(addr, state, now=now),
        )
        if len(reply) > _AMPLIFICATION_FACTOR * len(data):
            stats.dropped["amplification_limit"] += 1
            return
        stats.cookies_sent += 1
        stats.stateless_bytes_sent += len(reply)
        self._send_stateless(reply, addr)

    def _on_echo(self, echo: CookieEcho, addr: Addr, now: float) -> None:
        stats = self.stats
        used = self._used_cookies
        while used and next(iter(used.values())) <= now:
            used.popitem(last=False)  # past its lifetime: verify() refuses it anyway
        existing = self._conns.get(echo.server_cid)
        if (
            existing is not None
            and existing.peer_addr == addr
            and existing.peer_cid == echo.client_cid
        ):
            # Our confirmation was lost: confirm again, however old the cookie is by now. The
            # reply is smaller than the echo and goes to the connection's own peer.
            existing.echo_repeated(now=now)
            return
        try:
            state = self._cookies.verify(addr, echo.cookie, now=now)
        except CookieError as exc:
            stats.dropped[exc.reason] += 1
            return
        if len(state) != _COOKIE_STATE.size:
            stats.dropped["bad_cookie"] += 1
            return
        client_cid, client_isn, server_cid, server_isn, max_payload, wscale, window = (
            _COOKIE_STATE.unpack(state)
        )
        if server_cid != echo.server_cid or client_cid != echo.client_cid:
            stats.dropped["bad_cookie"] += 1
            return
        issue = (server_isn << 32) | server_cid  # 64 random bits, one cookie's own
        if issue in used:
            # Single use: a connection was made from it already and is gone (a late
            # retransmission, or a replay by someone who saw it).
            stats.dropped["cookie_reused"] += 1
            return
        if server_cid in self._conns:
            stats.dropped["cid_collision"] += 1
            return
        if not self.listening:
            stats.dropped["not_listening"] += 1
            return
        if len(self._conns) >= self.config.max_connections:
            # The cookie proved the address: refuse it plainly rather than let it retry.
            stats.dropped["connection_limit"] += 1
            refuse = Reset(cid=client_cid, seq=server_isn, reason=ResetReason.REFUSED)
            self._send_stateless(refuse.encode(), addr)
            return
        if len(self._accept_queue) >= self.config.backlog:
            stats.dropped["backlog_full"] += 1
            if self.config.backlog_overflow == "reset":
                refuse = Reset(cid=client_cid, seq=server_isn, reason=ResetReason.REFUSED)
                self._send_stateless(refuse.encode(), addr)
            return
        conn = Connection(
            self,
            self.config,
            local_cid=server_cid,
            peer_addr=addr,
            is_client=False,
            local_isn=server_isn,
        )
        self._register(conn)
        conn.start_server(
            peer_cid=client_cid,
            peer_isn=client_isn,
            max_payload=max_payload,
            window_scale=wscale,
            window=window,
            tsval=echo.tsval,
            tsecr=echo.tsecr,
            now=now,
        )
        self._by_peer[(addr, client_cid)] = conn
        self._accept_queue.append(conn)
        stats.echoes_accepted += 1
        if len(used) >= self.config.max_connections:
            used.popitem(last=False)
        used[issue] = now + self.config.cookie_lifetime + 1.0  # +1 s: verify()'s future slack

    def _on_cookie(self, cookie: Cookie, addr: Addr, now: float) -> None:
        conn = self._conns.get(cookie.client_cid)
        if conn is None or not conn.is_client or conn.peer_addr != addr:
            self.stats.dropped["unknown_connection"] += 1
            return
        conn.receive_cookie(cookie, now=now)
        if conn.peer_cid:
            self._by_peer[(conn.peer_addr, conn.peer_cid)] = conn

    def _on_reset(self, reset: Reset, addr: Addr, now: float) -> None:
        if reset.reason == ResetReason.UNKNOWN_CONNECTION:
            conn = self._by_peer.get((addr, reset.cid))
        else:
            conn = self._conns.get(reset.cid)
            if conn is not None and conn.peer_addr != addr:
                conn = None
        if conn is None:
            self.stats.dropped["unknown_connection"] += 1
            return
        conn.receive_reset(reset, now=now)

    # --- timers ---------------------------------------------------------------------------
    def get_timer(self) -> float | None:
        """The earliest deadline over every connection, or None."""
        self._refresh_timers()
        heap = self._heap
        deadlines = self._deadlines
        while heap:
            deadline, _, cid = heap[0]
            if deadlines.get(cid) == deadline:
                return deadline
            heapq.heappop(heap)
        return None

    def handle_timer(self, *, now: float) -> None:
        """Run every connection timer that is due; harmless when none is."""
        self._refresh_timers()
        heap = self._heap
        deadlines = self._deadlines
        while heap and heap[0][0] <= now:
            deadline, _, cid = heapq.heappop(heap)
            if deadlines.get(cid) != deadline:
                continue
            del deadlines[cid]
            conn = self._conns[cid]
            conn.handle_timer(now=now)
            self._dirty[conn] = None

    def _refresh_timers(self) -> None:
        deadlines = self._deadlines
        heap = self._heap
        for conn in self._dirty:
            cid = conn.local_cid
            deadline = conn.get_timer()
            if deadline is None:
                deadlines.pop(cid, None)
            elif deadlines.get(cid) != deadline:
                deadlines[cid] = deadline
                self._heap_counter += 1
                heapq.heappush(heap, (deadline, self._heap_counter, cid))
        if len(heap) > 2 * len(deadlines) + 64:
            # Entries of deadlines that moved stay in the heap until their time comes; a peer
            # that keeps moving a far deadline (pure ACKs push the idle timeout) would grow
            # it without bound. Rebuild it from the live deadlines (amortised O(1) a push).
            self._heap = [(deadline, 0, cid) for cid, deadline in deadlines.items()]
            heapq.heapify(self._heap)

    # --- output ---------------------------------------------------------------------------
    def datagrams_to_send(self, *, now: float) -> list[tuple[bytes, Addr]]:
        """Every datagram due now, as (data, address) pairs. Drains."""
        out = self._out
        self._out = []
        for conn in self._dirty:
            conn.flush(out, now=now)
        self._refresh_timers()
        for conn in self._dirty:
            if conn.state is ConnState.CLOSED:
                self._unregister(conn)
        self._dirty.clear()
        stats = self.stats
        stats.datagrams_sent += len(out)
        for datagram, _ in out:
            stats.bytes_sent += len(datagram)
        return out

    def next_event(self) -> tuple[Connection, Event] | None:
        """The next (connection, event) pair, or None when there is none."""
        queue = self._event_conns
        while queue:
            conn = queue[0]
            event = conn.next_event()
            if event is not None:
                return conn, event
            queue.popleft()
            self._event_set.discard(conn)
        return None

    # --- helpers ----------------------------------------------------------------------------
    def _send_stateless(self, datagram: bytes, addr: Addr) -> None:
        if datagram[0] & 0x0F == _RESET:
            self.stats.resets_sent += 1
        self._queue_reply(datagram, addr)

    def _queue_reply(self, datagram: bytes, addr: Addr) -> None:
        if len(self._out) >= self.config.stateless_reply_queue:
            self.stats.dropped["reply_queue_full"] += 1
            return
        self._out.append((datagram, addr))

    def _register(self, conn: Connection) -> None:
        self._conns[conn.local_cid] = conn
        self._by_addr.setdefault(conn.peer_addr, OrderedDict())[conn] = None
        self._dirty[conn] = None

    def _unregister(self, conn: Connection) -> None:
        self._conns.pop(conn.local_cid, None)
        self._deadlines.pop(conn.local_cid, None)
        if self._by_peer.get((conn.peer_addr, conn.peer_cid)) is conn:
            del self._by_peer[(conn.peer_addr, conn.peer_cid)]
        self._index_remove(conn, conn.peer_addr)
        try:
            self._accept_queue.remove(conn)
        except ValueError:
            pass

    def _index_remove(self, conn: Connection, addr: Addr) -> None:
        peers = self._by_addr.get(addr)
        if peers is not None:
            peers.pop(conn, None)
            if not peers:
                del self._by_addr[addr]

    def _random32(self) -> int:
        return int.from_bytes(self._token_bytes(4), "big")

    def _new_cid(self) -> int:
        """A random, non-zero connection id not in use here."""
        for _ in range(64):
            cid = self._random32()
            if cid and cid not in self._conns:
                return cid
        raise RuntimeError("token_bytes keeps returning connection ids already in use")

    def __repr__(self) -> str:
        role = "listening" if self.listening else "client"
        return f"<Endpoint {role} connections={len(self._conns)}>"
