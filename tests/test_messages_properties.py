"""Property: any list of messages, sent from any number of tasks on one connection, arrives as
the same list, in the order the sends were made, over a lossy, reordering, duplicating link."""

from __future__ import annotations

import asyncio
import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rudp
from rudp import Config, messages
from rudp.messages import MessageConnection

HOST = "127.0.0.1"
BIG = bytes(range(256)) * (4 * 4096)  # 4 MiB

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=50),
    st.binary(max_size=50),
)
objects = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(
            st.one_of(st.text(max_size=10), st.integers(-100, 100)), children, max_size=5
        ),
    ),
    max_leaves=20,
)
# ("obj", x) goes through send()/recv(); ("raw", b) through send_bytes()/recv_bytes().
items = st.one_of(
    st.tuples(st.just("obj"), objects),
    st.tuples(st.just("raw"), st.binary(max_size=3000)),
    st.tuples(st.just("raw"), st.sampled_from([b"", b"x", BIG])),
)


def same(a: Any, b: Any) -> bool:
    """Equality that also tells 0.0 from -0.0 and 1 from True (msgpack keeps both apart)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return math.copysign(1.0, a) == math.copysign(1.0, b) and a == b
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(v, b[k]) for k, v in a.items())
    return bool(a == b)


async def exchange(plan: list[tuple[str, Any]], owners: list[int], seed: int) -> None:
    # Loopback's RTT is ~0.1 ms: a 50 ms RTO floor is still 500 RTTs, and keeps the run short.
    config = Config(time_wait=0.05, min_rto=0.05, initial_rto=0.2)
    impairment = rudp.Impairment(loss=0.05, reorder=0.02, duplicate=0.02, seed=seed)
    issued: asyncio.Queue[int] = asyncio.Queue()  # plan indexes in the order sends were made
    received: list[tuple[int, Any]] = []
    done = asyncio.Event()

    async def handler(conn: MessageConnection) -> None:
        # The k-th message to arrive must be the k-th send made: receive it the way it was
        # sent, through recv() (msgpack, with its limits) or recv_bytes().
        for _ in plan:
            index = await issued.get()
            kind, _value = plan[index]
            received.append((index, await (conn.recv() if kind == "obj" else conn.recv_bytes())))
        done.set()
        await conn.wait_closed()

    server = await messages.serve(handler, HOST, 0, config=config)
    try:
        port = server.sockets[0].getsockname()[1]
        client = await messages.connect(HOST, port, config=config, impairment=impairment)

        async def task_sends(task: int) -> None:
            for index, (kind, value) in enumerate(plan):
                if owners[index] != task:
                    continue
                issued.put_nowait(index)
                if kind == "obj":
                    await client.send(value)
                else:
                    await client.send_bytes(value)

        await asyncio.gather(*(task_sends(t) for t in sorted(set(owners))))
        async with asyncio.timeout(120):
            await done.wait()
        assert len(received) == len(plan)
        assert sorted(index for index, _ in received) == list(range(len(plan)))
        for index, got in received:
            kind, value = plan[index]
            if kind == "raw":
                assert got == value
            else:
                assert same(got, value), (got, value)
        await client.close()
    finally:
        server.abort_clients()
        server.close()
        await server.wait_closed()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    plan=st.lists(items, max_size=12),
    data=st.data(),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_messages_arrive_once_in_send_order_under_impairment(
    plan: list[tuple[str, Any]], data: st.DataObject, seed: int
) -> None:
    tasks = data.draw(st.integers(min_value=1, max_value=4), label="tasks")
    owners = data.draw(
        st.lists(st.integers(0, tasks - 1), min_size=len(plan), max_size=len(plan)),
        label="owners",
    )
    asyncio.run(exchange(plan, owners, seed))
