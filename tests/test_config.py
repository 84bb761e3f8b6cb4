"""Config: RFC defaults, one test per validation branch, replace(), window_scale, frozenness."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from rudp.config import MAX_WINDOW_SCALE, PROFILE_NAMES, Config


def test_defaults_match_documented_rfc_values() -> None:
    cfg = Config()
    assert cfg.initial_rto == 1.0  # RFC 6298 §2.1
    assert cfg.max_rto >= 60.0  # RFC 6298 §2.5
    assert cfg.max_rto == 60.0
    assert cfg.ack_every == 2  # RFC 5681 §4.2
    assert cfg.dupack_threshold == 3  # RFC 5681 §3.2
    assert cfg.initial_window_segments == 10  # RFC 6928
    assert cfg.cookie_lifetime == 60.0  # RFC 9260 §5.1.3
    assert cfg.max_sack_blocks == 4  # RFC 2018 §3
    assert cfg.max_payload == 1200  # RFC 8899 BASE_PLPMTU
    assert cfg.ack_delay == 0.025  # RFC 9000 max_ack_delay
    assert cfg.clock_granularity == 0.001
    assert cfg.min_rto == 0.2
    assert cfg.max_retransmits == 15
    assert cfg.handshake_retries == 6
    assert cfg.recv_buffer_size == 4 * 1024 * 1024
    assert cfg.congestion_control == "newreno"
    assert cfg.backlog_overflow == "drop"
    assert cfg.keepalive_idle is None
    assert cfg.idle_timeout is None
    assert cfg.nagle is False


def test_max_window_scale_is_rfc7323_limit() -> None:
    assert MAX_WINDOW_SCALE == 14


# Each case: the changes, and a fragment of the message that names the failing rule.
BAD_VALUES: list[tuple[dict[str, Any], str]] = [
    ({"max_payload": 15}, "max_payload must be in [16, 65000], got 15"),
    ({"max_payload": 65_001}, "max_payload must be in [16, 65000], got 65001"),
    ({"max_payload": 0}, "max_payload must be in [16, 65000], got 0"),
    ({"recv_buffer_size": 2399}, "recv_buffer_size must hold at least two segments"),
    ({"max_payload": 1000, "recv_buffer_size": 1999}, "at least two segments"),
    ({"recv_buffer_size": (0xFFFF << 14) + 1}, "exceeds the largest scaled window"),
    ({"send_buffer_low": -1}, "need 0 <= send_buffer_low <= send_buffer_high"),
    ({"send_buffer_low": 2_000_000, "send_buffer_high": 1_999_999}, "send_buffer_low <="),
    ({"send_buffer_high": 65 * 1024 * 1024}, "send_buffer_high <= send_buffer_max"),
    ({"send_buffer_max": 1024 * 1024 - 1}, "send_buffer_high <= send_buffer_max"),
    ({"ack_delay": -0.001}, "ack_delay must be >= 0"),
    ({"clock_granularity": -1e-9}, "clock_granularity must be >= 0"),
    ({"ack_every": 0}, "ack_every must be >= 1"),
    ({"max_sack_blocks": 0}, "max_sack_blocks must be in [1, 4]"),
    ({"max_sack_blocks": 5}, "max_sack_blocks must be in [1, 4]"),
    ({"min_rto": 0.0}, "need 0 < min_rto <= initial_rto <= max_rto"),
    ({"min_rto": -0.1}, "need 0 < min_rto"),
    ({"min_rto": 1.5}, "min_rto <= initial_rto"),
    ({"initial_rto": 61.0}, "initial_rto <= max_rto"),
    ({"max_rto": 0.5}, "initial_rto <= max_rto"),
    ({"max_retransmits": 0}, "max_retransmits must be >= 1"),
    ({"handshake_retries": -1}, "handshake_retries >= 0"),
    ({"dupack_threshold": 0}, "dupack_threshold must be >= 1"),
    ({"initial_window_segments": 0}, "initial_window_segments must be >= 1"),
    ({"handshake_timeout": 0.0}, "handshake_timeout must be > 0"),
    ({"handshake_timeout": -1.0}, "handshake_timeout must be > 0"),
    ({"cookie_lifetime": 0.0}, "cookie_lifetime must be > 0"),
    ({"cookie_secret_rotation": 0.0}, "cookie_secret_rotation must be > 0"),
    ({"cookie_secret_rotation": 59.0}, "cookie_secret_rotation must be >= cookie_lifetime"),
    ({"cookie_lifetime": 121.0}, "cookie_secret_rotation must be >= cookie_lifetime"),
    ({"backlog": 0}, "backlog must be >= 1"),
    ({"backlog_overflow": "close"}, "backlog_overflow must be 'drop' or 'reset'"),
    ({"keepalive_idle": 0.0}, "keepalive_idle must be > 0 or None"),
    ({"idle_timeout": -5.0}, "idle_timeout must be > 0 or None"),
    ({"keepalive_interval": 0.0}, "keepalive_interval must be > 0"),
    ({"keepalive_probes": 0}, "keepalive_probes >= 1"),
    ({"time_wait": -0.001}, "time_wait must be >= 0"),
    ({"fin_wait2_timeout": 0.0}, "fin_wait2_timeout and persist_max > 0"),
    ({"persist_max": 0.0}, "fin_wait2_timeout and persist_max > 0"),
    ({"max_connections": 0}, "max_connections must be >= 1"),
    ({"stateless_reply_rate": 0.0}, "stateless_reply_rate must be > 0 or None"),
    ({"stateless_reply_burst": 0}, "stateless_reply_burst must be >= 1"),
    ({"stateless_reply_prefixes": 0}, "stateless_reply_prefixes must be >= 1"),
    ({"stateless_reply_queue": 0}, "stateless_reply_queue must be >= 1"),
    ({"stateless_reply_ipv4_prefix": 0}, "stateless_reply_ipv4_prefix must be in [1, 32]"),
    ({"stateless_reply_ipv4_prefix": 33}, "stateless_reply_ipv4_prefix must be in [1, 32]"),
    ({"stateless_reply_ipv6_prefix": 129}, "stateless_reply_ipv6_prefix must be in [1, 128]"),
    ({"challenge_ack_rate": 0.0}, "challenge_ack_rate must be > 0"),
    ({"max_reassembly_segments": 0}, "max_reassembly_segments must be >= 1"),
]


@pytest.mark.parametrize(("changes", "message"), BAD_VALUES, ids=lambda v: repr(v)[:60])
def test_every_validation_branch_raises_value_error(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as info:
        Config(**changes)
    assert message in str(info.value)


@pytest.mark.parametrize(("changes", "message"), BAD_VALUES, ids=lambda v: repr(v)[:60])
def test_replace_validates(changes: dict[str, Any], message: str) -> None:
    base = Config()
    with pytest.raises(ValueError) as info:
        base.replace(**changes)
    assert message in str(info.value)
    assert base == Config()  # the original is untouched


# Values exactly on each boundary are accepted.
GOOD_EDGES: list[dict[str, Any]] = [
    {"max_payload": 16},
    {"max_payload": 65_000},
    {"recv_buffer_size": 2400},
    {"recv_buffer_size": 0xFFFF << 14},
    {"send_buffer_low": 0},
    {"send_buffer_low": 1024 * 1024},
    {"send_buffer_max": 1024 * 1024},
    {"ack_delay": 0.0, "clock_granularity": 0.0},
    {"ack_every": 1},
    {"max_sack_blocks": 1},
    {"min_rto": 1.0},
    {"initial_rto": 60.0},
    {"min_rto": 0.001, "initial_rto": 0.001, "max_rto": 0.001},
    {"max_retransmits": 1, "handshake_retries": 0},
    {"dupack_threshold": 1, "initial_window_segments": 1},
    {"cookie_secret_rotation": 60.0},
    {"backlog": 1, "backlog_overflow": "reset"},
    {"keepalive_idle": 0.001, "idle_timeout": 0.001},
    {"keepalive_probes": 1},
    {"time_wait": 0.0},
    {"max_connections": 1, "stateless_reply_burst": 1, "stateless_reply_queue": 1},
    {"stateless_reply_rate": None, "stateless_reply_prefixes": 1},
    {"stateless_reply_ipv4_prefix": 32, "stateless_reply_ipv6_prefix": 1},
    {"challenge_ack_rate": 0.001, "max_reassembly_segments": 1},
]


@pytest.mark.parametrize("changes", GOOD_EDGES, ids=repr)
def test_boundary_values_are_accepted(changes: dict[str, Any]) -> None:
    cfg = Config(**changes)
    for name, value in changes.items():
        assert getattr(cfg, name) == value


def test_replace_returns_a_new_validated_copy() -> None:
    base = Config()
    changed = base.replace(max_payload=1400, ack_delay=0.0)
    assert changed.max_payload == 1400
    assert changed.ack_delay == 0.0
    assert base.max_payload == 1200
    assert base.ack_delay == 0.025
    assert changed != base
    assert changed == Config(max_payload=1400, ack_delay=0.0)


def test_replace_rejects_unknown_fields() -> None:
    with pytest.raises(TypeError):
        Config().replace(no_such_field=1)


def test_validate_checks_the_current_values() -> None:
    cfg = Config()
    cfg.validate()  # valid: no exception
    object.__setattr__(cfg, "ack_every", 0)  # bypass the frozen guard
    with pytest.raises(ValueError, match="^ack_every must be >= 1$"):
        cfg.validate()


@pytest.mark.parametrize(
    ("recv_buffer_size", "scale"),
    [
        (2400, 0),
        (65_535, 0),
        (65_536, 1),
        (131_070, 1),
        (131_071, 1),
        (131_072, 2),
        (262_143, 2),
        (262_144, 3),
        (1024 * 1024, 5),
        (4 * 1024 * 1024, 7),
        (4 * 1024 * 1024 + 1, 7),
        (8 * 1024 * 1024 - 128, 7),
        (8 * 1024 * 1024, 8),
        (0xFFFF << 14, 14),
    ],
)
def test_window_scale_exact(recv_buffer_size: int, scale: int) -> None:
    cfg = Config(recv_buffer_size=recv_buffer_size)
    assert cfg.window_scale == scale
    # The smallest shift that fits 16 bits: one less would not.
    assert recv_buffer_size >> scale <= 0xFFFF
    if scale:
        assert recv_buffer_size >> (scale - 1) > 0xFFFF


def test_default_window_scale() -> None:
    assert Config().window_scale == 7


def test_frozen() -> None:
    cfg = Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.max_payload = 1000  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.initial_rto = 3.0  # type: ignore[misc]
    assert cfg.max_payload == 1200
    assert cfg.initial_rto == 1.0


def test_slotted_no_new_attributes() -> None:
    cfg = Config()
    assert not hasattr(cfg, "__dict__")
    with pytest.raises((AttributeError, TypeError)):
        cfg.extra = 1  # type: ignore[attr-defined]


def test_hashable_and_equal_by_value() -> None:
    assert Config() == Config()
    assert hash(Config()) == hash(Config())
    assert Config(ack_every=3) != Config()


def test_profiles() -> None:
    big = {"send_buffer_high": 4 * 1024 * 1024, "send_buffer_low": 1024 * 1024}
    fair = Config.profile("fair")
    assert fair.congestion_control == "cubic"
    assert fair == Config(congestion_control="cubic", **big)
    assert Config.profile("fair", congestion_control="newreno", **big) == Config(**big)
    fast = Config.profile("throughput")
    assert fast.congestion_control == "bbr"
    assert (fast.send_buffer_high, fast.send_buffer_low) == (8 * 1024 * 1024, 2 * 1024 * 1024)
    assert fast.recv_buffer_size == 8 * 1024 * 1024
    assert Config.profile("throughput", nagle=True).nagle
    with pytest.raises(ValueError, match="background, fair, latency, throughput"):
        Config.profile("turbo")


def test_background_profile_is_ledbat() -> None:
    background = Config.profile("background")
    assert background == Config(
        congestion_control="ledbat", send_buffer_high=4 * 1024 * 1024, send_buffer_low=1024 * 1024
    )
    assert Config.profile("background", initial_window_segments=2).initial_window_segments == 2


def test_latency_profile_values() -> None:
    latency = Config.profile("latency")
    assert latency == Config(
        congestion_control="cubic",
        ack_delay=0.0,  # RFC 9000 §13.2: 25 ms
        dupack_threshold=2,  # RFC 5681 §3.2: 3
        min_rto=0.03,  # RFC 6298 §2.4: 1 s
        rto_variance_floor=0.01,  # Linux TCP_RTO_MIN 200 ms; KCP's interval
        initial_rto=0.3,  # RFC 6298 §2.1: 1 s
        max_rto=10.0,  # RFC 6298 §2.5: at least 60 s
        rto_backoff=1.5,  # RFC 6298 §5.5: 2
        nagle=False,
    )
    assert latency.min_rto + latency.rto_variance_floor >= Config().ack_delay  # one delayed ACK
    assert latency.congestion_control == Config.profile("fair").congestion_control
    assert Config.profile("latency", max_rto=60.0).max_rto == 60.0


def test_every_profile_is_valid_and_named() -> None:
    for name in PROFILE_NAMES:
        Config.profile(name).validate()
    assert set(PROFILE_NAMES) >= {"fair", "throughput", "background", "latency"}
