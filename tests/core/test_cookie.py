from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rudp.config import Config
from rudp.core.cookie import (
    COOKIE_OVERHEAD,
    MAX_COOKIE_STATE,
    CookieError,
    CookieJar,
)
from rudp.errors import RudpError

ADDR = ("192.0.2.7", 40000)
STATE = b"client-conn-id:12345678"


def seeded(seed: int = 1) -> Callable[[int], bytes]:
    return random.Random(seed).randbytes


def jar(*, lifetime: float = 60.0, rotation: float = 120.0, seed: int = 1) -> CookieJar:
    return CookieJar(seeded(seed), lifetime=lifetime, rotation=rotation)


def reason(j: CookieJar, addr: tuple[object, ...], cookie: bytes, now: float) -> str:
    with pytest.raises(CookieError) as info:
        j.verify(addr, cookie, now=now)
    return info.value.reason


def test_round_trip() -> None:
    j = jar()
    cookie = j.make(ADDR, STATE, now=1000.5)
    assert len(cookie) == len(STATE) + COOKIE_OVERHEAD == len(STATE) + 21
    assert j.verify(ADDR, cookie, now=1001.0) == STATE


def test_round_trip_empty_and_max_state() -> None:
    j = jar()
    for state in (b"", bytes(range(200))):
        assert j.verify(ADDR, j.make(ADDR, state, now=5.0), now=5.0) == state


def test_state_too_large_is_local_misuse() -> None:
    with pytest.raises(ValueError):
        jar().make(ADDR, bytes(MAX_COOKIE_STATE + 1), now=0.0)


@pytest.mark.parametrize("addr", [("x" * 256, 1), ("h", 70000), ("h",), (b"h", 1), ("h", "1")])
def test_unencodable_address_is_local_misuse(addr: tuple[object, ...]) -> None:
    with pytest.raises(ValueError):
        jar().make(addr, STATE, now=0.0)


@pytest.mark.parametrize("other", [("192.0.2.8", 40000), ("192.0.2.7", 40001), ("::1", 40000)])
def test_wrong_address(other: tuple[object, ...]) -> None:
    j = jar()
    cookie = j.make(ADDR, STATE, now=10.0)
    assert reason(j, other, cookie, 10.0) == "bad_cookie"


def test_ipv6_flowinfo_and_scope_ignored() -> None:
    j = jar()
    cookie = j.make(("2001:db8::1", 443, 0, 0), STATE, now=10.0)
    assert j.verify(("2001:db8::1", 443, 5, 2), cookie, now=10.0) == STATE


def test_host_and_state_boundary_is_unambiguous() -> None:
    # Moving bytes between the state and the address must not keep the MAC valid.
    j = jar()
    cookie = j.make(("ab", 1), b"xy", now=10.0)
    assert reason(j, ("b", 1), cookie, 10.0) == "bad_cookie"
    assert reason(j, ("yab", 1), cookie[:6] + cookie[7:], 10.0) == "bad_cookie"


def test_every_flipped_bit_is_bad() -> None:
    j = jar()
    j.make(ADDR, b"", now=100.0)  # the previous epoch's key exists after the next rotation
    cookie = j.make(ADDR, STATE, now=130.0)
    for i in range(len(cookie) * 8):
        forged = bytearray(cookie)
        forged[i // 8] ^= 1 << (i % 8)
        assert reason(j, ADDR, bytes(forged), 131.0) == "bad_cookie", i


def test_truncated_or_extended_is_bad() -> None:
    j = jar()
    cookie = j.make(ADDR, STATE, now=100.0)
    for n in range(len(cookie)):
        assert reason(j, ADDR, cookie[:n], 100.0) == "bad_cookie"
    assert reason(j, ADDR, cookie + b"\0", 100.0) == "bad_cookie"
    big = j.make(ADDR, bytes(MAX_COOKIE_STATE), now=100.0)
    assert reason(j, ADDR, big + b"\0", 100.0) == "bad_cookie"


def test_lifetime_boundary() -> None:
    j = jar(lifetime=60.0, rotation=120.0)
    cookie = j.make(ADDR, STATE, now=1000.0)  # epoch 8 spans [960, 1080)
    assert j.verify(ADDR, cookie, now=1060.0) == STATE  # age == lifetime: accepted
    assert j.verify(ADDR, cookie, now=1060.999) == STATE  # whole seconds
    with pytest.raises(CookieError) as info:
        j.verify(ADDR, cookie, now=1061.0)
    assert info.value.reason == "stale_cookie"
    assert info.value.staleness == 1


def test_issue_time_truncates_to_whole_seconds() -> None:
    j = jar(lifetime=10.0, rotation=100.0)
    cookie = j.make(ADDR, STATE, now=20.9)
    assert j.verify(ADDR, cookie, now=30.5) == STATE
    assert reason(j, ADDR, cookie, 31.0) == "stale_cookie"


def test_future_issue_time_is_bad() -> None:
    j = jar(lifetime=10.0, rotation=100.0)
    cookie = j.make(ADDR, STATE, now=50.0)
    assert j.verify(ADDR, cookie, now=49.0) == STATE  # 1 s of slack
    assert reason(j, ADDR, cookie, 48.99) == "bad_cookie"


def test_previous_key_accepted_after_one_rotation_rejected_after_two() -> None:
    j = jar(lifetime=10.0, rotation=10.0)
    cookie = j.make(ADDR, STATE, now=19.0)  # epoch 1
    assert j.verify(ADDR, cookie, now=20.0) == STATE  # epoch 2: previous key
    assert j.verify(ADDR, cookie, now=29.0) == STATE  # age == lifetime
    # Epoch 3: the epoch-1 key is gone, and the cookie is necessarily past its lifetime.
    assert reason(j, ADDR, cookie, 30.0) == "stale_cookie"


def test_unknown_key_with_fresh_issue_time_is_bad() -> None:
    j = jar(lifetime=10.0, rotation=10.0)
    cookie = j.make(ADDR, STATE, now=15.0)  # key id 1
    j.make(ADDR, STATE, now=35.0)  # epoch 3: keys 3 and 2 only
    forged = bytes([cookie[0]]) + (35).to_bytes(4, "big") + cookie[5:]
    assert reason(j, ADDR, forged, 35.0) == "bad_cookie"


def test_epoch_jump_discards_both_keys() -> None:
    j = jar(lifetime=10.0, rotation=10.0)
    cookie = j.make(ADDR, STATE, now=19.5)  # epoch 1
    fresh = j.make(ADDR, STATE, now=35.0)  # jumps to epoch 3
    assert j.verify(ADDR, fresh, now=40.0) == STATE  # epoch 4: epoch 3 key is the previous one
    assert reason(j, ADDR, cookie, 40.0) == "stale_cookie"


def test_key_id_wraps_without_accepting_old_cookies() -> None:
    j = jar(lifetime=1.0, rotation=1.0)
    cookie = j.make(ADDR, STATE, now=3.0)  # key id 3
    j.make(ADDR, STATE, now=258.5)  # jumps to epoch 258 (key id 2), no previous key
    assert reason(j, ADDR, cookie, 259.0) == "bad_cookie"  # key id 3 = epoch 259, new secret


def test_deterministic_with_seeded_token_bytes() -> None:
    a = jar(seed=7).make(ADDR, STATE, now=500.0)
    b = jar(seed=7).make(ADDR, STATE, now=500.0)
    c = jar(seed=8).make(ADDR, STATE, now=500.0)
    assert a == b
    assert a[:-16] == c[:-16]
    assert a != c
    assert reason(jar(seed=8), ADDR, a, 500.0) == "bad_cookie"


def test_cookie_error_is_a_rudp_error() -> None:
    err = CookieError("bad_cookie")
    assert isinstance(err, RudpError)
    assert err.reason == "bad_cookie"
    assert err.staleness == 0


@pytest.mark.parametrize(
    ("lifetime", "rotation"), [(0.0, 10.0), (10.0, 0.0), (20.0, 10.0), (float("inf"), 10.0)]
)
def test_constructor_validation(lifetime: float, rotation: float) -> None:
    with pytest.raises(ValueError):
        CookieJar(seeded(), lifetime=lifetime, rotation=rotation)


def test_short_token_source_rejected() -> None:
    j = CookieJar(lambda n: b"short", lifetime=1.0, rotation=1.0)
    with pytest.raises(ValueError):
        j.make(ADDR, STATE, now=0.0)


def test_config_requires_rotation_at_least_lifetime() -> None:
    with pytest.raises(ValueError, match="cookie_secret_rotation"):
        Config(cookie_lifetime=60.0, cookie_secret_rotation=30.0)
    Config(cookie_lifetime=60.0, cookie_secret_rotation=60.0)


FUZZ_JAR = jar(lifetime=60.0, rotation=120.0)
FUZZ_JAR.make(ADDR, b"", now=1000.0)
FUZZ_JAR.make(ADDR, b"", now=1100.0)  # current and previous keys both exist


@given(st.binary(max_size=300), st.floats(0.0, 2e6))
def test_random_bytes_raise_only_cookie_error(data: bytes, now: float) -> None:
    j = jar(lifetime=60.0, rotation=120.0)
    try:
        j.verify(ADDR, data, now=now)
    except CookieError as exc:
        assert exc.reason in ("bad_cookie", "stale_cookie")


@given(st.sampled_from([8, 9, 7, 0]), st.integers(0, 2**32 - 1), st.binary(max_size=240))
def test_structured_random_cookies_raise_only_cookie_error(
    key_id: int, issued: int, tail: bytes
) -> None:
    data = bytes([key_id]) + issued.to_bytes(4, "big") + tail
    with pytest.raises(CookieError) as info:
        FUZZ_JAR.verify(ADDR, data, now=1100.0)
    assert info.value.reason in ("bad_cookie", "stale_cookie")
