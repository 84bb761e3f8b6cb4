"""The message-API examples run as documented: in-process, and from their command lines."""

from __future__ import annotations

import asyncio
import importlib.util
import re
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import rudp

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TIMEOUT = 10.0  # seconds for any one step of a subprocess conversation


def load(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` (examples are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"examples_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while decorating
    spec.loader.exec_module(module)
    return module


chat = load("chat")
telemetry = load("telemetry")


@asynccontextmanager
async def example(*argv: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """``python examples/<argv>`` with pipes; killed on the way out if still running."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-u",
        str(EXAMPLES / argv[0]),
        *argv[1:],
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def line_of(proc: asyncio.subprocess.Process) -> str:
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)
    assert line, "the example exited early"
    return line.decode().strip()


async def listening_port(proc: asyncio.subprocess.Process) -> int:
    match = re.fullmatch(r"listening on 127\.0\.0\.1:(\d+)", await line_of(proc))
    assert match is not None
    return int(match.group(1))


async def stop(proc: asyncio.subprocess.Process) -> int:
    """Ctrl-C a server, as a user would; returns its exit status."""
    proc.send_signal(signal.SIGINT)
    return await asyncio.wait_for(proc.wait(), TIMEOUT)


async def test_chat_demo_transcript() -> None:
    transcript = await asyncio.wait_for(chat.demo(), TIMEOUT)
    assert transcript == [
        "alice <- *: welcome alice; here: nobody",
        "bob <- *: welcome bob; here: alice",
        "alice <- *: bob joined",
        "carol <- *: welcome carol; here: alice, bob",
        "alice <- *: carol joined",
        "bob <- *: carol joined",
        "bob <- alice: hi all",
        "carol <- alice: hi all",
        "alice <- bob: hello alice",
        "carol <- bob: hello alice",
        "alice <- carol: hey!",
        "bob <- carol: hey!",
        "bob <- *: alice left",
        "carol <- *: alice left",
        "carol <- *: bob left",
    ]


async def test_chat_command_line() -> None:
    """A server and a stdin client as processes, talking with an in-process client."""
    async with example("chat.py", "server", "--port", "0") as server:
        port = await listening_port(server)
        alice, welcome = await chat.join("127.0.0.1", port, "alice")
        assert welcome == "welcome alice; here: nobody"
        async with example("chat.py", "client", "--port", str(port), "--name", "bob") as bob:
            assert bob.stdin is not None
            assert await line_of(bob) == "welcome bob; here: alice"
            assert await asyncio.wait_for(alice.recv(), TIMEOUT) == {
                "from": "*",
                "text": "bob joined",
            }
            bob.stdin.write(b"hello from bob\n\n")  # the blank line is not sent
            await alice.send({"text": "hi bob"})
            assert await line_of(bob) == "alice: hi bob"
            assert await asyncio.wait_for(alice.recv(), TIMEOUT) == {
                "from": "bob",
                "text": "hello from bob",
            }
            bob.stdin.close()  # Ctrl-D: bob leaves
            assert await asyncio.wait_for(bob.wait(), TIMEOUT) == 0
        assert await asyncio.wait_for(alice.recv(), TIMEOUT) == {"from": "*", "text": "bob left"}
        assert alice.stats["messages_received"] == 4  # welcome, joined, hello, left
        await asyncio.wait_for(alice.close(), TIMEOUT)
        assert await stop(server) == 0


def test_loss_counter_gaps_reordering_duplicates_and_tail() -> None:
    counter = telemetry.LossCounter()
    for seq in (0, 1, 3, 2, 2, 5):
        counter.add(seq, 0.001)
    counter.finish(7)  # 4 and 6 never came
    assert (counter.received, counter.lost, counter.reordered, counter.duplicated) == (5, 2, 1, 1)


async def test_telemetry_without_loss_receives_every_sample() -> None:
    counts = await asyncio.wait_for(telemetry.demo(rate=1000, count=200), TIMEOUT)
    assert counts["sent"] == counts["datagrams_sent"] == 200
    assert (counts["received"], counts["lost"], counts["duplicated"]) == (200, 0, 0)


async def test_telemetry_with_20_percent_loss_counts_every_sample_once() -> None:
    counts = await asyncio.wait_for(telemetry.demo(rate=1000, count=400, loss=0.2), TIMEOUT)
    assert counts["sent"] == counts["datagrams_sent"] == 400
    assert counts["duplicated"] == 0
    assert counts["received"] + counts["lost"] == 400
    assert 40 <= counts["lost"] <= 120  # about 20 % of 400, never retransmitted


@pytest.mark.parametrize("loss", ["0", "0.2"])
async def test_telemetry_command_line(loss: str) -> None:
    async with example("telemetry.py", "receiver", "--port", "0") as receiver:
        port = await listening_port(receiver)
        argv = ["--port", str(port), "--rate", "1000", "--count", "300", "--loss", loss]
        async with example("telemetry.py", "sender", *argv, "--seed", "2") as sender:
            assert await line_of(sender) == "sent 300 samples"
            assert await asyncio.wait_for(sender.wait(), TIMEOUT) == 0
        assert re.fullmatch(r"sender \('127\.0\.0\.1', \d+\) connected", await line_of(receiver))
        done = re.fullmatch(
            r"done: received (\d+)  lost (\d+)  reordered 0  duplicated 0  max age [\d.]+ ms",
            await line_of(receiver),
        )
        assert done is not None
        received, lost = int(done.group(1)), int(done.group(2))
        assert received + lost == 300
        assert (lost > 0) == (loss != "0")
        if loss == "0":
            assert await stop(receiver) == 0
        # With loss the sender's last ACK can be lost after its process exited; the receiver's
        # connection then retransmits its FIN (LAST_ACK) for 30 s or more and Ctrl-C waits for
        # it, so that receiver is killed instead.


ROOT = EXAMPLES.parent


def message_snippet(doc: str) -> str:
    """The ``python`` block of ``doc`` that serves messages."""
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / doc).read_text(encoding="utf-8"), re.S)
    (snippet,) = [block for block in blocks if "rudp.messages.serve" in block]
    return str(snippet)


@pytest.mark.parametrize("doc", ["README.md", "docs/api.md"])
async def test_the_documented_message_example_runs_as_shown(doc: str) -> None:
    snippet = message_snippet(doc)
    expected = re.search(r"print\(await conn\.recv\(\)\)\s+# (.*)", snippet)
    assert expected is not None
    body = "".join(f"    {line}\n" for line in snippet.splitlines())
    namespace: dict[str, Any] = {"rudp": rudp}
    exec(f"async def run(print):\n{body}    return server\n", namespace)
    printed: list[str] = []
    server = await asyncio.wait_for(
        namespace["run"](lambda *values: printed.append(" ".join(map(repr, values)))), TIMEOUT
    )
    server.close()
    await asyncio.wait_for(server.wait_closed(), TIMEOUT)
    assert printed == [expected.group(1)]
