"""Plain counters, read by tests, the CLI and ``get_extra_info('stats')``."""

from __future__ import annotations

from collections import Counter
from typing import Any

__all__ = ["ConnectionStats", "EndpointStats"]


class ConnectionStats:
    """Counters of one connection. Drops are counted by reason in ``dropped``."""

    __slots__ = (
        "datagrams_sent",
        "datagrams_received",
        "bytes_sent",
        "bytes_received",
        "payload_bytes_sent",
        "payload_bytes_received",
        "segments_retransmitted",
        "bytes_retransmitted",
        "fast_retransmits",
        "lost_retransmissions",
        "rack_marked",
        "tlp_probes",
        "tlp_recoveries",
        "spurious_by_timestamps",
        "spurious_by_dsack",
        "spurious_retransmit_bytes",
        "undone_recoveries",
        "persistent_congestion",
        "rto_timeouts",
        "recoveries",
        "dup_acks_received",
        "dsack_sent",
        "dsack_received",
        "duplicate_segments",
        "acks_sent",
        "window_probes_sent",
        "keepalives_sent",
        "challenge_acks_sent",
        "challenge_acks_limited",
        "path_challenges_sent",
        "path_responses_sent",
        "path_migrations",
        "unvalidated_bytes_received",
        "unvalidated_bytes_sent",
        "handshake_retransmits",
        "unreliable_sent",
        "unreliable_received",
        "unreliable_send_dropped",
        "dropped",
    )

    def __init__(self) -> None:
        self.datagrams_sent: int = 0
        self.datagrams_received: int = 0
        self.bytes_sent: int = 0
        self.bytes_received: int = 0
        self.payload_bytes_sent: int = 0
        self.payload_bytes_received: int = 0
        self.segments_retransmitted: int = 0
        self.bytes_retransmitted: int = 0
        self.fast_retransmits: int = 0
        self.lost_retransmissions: int = 0  # ACKs on which RACK found a retransmission lost
        self.rack_marked: int = 0  # times RACK deemed first transmissions lost (RFC 8985 §6)
        self.tlp_probes: int = 0  # tail-loss probes sent (RFC 8985 §7)
        self.tlp_recoveries: int = 0  # probes that repaired a tail loss (window reduced)
        self.spurious_by_timestamps: int = 0  # recoveries the Eifel test found spurious
        self.spurious_by_dsack: int = 0  # recoveries whose every retransmission was D-SACKed
        self.spurious_retransmit_bytes: int = 0  # retransmitted bytes D-SACKed as duplicates
        self.undone_recoveries: int = 0  # window reductions undone (either test)
        self.persistent_congestion: int = 0  # RFC 9002 §7.6 collapses
        self.rto_timeouts: int = 0
        self.recoveries: int = 0
        self.dup_acks_received: int = 0
        self.dsack_sent: int = 0
        self.dsack_received: int = 0
        self.duplicate_segments: int = 0
        self.acks_sent: int = 0
        self.window_probes_sent: int = 0
        self.keepalives_sent: int = 0
        self.challenge_acks_sent: int = 0  # ACKs answering segments not acted on
        self.challenge_acks_limited: int = 0  # ... not sent: over challenge_ack_rate
        self.path_challenges_sent: int = 0
        self.path_responses_sent: int = 0
        self.path_migrations: int = 0  # peer address changes after a validated path
        self.unvalidated_bytes_received: int = 0  # from a peer address being validated
        self.unvalidated_bytes_sent: int = 0  # to it (at most 3x the above, RFC 9000 §8.1)
        self.handshake_retransmits: int = 0
        self.unreliable_sent: int = 0  # unreliable datagrams sent (DATAGRAM packets)
        self.unreliable_received: int = 0  # delivered to the application's queue
        self.unreliable_send_dropped: int = 0  # pushed out of a full send queue, never sent
        self.dropped: Counter[str] = Counter()

    def as_dict(self) -> dict[str, Any]:
        """A snapshot as plain values (``dropped`` as a dict)."""
        out: dict[str, Any] = {name: getattr(self, name) for name in self.__slots__[:-1]}
        out["dropped"] = dict(self.dropped)
        return out


class EndpointStats:
    """Counters of an endpoint: datagrams it handled before (or instead of) a connection."""

    __slots__ = (
        "datagrams_received",
        "datagrams_sent",
        "bytes_received",
        "bytes_sent",
        "inits_received",
        "cookies_sent",
        "echoes_accepted",
        "connections_accepted",
        "resets_sent",
        "stateless_bytes_received",
        "stateless_bytes_sent",
        "dropped",
    )

    def __init__(self) -> None:
        self.datagrams_received: int = 0
        self.datagrams_sent: int = 0
        self.bytes_received: int = 0
        self.bytes_sent: int = 0
        self.inits_received: int = 0
        self.cookies_sent: int = 0
        self.echoes_accepted: int = 0
        self.connections_accepted: int = 0
        self.resets_sent: int = 0
        # Bytes of datagrams that can draw a reply without connection state (INIT, DATA or
        # ACK for no connection), and of those replies: their ratio is the amplification an
        # attacker gets before any address is validated (RFC 9000 §8.1 bounds it at 3).
        self.stateless_bytes_received: int = 0
        self.stateless_bytes_sent: int = 0
        self.dropped: Counter[str] = Counter()

    def as_dict(self) -> dict[str, Any]:
        """A snapshot as plain values (``dropped`` as a dict)."""
        out: dict[str, Any] = {name: getattr(self, name) for name in self.__slots__[:-1]}
        out["dropped"] = dict(self.dropped)
        return out
