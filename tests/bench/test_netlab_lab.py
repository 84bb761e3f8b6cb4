"""The namespaces and the WAN forwarder on this machine: delay within about a millisecond,
drops counted, and nothing left behind. Needs root, iproute2 and /dev/net/tun (skipped
otherwise, with the reason); a few seconds."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bench.netlab.lab import PREFIX, Netlab, WanLink, missing_requirements
from bench.netlab.model import LinkParams

ECHO_SERVER = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 9000))
s.settimeout(5)
print("ready", flush=True)
try:
    while True:
        data, addr = s.recvfrom(2048)
        s.sendto(data, addr)
except OSError:
    pass
"""

PINGER = """
import json, socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(float(sys.argv[3]))
rtts, lost = [], 0
for i in range(int(sys.argv[2])):
    t = time.monotonic()
    s.sendto(b"x" * 1000, (sys.argv[1], 9000))
    try:
        s.recv(2048)
        rtts.append(1e3 * (time.monotonic() - t))
    except OSError:
        lost += 1
    time.sleep(0.002)
print(json.dumps({"rtts": rtts, "lost": lost}))
"""


def _skip_unless(kind: str, *, loss: bool = False) -> None:
    reason = missing_requirements(kind, loss=loss, rate=False, install=False)  # type: ignore[arg-type]
    if reason:
        pytest.skip(reason)


def _ping(lab: Netlab, count: int, timeout: float) -> dict[str, object]:
    server = subprocess.Popen(
        [*lab.server.exec_prefix(), sys.executable, "-c", ECHO_SERVER, lab.server.addr],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        assert server.stdout.readline().strip() == "ready"
        done = subprocess.run(
            [
                *lab.client.exec_prefix(),
                sys.executable,
                "-c",
                PINGER,
                lab.server.addr,
                str(count),
                str(timeout),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        result: dict[str, object] = json.loads(done.stdout)
        return result
    finally:
        server.kill()
        server.wait(5)


def _namespaces() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(f"{PREFIX}-")]


def test_wan_link_adds_the_delay_and_counts_its_drops() -> None:
    _skip_unless("tun")
    with Netlab("tun") as lab:
        made = list(lab.ns)
        assert set(made) <= set(_namespaces())
        params = LinkParams(delay=0.01, rate=12.5e6, loss=0.1)
        with WanLink(lab, params, LinkParams(delay=0.01, rate=12.5e6), seed=3) as link:
            result = _ping(lab, 150, 0.1)
        stats = link.stats
        assert stats is not None
    rtts = sorted(result["rtts"])  # type: ignore[arg-type]
    assert len(rtts) + result["lost"] == 150  # type: ignore[operator]
    median = rtts[len(rtts) // 2]
    # 20 ms of delay plus two 1028 B serializations at 12.5 MB/s and the hosts' own time.
    assert 20.0 <= median <= 22.5, rtts
    ab = stats["directions"]["ab"]
    # Every lost ping was a random drop; the kernel's own packets (IPv6 router solicitations)
    # cross the link too.
    assert ab["random_drops"] >= result["lost"]
    assert ab["forwarded"] + ab["dropped"] == ab["packets_in"]
    assert 4 <= ab["random_drops"] <= 35  # 10 % of 150
    assert stats["directions"]["ba"]["dropped"] == 0
    assert stats["lateness_p99_ms"] < 5.0
    # Only this lab's namespaces: a stale one from a dead run elsewhere is removed on entry,
    # and another live run's are not ours to judge.
    assert not set(made) & set(_namespaces())


def test_veth_loss_rule_drops_and_is_counted() -> None:
    _skip_unless("veth", loss=True)
    with Netlab("veth", loss_pct=20) as lab:
        result = _ping(lab, 150, 0.05)
        drops = lab.nft_drops()
    lost = result["lost"]
    assert 25 <= lost <= 85  # 20 % each way: 1 - 0.8^2 = 36 % of round trips
    assert drops["a"] + drops["b"] >= lost  # type: ignore[operator]
    assert drops["a"] > 0 and drops["b"] > 0


def test_veth_rate_limit_is_a_tbf_qdisc_on_both_ends() -> None:
    _skip_unless("veth")
    with Netlab("veth") as lab:
        lab.set_rate(10e6)
        shown = [
            subprocess.run(
                ["tc", "-n", name, "qdisc", "show", "dev", dev], capture_output=True, text=True
            ).stdout
            for name, dev in zip(lab.ns, ("veth0", "veth1"), strict=True)
        ]
        assert all("tbf" in text and "10Mbit" in text for text in shown), shown
        lab.set_rate(None)
        cleared = subprocess.run(
            ["tc", "-n", lab.ns[0], "qdisc", "show", "dev", "veth0"], capture_output=True, text=True
        ).stdout
        assert "tbf" not in cleared
