"""Every bad input gets one line on stderr, its documented exit code, and no traceback."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import resource
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from rudp import messages
from rudp.cli import exits, protocol

from .helpers import (
    Receiver,
    Result,
    can_mount_private_tmpfs,
    finish,
    private_tmpfs,
    read_until,
    run,
    spawn,
    write_random,
)


def assert_fails(result: Result, code: int, message: str) -> None:
    assert result.code == code, (result.code, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0], lines[0]
    assert "Traceback" not in result.stderr


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A bound UDP port that never answers: the handshake times out."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


async def test_missing_file(tmp_path: Path, receiver: Receiver) -> None:
    result = await run("send", str(tmp_path / "nope.bin"), receiver.address)
    assert_fails(result, exits.EXIT_INPUT, "nope.bin: no such file")


async def test_directory_is_not_a_file(tmp_path: Path, receiver: Receiver) -> None:
    assert_fails(
        await run("send", str(tmp_path), receiver.address), exits.EXIT_INPUT, "not a regular file"
    )


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.1:http", "127.0.0.1:70000", ":9"])
async def test_bad_address(tmp_path: Path, address: str) -> None:
    path = write_random(tmp_path / "a", 10)
    result = await run("send", str(path), address)
    assert_fails(result, exits.EXIT_USAGE, "HOST:PORT")


async def test_unresolvable_host(tmp_path: Path) -> None:
    path = write_random(tmp_path / "a", 10)
    result = await run("send", str(path), "no-such-host.invalid:9")
    assert_fails(result, exits.EXIT_USAGE, "cannot resolve host 'no-such-host.invalid'")


async def test_output_directory_that_is_a_file(tmp_path: Path) -> None:
    path = write_random(tmp_path / "a", 10)
    result = await run("recv", "--listen", "127.0.0.1:0", "--out", str(path))
    assert_fails(result, exits.EXIT_INPUT, f"cannot use output directory {path}")


async def test_bad_impairment_value(tmp_path: Path) -> None:
    path = write_random(tmp_path / "a", 10)
    result = await run("send", str(path), "127.0.0.1:9", "--loss", "150")
    assert_fails(result, exits.EXIT_USAGE, "percentage must be in [0, 100]")


async def test_no_receiver_refused(tmp_path: Path, silent_port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    path = write_random(tmp_path / "a", 10)  # the port is closed now: ICMP unreachable
    result = await run("send", str(path), f"127.0.0.1:{port}")
    assert_fails(result, exits.EXIT_NO_RECEIVER, "connection refused")


async def test_no_receiver_handshake_timeout(tmp_path: Path, silent_port: int) -> None:
    path = write_random(tmp_path / "a", 10)
    result = await run("send", str(path), f"127.0.0.1:{silent_port}", "--connect-timeout", "0.3")
    assert_fails(result, exits.EXIT_NO_RECEIVER, "no answer within 0.3 s")


async def test_port_in_use(tmp_path: Path, silent_port: int) -> None:
    result = await run("recv", "--listen", f"127.0.0.1:{silent_port}", "--out", str(tmp_path))
    assert_fails(result, exits.EXIT_LISTEN, "address already in use")


async def test_unreadable_file(tmp_path: Path, receiver: Receiver) -> None:
    path = write_random(tmp_path / "secret.bin", 10)
    path.chmod(0)
    # root reads anything: drop the capabilities that let it, for the sender only
    sender = await spawn("send", str(path), receiver.address, preexec_fn=_as_plain_user)
    assert_fails(await finish(sender), exits.EXIT_INPUT, "cannot read")
    assert list(receiver.out.iterdir()) == []


needs_tmpfs = pytest.mark.skipif(
    not can_mount_private_tmpfs(), reason="a private tmpfs needs root and unshare(1)"
)


@needs_tmpfs
async def test_receiver_out_of_disk_space(tmp_path: Path) -> None:
    """A real file system with too little room: a 1 MiB tmpfs, and a 2 MB file."""
    out = tmp_path / "out"
    out.mkdir()
    small = await Receiver.start(out, wrapper=private_tmpfs(out, "1m"))
    try:
        path = write_random(tmp_path / "a.bin", 2_000_000)
        result = await run("send", str(path), small.address)
        assert_fails(
            result,
            exits.EXIT_REJECTED,
            "receiver could not take a.bin: not enough disk space on the receiver: "
            "a.bin needs 1.9 MiB, 1.0 MiB free",
        )
        assert "failed a.bin" in await small.line(b"a.bin")
        assert os.listdir(f"/proc/{small.proc.pid}/root{out}") == []
    finally:
        await small.stop()


@needs_tmpfs
async def test_receiver_runs_out_of_disk_space_mid_file(tmp_path: Path) -> None:
    """The file fit when it was accepted; then the disk filled up (a 12 MiB tmpfs filled by
    another writer while the 8 MiB file is on its way). The sender is told why and stops."""
    out = tmp_path / "out"
    out.mkdir()
    small = await Receiver.start(out, wrapper=private_tmpfs(out, "12m"))
    seen = Path(f"/proc/{small.proc.pid}/root{out}")  # the receiver's view of its tmpfs
    try:
        sender = await _sender_in_progress(tmp_path, small)
        with open(seen / "filler", "wb") as filler:
            with contextlib.suppress(OSError):  # ENOSPC: full
                while True:
                    filler.write(bytes(1 << 16))
                    filler.flush()
        assert_fails(
            await finish(sender),
            exits.EXIT_REJECTED,
            "receiver could not take slow.bin: receiver ran out of disk space",
        )
        assert "failed slow.bin" in await small.line(b"slow.bin")
        assert os.listdir(seen) == ["filler"]  # no partial file
        (seen / "filler").unlink()
        path = write_random(tmp_path / "next.bin", 1000)
        assert (await run("send", str(path), small.address)).code == 0  # it goes on
        assert sorted(os.listdir(seen)) == ["next.bin"]
    finally:
        await small.stop()


async def test_receiver_keeps_the_free_space_asked_for(tmp_path: Path) -> None:
    full = await Receiver.start(tmp_path / "out", "--min-free", "1000PiB")
    try:
        path = write_random(tmp_path / "a.bin", 1000)
        result = await run("send", str(path), full.address)
        assert_fails(result, exits.EXIT_REJECTED, "not enough disk space on the receiver")
        assert "failed a.bin" in await full.line(b"a.bin")
        assert not (full.out / "a.bin").exists()
    finally:
        await full.stop()


async def test_a_directory_in_the_way_of_the_file(tmp_path: Path, receiver: Receiver) -> None:
    (receiver.out / "x.bin").mkdir()
    path = write_random(tmp_path / "x.bin", 1000)
    result = await run("send", str(path), receiver.address)
    assert_fails(
        result, exits.EXIT_REJECTED, "receiver could not take x.bin: receiver cannot store x.bin"
    )
    assert "failed x.bin" in await receiver.line(b"x.bin")
    assert sorted(p.name for p in receiver.out.iterdir()) == ["x.bin"]  # the directory only
    assert (receiver.out / "x.bin").is_dir()
    other = write_random(tmp_path / "y.bin", 1000)
    assert (await run("send", str(other), receiver.address)).code == 0


_PR_CAPBSET_DROP = 24
_CAP_DAC_OVERRIDE = 1
_CAP_DAC_READ_SEARCH = 2
_libc = ctypes.CDLL(None, use_errno=True)


def _as_plain_user() -> None:
    """In the child before exec: without these two capabilities root obeys file modes."""
    if os.geteuid() != 0:
        return
    for capability in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH):
        if _libc.prctl(_PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _small_file_limit() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))


async def test_receiver_write_error_mid_file(tmp_path: Path) -> None:
    """A write that fails after the file was accepted (here EFBIG; ENOSPC takes the same
    path) reaches the sender with its reason; no file is left behind."""
    limited = await Receiver.start(tmp_path / "out", preexec_fn=_small_file_limit)
    try:
        path = write_random(tmp_path / "a.bin", 2_000_000)
        result = await run("send", str(path), limited.address)
        assert_fails(result, exits.EXIT_REJECTED, "receiver cannot write: File too large")
        assert "failed a.bin" in await limited.line(b"a.bin")
        assert list(limited.out.iterdir()) == []
    finally:
        await limited.stop()


async def _send_with_a_wrong_checksum(port: int) -> None:
    """x.bin announced with SHA-256 000...0, then its 5 bytes: the receiver must refuse it."""
    conn = await messages.connect("127.0.0.1", port)
    await conn.send(protocol.file_header("x.bin", 5, "0" * 64))
    assert (await conn.recv())["type"] == "accept"
    await conn.send_bytes(b"hello")
    reply = protocol.parse_reply(await conn.recv(), expect=("result",))
    await conn.close()
    assert not reply.ok and reply.code == "checksum"


async def test_receiver_detects_a_checksum_mismatch(receiver: Receiver) -> None:
    await _send_with_a_wrong_checksum(receiver.port)
    assert "failed x.bin" in await receiver.line(b"x.bin")
    assert list(receiver.out.iterdir()) == []


async def test_recv_once_exits_with_the_checksum_code_after_a_mismatch(tmp_path: Path) -> None:
    once = await Receiver.start(tmp_path / "out", "--once")
    await _send_with_a_wrong_checksum(once.port)
    result = await finish(once.proc)  # exits by itself, with the checksum's code
    assert result.code == exits.EXIT_CHECKSUM, result
    assert "failed x.bin" in result.stdout and "sender announced 000" in result.stdout
    assert "Traceback" not in result.stderr
    assert list(once.out.iterdir()) == []


async def test_sender_reports_a_checksum_mismatch(tmp_path: Path) -> None:
    async def lying_receiver(conn: messages.MessageConnection) -> None:
        header = protocol.parse_header(await conn.recv())
        await conn.send(protocol.accept())
        for _ in range(0, header.size, protocol.CHUNK_SIZE):
            await conn.recv_bytes()
        await conn.send(protocol.result(ok=True, sha256="f" * 64))
        await conn.recv_bytes()  # until the sender closes

    async with await messages.serve(lying_receiver, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        path = write_random(tmp_path / "a.bin", 1000)
        result = await run("send", str(path), f"127.0.0.1:{port}")
    assert_fails(result, exits.EXIT_CHECKSUM, "a.bin: checksum mismatch")


async def _sender_in_progress(tmp_path: Path, receiver: Receiver) -> asyncio.subprocess.Process:
    """A sender of a file big and slow enough to be interrupted, once it has started."""
    path = write_random(tmp_path / "slow.bin", 8 * 2**20)
    sender = await spawn("send", str(path), receiver.address, "--delay", "50ms", "--loss", "2")
    await read_until(sender, b"slow.bin: ")  # a progress line: bytes are flowing
    return sender


async def test_ctrl_c_on_the_sender(tmp_path: Path, receiver: Receiver) -> None:
    sender = await _sender_in_progress(tmp_path, receiver)
    sender.send_signal(signal.SIGINT)
    assert_fails(await finish(sender), exits.EXIT_INTERRUPTED, "interrupted")
    # The sender resets the connection; with --delay the reset may still be held in the
    # sender's simulated link when it exits, and the receiver's idle timeout notices instead.
    assert "failed slow.bin" in await receiver.line(b"slow.bin")
    assert not (receiver.out / "slow.bin").exists()
    assert receiver.leftovers() == []


async def test_a_killed_sender_leaves_no_file_and_the_receiver_goes_on(
    tmp_path: Path, receiver: Receiver
) -> None:
    sender = await _sender_in_progress(tmp_path, receiver)
    sender.kill()
    await finish(sender)
    # The receiver notices through its idle timeout (2 s in the fixture).
    assert "failed slow.bin" in await receiver.line(b"slow.bin")
    assert not (receiver.out / "slow.bin").exists()
    assert receiver.leftovers() == []
    path = write_random(tmp_path / "next.bin", 1000)
    assert (await run("send", str(path), receiver.address)).code == 0
    assert (receiver.out / "next.bin").exists()


@pytest.mark.parametrize(
    ("signum", "code", "message"),
    [
        (signal.SIGINT, exits.EXIT_INTERRUPTED, "interrupted"),
        (signal.SIGTERM, exits.EXIT_TERMINATED, "terminated"),
    ],
    ids=["ctrl-c", "sigterm"],
)
async def test_ctrl_c_on_the_receiver(
    tmp_path: Path, signum: signal.Signals, code: int, message: str
) -> None:
    target = await Receiver.start(tmp_path / "out")
    sender = await _sender_in_progress(tmp_path, target)
    target.proc.send_signal(signum)
    assert_fails(await finish(target.proc), code, message)
    assert list(target.out.iterdir()) == []
    result = await finish(sender)
    assert_fails(result, exits.EXIT_CONNECTION_LOST, "connection lost while sending")
