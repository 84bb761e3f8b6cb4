"""``rudp send`` to ``rudp recv`` end to end: real sockets, separate processes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from .helpers import Receiver, finish, read_until, run, sha256_of, spawn, write_random

BIG = int(os.environ.get("RUDP_CLI_BIG_BYTES", str(64 * 1024 * 1024)))


async def test_several_files_with_an_empty_one_over_an_impaired_link(
    tmp_path: Path, receiver: Receiver
) -> None:
    files = [
        write_random(tmp_path / "one.bin", 300_000, seed=1),
        write_random(tmp_path / "empty.bin", 0),
        write_random(tmp_path / "three.txt", 5_000, seed=3),
    ]
    result = await run(
        "send",
        *map(str, files),
        receiver.address,
        "--loss", "3", "--delay", "5ms", "--reorder", "1", "--duplicate", "1", "--seed", "7",
    )  # fmt: skip
    assert result.code == 0, result.stderr
    for path in files:
        assert f"{path.name}: checksum OK" in result.stdout
        assert sha256_of(receiver.out / path.name) == sha256_of(path)
        line = await receiver.line(path.name.encode())
        assert line.startswith(f"received {path.name}") and "checksum OK" in line
    assert "sent 3 files" in result.stdout
    assert receiver.leftovers() == []


async def test_json_output_and_the_receiver_serves_the_next_transfer(
    tmp_path: Path, receiver: Receiver
) -> None:
    for seed in (1, 2):
        path = write_random(tmp_path / f"f{seed}.bin", 20_000, seed=seed)
        result = await run("send", "--json", str(path), receiver.address)
        assert result.code == 0, result.stderr
        summary = json.loads(result.stdout)
        assert summary["ok"] is True
        assert summary["files"][0]["sha256"] == sha256_of(path)
        assert summary["bytes"] == 20_000
        assert sha256_of(receiver.out / path.name) == sha256_of(path)


async def test_a_file_replaces_one_of_the_same_name(tmp_path: Path, receiver: Receiver) -> None:
    path = write_random(tmp_path / "same.bin", 1000, seed=1)
    assert (await run("send", str(path), receiver.address)).code == 0
    write_random(path, 2000, seed=2)
    assert (await run("send", str(path), receiver.address)).code == 0
    assert sha256_of(receiver.out / "same.bin") == sha256_of(path)


async def test_a_large_file_among_others_over_an_impaired_link(
    tmp_path: Path, receiver: Receiver
) -> None:
    """64 MiB by default (a few seconds on loopback with the throughput profile), between an
    empty file and a small one on the same connection; RUDP_CLI_BIG_BYTES changes the size."""
    files = [
        write_random(tmp_path / "empty.bin", 0),
        write_random(tmp_path / "big.bin", BIG, seed=9),
        write_random(tmp_path / "small.bin", 70_000, seed=10),
    ]
    result = await run(
        "send", *map(str, files), receiver.address,
        "--profile", "throughput", "--loss", "2", "--delay", "5ms", "--reorder", "1", "--seed", "3",
        timeout=120,
    )  # fmt: skip
    assert result.code == 0, result.stderr
    for path in files:
        assert sha256_of(receiver.out / path.name) == sha256_of(path)
        assert f"{path.name}: checksum OK (sha256 {sha256_of(path)})" in result.stdout
    assert receiver.leftovers() == []


async def test_a_name_as_long_as_the_file_system_allows(tmp_path: Path, receiver: Receiver) -> None:
    name = "n" * 251 + ".bin"  # 255 bytes: longer than any temporary name can embed
    path = write_random(tmp_path / name, 1000)
    result = await run("send", str(path), receiver.address)
    assert result.code == 0, result.stderr
    assert sha256_of(receiver.out / name) == sha256_of(path)
    assert receiver.leftovers() == []


async def test_recv_once_exits_after_the_first_connection(tmp_path: Path) -> None:
    once = await Receiver.start(tmp_path / "out", "--once", "--json")
    path = write_random(tmp_path / "x.bin", 10_000)
    assert (await run("send", str(path), once.address)).code == 0
    result = await finish(once.proc)  # exits by itself
    assert result.code == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert events[-1]["event"] == "received" and events[-1]["ok"] is True


@pytest.mark.parametrize(
    ("args", "directions"),
    [
        (["-n", "2MiB"], ["up"]),
        (["-n", "2MiB", "-R"], ["down"]),
        (["-n", "2MiB", "--bidir"], ["up", "down"]),
        (["-t", "0.3"], ["up"]),
    ],
    ids=["up", "down", "bidir", "duration"],
)
async def test_perf(tmp_path: Path, args: list[str], directions: list[str]) -> None:
    server = await spawn("perf", "server", "--listen", "127.0.0.1:0", "--once")
    line = (await read_until(server, b"listening on")).decode()
    port = line.rsplit(":", 1)[1].strip()
    result = await run("perf", "client", f"127.0.0.1:{port}", "--json", *args)
    assert result.code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["mode"] == {"up": "up", "down": "down"}.get("+".join(directions), "bidir")
    for name in directions:
        if "-n" in args:
            assert report[name]["bytes"] == 2 * 2**20
        else:  # for 0.3 s, then the last block in flight
            assert report[name]["bytes"] > 0 and 0.25 < report[name]["seconds"] < 5.0
        assert report[name]["goodput_bytes_per_second"] > 0
        assert report[name]["srtt"] > 0
    served = await finish(server)
    assert served.code == 0, served.stderr
