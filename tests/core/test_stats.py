"""Plain counters: every one starts at zero and appears in ``as_dict`` as a plain value."""

from __future__ import annotations

from collections import Counter

import pytest

from rudp.core.stats import ConnectionStats, EndpointStats

CONNECTION_COUNTERS = {
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
    "handshake_retransmits",
}
ENDPOINT_COUNTERS = {
    "datagrams_received",
    "datagrams_sent",
    "bytes_received",
    "bytes_sent",
    "inits_received",
    "cookies_sent",
    "echoes_accepted",
    "connections_accepted",
    "resets_sent",
}

CASES = [(ConnectionStats, CONNECTION_COUNTERS), (EndpointStats, ENDPOINT_COUNTERS)]
IDS = ["connection", "endpoint"]


@pytest.mark.parametrize(("cls", "documented"), CASES, ids=IDS)
def test_every_counter_starts_at_zero(
    cls: type[ConnectionStats | EndpointStats], documented: set[str]
) -> None:
    stats = cls()
    counters = [name for name in cls.__slots__ if name != "dropped"]
    assert documented <= set(counters)
    for name in counters:
        value = getattr(stats, name)
        assert type(value) is int, name
        assert value == 0, name
    assert isinstance(stats.dropped, Counter)
    assert stats.dropped == Counter()


@pytest.mark.parametrize(("cls", "documented"), CASES, ids=IDS)
def test_as_dict_has_every_counter_and_dropped_as_plain_dict(
    cls: type[ConnectionStats | EndpointStats], documented: set[str]
) -> None:
    stats = cls()
    counters = [name for name in cls.__slots__ if name != "dropped"]
    for i, name in enumerate(counters, start=1):
        setattr(stats, name, i)
    stats.dropped["bad_checksum"] += 2
    stats.dropped["state"] += 1
    snapshot = stats.as_dict()
    assert set(snapshot) == set(counters) | {"dropped"}
    assert documented | {"dropped"} <= set(snapshot)
    for i, name in enumerate(counters, start=1):
        assert snapshot[name] == i, name
    assert type(snapshot["dropped"]) is dict
    assert snapshot["dropped"] == {"bad_checksum": 2, "state": 1}


@pytest.mark.parametrize(("cls", "documented"), CASES, ids=IDS)
def test_as_dict_is_a_snapshot(
    cls: type[ConnectionStats | EndpointStats], documented: set[str]
) -> None:
    stats = cls()
    stats.dropped["paws"] += 1
    stats.datagrams_sent = 5
    snapshot = stats.as_dict()
    stats.dropped["paws"] += 1
    stats.datagrams_sent = 6
    snapshot["dropped"]["paws"] = 100
    assert snapshot["datagrams_sent"] == 5
    assert stats.dropped["paws"] == 2
    assert stats.as_dict()["dropped"] == {"paws": 2}
    assert stats.as_dict()["datagrams_sent"] == 6


@pytest.mark.parametrize(("cls", "documented"), CASES, ids=IDS)
def test_stats_are_slotted(
    cls: type[ConnectionStats | EndpointStats], documented: set[str]
) -> None:
    stats = cls()
    assert not hasattr(stats, "__dict__")
    with pytest.raises(AttributeError):
        stats.no_such_counter = 1  # type: ignore[union-attr]
    assert cls.__slots__[-1] == "dropped"
