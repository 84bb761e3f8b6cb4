"""Fuzzing, the bounded slice of ``make test``: the codec and ``Endpoint.receive_datagram`` get
random bytes and mutations of recorded real traffic while a real transfer runs through the
same server endpoint. Nothing raises, no table or queue passes its bound, and the transfer
arrives intact. ``bench/fuzz.py`` runs millions of inputs the same way (and under atheris
where it is installed)."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rudp.config import Config
from rudp.core.endpoint import Endpoint
from tests.core.harness import CLIENT_ADDR
from tests.fuzzing import LiveTransfer, corpus, mutate, random_input
from tests.wire.decoders import check_decoders

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def test_the_corpus_holds_every_kind_of_datagram() -> None:
    kinds = {d[0] & 0x0F for d in corpus()}
    assert kinds == set(range(1, 10))  # DATA .. PATH_RESPONSE, all recorded from real traffic


@settings(max_examples=300, deadline=None, database=None)
@given(st.integers(0, 2**64), st.integers(0, len(corpus()) - 1))
def test_codec_on_mutated_recorded_traffic(seed: int, index: int) -> None:
    pool = corpus()
    rng = random.Random(seed)
    check_decoders(pool[index])
    for _ in range(10):
        check_decoders(mutate(rng, pool[index], pool, None))


def test_endpoint_alongside_a_live_transfer_survives_mutated_and_random_input() -> None:
    live = LiveTransfer(seed=5)
    pool = corpus()

    @SETTINGS
    @given(st.integers(0, 2**64))
    def mutated(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(20):
            data, from_peer = random_input(rng, pool, live.cid)
            live.feed(data, from_peer=from_peer)
        live.check()
        live.advance(0.004)

    @SETTINGS
    @given(st.binary(max_size=1400), st.booleans())
    def arbitrary(data: bytes, from_peer: bool) -> None:
        live.feed(data, from_peer=from_peer)
        live.feed(data[:8] + live.cid.to_bytes(4, "big") + data[12:], from_peer=from_peer)
        live.check()
        live.advance(0.002)

    mutated()
    arbitrary()
    assert live.fed >= 3000
    assert live.finish(), "the real transfer did not arrive intact"
    stats = live.server.endpoint.stats
    assert sum(stats.dropped.values()) + sum(live.srv.stats.dropped.values()) > 1000
    assert len(live.server.accepted) == 1  # the fuzz input opened no connection


@settings(max_examples=300, deadline=None, database=None)
@given(st.binary(max_size=1500), st.booleans(), st.booleans())
def test_an_idle_endpoint_keeps_nothing_from_random_bytes(
    data: bytes, listening: bool, limited: bool
) -> None:
    config = Config(stateless_reply_rate=100.0 if limited else None)
    endpoint = Endpoint(config, token_bytes=random.Random(1).randbytes, listening=listening)
    for _ in range(3):
        endpoint.receive_datagram(data, CLIENT_ADDR, now=1.0)
    assert len(endpoint.datagrams_to_send(now=1.0)) <= 3  # at most one reply per datagram
    endpoint.handle_timer(now=2.0)
    assert endpoint.connections == {} and endpoint.get_timer() is None
