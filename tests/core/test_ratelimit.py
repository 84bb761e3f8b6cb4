"""Token buckets: exact refill on a fake clock, prefix keys, and the bounded prefix table."""

from __future__ import annotations

import pytest

from rudp.core.ratelimit import PrefixRateLimiter, TokenBucket, prefix_key
from tests.sim import FakeClock


def test_token_bucket_spends_its_burst_then_refills_at_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=10.0, burst=3.0)
    assert [bucket.allow(clock.now) for _ in range(4)] == [True, True, True, False]
    clock.advance(0.05)  # half a token
    assert not bucket.allow(clock.now)
    clock.advance(0.05)
    assert bucket.allow(clock.now) and not bucket.allow(clock.now)
    clock.advance(100.0)  # refill stops at the burst
    assert sum(bucket.allow(clock.now) for _ in range(10)) == 3


def test_token_bucket_ignores_a_clock_that_goes_backwards() -> None:
    bucket = TokenBucket(rate=1.0, burst=1.0)
    assert bucket.allow(10.0)
    assert not bucket.allow(5.0)  # no refill from going back
    assert not bucket.allow(10.5)  # nor a double refill after
    assert bucket.allow(11.0)


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1.0), (-1.0, 1.0), (1.0, 0.5)])
def test_token_bucket_rejects_bad_parameters(rate: float, burst: float) -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate=rate, burst=burst)


@pytest.mark.parametrize(
    ("host", "v4", "v6", "key"),
    [
        ("192.0.2.77", 24, 56, "192.0.2"),
        ("192.0.2.77", 16, 56, 0xC000),
        ("192.0.2.77", 32, 56, 0xC000024D),
        ("::ffff:192.0.2.77", 24, 56, "192.0.2"),
        ("2001:db8:aa:bb01::1", 24, 56, (6, 0x20010DB800AABB)),
        ("2001:db8:aa:bb01::1%eth0", 24, 56, (6, 0x20010DB800AABB)),
        ("2001:db8:aa:bbff::9", 24, 56, (6, 0x20010DB800AABB)),
        ("2001:db8::1", 24, 128, (6, 0x20010DB8000000000000000000000001)),
        ("localhost", 24, 56, "localhost"),
        ("not.an.address", 16, 56, "not.an.address"),
        ("zz::zz", 24, 56, "zz::zz"),
    ],
)
def test_prefix_keys(host: str, v4: int, v6: int, key: object) -> None:
    assert prefix_key(host, v4, v6) == key


def test_addresses_of_one_prefix_share_a_bucket_others_do_not() -> None:
    limiter = PrefixRateLimiter(rate=1.0, burst=2.0, max_prefixes=16)
    same = [(f"198.51.100.{i}", 1000 + i) for i in range(5)]
    assert [limiter.allow(addr, 0.0) for addr in same] == [True, True, False, False, False]
    assert limiter.allow(("198.51.101.1", 9), 0.0)  # the neighbouring /24
    assert len(limiter) == 2
    assert limiter.allow(same[4], 1.0) and not limiter.allow(same[0], 1.0)


def test_prefix_table_is_bounded_and_forgets_the_least_recently_seen() -> None:
    limiter = PrefixRateLimiter(rate=1.0, burst=1.0, max_prefixes=3)
    for i in range(3):
        assert limiter.allow((f"10.0.{i}.1", 1), 0.0)
    assert not limiter.allow(("10.0.0.2", 1), 0.0)  # 10.0.0/24 is now the most recent
    for i in range(3, 100):
        assert limiter.allow((f"10.0.{i}.1", 1), 0.0)
        assert len(limiter) == 3
    assert limiter.evictions == 97
    # 10.0.0/24 was evicted long ago: it starts again with a full bucket.
    assert limiter.allow(("10.0.0.3", 1), 0.0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rate": 0.0, "burst": 1.0, "max_prefixes": 1},
        {"rate": 1.0, "burst": 0.0, "max_prefixes": 1},
        {"rate": 1.0, "burst": 1.0, "max_prefixes": 0},
        {"rate": 1.0, "burst": 1.0, "max_prefixes": 1, "ipv4_prefix": 33},
        {"rate": 1.0, "burst": 1.0, "max_prefixes": 1, "ipv6_prefix": 0},
    ],
)
def test_prefix_limiter_rejects_bad_parameters(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        PrefixRateLimiter(**kwargs)  # type: ignore[arg-type]
