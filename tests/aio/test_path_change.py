"""NAT rebinding over real sockets: a relay in front of the client changes its outside port in
the middle of a transfer. The server's connection follows it by connection id, after one
PATH_CHALLENGE / PATH_RESPONSE exchange, and the echo comes back byte-exact."""

from __future__ import annotations

import asyncio
import random
from typing import Any, cast

from rudp import Config, RudpTransport, open_connection, start_server
from rudp.wire.packet import PacketType

HOST = "127.0.0.1"
RESPONSE = 0x10 | PacketType.PATH_RESPONSE
CHALLENGE = 0x10 | PacketType.PATH_CHALLENGE


class _Side(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Any) -> None:
        self.on_datagram = on_datagram
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.on_datagram(data, addr)


class Nat:
    """The client's NAT: it forwards what the client sends from an *outside* socket, and what
    the server sends to that socket back to the client. ``rebind()`` replaces the outside
    socket (a new source port, as when a NAT mapping expires). Per outside port it counts the
    bytes each way, in order, and notes the first PATH_RESPONSE it forwards."""

    def __init__(self, server: tuple[str, int]) -> None:
        self.server = server
        self.client: tuple[str, int] | None = None
        self.inside: _Side | None = None
        self.outside: _Side | None = None
        self.port = 0
        self.log: list[tuple[int, str, int, int]] = []  # (outside port, "out" | "in", bytes, type)

    async def start(self) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        _, self.inside = await loop.create_datagram_endpoint(
            lambda: _Side(self._from_client), local_addr=(HOST, 0)
        )
        await self.rebind()
        assert self.inside.transport is not None
        addr: tuple[str, int] = self.inside.transport.get_extra_info("sockname")
        return addr

    async def rebind(self) -> None:
        loop = asyncio.get_running_loop()
        old = self.outside
        _, self.outside = await loop.create_datagram_endpoint(
            lambda: _Side(self._from_server), local_addr=(HOST, 0)
        )
        assert self.outside.transport is not None
        self.port = self.outside.transport.get_extra_info("sockname")[1]
        if old is not None and old.transport is not None:
            old.transport.close()  # the old mapping is gone: the server's datagrams to it die

    def _from_client(self, data: bytes, addr: tuple[str, int]) -> None:
        self.client = addr
        if self.outside is not None and self.outside.transport is not None:
            self.log.append((self.port, "out", len(data), data[0] if data else -1))
            self.outside.transport.sendto(data, self.server)

    def _from_server(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.client is not None and self.inside is not None and self.inside.transport:
            self.log.append((self.port, "in", len(data), data[0] if data else -1))
            self.inside.transport.sendto(data, self.client)

    def close(self) -> None:
        for side in (self.inside, self.outside):
            if side is not None and side.transport is not None:
                side.transport.close()


async def test_nat_rebinding_mid_transfer_moves_the_connection_after_validation(
    config: Config,
) -> None:
    accepted: asyncio.Future[RudpTransport] = asyncio.get_running_loop().create_future()

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not accepted.done():
            accepted.set_result(cast(RudpTransport, writer.transport))
        while chunk := await reader.read(1 << 16):
            writer.write(chunk)
            await writer.drain()
        writer.write_eof()
        await writer.drain()
        writer.close()

    server = await start_server(echo, HOST, 0, config=config)
    nat = Nat(server.sockets[0].getsockname()[:2])
    inside = await nat.start()
    first_port = nat.port
    data = random.Random(7).randbytes(3_000_000)
    try:
        reader, writer = await open_connection(*inside, config=config)
        transport = await asyncio.wait_for(accepted, 10.0)
        assert transport.get_extra_info("peername") == (HOST, first_port)
        writer.write(data[:1_000_000])
        echoed = await asyncio.wait_for(reader.readexactly(500_000), 20.0)
        await nat.rebind()  # mid-transfer: the client never notices
        writer.write(data[1_000_000:])
        writer.write_eof()
        echoed += await asyncio.wait_for(reader.read(), 60.0)
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), 10.0)
    finally:
        server.close()
        try:
            # The client's last ACK (of the server's FIN) still has to cross the relay.
            await asyncio.wait_for(server.wait_closed(), 10.0)
        finally:
            nat.close()
    assert echoed == data
    # The same server connection, now at the new port.
    assert transport.get_extra_info("peername") == (HOST, nat.port) != (HOST, first_port)
    stats = transport.stats()
    assert stats["path_migrations"] == 1 and stats["path_challenges_sent"] >= 1
    # Until the client's PATH_RESPONSE went out, the new port got at most 3x what it sent.
    new = [entry for entry in nat.log if entry[0] == nat.port]
    answered = next(i for i, (_, way, _, kind) in enumerate(new) if kind == RESPONSE)
    sent_from_new = sum(n for _, way, n, _ in new[:answered] if way == "out")
    got_on_new = sum(n for _, way, n, _ in new[: answered + 1] if way == "in")
    assert [kind for _, way, _, kind in new[: answered + 1] if way == "in"] == [CHALLENGE]
    assert got_on_new <= 3 * sent_from_new
    assert stats["unvalidated_bytes_sent"] <= 3 * stats["unvalidated_bytes_received"]
