"""The README's quick start: ``make demo`` runs ``rudp demo``; this runs the same code path
with a small file (the 32 MiB default takes minutes at 5 % loss; see docs/cli.md)."""

from __future__ import annotations

import json

from .helpers import run


async def test_demo_with_a_small_file() -> None:
    result = await run("demo", "--size", "256KiB", "--seed", "1")
    assert result.code == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("rudp demo: sending 256 KiB over loopback with 5 % loss each way")
    assert lines[-1].startswith("checksum OK: goodput ")
    assert "segments retransmitted" in lines[-1]


async def test_demo_json() -> None:
    result = await run("demo", "--size", "64KiB", "--loss", "0", "--delay", "0", "--json")
    assert result.code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["ok"] is True and summary["bytes"] == 64 * 1024
