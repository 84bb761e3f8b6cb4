"""Running the ``rudp`` command line in subprocesses, with every wait bounded.

Each helper awaits a process event (a line of output, an exit) under ``asyncio.timeout``;
nothing sleeps to let time pass.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

TIMEOUT = 60.0
"""Upper bound of any single wait; a test that hits it has hung, not merely been slow."""
_LISTENING = re.compile(rb"listening on 127\.0\.0\.1:(\d+)")


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_random(path: Path, size: int, *, seed: int = 0) -> Path:
    path.write_bytes(hashlib.shake_256(seed.to_bytes(4, "big")).digest(size))
    return path


async def spawn(
    *args: str,
    preexec_fn: Callable[[], None] | None = None,
    wrapper: Sequence[str] = (),
) -> asyncio.subprocess.Process:
    """``python -m rudp ARGS`` with pipes for stdout and stderr; ``wrapper`` is a command
    that ends by exec'ing its arguments (the process keeps its pid)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return await asyncio.create_subprocess_exec(
        *wrapper,
        sys.executable,
        "-m",
        "rudp",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        preexec_fn=preexec_fn,
    )


async def finish(proc: asyncio.subprocess.Process, timeout: float = TIMEOUT) -> Result:
    """Wait for the exit; the rest of stdout and stderr come with it. A process that does
    not exit in time is killed, so a failing test leaves nothing running."""
    try:
        async with asyncio.timeout(timeout):
            out, err = await proc.communicate()
    except BaseException:
        if proc.returncode is None:
            proc.kill()
        raise
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


async def run(*args: str, timeout: float = TIMEOUT) -> Result:
    """Run ``rudp ARGS`` to completion."""
    return await finish(await spawn(*args), timeout)


async def read_until(
    proc: asyncio.subprocess.Process, pattern: bytes, timeout: float = TIMEOUT
) -> bytes:
    """Stdout lines up to and including the first that contains ``pattern``."""
    assert proc.stdout is not None
    seen = b""
    async with asyncio.timeout(timeout):
        while True:
            line = await proc.stdout.readline()
            if not line:
                raise AssertionError(f"stdout ended before {pattern!r}; got {seen!r}")
            seen += line
            if pattern in line:
                return seen


class Receiver:
    """A ``rudp recv`` subprocess on an ephemeral loopback port."""

    def __init__(self, proc: asyncio.subprocess.Process, port: int, out: Path) -> None:
        self.proc = proc
        self.port = port
        self.out = out

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @classmethod
    async def start(
        cls,
        out: Path,
        *extra: str,
        preexec_fn: Callable[[], None] | None = None,
        wrapper: Sequence[str] = (),
    ) -> Receiver:
        proc = await spawn(
            "recv",
            "--listen",
            "127.0.0.1:0",
            "--out",
            str(out),
            *extra,
            preexec_fn=preexec_fn,
            wrapper=wrapper,
        )
        first = (await read_until(proc, b"listening")).splitlines()[-1]
        if first.startswith(b"{"):
            return cls(proc, json.loads(first)["port"], out)
        match = _LISTENING.search(first)
        assert match is not None, first
        return cls(proc, int(match.group(1)), out)

    async def line(self, pattern: bytes) -> str:
        """The next output line containing ``pattern``."""
        return (await read_until(self.proc, pattern)).decode().splitlines()[-1]

    async def stop(self) -> Result:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGINT)
        return await finish(self.proc)

    def leftovers(self) -> list[str]:
        """Partial files still in the output directory."""
        return sorted(p.name for p in self.out.iterdir() if p.name.endswith(".part"))


def private_tmpfs(mountpoint: Path, size: str) -> list[str]:
    """A ``spawn`` wrapper: the command runs in its own mount namespace with a tmpfs of
    ``size`` on ``mountpoint`` (which must exist); the mount vanishes with the process, and
    the test sees it under ``/proc/PID/root``."""
    script = 'mount -t tmpfs -o "size=$0" rudp-test "$1" && shift && exec "$@"'
    return [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        script,
        size,
        str(mountpoint),
    ]


def can_mount_private_tmpfs() -> bool:
    """True when this process may make a mount namespace with a tmpfs (root, unshare)."""
    if shutil.which("unshare") is None:
        return False
    wrapper = private_tmpfs(Path(tempfile.gettempdir()), "64k")
    probe = subprocess.run([*wrapper, "true"], capture_output=True, timeout=30)
    return probe.returncode == 0
