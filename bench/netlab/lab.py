"""Network namespaces for the benchmarks: a veth pair or a TUN pair joined by the WAN forwarder.

:class:`Netlab` makes two namespaces, ``rudpbench-<pid>-<n>a`` (the client side) and ``...b``
(the server side), and one of two links between them (MTU 1500 both):

* ``veth``: a veth pair, 10.201.0.1/24 - 10.201.0.2/24. Segmentation offload is off
  (``gso_max_segs 1``), so TCP and UDP-GSO leave as single wire packets and the loss rule drops
  packets, not 64 KiB super-packets. Random loss is an nftables rule (``numgen random``) on the
  *prerouting* hook of each namespace, so it drops TCP and UDP alike, each direction on
  arrival; a drop on the output hook would instead fail the sender's ``sendmsg`` with EPERM,
  which no real network does. A rate limit is a ``tbf`` qdisc on each veth.
* ``tun``: a persistent TUN device ``tun0`` in each namespace, 10.202.0.1 - 10.202.0.2
  point-to-point. Nothing crosses until a :class:`WanLink` (the forwarder process) is attached;
  it applies delay, jitter, loss, bursts, reordering and the rate limit per direction.

Everything is torn down on exit, also on an exception or Ctrl-C (the runners turn SIGTERM into
KeyboardInterrupt): processes still inside the namespaces are killed, the TUN devices and the
namespaces deleted. A namespace left by a run that died (its pid is gone) is removed when the
next lab starts.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from bench.netlab.model import LinkParams

__all__ = [
    "PREFIX",
    "LabUnavailable",
    "Netlab",
    "Side",
    "WanLink",
    "cleanup_stale",
    "missing_requirements",
]

PREFIX = "rudpbench"
ROOT = Path(__file__).resolve().parents[2]
VETH_ADDRS = ("10.201.0.1", "10.201.0.2")
TUN_ADDRS = ("10.202.0.1", "10.202.0.2")
TUN_DEVICE = "tun0"
TUN_TXQUEUELEN = 10000  # a burst of a whole window waits here, not dropped, until read
COMMAND_TIMEOUT = 30.0
FORWARDER_START_TIMEOUT = 15.0
_counter = 0

LinkKind = Literal["veth", "tun"]


class LabUnavailable(Exception):
    """The namespaces cannot be made here; the message says why (the case is skipped)."""


def _run(argv: list[str], *, check: bool = True, timeout: float = COMMAND_TIMEOUT) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip() or done.returncode}")
    return done.stdout


def _install_nftables() -> bool:
    """Install Debian's nftables package if apt-get is there; True if ``nft`` exists after."""
    if shutil.which("apt-get") is None:
        return False
    print("netlab: installing nftables (apt-get install -y nftables)", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "install", "-y", "nftables"], ["apt-get", "update"]):
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            subprocess.run(argv, capture_output=True, timeout=300, env=env)
        if shutil.which("nft"):
            return True
    # `install` failed (no package list yet): update then retry once.
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        subprocess.run(
            ["apt-get", "install", "-y", "nftables"], capture_output=True, timeout=300, env=env
        )
    return shutil.which("nft") is not None


def missing_requirements(kind: LinkKind, *, loss: bool, rate: bool, install: bool = True) -> str:
    """Why a lab of ``kind`` cannot be built here, or ``""`` if it can."""
    if not sys.platform.startswith("linux"):
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "iproute2 (`ip`) is not installed: apt-get install -y iproute2"
    if kind == "tun" and not os.path.exists("/dev/net/tun"):
        return "/dev/net/tun does not exist (no TUN driver)"
    if kind == "veth" and rate and shutil.which("tc") is None:
        return "`tc` (iproute2) is not installed: apt-get install -y iproute2"
    if kind == "veth" and loss and shutil.which("nft") is None:
        if not (install and _install_nftables()):
            return "nftables (`nft`) is not installed and could not be: apt-get install nftables"
    probe = f"{PREFIX}-{os.getpid()}-probe"
    try:
        _run(["ip", "netns", "add", probe])
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot create a network namespace: {exc}"
    with contextlib.suppress(RuntimeError, OSError, subprocess.TimeoutExpired):
        _run(["ip", "netns", "del", probe])
    return ""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _netns_names() -> list[str]:
    try:
        out = _run(["ip", "netns", "list"], check=False)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _destroy_netns(name: str) -> None:
    """Kill what runs inside ``name``, delete its TUN device and the namespace itself."""
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        pids = _run(["ip", "netns", "pids", name], check=False).split()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, ValueError, PermissionError):
                os.kill(int(pid), signal.SIGKILL)
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        _run(["ip", "-n", name, "link", "del", TUN_DEVICE], check=False)
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        _run(["ip", "netns", "del", name], check=False)


def cleanup_stale() -> list[str]:
    """Delete the namespaces of bench runs whose process is gone; returns their names."""
    removed = []
    for name in _netns_names():
        match = re.fullmatch(rf"{PREFIX}-(\d+)-\w+", name)
        if match and not _pid_alive(int(match.group(1))):
            _destroy_netns(name)
            removed.append(name)
    return removed


@dataclass(frozen=True, slots=True)
class Side:
    """One end of a lab link: where a process runs and the address it has there."""

    netns: str | None
    addr: str

    def exec_prefix(self) -> list[str]:
        """The argv prefix that runs a command on this side."""
        return [] if self.netns is None else ["ip", "netns", "exec", self.netns]


LOOPBACK = Side(None, "127.0.0.1")


class Netlab:
    """Two namespaces and a link between them; a context manager that always cleans up."""

    def __init__(
        self,
        kind: LinkKind,
        *,
        loss_pct: float = 0.0,
        rate_bit_s: float | None = None,
        queue_bytes: int | None = None,
    ) -> None:
        global _counter
        _counter += 1
        self.kind = kind
        base = f"{PREFIX}-{os.getpid()}-{_counter}"
        self.ns = (f"{base}a", f"{base}b")
        addrs = VETH_ADDRS if kind == "veth" else TUN_ADDRS
        self.client = Side(self.ns[0], addrs[0])
        self.server = Side(self.ns[1], addrs[1])
        self.loss_pct = loss_pct
        self.rate_bit_s = rate_bit_s
        self.queue_bytes = queue_bytes
        self._made: list[str] = []

    # --- set-up ---------------------------------------------------------------------------

    def __enter__(self) -> Netlab:
        reason = missing_requirements(
            self.kind, loss=self.loss_pct > 0, rate=self.rate_bit_s is not None
        )
        if reason:
            raise LabUnavailable(reason)
        cleanup_stale()
        try:
            for name in self.ns:
                _run(["ip", "netns", "add", name])
                self._made.append(name)
                _run(["ip", "-n", name, "link", "set", "lo", "up"])
            if self.kind == "veth":
                self._make_veth()
            else:
                self._make_tun()
        except BaseException:
            self.close()
            raise
        return self

    def _make_veth(self) -> None:
        a, b = self.ns
        _run(
            ["ip", "link", "add", "veth0", "netns", a, "mtu", "1500", "gso_max_segs", "1"]
            + ["type", "veth", "peer", "name", "veth1", "netns", b]
            + ["mtu", "1500", "gso_max_segs", "1"]
        )
        for name, dev, addr in ((a, "veth0", VETH_ADDRS[0]), (b, "veth1", VETH_ADDRS[1])):
            _run(["ip", "-n", name, "addr", "add", f"{addr}/24", "dev", dev])
            _run(["ip", "-n", name, "link", "set", dev, "up"])
        self.set_rate(self.rate_bit_s)
        self.set_loss(self.loss_pct)

    def _make_tun(self) -> None:
        for name, (local, peer) in zip(self.ns, (TUN_ADDRS, TUN_ADDRS[::-1]), strict=True):
            _run(["ip", "-n", name, "tuntap", "add", "dev", TUN_DEVICE, "mode", "tun"])
            _run(["ip", "-n", name, "addr", "add", local, "peer", peer, "dev", TUN_DEVICE])
            _run(
                ["ip", "-n", name, "link", "set", TUN_DEVICE, "mtu", "1500"]
                + ["txqueuelen", str(TUN_TXQUEUELEN), "up"]
            )

    def set_rate(self, rate_bit_s: float | None, queue_bytes: int | None = None) -> None:
        """A ``tbf`` rate limit on each veth (None removes it); the queue holds ``queue_bytes``
        (default 10 ms of the rate, at least 64 KiB)."""
        if self.kind != "veth":
            raise ValueError("set_rate is for veth labs; the WAN forwarder has its own rate")
        self.rate_bit_s = rate_bit_s
        for name, dev in zip(self.ns, ("veth0", "veth1"), strict=True):
            _run(["tc", "-n", name, "qdisc", "del", "dev", dev, "root"], check=False)
            if rate_bit_s is None:
                continue
            limit = queue_bytes or self.queue_bytes or max(64 * 1024, int(rate_bit_s / 8 * 0.01))
            _run(
                ["tc", "-n", name, "qdisc", "add", "dev", dev, "root", "tbf"]
                + ["rate", f"{int(rate_bit_s)}bit", "burst", "32kb", "limit", str(limit)]
            )

    def set_loss(self, loss_pct: float) -> None:
        """Random loss on arrival in each namespace (veth labs), replacing the previous rule."""
        if self.kind != "veth":
            raise ValueError("set_loss is for veth labs; the WAN forwarder applies its own loss")
        self.loss_pct = loss_pct
        for name in self.ns:
            _run(
                ["ip", "netns", "exec", name, "nft", "delete", "table", "inet", PREFIX], check=False
            )
            if loss_pct <= 0:
                continue
            threshold = round(loss_pct * 100)  # per 10,000 packets
            ruleset = (
                f"table inet {PREFIX} {{\n"
                "  chain loss {\n"
                "    type filter hook prerouting priority -300; policy accept;\n"
                f"    numgen random mod 10000 < {threshold} counter drop\n"
                "  }\n"
                "}\n"
            )
            done = subprocess.run(
                ["ip", "netns", "exec", name, "nft", "-f", "-"],
                input=ruleset,
                capture_output=True,
                text=True,
                timeout=COMMAND_TIMEOUT,
            )
            if done.returncode != 0:
                raise RuntimeError(f"nft in {name}: {done.stderr.strip()}")

    # --- measurements --------------------------------------------------------------------------

    def nft_drops(self) -> dict[str, int]:
        """Packets the loss rule dropped so far, per namespace (client side a, server side b)."""
        out: dict[str, int] = {}
        for side, name in zip("ab", self.ns, strict=True):
            text = _run(
                ["ip", "netns", "exec", name, "nft", "list", "table", "inet", PREFIX], check=False
            )
            match = re.search(r"counter packets (\d+)", text)
            out[side] = int(match.group(1)) if match else 0
        return out

    def device_drops(self) -> dict[str, int]:
        """Kernel drops on each side's link device (tx_dropped + rx_dropped): for TUN, packets the
        kernel could not queue to the forwarder because it was not reading fast enough."""
        dev = {"veth": ("veth0", "veth1"), "tun": (TUN_DEVICE, TUN_DEVICE)}[self.kind]
        out: dict[str, int] = {}
        for side, name, device in zip("ab", self.ns, dev, strict=True):
            text = _run(["ip", "-n", name, "-j", "-s", "link", "show", device], check=False)
            try:
                stats = json.loads(text)[0]["stats64"]
                out[side] = int(stats["tx"]["dropped"]) + int(stats["rx"]["dropped"])
            except (ValueError, KeyError, IndexError):
                out[side] = 0
        return out

    # --- tear-down ------------------------------------------------------------------------------

    def close(self) -> None:
        while self._made:
            _destroy_netns(self._made.pop())

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class WanLink:
    """The forwarder process on a TUN lab, for one run; stats come back when it stops."""

    def __init__(
        self, lab: Netlab, ab: LinkParams, ba: LinkParams | None = None, *, seed: int = 1
    ) -> None:
        if lab.kind != "tun":
            raise ValueError("a WanLink needs a 'tun' lab")
        self.lab = lab
        self.params = (ab, ba or ab)
        self.seed = seed
        self.stats: dict[str, Any] | None = None
        self._proc: subprocess.Popen[str] | None = None
        self._drops0: dict[str, int] = {}

    def __enter__(self) -> WanLink:
        argv = [sys.executable, "-m", "bench.netlab.forwarder", "--seed", str(self.seed)]
        for name in self.lab.ns:
            argv += ["--tun", f"{name}:{TUN_DEVICE}"]
        argv += [
            "--params",
            json.dumps({"ab": self.params[0].as_dict(), "ba": self.params[1].as_dict()}),
        ]
        self._drops0 = self.lab.device_drops()
        self._proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            start_new_session=True,
        )
        try:
            message = self._read_line(FORWARDER_START_TIMEOUT)
            if message.get("event") != "ready":
                raise RuntimeError(f"forwarder did not start: {message}")
        except BaseException:
            self._kill()
            raise
        return self

    def _read_line(self, timeout: float) -> dict[str, Any]:
        assert self._proc is not None and self._proc.stdout is not None
        lines: queue.Queue[str] = queue.Queue()
        stdout = self._proc.stdout

        def pump() -> None:
            with contextlib.suppress(OSError, ValueError):
                lines.put(stdout.readline())

        threading.Thread(target=pump, daemon=True).start()
        try:
            line = lines.get(timeout=timeout)
        except queue.Empty:
            raise RuntimeError(f"no answer from the forwarder within {timeout:g} s") from None
        if not line:
            raise RuntimeError("the forwarder exited")
        parsed: dict[str, Any] = json.loads(line)
        return parsed

    def stop(self) -> dict[str, Any]:
        """Stop the forwarder and return its stats (with the kernel's device drops added)."""
        if self.stats is not None or self._proc is None:
            return self.stats or {}
        try:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            stats = self._read_line(10.0)
        finally:
            self._kill()
        drops1 = self.lab.device_drops()
        stats["device_drops"] = {k: drops1[k] - self._drops0.get(k, 0) for k in drops1}
        stats["limited"] = forwarder_limited(stats)
        self.stats = stats
        return stats

    def _kill(self) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5.0)
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.stop()
        else:
            self._kill()


LIMITED_CPU_SHARE = 0.85  # the forwarder's CPU over wall time above which it limited the run
LIMITED_LATE_SHARE = 0.01  # share of packets more than 1 ms late above which it limited the run


def forwarder_limited(stats: dict[str, Any]) -> list[str]:
    """Why the forwarder may have limited a run (empty if it kept up)."""
    reasons = []
    if stats.get("cpu_share", 0.0) > LIMITED_CPU_SHARE:
        reasons.append(f"forwarder CPU {100 * stats['cpu_share']:.0f}% of wall time")
    forwarded = sum(d.get("forwarded", 0) for d in stats.get("directions", {}).values())
    late = stats.get("late_packets", 0)
    if forwarded and late / forwarded > LIMITED_LATE_SHARE:
        reasons.append(f"{100 * late / forwarded:.1f}% of packets >1 ms late")
    drops = sum(stats.get("device_drops", {}).values())
    if drops:
        reasons.append(f"{drops} packets dropped by the kernel before the forwarder read them")
    if stats.get("write_errors"):
        reasons.append(f"{stats['write_errors']} TUN write errors")
    return reasons
