"""aioquic: one bidirectional QUIC stream per connection, with a certificate made at start.

aioquic's stream writer never applies backpressure (``drain()`` does not wait: aioquic issues
250 and 328), so a bulk sender would queue its whole payload at once and a time-capped run
could not stop. :func:`_drain` therefore waits while the stream's unacknowledged send buffer
holds more than :data:`SEND_BUFFER_HIGH` bytes, reading aioquic's private stream state (there
is no public counter); it polls every :data:`DRAIN_POLL` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ssl
import tempfile
from pathlib import Path
from typing import Any

from aioquic.asyncio import QuicConnectionProtocol, serve
from aioquic.asyncio import connect as quic_connect
from aioquic.quic.configuration import QuicConfiguration
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bench.peers import SOCKET_BUFFER, PeerSpec
from bench.peers.streams import AsyncioStream
from rudp.aio.udpio import set_buffer_sizes

__all__ = ["connect", "settings", "start_server"]

ALPN = "rudp-bench"
CONGESTION_CONTROL = "cubic"
FLOW_CONTROL_WINDOW = 16 * 1024 * 1024  # max_data and max_stream_data (aioquic default 1 MiB)
SEND_BUFFER_HIGH = 1024 * 1024  # like rudp's default send buffer
DRAIN_POLL = 0.002


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rudp-bench")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("rudp-bench")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _configuration(is_client: bool) -> QuicConfiguration:
    return QuicConfiguration(
        is_client=is_client,
        alpn_protocols=[ALPN],
        congestion_control_algorithm=CONGESTION_CONTROL,
        max_data=FLOW_CONTROL_WINDOW,
        max_stream_data=FLOW_CONTROL_WINDOW,
        idle_timeout=60.0,
    )


def _set_buffers(transport: asyncio.BaseTransport | None) -> None:
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            set_buffer_sizes(sock, SOCKET_BUFFER)


def _make_stream(
    protocol: QuicConnectionProtocol,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    on_close: Any = None,
) -> AsyncioStream:
    stream_id = writer.get_extra_info("stream_id")
    quic = protocol._quic

    def unacked() -> int:
        stream = quic._streams.get(stream_id)
        return 0 if stream is None else len(stream.sender._buffer)

    async def drain() -> None:
        while unacked() > SEND_BUFFER_HIGH:
            await asyncio.sleep(DRAIN_POLL)

    def stats() -> dict[str, Any]:
        rtt = quic._loss._rtt_smoothed
        return {
            "smoothed_rtt_ms": 1e3 * rtt,
            "congestion_window": quic._loss.congestion_window,
            "unacked_stream_bytes": unacked(),
        }

    return AsyncioStream(reader, writer, stats_fn=stats, drain_fn=drain, on_close=on_close)


class _Server:
    def __init__(self, server: Any, tmp: tempfile.TemporaryDirectory[str]) -> None:
        self._server = server
        self._tmp = tmp
        self.port: int = server._transport.get_extra_info("sockname")[1]

    async def close(self) -> None:
        self._server.close()
        self._tmp.cleanup()


async def start_server(spec: PeerSpec, host: str, port: int, handler: Any) -> _Server:
    tmp = tempfile.TemporaryDirectory(prefix="rudp-bench-quic-")
    cert, key = _self_signed(Path(tmp.name))
    configuration = _configuration(is_client=False)
    configuration.load_cert_chain(cert, key)
    tasks: set[asyncio.Task[None]] = set()

    class Protocol(QuicConnectionProtocol):
        """Hands each new stream to ``handler`` together with its own connection."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.pop("stream_handler", None)
            super().__init__(*args, stream_handler=self._on_stream, **kwargs)

        def _on_stream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.ensure_future(handler(_make_stream(self, reader, writer)))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    server = await serve(host, port, configuration=configuration, create_protocol=Protocol)
    _set_buffers(server._transport)
    return _Server(server, tmp)


async def connect(spec: PeerSpec, host: str, port: int) -> AsyncioStream:
    configuration = _configuration(is_client=True)
    configuration.verify_mode = ssl.CERT_NONE
    stack = contextlib.AsyncExitStack()
    protocol: QuicConnectionProtocol = await stack.enter_async_context(
        quic_connect(host, port, configuration=configuration)
    )
    _set_buffers(protocol._transport)
    reader, writer = await protocol.create_stream()

    async def on_close() -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(stack.aclose(), 10.0)

    return _make_stream(protocol, reader, writer, on_close=on_close)


def settings(spec: PeerSpec) -> dict[str, Any]:
    import aioquic

    return {
        "transport": f"aioquic {aioquic.__version__}, one bidirectional stream",
        "congestion_control": CONGESTION_CONTROL,
        "max_datagram_size": QuicConfiguration(is_client=True).max_datagram_size,
        "flow_control_window": FLOW_CONTROL_WINDOW,
        "send_buffer_high": SEND_BUFFER_HIGH,
        "tls": "TLS 1.3, self-signed ECDSA P-256 certificate made at start, not verified",
    }
