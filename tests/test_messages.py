"""``rudp.messages`` end to end over loopback: boundaries, msgpack, limits, errors, backpressure,
delivery confirmation and unreliable datagrams."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

import rudp
from rudp import Config, messages
from rudp.errors import (
    ConcurrencyError,
    ConnectionClosed,
    DatagramTooLarge,
    MessageDecodeError,
    MessageTooLarge,
    RemoteProtocolError,
)
from rudp.messages import MessageConnection
from rudp.wire.framing import encode_prefix

HOST = "127.0.0.1"
TIMEOUT = 20.0
FAST = Config(time_wait=0.05)


class Accepted:
    """The server's side of each connection, handed to the test; the handler then waits until
    the connection closes, so the test decides when it ends."""

    def __init__(self) -> None:
        self.conns: asyncio.Queue[MessageConnection] = asyncio.Queue()

    async def handler(self, conn: MessageConnection) -> None:
        await self.conns.put(conn)
        await conn.wait_closed()

    async def next(self) -> MessageConnection:
        return await self.conns.get()


@contextlib.asynccontextmanager
async def served(
    handler: Any = None, *, config: Config = FAST, **kwargs: Any
) -> AsyncIterator[tuple[Accepted, int]]:
    accepted = Accepted()
    server = await messages.serve(handler or accepted.handler, HOST, 0, config=config, **kwargs)
    try:
        yield accepted, server.sockets[0].getsockname()[1]
    finally:
        server.abort_clients()
        server.close()
        async with asyncio.timeout(TIMEOUT):
            await server.wait_closed()


async def pair(
    accepted: Accepted, port: int, *, config: Config = FAST, **kwargs: Any
) -> tuple[MessageConnection, MessageConnection]:
    client = await messages.connect(HOST, port, config=config, **kwargs)
    await client.send("hello")  # the server side exists once something arrived
    server_conn = await accepted.next()
    assert await server_conn.recv() == "hello"
    return client, server_conn


OBJECTS: list[Any] = [
    None,
    True,
    0,
    -(2**63),
    2**64 - 1,
    1.5,
    "",
    "text \u00e9\u4e2d",
    b"",
    b"\x00\xff bytes",
    [1, "two", b"three", [4.0]],
    {"key": b"value", "n": {"nested": [None]}, 7: "int keys"},
]


async def test_objects_round_trip_with_bytes_and_str_kept_apart() -> None:
    async with asyncio.timeout(TIMEOUT), served() as (accepted, port):
        client, server = await pair(accepted, port)
        for obj in OBJECTS:
            await client.send(obj)
        await client.send((1, 2))  # msgpack has one array type: tuples arrive as lists
        got = [await server.recv() for _ in range(len(OBJECTS) + 1)]
        assert got[:-1] == OBJECTS and got[-1] == [1, 2]
        assert [type(g) for g in got[:-1]] == [type(o) for o in OBJECTS]
        await client.close()


async def test_boundaries_are_kept_for_empty_tiny_and_large_messages() -> None:
    big = bytes(range(256)) * (4 * 4096)  # 4 MiB
    sizes = [b"", b"x", big, b"", b"after"]
    async with asyncio.timeout(TIMEOUT), served() as (accepted, port):
        client, server = await pair(accepted, port)
        for data in sizes:
            await client.send_bytes(data)
        for data in sizes:
            assert await server.recv_bytes() == data
        await server.send_bytes(memoryview(b"view"))
        assert await client.recv_bytes() == b"view"
        assert client.stats["messages_sent"] == 1 + len(sizes)
        assert server.stats["messages_received"] == 1 + len(sizes)
        await client.close()


async def test_unencodable_object_raises_type_error_before_sending() -> None:
    async with asyncio.timeout(TIMEOUT), served() as (accepted, port):
        client, server = await pair(accepted, port)
        written = client.transport.bytes_written if client.transport else -1
        with pytest.raises(TypeError, match="msgpack"):
            await client.send({"a": object()})
        with pytest.raises(TypeError, match="msgpack"):
            await client.send(2**70)
        with pytest.raises(TypeError, match="bytes-like"):
            await client.send_bytes("not bytes")  # type: ignore[arg-type]
        assert client.transport is not None and client.transport.bytes_written == written
        await client.send("next")
        assert await server.recv() == "next"
        await client.close()


async def test_local_message_too_large_sends_nothing() -> None:
    async with asyncio.timeout(TIMEOUT), served() as (accepted, port):
        client, server = await pair(accepted, port, max_message_size=1000)
        with pytest.raises(MessageTooLarge, match="1001 bytes exceeds max_message_size=1000"):
            await client.send_bytes(b"x" * 1001)
        await client.send_bytes(b"y" * 1000)
        assert await server.recv_bytes() == b"y" * 1000
        await client.close()


async def test_peer_announcing_an_oversize_message_is_reset_and_told_why() -> None:
    async with asyncio.timeout(TIMEOUT), served(max_message_size=1000) as (accepted, port):
        client, server = await pair(accepted, port)
        await client.send("one")
        await client.send("two")
        await client.send_bytes(b"z" * 5000)
        assert await server.recv() == "one"
        assert await server.recv() == "two"
        with pytest.raises(ConnectionClosed) as info:
            await server.recv()
        assert not info.value.clean
        assert isinstance(info.value.__cause__, RemoteProtocolError)
        assert "5000 bytes" in str(info.value)
        assert server._decoder.buffered == 0  # never held the announced size
        with pytest.raises(ConnectionClosed) as send_info:
            await server.send("after the reset")
        assert not send_info.value.clean
        with pytest.raises(ConnectionClosed) as peer_info:
            await client.recv()
        assert not peer_info.value.clean
        assert isinstance(peer_info.value.__cause__, rudp.ConnectionReset)
        assert "message_too_large" in str(peer_info.value.__cause__)


async def raw_client(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await rudp.open_connection(HOST, port, config=FAST)


async def test_malformed_length_prefix_ends_the_connection_after_earlier_messages() -> None:
    async with asyncio.timeout(TIMEOUT), served() as (accepted, port):
        reader, writer = await raw_client(port)
        writer.write(encode_prefix(2) + b"ok" + b"\x80\x00" + b"junk")
        server = await accepted.next()
        assert await server.recv_bytes() == b"ok"
        with pytest.raises(ConnectionClosed, match="not minimal") as info:
            await server.recv_bytes()
        assert not info.value.clean
        assert isinstance(info.value.__cause__, RemoteProtocolError)
        with pytest.raises(ConnectionResetError, match="malformed_frame"):
            await reader.read()
        writer.close()


async def test_stream_that_ends_inside_a_frame_is_an_unclean_close() -> None:
    async with asyncio.timeout(TIMEOUT), served() as (accepted, port):
        reader, writer = await raw_client(port)
        writer.write(encode_prefix(5) + b"whole" + encode_prefix(5) + b"ab")
        writer.write_eof()
        server = await accepted.next()
        assert await server.recv_bytes() == b"whole"
        with pytest.raises(ConnectionClosed, match="2 of the 5 bytes") as info:
            await server.recv_bytes()
        assert not info.value.clean
        assert isinstance(info.value.__cause__, RemoteProtocolError)
        with pytest.raises(ConnectionClosed):  # and it stays closed
            await server.recv_bytes()
        writer.close()


async def test_garbage_msgpack_is_a_decode_error_and_the_stream_goes_on() -> None:
    async with asyncio.timeout(TIMEOUT), served() as (accepted, port):
        client, server = await pair(accepted, port)
        await client.send_bytes(b"\xc1")  # a byte msgpack never uses
        await client.send_bytes(b"\x92\x01")  # an array of 2 with one element
        await client.send({"fine": True})
        with pytest.raises(MessageDecodeError, match="not valid msgpack"):
            await server.recv()
        with pytest.raises(MessageDecodeError):
            await server.recv()
        assert await server.recv() == {"fine": True}
        await client.close()


async def waiting_in(receive: Any) -> asyncio.Future[Any]:
    """Start ``receive()`` in a task and return once it is suspended inside it."""
    started = asyncio.Event()

    async def run() -> Any:
        started.set()  # the task runs on into receive() before this coroutine resumes
        return await receive()

    task = asyncio.ensure_future(run())
    await started.wait()
    return task


async def test_second_concurrent_receiver_is_refused() -> None:
    async with asyncio.timeout(TIMEOUT), served() as (accepted, port):
        client, server = await pair(accepted, port)
        first = await waiting_in(server.recv)
        with pytest.raises(ConcurrencyError):
            await server.recv()
        assert isinstance(ConcurrencyError("x"), RuntimeError)
        waiting = await waiting_in(server.recv_datagram)
        with pytest.raises(ConcurrencyError):
            await server.recv_datagram()
        await client.send("x")
        assert await first == "x"
        waiting.cancel()
        await client.close()


async def test_iteration_ends_on_a_clean_close_and_recv_keeps_saying_closed() -> None:
    async with asyncio.timeout(TIMEOUT), served() as (accepted, port):
        client, server = await pair(accepted, port)
        for i in range(3):
            await client.send(i)
        await client.close()
        assert [m async for m in server] == [0, 1, 2]
        for _ in range(2):
            with pytest.raises(ConnectionClosed) as info:
                await server.recv()
            assert info.value.clean
        with pytest.raises(ConnectionClosed):
            await client.send("after close")


async def test_handler_return_closes_and_handler_error_resets() -> None:
    async def replies_then_returns(conn: MessageConnection) -> None:
        request = await conn.recv()
        if request == "fail":
            raise ValueError("handler bug")
        await conn.send({"reply": request})

    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: reported.append(context))
    async with asyncio.timeout(TIMEOUT), served(replies_then_returns) as (_, port):
        client = await messages.connect(HOST, port, config=FAST)
        await client.send("ping")
        assert [m async for m in client] == [{"reply": "ping"}]
        await client.close()
        failing = await messages.connect(HOST, port, config=FAST)
        await failing.send("fail")
        with pytest.raises(ConnectionClosed) as info:
            await failing.recv()
        assert not info.value.clean
        assert any(isinstance(c.get("exception"), ValueError) for c in reported)


async def test_wait_acked_returns_after_the_peer_acknowledged_the_message() -> None:
    delay = 0.02
    async with asyncio.timeout(TIMEOUT), served() as (accepted, port):
        client, server = await pair(accepted, port, impairment=rudp.Impairment(delay=delay, seed=1))
        transport = client.transport
        assert transport is not None
        loop = asyncio.get_running_loop()
        started = loop.time()
        await client.send_bytes(b"m" * 200_000, wait_acked=True)
        elapsed = loop.time() - started
        assert transport.bytes_acked == transport.bytes_written
        assert elapsed >= 2 * delay * 0.9  # one round trip at least: no local shortcut
        assert server.stats["messages_queued"] == 1  # arrived before the sender was told
        await client.close()


async def test_backpressure_bounds_memory_on_both_sides() -> None:
    config = FAST.replace(
        recv_buffer_size=256 * 1024, send_buffer_high=256 * 1024, send_buffer_low=64 * 1024
    )
    message = 64 * 1024
    count = 200  # 12.5 MiB, far more than every buffer together
    async with asyncio.timeout(TIMEOUT * 2), served(config=config) as (accepted, port):
        client, server = await pair(accepted, port, config=config)
        progress: list[int] = []

        async def sender() -> None:
            for i in range(count):
                await client.send_bytes(i.to_bytes(4, "big") * (message // 4))
                progress.append(i)

        sending = asyncio.ensure_future(sender())
        with pytest.raises(TimeoutError):  # the receiver reads nothing: the sender must block
            await asyncio.wait_for(asyncio.shield(sending), 1.0)
        assert 0 < len(progress) < count
        assert client.transport is not None and server.transport is not None
        assert client.transport.get_write_buffer_size() <= 256 * 1024 + message + 16
        # Reading pauses past recv_buffer_size queued; one delivery (at most a receive
        # buffer's worth) can land on top of that; the rest waits unacknowledged in the window.
        assert server._inbox_bytes <= 2 * 256 * 1024 + message
        assert not server.transport.is_reading()  # it stopped reading: the window closed
        for i in range(count):
            assert await server.recv_bytes() == i.to_bytes(4, "big") * (message // 4)
        await sending
        await client.close()


async def test_datagrams_under_loss_arrive_at_most_once_and_intact() -> None:
    impairment = rudp.Impairment(loss=0.2, duplicate=0.05, reorder=0.02, seed=7)
    async with asyncio.timeout(TIMEOUT * 2), served() as (accepted, port):
        client, server = await pair(accepted, port, impairment=impairment)
        sent = 0
        for batch in range(10):
            for _ in range(20):
                client.send_datagram(sent.to_bytes(4, "big") * 50)
                sent += 1
            await client.send(batch, wait_acked=True)
        await client.send("done")
        reliable = [await server.recv() for _ in range(11)]
        assert reliable == [*range(10), "done"]
        datagrams: list[bytes] = []
        while server._datagrams:
            datagrams.append(await server.recv_datagram())
        numbers = [int.from_bytes(d[:4], "big") for d in datagrams]
        assert all(d == d[:4] * 50 for d in datagrams)  # none corrupted
        assert len(numbers) == len(set(numbers))  # none duplicated
        assert 100 < len(numbers) < sent  # some lost, most arrived
        assert client.stats["segments_retransmitted"] > 0  # the reliable side did recover
        await client.close()


async def test_datagram_size_limit_and_receive_queue_drops_oldest() -> None:
    async with asyncio.timeout(TIMEOUT), served(datagram_queue=4) as (accepted, port):
        client, server = await pair(accepted, port)
        limit = client.max_datagram_size
        assert limit == FAST.max_payload + 12
        with pytest.raises(DatagramTooLarge, match=f"limit is {limit} bytes"):
            client.send_datagram(b"x" * (limit + 1))
        for i in range(10):
            client.send_datagram(bytes([i]))
        await client.send("sync", wait_acked=True)
        assert await server.recv() == "sync"
        got = [await server.recv_datagram() for _ in range(4)]
        assert got == [bytes([i]) for i in range(6, 10)]
        assert server.stats["unreliable_queue_dropped"] == 6
        await client.close()
        with pytest.raises(ConnectionClosed):
            await server.recv_datagram()


BIG = bytes(range(256)) * 4096  # 1 MiB: above the 256 KiB write piece and the test watermark
SMALL_BUFFERS = FAST.replace(send_buffer_high=64 * 1024, send_buffer_low=16 * 1024)


async def test_close_delivers_a_message_still_being_written() -> None:
    async with asyncio.timeout(TIMEOUT), served(config=SMALL_BUFFERS) as (accepted, port):
        client, server = await pair(accepted, port, config=SMALL_BUFFERS)
        sending = await waiting_in(lambda: client.send_bytes(BIG))  # blocked mid-message
        assert client.transport is not None and client.transport.writing_paused
        queued = await waiting_in(lambda: client.send_bytes(b"queued"))  # behind it
        closing = await waiting_in(client.close)
        with pytest.raises(ConnectionClosed, match="closing") as info:
            await client.send_bytes(b"after close")  # made after close(): refused
        assert info.value.clean
        assert await server.recv_bytes() == BIG
        assert await server.recv_bytes() == b"queued"
        await sending
        await queued
        with pytest.raises(ConnectionClosed) as end:
            await server.recv_bytes()
        assert end.value.clean
        await closing


async def test_a_cancelled_close_can_be_retried() -> None:
    async with asyncio.timeout(TIMEOUT), served(config=SMALL_BUFFERS) as (accepted, port):
        client, server = await pair(accepted, port, config=SMALL_BUFFERS)
        sending = await waiting_in(lambda: client.send_bytes(BIG))
        closing = await waiting_in(client.close)  # waits for the send to finish
        closing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await closing
        assert await server.recv_bytes() == BIG
        await sending
        await client.close()  # the transport was never told to close: this time it is
        with pytest.raises(ConnectionClosed) as end:
            await server.recv_bytes()
        assert end.value.clean


async def test_a_send_cancelled_mid_message_resets_the_connection() -> None:
    async with asyncio.timeout(TIMEOUT), served(config=SMALL_BUFFERS) as (accepted, port):
        client, server = await pair(accepted, port, config=SMALL_BUFFERS)
        await client.send_bytes(b"before")
        reading = await waiting_in(lambda: client.recv())
        sending = await waiting_in(lambda: client.send_bytes(BIG))
        sending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sending
        # The local receiver is told the end was not clean (messages may be lost) ...
        with pytest.raises(ConnectionClosed) as local:
            await reading
        assert not local.value.clean
        with pytest.raises(ConnectionClosed) as send_after:
            await client.send_bytes(b"after")
        assert not send_after.value.clean
        # ... and the peer gets what came before, never half a message as a whole one.
        assert await server.recv_bytes() == b"before"
        with pytest.raises(ConnectionClosed) as remote:
            await server.recv_bytes()
        assert not remote.value.clean
        assert isinstance(remote.value.__cause__, rudp.ConnectionReset)


async def test_a_send_cancelled_before_its_first_byte_leaves_the_connection_usable() -> None:
    async with asyncio.timeout(TIMEOUT), served(config=SMALL_BUFFERS) as (accepted, port):
        client, server = await pair(accepted, port, config=SMALL_BUFFERS)
        first = await waiting_in(lambda: client.send_bytes(BIG))  # holds the send order
        second = await waiting_in(lambda: client.send_bytes(b"second"))  # queued behind it
        second.cancel()
        with pytest.raises(asyncio.CancelledError):
            await second
        await client.send_bytes(b"third")
        assert await server.recv_bytes() == BIG
        assert await server.recv_bytes() == b"third"
        await first
        assert client.stats["messages_sent"] == 3  # "hello", BIG, "third"
        await client.close()


async def test_a_cancelled_recv_loses_no_message() -> None:
    async with asyncio.timeout(TIMEOUT), served() as (accepted, port):
        client, server = await pair(accepted, port)
        assert server.transport is not None
        protocol = server.transport.get_protocol()
        receiving = await waiting_in(server.recv_bytes)
        # The message arrives and wakes the receiver, which is cancelled before it runs.
        protocol.data_received(encode_prefix(3) + b"one")  # type: ignore[attr-defined]
        receiving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await receiving
        assert await server.recv_bytes() == b"one"
        await client.send_bytes(b"two")
        assert await server.recv_bytes() == b"two"
        await client.close()


async def test_a_local_abort_ends_iteration_with_an_unclean_close() -> None:
    async with asyncio.timeout(TIMEOUT), served() as (accepted, port):
        client, server = await pair(accepted, port)

        async def collect() -> list[Any]:
            return [message async for message in client]

        iterating = await waiting_in(collect)
        client.abort()
        with pytest.raises(ConnectionClosed, match="aborted") as info:
            await iterating
        assert not info.value.clean
        with pytest.raises(ConnectionClosed) as remote:
            await server.recv()
        assert not remote.value.clean


async def test_wait_acked_completes_with_the_ack_of_its_own_last_byte() -> None:
    """The send returns in the loop iteration after the ACK that covers its message, and
    before later messages are acknowledged: a future on the stream offset."""
    config = FAST.replace(ack_delay=0.0)
    impairment = rudp.Impairment(delay=0.01, seed=1)
    async with asyncio.timeout(TIMEOUT), served(config=config) as (accepted, port):
        client, server = await pair(accepted, port, config=config, impairment=impairment)
        transport = client.transport
        assert transport is not None
        confirmed = asyncio.ensure_future(client.send_bytes(b"a" * 100, wait_acked=True))
        await asyncio.sleep(0)  # the task writes its message, then waits for the ACK
        end_of_first = transport.bytes_written
        later = asyncio.ensure_future(client.send_bytes(BIG))  # not acknowledged for RTTs
        acked: list[int] = []  # bytes acknowledged, sampled once per loop iteration
        while not confirmed.done():  # (a 20 ms spin, bounded by the test's timeout)
            await asyncio.sleep(0)
            acked.append(transport.bytes_acked)
        first_covered = next(i for i, value in enumerate(acked) if value >= end_of_first)
        assert acked[-1] >= end_of_first  # not before the ACK ...
        assert len(acked) - 1 <= first_covered + 1  # ... and at most one iteration after it
        assert transport.bytes_acked < transport.bytes_written  # the later message is not
        assert await server.recv_bytes() == b"a" * 100
        assert await server.recv_bytes() == BIG
        await later
        await client.close()


async def test_wait_acked_on_a_connection_that_fails_raises_connection_closed() -> None:
    impairment = rudp.Impairment(delay=0.02, seed=1)
    async with asyncio.timeout(TIMEOUT), served() as (accepted, port):
        client, server = await pair(accepted, port, impairment=impairment)
        confirmed = asyncio.ensure_future(client.send("never acked", wait_acked=True))
        await asyncio.sleep(0)
        server.abort()  # before the message, 20 ms away, arrives
        with pytest.raises(ConnectionClosed, match="before the peer acknowledged") as info:
            await confirmed
        assert not info.value.clean
        assert isinstance(info.value.__cause__, ConnectionResetError)


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        (b"\xdd\xff\xff\xff\xff", "exceeds max_array_len"),  # array32 of 2**32 - 1 items
        (b"\xdf\xff\xff\xff\xff", "exceeds max_map_len"),  # map32 of 2**32 - 1 pairs
        (b"\x91\xdd\x7f\xff\xff\xff", "exceeds max_array_len"),  # nested, past the frame
        # str32, bin32 and ext32 of 2**31 - 1 bytes: their bytes must be in the frame, so
        # msgpack finds the input incomplete before any limit or allocation.
        (b"\xdb\x7f\xff\xff\xff", "incomplete input"),
        (b"\xc6\x7f\xff\xff\xff", "incomplete input"),
        (b"\xc9\x7f\xff\xff\xff\x01", "incomplete input"),
    ],
)
async def test_msgpack_lengths_past_the_message_are_refused_before_allocating(
    frame: bytes, error: str
) -> None:
    async with asyncio.timeout(TIMEOUT), served() as (accepted, port):
        client, server = await pair(accepted, port)
        await client.send_bytes(frame)
        await client.send("after")
        with pytest.raises(MessageDecodeError, match=error):
            await server.recv()
        assert await server.recv() == "after"
        await client.close()


async def test_messages_fit_a_send_buffer_whose_hard_bound_is_its_watermark() -> None:
    """send_buffer_max = send_buffer_high: a message that would overflow the hard bound waits
    for acknowledgements instead of leaving a length prefix without its message."""
    config = FAST.replace(
        send_buffer_high=256 * 1024, send_buffer_max=256 * 1024, send_buffer_low=64 * 1024
    )
    impairment = rudp.Impairment(delay=0.01, seed=1)  # bytes stay unacknowledged a while
    messages_sent = [b"a" * 100_000, b"b" * 200_000, b"c" * 300_000, b"d" * 10]
    async with asyncio.timeout(TIMEOUT), served(config=config) as (accepted, port):
        client, server = await pair(accepted, port, config=config, impairment=impairment)
        for data in messages_sent:
            await client.send_bytes(data)
        for data in messages_sent:
            assert await server.recv_bytes() == data
        await client.close()


@pytest.mark.parametrize(("option", "value"), [("max_message_size", -1), ("datagram_queue", 0)])
async def test_bad_limits_are_refused_before_connecting(option: str, value: int) -> None:
    with pytest.raises(ValueError, match=f"{option} must be >= "):
        await messages.connect(HOST, 9, **{option: value})
