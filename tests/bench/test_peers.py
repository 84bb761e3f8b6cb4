"""Peer names, and the KCP adapter moving a stream end to end on loopback (one loop)."""

from __future__ import annotations

import asyncio
import zlib

import pytest

from bench import peers, workloads


def test_parse_peer_names_and_defaults() -> None:
    assert peers.parse_peer("tcp:cubic").name == "tcp:cubic"
    assert peers.parse_peer("tcp").name == "tcp:cubic"
    assert peers.parse_peer("quic").name == "aioquic"
    assert peers.parse_peer("rudp:throughput").variant == "throughput"
    assert all(peers.parse_peer(name).name == name for name in peers.ALL_PEERS)
    with pytest.raises(ValueError, match="unknown peer"):
        peers.parse_peer("sctp")
    with pytest.raises(ValueError, match="variant"):
        peers.parse_peer("rudp:turbo")


def test_percentiles_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    out = workloads.percentiles(values, (50, 99))
    assert out["p50"] == 50.0
    assert out["p99"] == 99.0
    assert out["max"] == 100.0
    assert out["mean"] == 50.5


@pytest.mark.parametrize("variant", ["fast", "normal"])
async def test_kcp_stream_carries_bytes_and_end_of_stream(variant: str) -> None:
    pytest.importorskip("kcp", reason="the KCP peer needs the 'bench' extra (pip install kcp)")
    spec = peers.parse_peer(f"kcp:{variant}")
    received: asyncio.Future[dict[str, object]] = asyncio.get_running_loop().create_future()

    async def handler(stream: peers.Stream) -> None:
        received.set_result(await workloads.bulk_receive(stream))
        await stream.close()

    server = await peers.start_server(spec, "127.0.0.1", 0, handler)
    try:
        stream = await peers.connect(spec, "127.0.0.1", server.port)
        sent = await asyncio.wait_for(workloads.bulk_send(stream, 200_000, 10.0), 20.0)
        await stream.close()
        got = await asyncio.wait_for(received, 5.0)
    finally:
        await server.close()
    assert sent["bytes"] == got["bytes"] == 200_000
    assert sent["crc32"] == got["crc32"]
    assert isinstance(sent["crc32"], int) and sent["crc32"] != zlib.crc32(b"")
    stats = sent["stats"]
    assert isinstance(stats, dict)
    assert stats["app_bytes_queued"] >= 200_000
    assert stats["push_payload_bytes_sent"] >= stats["app_bytes_queued"]
