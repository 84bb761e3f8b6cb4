"""The README's quick start: ``make demo`` runs ``rudp demo``. These run the same code path
with a small file (the 32 MiB default takes a few seconds; see docs/cli.md), through the
Makefile target itself when the checkout's .venv is the one running the tests."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rudp.cli import exits

from .helpers import TIMEOUT, run

ROOT = Path(__file__).resolve().parents[2]


def _make_demo_is_ready() -> bool:
    """``make demo`` would run at once: this checkout's .venv is installed and up to date,
    and it is the Python running the tests (so the test never installs anything)."""
    if shutil.which("make") is None:
        return False
    if Path(sys.prefix).resolve() != (ROOT / ".venv").resolve():
        return False
    probe = subprocess.run(
        ["make", "-q", ".venv/.installed"], cwd=ROOT, capture_output=True, timeout=30
    )
    return probe.returncode == 0


def _check_output(stdout: str, size: str) -> None:
    lines = stdout.strip().splitlines()
    assert lines[0].startswith(
        f"rudp demo: sending {size} over loopback with 5 % loss each way, 20 ms added RTT, "
        "1 % reordering"
    ), lines[0]
    assert lines[-1].startswith("checksum OK: goodput "), lines[-1]
    assert "segments retransmitted" in lines[-1]


async def test_demo_with_a_small_file() -> None:
    result = await run("demo", "--size", "256KiB", "--seed", "1")
    assert result.code == 0, result.stderr
    _check_output(result.stdout, "256 KiB")


@pytest.mark.skipif(not _make_demo_is_ready(), reason="needs make and this checkout's .venv")
async def test_make_demo() -> None:
    proc = await asyncio.create_subprocess_exec(
        "make", "--no-print-directory", "demo", "DEMO_ARGS=--size 256KiB --seed 1",
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(TIMEOUT):
        out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    stdout = out.decode()
    assert stdout.startswith(".venv/bin/rudp demo --size 256KiB")  # make echoes the command
    _check_output(stdout.split("\n", 1)[1], "256 KiB")


async def test_demo_json() -> None:
    result = await run("demo", "--size", "64KiB", "--loss", "0", "--delay", "0", "--json")
    assert result.code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["ok"] is True and summary["bytes"] == 64 * 1024


async def test_a_failed_demo_exits_non_zero() -> None:
    result = await run("demo", "--size", "64KiB", "--loss", "100", "--connect-timeout", "0.3")
    assert result.code == exits.EXIT_NO_RECEIVER, result.stderr
    assert re.fullmatch(
        r"rudp: error: no demo receiver at 127\.0\.0\.1:\d+: no answer within 0\.3 s\n",
        result.stderr,
    ), result.stderr
