"""Connection and endpoint settings: one frozen dataclass, validated on construction.

Every knob a test or a profile needs is a field here (never a private attribute to patch).
Where a default departs from an RFC value, the field's comment names the RFC value.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["PROFILE_NAMES", "Config"]

MAX_WINDOW_SCALE = 14  # RFC 7323 §2.3


@dataclass(frozen=True, slots=True)
class Config:
    """Settings shared by an endpoint and every connection it carries."""

    # --- segmentation --------------------------------------------------------------------
    max_payload: int = 1200
    """Payload bytes per DATA datagram. 1200 B plus a 24 B header (and up to 40 B of SACK
    blocks) stays under any IPv4/IPv6 path with a 1500 B MTU, so IP never fragments
    (RFC 8899 §5.1.2 BASE_PLPMTU = 1200). On a path known to carry 1500-byte IPv4 packets,
    1408 fills them as TCP's 1448-byte MSS does: window-based congestion control counts in
    segments, so 1200 carries 17 % less per window there (the benchmarks use 1408)."""

    # --- buffers and flow control ------------------------------------------------------
    recv_buffer_size: int = 4 * 1024 * 1024
    """Bytes the reassembly buffer holds; the advertised window is its free space."""
    send_buffer_high: int = 1024 * 1024
    """Unacknowledged plus unsent bytes above which the writer is told to pause. It also caps
    the data in flight: 1 MiB fills 100 Mbit/s up to ~80 ms RTT; raise it for longer fat
    paths. 4 MiB measured no faster on loopback and ~10 % more CPU per byte (cache)."""
    send_buffer_low: int = 256 * 1024
    """Bytes at or below which a paused writer is told to resume."""
    send_buffer_max: int = 64 * 1024 * 1024
    """Hard bound on the send buffer; a write past it raises ``SendBufferFull``."""
    nagle: bool = False
    """Hold sub-segment writes while small data is unacknowledged (RFC 9293 §3.7.4).
    Off by default, as asyncio sets TCP_NODELAY."""

    # --- acknowledgements --------------------------------------------------------------
    ack_delay: float = 0.025
    """Longest an ACK is delayed (RFC 9000 §13.2 max_ack_delay 25 ms; RFC 9293 allows
    up to 0.5 s). 0 sends an ACK for every datagram."""
    ack_every: int = 2
    """ACK at least every N-th in-order data segment (RFC 5681 §4.2: every 2nd full-sized
    one; counting every segment ACKs small messages sooner)."""
    max_sack_blocks: int = 4
    """SACK blocks per ACK, D-SACK included (RFC 2018 §3: at most 4)."""

    # --- retransmission timer (RFC 6298) -----------------------------------------------
    initial_rto: float = 1.0
    """RTO before the first RTT sample (RFC 6298 §2.1: 1 s)."""
    min_rto: float = 0.2
    """Lower clamp of the RTO. RFC 6298 §2.4 says 1 s; Linux uses 200 ms (TCP_RTO_MIN)."""
    max_rto: float = 60.0
    """Upper clamp of the RTO (RFC 6298 §2.5: at least 60 s)."""
    clock_granularity: float = 0.001
    """G in RTO = SRTT + max(G, 4*RTTVAR) (RFC 6298 §2.2)."""
    rto_variance_floor: float = 0.2
    """Least margin of the RTO over SRTT: RTO = SRTT + max(G, 4*RTTVAR, this), then clamped
    to [min_rto, max_rto]. RFC 6298 has only G; Linux floors the variance term at
    TCP_RTO_MIN (200 ms). On a path of steady delay RTTVAR decays to almost nothing, the RTO
    then sits one RTT after the oldest transmission, and it fired on every hole that took a
    round trip to repair (a lost retransmission, which RACK finds after one RTT): at 200 ms
    and 5 % loss the model-based profile resent 4.8 segments per segment lost."""
    rto_backoff: float = 2.0
    """Factor the RTO grows by on each expiry (RFC 6298 §5.5: doubles). The ``latency``
    profile uses 1.5, KCP's nodelay backoff."""
    max_retransmits: int = 15
    """Consecutive timeouts of one segment before the connection fails
    (Linux tcp_retries2 = 15)."""

    # --- loss recovery and congestion control ------------------------------------------
    dupack_threshold: int = 3
    """Duplicate ACKs that trigger fast retransmit (RFC 5681 §3.2, RFC 6675 DupThresh)."""
    congestion_control: str = "newreno"
    """Name of the congestion controller (see ``rudp.core.congestion.CONTROLLERS``)."""
    initial_window_segments: int = 10
    """Initial congestion window in segments (RFC 6928: IW10)."""
    pacing: bool = True
    """Pace DATA for window-based controllers too: at 2 x cwnd / SRTT in slow start and
    1.2 x cwnd / SRTT after (Linux tcp_pacing_ss_ratio / ca_ratio), in bursts of at most
    1 ms of the rate (``rudp.core.pacer``). A model-based controller always paces at its own
    rate."""
    rack: bool = True
    """Time-based loss detection (RACK, RFC 8985 §6) beside the duplicate-ACK rule."""
    tail_loss_probe: bool = True
    """Send a tail-loss probe after 2 x SRTT without an ACK (TLP, RFC 8985 §7)."""
    worst_case_ack_delay: float = 0.2
    """The peer's worst-case delayed-ACK time added to the probe timeout when one segment is
    in flight (RFC 8985 §7.2 WCDelAckT = 200 ms)."""
    undo_spurious: bool = True
    """Undo the window reduction of a recovery shown spurious by timestamps (Eifel,
    RFC 3522 / RFC 4015) or by D-SACKs of every retransmission (RFC 3708)."""

    # --- unreliable datagrams ----------------------------------------------------------------
    datagram_send_queue: int = 64
    """Unreliable datagrams waiting for congestion window; a full queue drops its oldest
    (stale real-time data is worth less than new)."""
    datagram_recv_queue: int = 256
    """Unreliable datagrams received and not yet taken by the application; a full queue drops
    its oldest (``rudp.messages``) or refuses the newest (the core, ``datagram_queue_full``)."""

    # --- handshake -----------------------------------------------------------------------
    handshake_retries: int = 6
    """Retransmissions of INIT (and of COOKIE-ECHO) before the connect fails
    (Linux tcp_syn_retries = 6)."""
    handshake_timeout: float = 60.0
    """Seconds after which an unfinished connect fails with ``HandshakeTimeout``."""
    cookie_lifetime: float = 60.0
    """Seconds a handshake cookie stays valid (RFC 9260 §5.1.3 Valid.Cookie.Life)."""
    cookie_secret_rotation: float = 120.0
    """Seconds between cookie secret rotations; the previous secret is still accepted."""
    backlog: int = 128
    """Established connections not yet accepted by the application."""
    backlog_overflow: Literal["drop", "reset"] = "drop"
    """What a full accept queue does with a new valid COOKIE-ECHO: ``drop`` it silently (the
    client retries, like Linux with tcp_abort_on_overflow=0) or ``reset`` (refuse)."""
    max_connections: int = 16_384
    """Connections one endpoint holds at once, TIME_WAIT included. A valid COOKIE-ECHO beyond
    it is refused with RESET REFUSED; ``Endpoint.connect`` raises ``TooManyConnections``."""

    # --- hostile input (docs/security.md) ------------------------------------------------
    stateless_reply_rate: float | None = 100.0
    """Replies sent without connection state (a COOKIE, a RESET to an INIT or to a datagram
    for no connection) per second to one source prefix; None disables the limit. They go to
    addresses nobody has validated, so without a limit spoofed INITs would turn the endpoint
    into a reflector aimed at the spoofed address."""
    stateless_reply_burst: int = 200
    """Stateless replies one prefix may receive at once before ``stateless_reply_rate``
    applies."""
    stateless_reply_prefixes: int = 4096
    """Prefixes the reply limiter tracks; beyond, the least recently seen is forgotten."""
    stateless_reply_ipv4_prefix: int = 24
    """Bits of an IPv4 source address that form its prefix (/24: one site)."""
    stateless_reply_ipv6_prefix: int = 56
    """Bits of an IPv6 source address that form its prefix (/56: one subscriber)."""
    stateless_reply_queue: int = 4096
    """Stateless replies waiting for the next ``datagrams_to_send``; beyond, they are dropped
    (``reply_queue_full``)."""
    challenge_ack_rate: float = 10.0
    """ACKs per second and connection (and as many at once) sent to answer segments that are
    not acted on: a RESET not at the exact sequence number, a sequence or acknowledgment
    number outside the window, a PAWS failure, an INIT from the peer's address. RFC 5961 §7
    asks for a limit; Linux allows 1000/s per host (tcp_challenge_ack_limit)."""
    max_reassembly_segments: int = 8192
    """Out-of-order segments one connection holds. Bytes are bounded by ``recv_buffer_size``;
    this bounds the per-segment overhead when a peer sends tiny segments. A segment beyond it
    is dropped (``reassembly_full``) and retransmitted by the peer later. The default holds
    two windows of full-sized segments."""

    # --- liveness and close --------------------------------------------------------------
    keepalive_idle: float | None = None
    """Idle seconds before keepalive probes start; None disables keepalive
    (Linux tcp_keepalive_time = 7200 s)."""
    keepalive_interval: float = 75.0
    """Seconds between unanswered keepalive probes (Linux tcp_keepalive_intvl)."""
    keepalive_probes: int = 9
    """Unanswered probes before the connection fails (Linux tcp_keepalive_probes)."""
    idle_timeout: float | None = None
    """Seconds without any datagram from the peer after which the connection fails;
    None disables it."""
    time_wait: float = 2.0
    """TIME_WAIT duration, at least 4 RTOs. RFC 9293 uses 2*MSL = 240 s; connection ids are
    random per connection, so a short TIME_WAIT only has to absorb the peer's last
    retransmissions: the floor of 4 RTOs outlasts its first two FIN retransmissions (sent 1
    and 3 RTOs after the original), so a lost last ACK is repaired (RFC 9000 §10.2: 3 PTOs)."""
    fin_wait2_timeout: float = 60.0
    """Longest wait for the peer's FIN after ours was acknowledged (Linux tcp_fin_timeout)."""
    persist_max: float = 60.0
    """Upper bound of the zero-window probe interval (RFC 9293 §3.8.6.1)."""

    # --- asyncio adapter ------------------------------------------------------------------
    io: Literal["auto", "batched", "plain"] = "auto"
    """Socket I/O of the asyncio adapter: ``batched`` reads until EAGAIN per wake-up and uses
    Linux GSO/GRO where the kernel has them; ``plain`` uses the loop's own datagram transport
    (one datagram per call); ``auto`` picks ``batched`` on Linux, else ``plain``."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first field whose value is out of range."""
        if not 16 <= self.max_payload <= 65_000:
            raise ValueError(f"max_payload must be in [16, 65000], got {self.max_payload}")
        if self.recv_buffer_size < 2 * self.max_payload:
            raise ValueError("recv_buffer_size must hold at least two segments")
        if self.recv_buffer_size > (0xFFFF << MAX_WINDOW_SCALE):
            raise ValueError("recv_buffer_size exceeds the largest scaled window (1 GiB)")
        if not 0 <= self.send_buffer_low <= self.send_buffer_high <= self.send_buffer_max:
            raise ValueError("need 0 <= send_buffer_low <= send_buffer_high <= send_buffer_max")
        for name in ("ack_delay", "clock_granularity", "rto_variance_floor"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.ack_every < 1:
            raise ValueError("ack_every must be >= 1")
        if not 1 <= self.max_sack_blocks <= 4:
            raise ValueError("max_sack_blocks must be in [1, 4]")
        if not 0 < self.min_rto <= self.initial_rto <= self.max_rto:
            raise ValueError("need 0 < min_rto <= initial_rto <= max_rto")
        if not 1.0 < self.rto_backoff <= 4.0:
            # Above 1 the timer still backs off exponentially, so a dead path is not hammered.
            raise ValueError(f"rto_backoff must be in (1, 4], got {self.rto_backoff}")
        if self.max_retransmits < 1 or self.handshake_retries < 0:
            raise ValueError("max_retransmits must be >= 1 and handshake_retries >= 0")
        if self.dupack_threshold < 1:
            raise ValueError("dupack_threshold must be >= 1")
        if self.initial_window_segments < 1:
            raise ValueError("initial_window_segments must be >= 1")
        if self.worst_case_ack_delay < 0:
            raise ValueError("worst_case_ack_delay must be >= 0")
        for name in ("handshake_timeout", "cookie_lifetime", "cookie_secret_rotation"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0")
        if self.cookie_secret_rotation < self.cookie_lifetime:
            raise ValueError("cookie_secret_rotation must be >= cookie_lifetime")
        if self.backlog < 1:
            raise ValueError("backlog must be >= 1")
        if self.backlog_overflow not in ("drop", "reset"):
            raise ValueError("backlog_overflow must be 'drop' or 'reset'")
        if self.max_connections < 1:
            raise ValueError("max_connections must be >= 1")
        if self.stateless_reply_rate is not None and not self.stateless_reply_rate > 0:
            raise ValueError("stateless_reply_rate must be > 0 or None")
        for name in ("stateless_reply_burst", "stateless_reply_prefixes", "stateless_reply_queue"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if not 1 <= self.stateless_reply_ipv4_prefix <= 32:
            raise ValueError("stateless_reply_ipv4_prefix must be in [1, 32]")
        if not 1 <= self.stateless_reply_ipv6_prefix <= 128:
            raise ValueError("stateless_reply_ipv6_prefix must be in [1, 128]")
        if not self.challenge_ack_rate > 0:
            raise ValueError("challenge_ack_rate must be > 0")
        if self.max_reassembly_segments < 1:
            raise ValueError("max_reassembly_segments must be >= 1")
        for name in ("keepalive_idle", "idle_timeout"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be > 0 or None")
        if self.keepalive_interval <= 0 or self.keepalive_probes < 1:
            raise ValueError("keepalive_interval must be > 0 and keepalive_probes >= 1")
        if self.datagram_send_queue < 1 or self.datagram_recv_queue < 1:
            raise ValueError("datagram_send_queue and datagram_recv_queue must be >= 1")
        if self.io not in ("auto", "batched", "plain"):
            raise ValueError("io must be 'auto', 'batched' or 'plain'")
        if self.time_wait < 0 or self.fin_wait2_timeout <= 0 or self.persist_max <= 0:
            raise ValueError("time_wait must be >= 0, fin_wait2_timeout and persist_max > 0")

    @classmethod
    def profile(cls, name: str, **changes: Any) -> Config:
        """A preset for a kind of traffic, with ``changes`` applied on top.

        * ``"fair"``: CUBIC (``"cubic"``, RFC 9438 with HyStart++), the loss-based controller
          of kernel TCP, so it shares a bottleneck with it, with the 4 MiB send buffer below
          (Linux's tcp_wmem autotuning also reaches 4 MiB). The plain ``Config()`` default
          stays ``"newreno"`` with 1 MiB: many tests pin NewReno's exact numbers through it.
        * ``"throughput"``: the model-based controller (``"bbr"``), which paces at its
          bandwidth estimate and does not back off on random loss, with 8 MiB send and
          receive buffers (2 MiB low-water mark) so that holes awaiting retransmission do not
          cap the flight below 2 x BDP on long fat paths: simulated at 100 Mbit/s and 100 ms
          with 4 / 8 MiB, goodput at 2, 5 and 10 % loss was 95 / 98, 83 / 87 and 71 / 80 % of
          the link (``bench/sim_cc.py``). The receiver's buffer is its own setting: both ends
          should use the profile.
        * ``"background"``: LEDBAT (``"ledbat"``, RFC 6817), which keeps the queue it builds
          near 60 ms and yields to every loss-based flow on a shared bottleneck: for bulk
          transfers that must not slow anything else down. 4 MiB send buffer.
        * ``"latency"``: interactive traffic (games, RPC; KCP's "nodelay" ideas), each value a
          departure from the RFC default:

          - ``ack_delay = 0``: ACK every datagram at once, so the sender's RTT samples and loss
            signals are never held back (RFC 9000 §13.2 allows 25 ms; RFC 5681 §4.2 0.5 s).
          - ``dupack_threshold = 2``: fast retransmit on the 2nd duplicate ACK (RFC 5681 §3.2
            and RFC 6675 DupThresh: 3; KCP ``fastresend = 2``). Small request/response flows
            rarely have three segments behind a loss, and reordering is rare in practice.
          - ``min_rto = 0.03``: RFC 6298 §2.4 says 1 s, Linux 200 ms; KCP's nodelay mode uses
            30 ms. With the 10 ms margin below, a loss on a 20 ms path costs ~30 ms instead of
            50 ms (50 ms was measured: p99 72 ms against KCP's 52 ms at 1 % loss). A peer
            without this profile delays a lone segment's ACK up to 25 ms: on a very short path
            that can time out spuriously once, and the Eifel test undoes it.
          - ``initial_rto = 0.3``: a lost INIT or COOKIE-ECHO costs 0.3 s instead of 1 s
            (RFC 6298 §2.1). rudp takes its first RTT sample from the handshake, so this
            only times the handshake; paths with an RTT above 0.3 s see one spurious INIT
            retransmission and start with a one-segment window.
          - ``rto_variance_floor = 0.01``: RTO = SRTT + max(4 RTTVAR, 10 ms), KCP's own rule
            (``interval`` 10 ms); the default's 200 ms margin (Linux TCP_RTO_MIN) would make
            every loss of a lone request cost SRTT + 200 ms. The price is paid by bulk
            transfers on a jittery path: on the emulated 20 ms link at 5 % loss a bulk
            transfer on this profile timed out spuriously (undone by the Eifel and D-SACK
            tests) and resent 1.8 bytes per byte lost, 1.2 with a 20 ms margin, which raised
            the request/response p99 from 53 to 63 ms. Bulk belongs on ``fair`` or
            ``throughput``.
          - ``rto_backoff = 1.5``: each expiry multiplies the RTO by 1.5, not 2 (RFC 6298
            §5.5; KCP nodelay's 1.5x), so a second loss of the same segment costs 45 ms more
            from a 30 ms RTO, not 60 ms. Still exponential: a dead path is not hammered.
          - ``max_rto = 10.0``: after an outage the sender probes at least every 10 s, so an
            interactive session resumes within 10 s of the path coming back (RFC 6298 §2.5:
            a maximum, if any, of at least 60 s). From an RTO at its minimum, the 16th
            expiry (``max_retransmits`` 15) then fails the connection after ~36 s (~522 s
            with the defaults).
          - ``nagle = False`` (already the default): small writes leave at once.

          The controller is CUBIC, as in ``fair`` (with NewReno a bulk transfer on this
          profile reached 3-7 MB/s of a 12 MB/s, 20 ms path: after each queue overflow NewReno
          regrows one segment per RTT).
        """
        presets = _PROFILES.get(name)
        if presets is None:
            known = ", ".join(sorted(_PROFILES))
            raise ValueError(f"unknown profile {name!r} (known: {known})")
        return cls(**{**presets, **changes})

    def replace(self, **changes: Any) -> Config:
        """Return a copy with ``changes`` applied (and validated)."""
        return dataclasses.replace(self, **changes)

    @property
    def window_scale(self) -> int:
        """The smallest shift that lets a 16-bit window field carry ``recv_buffer_size``."""
        shift = 0
        while (self.recv_buffer_size >> shift) > 0xFFFF:
            shift += 1
        return shift


_LONG_PATH_BUFFER = {
    "send_buffer_high": 4 * 1024 * 1024,
    "send_buffer_low": 1024 * 1024,
}
_PROFILES: dict[str, dict[str, Any]] = {
    "fair": {"congestion_control": "cubic", **_LONG_PATH_BUFFER},
    "throughput": {
        "congestion_control": "bbr",
        "send_buffer_high": 8 * 1024 * 1024,
        "send_buffer_low": 2 * 1024 * 1024,
        "recv_buffer_size": 8 * 1024 * 1024,
    },
    "background": {"congestion_control": "ledbat", **_LONG_PATH_BUFFER},
    "latency": {
        "congestion_control": "cubic",
        "ack_delay": 0.0,
        "dupack_threshold": 2,
        "min_rto": 0.03,
        "rto_variance_floor": 0.01,
        "initial_rto": 0.3,
        "max_rto": 10.0,
        "rto_backoff": 1.5,
        "nagle": False,
    },
}
PROFILE_NAMES: tuple[str, ...] = tuple(_PROFILES)
"""The names ``Config.profile`` accepts."""
