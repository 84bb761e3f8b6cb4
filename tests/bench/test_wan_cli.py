"""bench.wan's argument parsing and the link names that label every result."""

from __future__ import annotations

import argparse

import pytest

from bench.runner import LinkSpec
from bench.wan import link_spec, parse_args, parse_duration_ms, parse_rate_mbit


def test_durations_and_rates() -> None:
    assert parse_duration_ms("20ms") == 20.0
    assert parse_duration_ms("0.1s") == 100.0
    assert parse_duration_ms("5") == 5.0
    assert parse_rate_mbit("100mbit") == 100.0
    assert parse_rate_mbit("1gbit") == 1000.0
    assert parse_rate_mbit("500kbit") == 0.5
    with pytest.raises(argparse.ArgumentTypeError):
        parse_duration_ms("soon")


def test_args_make_the_wan_link() -> None:
    args = parse_args(
        ["--peer", "rudp:fair", "--rtt", "100ms", "--loss", "2", "--burst", "0.01,0.3"]
    )
    spec = link_spec(args)
    assert spec.name == "wan-100Mbit-rtt100ms-loss2%-burst0.01/0.3"
    params = spec.link_params()
    assert params.delay == pytest.approx(0.05)
    assert params.loss == pytest.approx(0.02)
    assert params.rate == pytest.approx(12.5e6)
    assert params.effective_queue_limit == 1_250_000  # one BDP at 100 Mbit/s x 100 ms
    assert params.burst is not None and params.burst.p_bad_to_good == pytest.approx(0.3)


def test_default_peers_compare_rudp_with_both_kernel_controllers() -> None:
    assert parse_args([]).peer == ["rudp:throughput", "tcp:cubic", "tcp:bbr"]
    assert LinkSpec("veth", loss_pct=5).name == "veth-loss5%"
    assert LinkSpec("loopback").name == "loopback"
