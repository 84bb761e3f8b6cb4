"""Echo over rudp with the asyncio streams API: the same code as with TCP, one import changed.

Run: .venv/bin/python examples/stream_echo.py
"""

from __future__ import annotations

import asyncio

import rudp


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while line := await reader.readline():
        writer.write(line.upper())
        await writer.drain()
    writer.close()
    await writer.wait_closed()


async def main() -> None:
    server = await rudp.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    # A bad network, for testing: 5 % loss and 10 ms delay on each direction of this endpoint.
    lossy = rudp.Impairment(loss=0.05, delay=0.01, seed=1)
    reader, writer = await rudp.open_connection("127.0.0.1", port, impairment=lossy)
    for word in (b"hello\n", b"over\n", b"udp\n"):
        writer.write(word)
        print((await reader.readline()).decode().strip())
    print("retransmitted segments:", writer.get_extra_info("stats")["segments_retransmitted"])
    writer.close()
    await writer.wait_closed()
    server.close()
    await server.wait_closed()


if __name__ == "__main__":
    asyncio.run(main())
