"""A chat room over rudp messages: every message is one msgpack dict, never a split line.

The server names each client from its ``{"join": name}`` greeting and stamps ``"from"`` itself,
so a client cannot speak as someone else; it relays ``{"text": ...}`` to everyone else.

Run:
    .venv/bin/python examples/chat.py server --port 9000
    .venv/bin/python examples/chat.py client --port 9000 --name alice   # type lines; Ctrl-D quits
    .venv/bin/python examples/chat.py demo                              # 3 scripted clients
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from typing import Any

import rudp
from rudp.messages import MessageConnection

SERVER = "*"  # the "from" of the server's own notices


class Room:
    """The connected clients by name; ``broadcast`` skips the sender."""

    def __init__(self) -> None:
        self.members: dict[str, MessageConnection] = {}

    async def broadcast(self, message: dict[str, Any], *, skip: str | None = None) -> None:
        # A client that just left must not stop the others from hearing it.
        peers = [conn for name, conn in self.members.items() if name != skip]
        await asyncio.gather(*(conn.send(message) for conn in peers), return_exceptions=True)

    async def handle(self, conn: MessageConnection) -> None:
        """One client's session: join, relay its texts, announce its departure."""
        hello = await conn.recv()
        name = str(hello.get("join", "")) if isinstance(hello, dict) else ""
        if not name or name == SERVER or name in self.members:
            await conn.send({"from": SERVER, "error": f"name {name!r} is taken or invalid"})
            return
        others = ", ".join(self.members) or "nobody"
        self.members[name] = conn
        await conn.send({"from": SERVER, "text": f"welcome {name}; here: {others}"})
        await self.broadcast({"from": SERVER, "text": f"{name} joined"}, skip=name)
        try:
            async for message in conn:  # ends when the client closes cleanly
                if isinstance(message, dict) and isinstance(message.get("text"), str):
                    await self.broadcast({"from": name, "text": message["text"]}, skip=name)
        finally:
            del self.members[name]
            await self.broadcast({"from": SERVER, "text": f"{name} left"})


async def join(host: str, port: int, name: str) -> tuple[MessageConnection, str]:
    """Connect and greet; returns the connection and the server's welcome text."""
    conn = await rudp.messages.connect(host, port)
    await conn.send({"join": name})
    welcome = await conn.recv()
    if "error" in welcome:
        await conn.close()
        raise SystemExit(welcome["error"])
    return conn, str(welcome["text"])


async def run_server(host: str, port: int) -> None:
    server = await rudp.messages.serve(Room().handle, host, port)
    bound = server.sockets[0].getsockname()
    print(f"listening on {bound[0]}:{bound[1]}", flush=True)
    async with server:
        await server.serve_forever()


async def run_client(host: str, port: int, name: str) -> None:
    conn, welcome = await join(host, port, name)
    print(welcome, flush=True)

    async def show() -> None:
        with contextlib.suppress(rudp.ConnectionClosed):
            async for message in conn:
                print(f"{message['from']}: {message['text']}", flush=True)

    printer = asyncio.create_task(show())
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    with contextlib.suppress(rudp.ConnectionClosed):  # the server went away
        while line := await stdin.readline():  # b"" at EOF (Ctrl-D)
            if text := line.decode().strip():
                await conn.send({"text": text})
    await conn.close()
    await printer


async def demo(script: list[tuple[str, str]] | None = None) -> list[str]:
    """A server and alice, bob and carol on loopback; returns what each client received,
    as ``"receiver <- from: text"`` lines. Each line of ``script`` is awaited at both other
    clients before the next is said, so the transcript is the same on every run."""
    script = script or [("alice", "hi all"), ("bob", "hello alice"), ("carol", "hey!")]
    names = ["alice", "bob", "carol"]
    transcript: list[str] = []
    server = await rudp.messages.serve(Room().handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    clients: dict[str, MessageConnection] = {}

    async def hear(*listeners: str) -> None:
        # gather keeps the listeners' order, whatever order the messages arrived in.
        messages = await asyncio.gather(
            *(asyncio.wait_for(clients[name].recv(), 5.0) for name in listeners)
        )
        for name, message in zip(listeners, messages, strict=True):
            transcript.append(f"{name} <- {message['from']}: {message['text']}")

    async with server:
        for i, name in enumerate(names):
            clients[name], welcome = await join("127.0.0.1", port, name)
            transcript.append(f"{name} <- {SERVER}: {welcome}")
            await hear(*names[:i])
        for speaker, text in script:
            await clients[speaker].send({"text": text})
            await hear(*(other for other in names if other != speaker))
        for i, name in enumerate(names):
            await clients[name].close()
            await hear(*names[i + 1 :])
    return transcript


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("role", choices=("server", "client", "demo"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--name", default="anonymous")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        if args.role == "server":
            asyncio.run(run_server(args.host, args.port))
        elif args.role == "client":
            asyncio.run(run_client(args.host, args.port, args.name))
        else:
            print("\n".join(asyncio.run(demo())))


if __name__ == "__main__":
    main()
