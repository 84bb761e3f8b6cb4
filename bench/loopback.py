"""Loopback bulk goodput of rudp against kernel TCP, sender and receiver in separate processes.

For each case (a transport on an event loop) and each run, the parent starts a receiver process
(a server on 127.0.0.1, port 0) and waits for it to report its port, then starts a sender
process that connects, writes ``--bytes`` in 64 KiB chunks with ``await writer.drain()`` after
each, calls ``write_eof()`` and waits for the receiver to close. The receiver reads with
``read(--read-size)`` until EOF, keeps a running byte count and CRC-32, and closes. Both children
report on a private stdout channel (JSON lines); the parent checks that the byte counts and
CRCs agree and prints the medians (and min/max) over ``--runs`` runs.

Transports: ``rudp-batched`` and ``rudp-plain`` (``rudp.open_connection`` / ``rudp.start_server``
with ``Config(io="batched")`` or ``Config(io="plain")``) and ``tcp`` (``asyncio.open_connection`` /
``asyncio.start_server``, kernel TCP). Loops: ``asyncio`` (the default loop) and ``uvloop``
(``asyncio.Runner(loop_factory=uvloop.new_event_loop)``). Both children of a run use the same
transport and loop.

Measured per run:

* wall s: CLOCK_MONOTONIC (shared by all processes of the host) from just before the sender's
  first write to the receiver's ``read()`` returning EOF; the handshake is not included.
* goodput MB/s: ``--bytes`` / wall s, in 10^6 B/s.
* CPU s of each process: ``resource.getrusage(RUSAGE_SELF)`` user + sys, taken inside the child
  around the transfer (the sender from just before its first write until the receiver's close
  reached it, the receiver from the accepted connection until EOF), so interpreter start-up,
  imports and the handshake are not counted; also given per GiB (2^30 B) moved.
* retx: segments the rudp sender retransmitted (``get_extra_info("stats")``); ``-`` for TCP.
* other %: user CPU time of every other process on the host plus hypervisor steal (from
  ``/proc/stat``) during the receiver's transfer window, in % of one CPU; the table warns when a
  case's median is above 10, as the figures are then disturbed by someone else's load.

Run from the repository root::

    .venv/bin/python bench/loopback.py                    # 256 MiB x 5 runs x 6 cases, ~2 min
    .venv/bin/python bench/loopback.py --quick            # 32 MiB x 3 runs, well under a minute
    .venv/bin/python bench/loopback.py --cases rudp-batched/uvloop,tcp/uvloop --runs 3
    .venv/bin/python bench/loopback.py --json             # the same figures as JSON
    .venv/bin/python bench/loopback.py --bytes 64M --cases rudp-batched/asyncio \\
        --profile /tmp/prof                               # cProfile both children, top 15 each
    .venv/bin/python bench/loopback.py --cases rudp-batched --config send_buffer_high=4M

``--config FIELD=VALUE`` (repeatable) overrides a ``rudp.Config`` field in both children, to try
a setting without editing code; the defaults are what the table measures otherwise.

Every wait is bounded (``--timeout`` per run); children run in their own session and are
killed when the run ends, when the parent fails or on Ctrl-C, and exit by themselves when the
parent's pipe to them closes. Exit status: 0 when every run moved the right bytes, 1 when one
failed (wrong data, a child error or a timeout), 130 on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import dataclasses
import json
import os
import platform
import pstats
import queue
import resource
import signal
import statistics
import subprocess
import sys
import threading
import time
import traceback
import zlib
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import rudp  # noqa: E402

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a dependency on CPython/Linux
    uvloop = None  # type: ignore[assignment]

HOST = "127.0.0.1"
CHUNK = 1 << 16  # bytes per writer.write()
CHUNK_POOL = 16  # distinct random chunks the sender cycles through
MIB = 1 << 20
GIB = 1 << 30
DEFAULT_BYTES = 256 * MIB
QUICK_BYTES = 32 * MIB
DEFAULT_RUNS = 5
QUICK_RUNS = 3
TRANSPORTS = ("rudp-batched", "rudp-plain", "tcp")
LOOPS = ("asyncio", "uvloop")
STARTUP_TIMEOUT = 30.0  # seconds for a child to start and (receiver) report its port
EXIT_TIMEOUT = 15.0  # seconds for a child to exit by itself after its result
CLOSE_TIMEOUT = 10.0  # seconds a child waits for a graceful close after the transfer
DISTURBED_PCT = 10.0  # other processes' CPU (% of one CPU) above which the table warns

Case = tuple[str, str]  # (transport, loop)
Emit = Callable[[dict[str, Any]], None]


class BenchError(Exception):
    """A run that did not produce a valid measurement."""


def _size(text: str) -> int:
    """Parse a size such as ``256M``, ``512K``, ``1G`` or ``1048576`` (binary units)."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper().removesuffix("IB").removesuffix("B")
    scale = units.get(text[-1:], 1)
    number = text[:-1] if text[-1:] in units else text
    try:
        value = int(float(number) * scale)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("size must be > 0")
    return value


def _mib(n: int) -> str:
    return f"{n / MIB:g} MiB"


def _now() -> float:
    return time.clock_gettime(time.CLOCK_MONOTONIC)


def _cpu_seconds() -> tuple[float, float]:
    """This process's (user + sys, user) CPU seconds."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime, usage.ru_utime


def _host_user_seconds() -> float | None:
    """User-space plus stolen CPU seconds of the whole host so far (all CPUs, from /proc/stat),
    or None where there is no /proc/stat."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = f.readline().split()
        user, nice, steal = int(fields[1]), int(fields[2]), int(fields[8])
    except (OSError, IndexError, ValueError):
        return None
    return (user + nice + steal) / os.sysconf("SC_CLK_TCK")


# --- children ------------------------------------------------------------------------------------


def _config_override(text: str) -> tuple[str, Any]:
    """Parse ``FIELD=VALUE`` for ``rudp.Config``; the value takes the type of the default."""
    name, sep, raw = text.partition("=")
    name = name.strip().replace("-", "_")
    fields = {f.name for f in dataclasses.fields(rudp.Config)}
    if not sep or name not in fields or name == "io":
        raise argparse.ArgumentTypeError(
            f"expected FIELD=VALUE with a rudp.Config field other than io, got {text!r}"
        )
    default = getattr(rudp.Config(), name)
    raw = raw.strip()
    value: Any
    try:
        if isinstance(default, bool):
            if raw.lower() not in ("true", "false", "1", "0"):
                raise ValueError(raw)
            value = raw.lower() in ("true", "1")
        elif default is None:
            value = None if raw.lower() == "none" else float(raw)
        elif isinstance(default, int):
            value = _size(raw) if raw[-1:].isalpha() else int(raw)
        elif isinstance(default, float):
            value = float(raw)
        else:
            value = raw
        rudp.Config().replace(**{name: value})
    except (ValueError, argparse.ArgumentTypeError) as exc:
        raise argparse.ArgumentTypeError(f"bad value for {name}: {exc}") from None
    return name, value


def _rudp_config(transport: str, overrides: Sequence[tuple[str, Any]]) -> rudp.Config:
    io: Literal["batched", "plain"] = "batched" if transport == "rudp-batched" else "plain"
    return rudp.Config(io=io).replace(**dict(overrides))


def _loop_factory(loop: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    if loop == "uvloop":
        if uvloop is None:
            raise BenchError("uvloop is not installed")
        return uvloop.new_event_loop
    return None  # asyncio.Runner's default: the policy's loop


def _transport_stats(writer: asyncio.StreamWriter) -> dict[str, Any] | None:
    stats = writer.transport.get_extra_info("stats")
    return dict(stats) if isinstance(stats, dict) else None


class _Profiler:
    """cProfile around the transfer only, when the child was given ``--profile-out``."""

    def __init__(self, path: str | None) -> None:
        self._path = path
        self._profile = cProfile.Profile() if path else None

    def start(self) -> None:
        if self._profile is not None:
            self._profile.enable()

    def stop(self) -> None:
        if self._profile is not None and self._path is not None:
            self._profile.disable()
            self._profile.dump_stats(self._path)
            self._profile = None


async def _close_writer(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(TimeoutError, OSError, ConnectionError):
        await asyncio.wait_for(writer.wait_closed(), CLOSE_TIMEOUT)


async def _receive_all(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, args: argparse.Namespace
) -> dict[str, Any]:
    """Read until EOF, counting bytes and their CRC-32; the measured part of the receiver."""
    profiler = _Profiler(args.profile_out)
    profiler.start()
    host0 = _host_user_seconds()
    cpu0, user0 = _cpu_seconds()
    t_accept = _now()
    t_first: float | None = None
    count = 0
    crc = 0
    read_size: int = args.read_size
    while True:
        data = await reader.read(read_size)
        if not data:
            break
        if t_first is None:
            t_first = _now()
        count += len(data)
        crc = zlib.crc32(data, crc)
    t_eof = _now()
    cpu1, user1 = _cpu_seconds()
    host1 = _host_user_seconds()
    profiler.stop()
    return {
        "bytes": count,
        "crc32": crc,
        "t_accept": t_accept,
        "t_first_byte": t_first,
        "t_eof": t_eof,
        "cpu_s": cpu1 - cpu0,
        "user_s": user1 - user0,
        "host_user_s": None if host0 is None or host1 is None else host1 - host0,
        "stats": _transport_stats(writer),
    }


async def _receiver(args: argparse.Namespace, emit: Emit) -> None:
    loop = asyncio.get_running_loop()
    accepted: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]]
    accepted = loop.create_future()

    def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A plain callback: the transfer runs in this coroutine, so a timeout cancels it cleanly.
        if accepted.done():  # one connection per run; anything else is a stray
            writer.close()
        else:
            accepted.set_result((reader, writer))

    server: asyncio.AbstractServer | rudp.Server
    if args.transport == "tcp":
        server = await asyncio.start_server(on_connection, HOST, 0)
    else:
        server = await rudp.start_server(
            on_connection, HOST, 0, config=_rudp_config(args.transport, args.config)
        )
    try:
        port = server.sockets[0].getsockname()[1]
        emit({"event": "ready", "port": port, "pid": os.getpid()})
        reader, writer = await accepted
        result = await _receive_all(reader, writer, args)
        # Report before the close: the close tells the sender that everything arrived.
        emit({"event": "result", **result})
        await _close_writer(writer)
        # Let the last ACK of the close go out before the server and the process go away.
        await asyncio.sleep(0.05)
    finally:
        server.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.wait_closed(), CLOSE_TIMEOUT)


async def _sender(args: argparse.Namespace, emit: Emit) -> None:
    if args.transport == "tcp":
        connect = asyncio.open_connection(HOST, args.port)
    else:
        connect = rudp.open_connection(
            HOST, args.port, config=_rudp_config(args.transport, args.config)
        )
    reader, writer = await asyncio.wait_for(connect, STARTUP_TIMEOUT)
    pool = [os.urandom(CHUNK) for _ in range(CHUNK_POOL)]
    total: int = args.bytes
    profiler = _Profiler(args.profile_out)
    profiler.start()
    cpu0, user0 = _cpu_seconds()
    t_first = _now()
    sent = 0
    crc = 0
    index = 0
    while sent < total:
        chunk = pool[index % CHUNK_POOL]
        if total - sent < CHUNK:
            chunk = chunk[: total - sent]
        writer.write(chunk)
        crc = zlib.crc32(chunk, crc)
        sent += len(chunk)
        index += 1
        await writer.drain()
    writer.write_eof()
    await writer.drain()
    t_written = _now()
    tail = await reader.read()  # the receiver closes once it has seen our EOF
    t_closed = _now()
    cpu1, user1 = _cpu_seconds()
    profiler.stop()
    if tail:
        raise BenchError(f"the receiver sent {len(tail)} unexpected bytes")
    emit(
        {
            "event": "result",
            "bytes": sent,
            "crc32": crc,
            "t_first_write": t_first,
            "t_written": t_written,
            "t_peer_closed": t_closed,
            "cpu_s": cpu1 - cpu0,
            "user_s": user1 - user0,
            "stats": _transport_stats(writer),
        }
    )
    await _close_writer(writer)


def _watch_parent(stdin: TextIO) -> None:
    """Exit the child as soon as the parent's end of our stdin closes (the parent is gone)."""
    with contextlib.suppress(OSError, ValueError):
        while stdin.read(4096):
            pass
    os._exit(70)


def child_main(args: argparse.Namespace) -> int:
    # Keep fd 1 for the JSON channel; anything else printed to stdout goes to stderr.
    channel = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    threading.Thread(target=_watch_parent, args=(sys.stdin,), daemon=True).start()

    def emit(message: dict[str, Any]) -> None:
        channel.write(json.dumps(message) + "\n")
        channel.flush()

    role: Callable[[argparse.Namespace, Emit], Coroutine[Any, Any, None]]
    role = _receiver if args.child == "receiver" else _sender
    try:
        with asyncio.Runner(loop_factory=_loop_factory(args.loop)) as runner:
            runner.run(asyncio.wait_for(role(args, emit), args.timeout))
    except TimeoutError:
        emit({"event": "error", "message": f"{args.child} timed out after {args.timeout:g} s"})
        return 1
    except Exception as exc:
        emit(
            {
                "event": "error",
                "message": f"{args.child}: {type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(),
            }
        )
        return 1
    return 0


# --- parent: processes -------------------------------------------------------------------------


class Child:
    """One child process; its JSON lines go to a queue shared by the run, tagged by role."""

    def __init__(self, role: str, argv: list[str], events: queue.Queue[tuple[str, Any]]) -> None:
        self.role = role
        self._events = events
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            start_new_session=True,  # Ctrl-C reaches only the parent, which kills us
        )
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        stdout = self.proc.stdout
        if stdout is not None:
            with contextlib.suppress(OSError, ValueError):
                for line in stdout:
                    line = line.strip()
                    if not line:
                        continue
                    try:
                        message = json.loads(line)
                    except ValueError:
                        message = {"event": "garbage", "line": line}
                    self._events.put((self.role, message))
        self._events.put((self.role, {"event": "exit"}))

    def wait_exit(self, timeout: float) -> bool:
        """Wait for a clean exit; False if the child had to be killed."""
        try:
            self.proc.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            self.kill()
            return False

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5.0)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        self._thread.join(1.0)


def _next_event(
    events: queue.Queue[tuple[str, Any]], deadline: float, what: str
) -> tuple[str, Any]:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise BenchError(f"timed out waiting for {what}")
    try:
        return events.get(timeout=remaining)
    except queue.Empty:
        raise BenchError(f"timed out waiting for {what}") from None


def _child_argv(args: argparse.Namespace, case: Case, role: str, extra: list[str]) -> list[str]:
    transport, loop = case
    return [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        role,
        "--transport",
        transport,
        "--loop",
        loop,
        "--bytes",
        str(args.bytes),
        "--read-size",
        str(args.read_size),
        "--timeout",
        str(args.timeout),
        *(f"--config={name}={value}" for name, value in args.config),
        *extra,
    ]


@dataclass
class RunResult:
    transport: str
    loop: str
    run: int
    bytes: int
    wall_s: float
    goodput_mb_s: float
    sender_cpu_s: float
    receiver_cpu_s: float
    sender_cpu_s_per_gib: float
    receiver_cpu_s_per_gib: float
    retransmits: int | None
    rto_timeouts: int | None
    sender_write_s: float  # first write to write_eof() drained
    other_cpu_pct: float | None  # others' user CPU + steal while the receiver ran, % of a CPU
    sender_stats: dict[str, Any] | None
    receiver_stats: dict[str, Any] | None
    profiles: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def run_once(args: argparse.Namespace, case: Case, run: int) -> RunResult:
    """One transfer in two fresh processes; the children are gone when this returns."""
    events: queue.Queue[tuple[str, Any]] = queue.Queue()
    children: dict[str, Child] = {}
    profiles: dict[str, str] = {}
    warnings: list[str] = []

    def profile_args(role: str) -> list[str]:
        if not args.profile or args.profile_role not in ("both", role):
            return []
        path = str(Path(args.profile) / f"{case[0]}-{case[1]}-run{run}-{role}.prof")
        profiles[role] = path
        return ["--profile-out", path]

    try:
        children["receiver"] = Child(
            "receiver", _child_argv(args, case, "receiver", profile_args("receiver")), events
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        port: int | None = None
        while port is None:
            role, message = _next_event(events, deadline, "the receiver's port")
            _check_event(role, message, children)
            if message.get("event") == "ready":
                port = int(message["port"])
        children["sender"] = Child(
            "sender",
            _child_argv(args, case, "sender", ["--port", str(port), *profile_args("sender")]),
            events,
        )
        deadline = time.monotonic() + args.timeout + STARTUP_TIMEOUT
        results: dict[str, dict[str, Any]] = {}
        while len(results) < 2:
            role, message = _next_event(events, deadline, "the transfer to finish")
            if role in results:
                continue  # its exit after its result, or a late line: the other one is awaited
            _check_event(role, message, children)
            if message.get("event") == "result":
                results[role] = message
        for role, child in children.items():
            if not child.wait_exit(EXIT_TIMEOUT):
                warnings.append(f"{role} did not exit within {EXIT_TIMEOUT:g} s; killed")
            elif child.proc.returncode != 0:
                warnings.append(f"{role} exited with status {child.proc.returncode}")
    finally:
        for child in children.values():
            child.kill()
    return _make_result(case, run, results["sender"], results["receiver"], profiles, warnings)


def _check_event(role: str, message: dict[str, Any], children: dict[str, Child]) -> None:
    event = message.get("event")
    if event == "error":
        detail = message.get("traceback") or ""
        raise BenchError(f"{message.get('message')}\n{detail}".rstrip())
    if event == "exit":
        child = children[role]
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.proc.wait(2.0)
        raise BenchError(f"{role} exited (status {child.proc.returncode}) before reporting")
    if event == "garbage":
        raise BenchError(f"{role} printed an unexpected line: {message.get('line')!r}")


def _make_result(
    case: Case,
    run: int,
    tx: dict[str, Any],
    rx: dict[str, Any],
    profiles: dict[str, str],
    warnings: list[str],
) -> RunResult:
    if tx["bytes"] != rx["bytes"] or tx["crc32"] != rx["crc32"]:
        raise BenchError(
            f"wrong data: sent {tx['bytes']} B crc {tx['crc32']:08x}, "
            f"received {rx['bytes']} B crc {rx['crc32']:08x}"
        )
    moved = int(tx["bytes"])
    wall = float(rx["t_eof"]) - float(tx["t_first_write"])
    if wall <= 0:
        raise BenchError(f"non-positive wall time {wall!r}")
    tx_stats = tx.get("stats")
    other: float | None = None
    if rx.get("host_user_s") is not None:
        # The host's user (and stolen) time over the receiver's window, less both children's
        # own user time: what other processes and the hypervisor took meanwhile.
        busy = float(rx["host_user_s"]) - float(rx["user_s"]) - float(tx["user_s"])
        span = float(rx["t_eof"]) - float(rx["t_accept"])
        other = 100 * max(busy, 0.0) / span if span > 0 else None
    return RunResult(
        transport=case[0],
        loop=case[1],
        run=run,
        bytes=moved,
        wall_s=wall,
        goodput_mb_s=moved / wall / 1e6,
        sender_cpu_s=float(tx["cpu_s"]),
        receiver_cpu_s=float(rx["cpu_s"]),
        sender_cpu_s_per_gib=float(tx["cpu_s"]) * GIB / moved,
        receiver_cpu_s_per_gib=float(rx["cpu_s"]) * GIB / moved,
        retransmits=None if tx_stats is None else int(tx_stats["segments_retransmitted"]),
        rto_timeouts=None if tx_stats is None else int(tx_stats["rto_timeouts"]),
        sender_write_s=float(tx["t_written"]) - float(tx["t_first_write"]),
        other_cpu_pct=other,
        sender_stats=tx_stats,
        receiver_stats=rx.get("stats"),
        profiles=profiles,
        warnings=warnings,
    )


# --- parent: summary and output --------------------------------------------------------------

SUMMARY_FIELDS = (
    "goodput_mb_s",
    "wall_s",
    "sender_cpu_s",
    "receiver_cpu_s",
    "sender_cpu_s_per_gib",
    "receiver_cpu_s_per_gib",
    "retransmits",
    "other_cpu_pct",
)


@dataclass
class CaseSummary:
    transport: str
    loop: str
    runs: list[RunResult]
    failures: list[str]

    def values(self, name: str) -> list[float]:
        out = []
        for run in self.runs:
            value = getattr(run, name)
            if value is not None:
                out.append(float(value))
        return out

    def median(self, name: str) -> float | None:
        values = self.values(name)
        return statistics.median(values) if values else None

    def as_dict(self) -> dict[str, Any]:
        summary: dict[str, Any] = {}
        for name in SUMMARY_FIELDS:
            values = self.values(name)
            summary[name] = (
                {"median": statistics.median(values), "min": min(values), "max": max(values)}
                if values
                else None
            )
        return {
            "transport": self.transport,
            "loop": self.loop,
            "summary": summary,
            "runs": [asdict(run) for run in self.runs],
            "failures": self.failures,
        }


def ratios(summaries: Sequence[CaseSummary]) -> dict[str, dict[str, float]]:
    """rudp / TCP median goodput, per loop, for every rudp transport measured on that loop."""
    by_case = {(s.transport, s.loop): s.median("goodput_mb_s") for s in summaries}
    out: dict[str, dict[str, float]] = {}
    for loop in LOOPS:
        tcp = by_case.get(("tcp", loop))
        if not tcp:
            continue
        for transport in TRANSPORTS[:-1]:
            value = by_case.get((transport, loop))
            if value is not None:
                out.setdefault(loop, {})[transport] = value / tcp
    return out


def _fmt(value: float | None, spec: str, width: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:{width}{spec}}"


TABLE_HEADER = (
    f"{'case':<13} {'loop':<8} {'MB/s':>8} {'min':>8} {'max':>8} {'wall s':>7} "
    f"{'snd CPU s':>9} {'rcv CPU s':>9} {'snd s/GiB':>9} {'rcv s/GiB':>9} "
    f"{'retx':>6} {'retx max':>8} {'other %':>7}"
)


def print_table(args: argparse.Namespace, summaries: Sequence[CaseSummary]) -> None:
    print(
        f"Loopback bulk transfer {HOST}: {_mib(args.bytes)} per run, {args.runs} run(s) per case, "
        f"{CHUNK // 1024} KiB writes, read({args.read_size}); Python "
        f"{platform.python_version()}, {os.cpu_count()} CPUs"
    )
    print(
        "medians over the runs (MB/s also min and max); MB/s = 10^6 B/s of wall time from the "
        "first write to EOF;\nCPU = user+sys of each process during the transfer; retx = rudp "
        "segments retransmitted;\nother % = user CPU of other processes (and steal) on the host "
        "meanwhile, % of one CPU: above ~10 the figures are disturbed"
    )
    if args.config:
        print("rudp.Config overrides: " + ", ".join(f"{k}={v}" for k, v in args.config))
    print(TABLE_HEADER)
    for s in summaries:
        goodput = s.values("goodput_mb_s")
        retx = s.values("retransmits")
        line = (
            f"{s.transport:<13} {s.loop:<8} "
            f"{_fmt(s.median('goodput_mb_s'), '.1f', 8)} "
            f"{_fmt(min(goodput) if goodput else None, '.1f', 8)} "
            f"{_fmt(max(goodput) if goodput else None, '.1f', 8)} "
            f"{_fmt(s.median('wall_s'), '.3f', 7)} "
            f"{_fmt(s.median('sender_cpu_s'), '.3f', 9)} "
            f"{_fmt(s.median('receiver_cpu_s'), '.3f', 9)} "
            f"{_fmt(s.median('sender_cpu_s_per_gib'), '.2f', 9)} "
            f"{_fmt(s.median('receiver_cpu_s_per_gib'), '.2f', 9)} "
            f"{_fmt(s.median('retransmits'), '.0f', 6)} "
            f"{_fmt(max(retx) if retx else None, '.0f', 8)} "
            f"{_fmt(s.median('other_cpu_pct'), '.0f', 7)}"
        )
        if s.failures:
            line += f"  ({len(s.failures)} failed)"
        print(line)
    disturbed = [
        f"{s.transport}/{s.loop}"
        for s in summaries
        if (other := s.median("other_cpu_pct")) is not None and other > DISTURBED_PCT
    ]
    if disturbed:
        print(
            f"warning: other processes used more than {DISTURBED_PCT:g}% of a CPU during "
            f"{', '.join(disturbed)}; rerun on a quiet machine"
        )
    table = ratios(summaries)
    if table:
        print("rudp/TCP goodput ratio (medians):")
        for loop, values in table.items():
            parts = "  ".join(f"{name} {value:.3f}" for name, value in values.items())
            print(f"  {loop:<8} {parts}")


@dataclass
class ProfileRow:
    ncalls: int
    tottime: float
    cumtime: float
    function: str


def _label(filename: str, line: int, name: str) -> str:
    if filename == "~":
        return name  # a built-in, e.g. "<method 'recvfrom_into' of '_socket.socket' objects>"
    path = Path(filename)
    try:
        shown = str(path.resolve().relative_to(ROOT))
    except ValueError:
        parts = path.parts
        shown = "/".join(parts[-2:]) if len(parts) >= 2 else filename
    return f"{shown}:{line}({name})"


def profile_rows(path: str, top: int) -> tuple[float, list[ProfileRow]]:
    """The total profiled time and the ``top`` functions by tottime of a dumped profile."""
    stats = pstats.Stats(path)
    entries: dict[tuple[str, int, str], tuple[int, int, float, float, Any]]
    entries = stats.stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in entries.values())
    ranked = sorted(entries.items(), key=lambda item: item[1][2], reverse=True)[:top]
    rows = [
        ProfileRow(ncalls=nc, tottime=tt, cumtime=ct, function=_label(*key))
        for key, (_cc, nc, tt, ct, _callers) in ranked
    ]
    return total, rows


def print_profiles(summaries: Sequence[CaseSummary], top: int) -> None:
    for s in summaries:
        for run in s.runs:
            for role in ("sender", "receiver"):
                path = run.profiles.get(role)
                if path is None or not Path(path).exists():
                    continue
                total, rows = profile_rows(path, top)
                print(
                    f"\n== cProfile {s.transport}/{s.loop} {role}, run {run.run}: top {top} by "
                    f"tottime of {total:.3f} s profiled ({path})"
                )
                print(f"  {'ncalls':>10} {'tottime':>8} {'%':>5} {'cumtime':>8}  function")
                for row in rows:
                    share = 100 * row.tottime / total if total else 0.0
                    print(
                        f"  {row.ncalls:>10} {row.tottime:8.3f} {share:5.1f} {row.cumtime:8.3f}  "
                        f"{row.function}"
                    )


# --- parent: main ------------------------------------------------------------------------------


def parse_cases(text: str) -> list[Case]:
    """``all`` or comma-separated ``TRANSPORT`` (both loops) or ``TRANSPORT/LOOP`` items."""
    if text.strip() == "all":
        return [(t, loop) for t in TRANSPORTS for loop in LOOPS]
    cases: list[Case] = []
    for item in text.split(","):
        transport, _, loop = item.strip().partition("/")
        if transport not in TRANSPORTS:
            raise argparse.ArgumentTypeError(
                f"unknown transport {transport!r} (choose from {', '.join(TRANSPORTS)})"
            )
        if loop and loop not in LOOPS:
            raise argparse.ArgumentTypeError(
                f"unknown loop {loop!r} (choose from {', '.join(LOOPS)})"
            )
        for one in (loop,) if loop else LOOPS:
            if (transport, one) not in cases:
                cases.append((transport, one))
    return cases


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Loopback bulk goodput and CPU cost of rudp against kernel TCP, "
        "sender and receiver in separate processes.",
    )
    parser.add_argument(
        "--bytes", type=_size, default=None, help="bytes per transfer (256M; 32M with --quick)"
    )
    parser.add_argument(
        "--runs", type=int, default=None, help="runs per case (5; 3 with --quick; 1 with --profile)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="32 MiB x 3 runs: the whole matrix in well under 1 min"
    )
    parser.add_argument(
        "--cases",
        type=parse_cases,
        default=parse_cases("all"),
        help="'all' (default) or comma-separated TRANSPORT or TRANSPORT/LOOP; transports: "
        f"{', '.join(TRANSPORTS)}; loops: {', '.join(LOOPS)}",
    )
    parser.add_argument(
        "--read-size", type=int, default=1 << 16, help="receiver's read() size (65536)"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds one run may take before it counts as failed (60 + 1 s per MB)",
    )
    parser.add_argument(
        "--config",
        metavar="FIELD=VALUE",
        type=_config_override,
        action="append",
        default=[],
        help="override a rudp.Config field in both children, e.g. send_buffer_high=4M "
        "(repeatable; io is set by the case)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    parser.add_argument(
        "--profile",
        metavar="DIR",
        default=None,
        help="run both children under cProfile (transfer only), keep DIR/*.prof, print the top",
    )
    parser.add_argument(
        "--profile-role",
        choices=("both", "sender", "receiver"),
        default="both",
        help="which child --profile profiles (both); the other one runs at full speed",
    )
    parser.add_argument(
        "--profile-top", type=int, default=15, help="functions shown per profile (15)"
    )
    # Internal: how the parent starts its children.
    parser.add_argument("--child", choices=("sender", "receiver"), help=argparse.SUPPRESS)
    parser.add_argument("--transport", choices=TRANSPORTS, help=argparse.SUPPRESS)
    parser.add_argument("--loop", choices=LOOPS, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--profile-out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.bytes is None:
        args.bytes = QUICK_BYTES if args.quick else DEFAULT_BYTES
    if args.runs is None:
        args.runs = 1 if args.profile else (QUICK_RUNS if args.quick else DEFAULT_RUNS)
    if args.timeout is None:
        args.timeout = 60.0 + args.bytes / 1e6
    if args.runs < 1 or args.read_size < 1 or args.timeout <= 0 or args.profile_top < 1:
        parser.error("--runs, --read-size, --timeout and --profile-top must be > 0")
    if args.child is not None and (args.transport is None or args.loop is None):
        parser.error("--child needs --transport and --loop")
    if args.child == "sender" and args.port is None:
        parser.error("--child sender needs --port")
    return args


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child is not None:
        return child_main(args)
    # SIGTERM unwinds like Ctrl-C, so the children are killed on the way out.
    signal.signal(signal.SIGTERM, _interrupt)
    cases: list[Case] = args.cases
    if uvloop is None and any(loop == "uvloop" for _, loop in cases):
        print("uvloop is not installed: skipping the uvloop cases", file=sys.stderr)
        cases = [case for case in cases if case[1] != "uvloop"]
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
    summaries: list[CaseSummary] = []
    status = 0
    started = time.monotonic()
    try:
        for transport, loop in cases:
            summary = CaseSummary(transport, loop, [], [])
            summaries.append(summary)
            for run in range(1, args.runs + 1):
                label = f"{transport}/{loop} run {run}/{args.runs}"
                try:
                    result = run_once(args, (transport, loop), run)
                except BenchError as exc:
                    summary.failures.append(str(exc))
                    status = 1
                    print(f"{label}: FAILED: {exc}", file=sys.stderr, flush=True)
                    continue
                summary.runs.append(result)
                retx = "" if result.retransmits is None else f", {result.retransmits} retx"
                if result.other_cpu_pct is not None:
                    retx += f", other {result.other_cpu_pct:.0f}%"
                print(
                    f"{label}: {result.goodput_mb_s:.1f} MB/s, {result.wall_s:.3f} s, CPU "
                    f"snd {result.sender_cpu_s:.3f} s rcv {result.receiver_cpu_s:.3f} s{retx}",
                    file=sys.stderr,
                    flush=True,
                )
                for warning in result.warnings:
                    print(f"{label}: warning: {warning}", file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        print("interrupted; children killed", file=sys.stderr)
        return 130
    elapsed = time.monotonic() - started
    if args.json:
        report = {
            "params": {
                "bytes": args.bytes,
                "runs": args.runs,
                "chunk": CHUNK,
                "read_size": args.read_size,
                "rudp_config_overrides": dict(args.config),
                "host": HOST,
                "python": platform.python_version(),
                "uvloop": None if uvloop is None else getattr(uvloop, "__version__", "?"),
                "cpus": os.cpu_count(),
            },
            "cases": [s.as_dict() for s in summaries],
            "goodput_ratio_rudp_over_tcp": ratios(summaries),
            "elapsed_s": elapsed,
        }
        json.dump(report, sys.stdout, indent=2)
        print()
    else:
        print_table(args, summaries)
        if args.profile:
            print_profiles(summaries, args.profile_top)
        print(f"\n(total {elapsed:.1f} s)")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
