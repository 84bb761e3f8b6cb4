"""Property: any byte stream, written in any chunks, arrives exactly once, in order and intact,
in both directions at once, under any seeded impairment up to 30 % loss; EOF comes after the
last byte; and the engine never lets bytes in flight exceed the congestion window."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rudp.config import Config
from rudp.core.events import DataReceived, EndOfStream
from tests.core.harness import Peer, connect, make_pair
from tests.sim import GilbertElliott, Impairment

# The property is about delivery, not about giving up: at 30 % loss each way a run of 15 lost
# retransmissions (the default limit, Linux tcp_retries2) is rare but does happen.
PATIENT = Config(handshake_retries=40, handshake_timeout=3600.0, max_retransmits=60)

SIZES = st.one_of(
    st.integers(0, 3000),
    st.integers(3000, 200_000),
    st.sampled_from([0, 1, 1199, 1200, 1201, 2 * 1024 * 1024]),
)


@st.composite
def impairments(draw: st.DrawFn) -> Impairment:
    loss = draw(st.sampled_from([0.0, 0.01, 0.05, 0.1, 0.2, 0.3]))
    burst = None
    if draw(st.booleans()):
        burst = GilbertElliott(
            p_good_to_bad=draw(st.sampled_from([0.001, 0.01])),
            p_bad_to_good=draw(st.sampled_from([0.3, 0.6])),
        )
    return Impairment(
        loss=loss,
        burst=burst,
        duplicate=draw(st.sampled_from([0.0, 0.02, 0.1])),
        reorder=draw(st.sampled_from([0.0, 0.02, 0.1])),
        reorder_delay=draw(st.sampled_from([0.005, 0.03])),
        corrupt=draw(st.sampled_from([0.0, 0.01])),
        delay=draw(st.sampled_from([0.0, 0.005, 0.03])),
        jitter=draw(st.sampled_from([0.0, 0.002, 0.01])),
        rate=draw(st.sampled_from([None, 2e6, 20e6])),
    )


def chunk_sizes(seed: int, mode: int) -> object:
    rng = random.Random(seed)

    def gen():  # type: ignore[no-untyped-def]
        while True:
            if mode == 0:
                yield 65536
            elif mode == 1:
                yield rng.randint(1, 50)
            else:
                yield rng.choice([1, 7, 1200, 1201, 5000, 70000])

    return gen()


def _check_stream(events: list[object], received: bytes, expected: bytes) -> None:
    assert received == expected, f"got {len(received)} bytes, expected {len(expected)}"
    eofs = [i for i, e in enumerate(events) if isinstance(e, EndOfStream)]
    assert len(eofs) == 1
    data_events = [i for i, e in enumerate(events) if isinstance(e, DataReceived)]
    assert not data_events or max(data_events) < eofs[0]


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    up_size=SIZES,
    down_size=SIZES,
    forward=impairments(),
    back=impairments(),
    seed=st.integers(0, 2**16),
    chunking=st.tuples(st.integers(0, 2), st.integers(0, 2)),
    small_buffers=st.booleans(),
)
def test_any_stream_arrives_exactly_once_in_order_under_any_impairment(
    up_size: int,
    down_size: int,
    forward: Impairment,
    back: Impairment,
    seed: int,
    chunking: tuple[int, int],
    small_buffers: bool,
) -> None:
    config = PATIENT.replace(
        **(
            {"recv_buffer_size": 32 * 1024, "send_buffer_high": 16 * 1024, "send_buffer_low": 4096}
            if small_buffers
            else {}
        )
    )
    sim, client, server = make_pair(
        client_config=config, server_config=config, impairment=forward, back=back, seed=seed
    )
    rng = random.Random(seed)
    up, down = rng.randbytes(up_size), rng.randbytes(down_size)
    conn = connect(sim, client, server, max_time=600)
    srv = server.accepted[0]
    client.write(conn, up, chunks=chunk_sizes(seed, chunking[0]), eof=True)  # type: ignore[arg-type]
    server.write(srv, down, chunks=chunk_sizes(seed + 1, chunking[1]), eof=True)  # type: ignore[arg-type]
    done = sim.run_until(lambda: client.log(conn).eof and server.log(srv).eof, 36000)
    assert done, (
        f"stalled at t={sim.clock.now}: up {len(server.log(srv).received)}/{len(up)}, "
        f"down {len(client.log(conn).received)}/{len(down)}"
    )
    _check_stream(server.log(srv).events, bytes(server.log(srv).received), up)
    _check_stream(client.log(conn).events, bytes(client.log(conn).received), down)
    for peer in (client, server):
        assert isinstance(peer, Peer)
        for connection in peer.endpoint.connections.values():
            assert connection.stats.payload_bytes_received <= len(up) + len(down)


HARSH = [
    Impairment(loss=0.3, delay=0.02, jitter=0.005),
    Impairment(loss=0.1, duplicate=0.1, reorder=0.1, corrupt=0.02, delay=0.01, rate=5e6),
    Impairment(loss=0.02, burst=GilbertElliott(p_good_to_bad=0.01, p_bad_to_good=0.3), delay=0.05),
]


@settings(max_examples=len(HARSH) * 2, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=st.sampled_from(list(range(len(HARSH)))), seed=st.integers(0, 3))
def test_several_mebibytes_both_ways_survive_harsh_links(case: int, seed: int) -> None:
    impairment = HARSH[case]
    sim, client, server = make_pair(
        client_config=PATIENT, server_config=PATIENT, impairment=impairment, seed=seed
    )
    rng = random.Random(seed)
    up, down = rng.randbytes(3 * 1024 * 1024), rng.randbytes(1024 * 1024 + 17)
    conn = connect(sim, client, server, max_time=600)
    srv = server.accepted[0]
    client.write(conn, up, chunks=chunk_sizes(seed, 2), eof=True)  # type: ignore[arg-type]
    server.write(srv, down, chunks=chunk_sizes(seed, 1), eof=True)  # type: ignore[arg-type]
    assert sim.run_until(lambda: client.log(conn).eof and server.log(srv).eof, 36000)
    _check_stream(server.log(srv).events, bytes(server.log(srv).received), up)
    _check_stream(client.log(conn).events, bytes(client.log(conn).received), down)
