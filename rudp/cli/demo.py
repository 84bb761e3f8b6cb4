"""``rudp demo`` (what ``make demo`` runs): a generated file sent to a receiver on loopback
over an impaired link, through the same sender and receiver code as ``rudp send``/``recv``.

The receiver runs in this process (one event loop, two endpoints); the impairment is on the
sender's endpoint, both directions: by default 5 % loss each way, 10 ms one-way delay (20 ms
RTT) and 1 % reordering. The demo fails (non-zero exit) unless the received file is intact.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

from .. import messages
from .exits import EXIT_FAILURE, EXIT_OK, CliError
from .failures import connecting
from .options import config_from, impairment_from
from .protocol import MAX_MESSAGE_SIZE
from .receiver import Outcome, Receiver
from .sender import inspect_files
from .transfer import peer_of, print_sent, send_summary, send_with_progress, shut_down
from .units import format_bytes, format_duration, format_rate

__all__ = ["generate_file", "run_demo"]

_GENERATE_BLOCK = 1 << 20


def generate_file(path: Path, size: int) -> None:
    """``size`` random bytes (incompressible, like real payloads)."""
    with path.open("wb") as handle:
        left = size
        while left:
            block = min(left, _GENERATE_BLOCK)
            handle.write(os.urandom(block))
            left -= block


def _describe(args: argparse.Namespace, seed: int | None) -> str:
    parts = [f"{args.loss * 100:g} % loss each way"]
    if args.delay:
        parts.append(f"{args.delay * 2000:g} ms added RTT")
    if args.jitter:
        parts.append(f"{args.jitter * 1000:g} ms jitter")
    if args.reorder:
        parts.append(f"{args.reorder * 100:g} % reordering")
    if args.duplicate:
        parts.append(f"{args.duplicate * 100:g} % duplication")
    described = ", ".join(parts) + (f" (seed {seed})" if seed is not None else "")
    return f"{described}, profile {args.profile}"


async def run_demo(args: argparse.Namespace) -> int:
    """Generate, send, verify; prints the checksum verdict, the goodput and retransmissions."""
    began = time.monotonic()
    impairment = impairment_from(args)
    seed = impairment.seed if impairment is not None else None
    with tempfile.TemporaryDirectory(prefix="rudp-demo-") as tmp:
        source = Path(tmp, "demo.bin")
        out = Path(tmp, "received")
        out.mkdir()
        if not args.json:
            print(
                f"rudp demo: sending {format_bytes(args.size)} over loopback with "
                f"{_describe(args, seed)}",
                flush=True,
            )
        await asyncio.to_thread(generate_file, source, args.size)
        outcomes: list[Outcome] = []
        receiver = Receiver(out, report=outcomes.append)

        async def handler(conn: object) -> None:
            await receiver.handle(conn, peer_of(conn))  # type: ignore[arg-type]

        server = await messages.serve(
            handler, "127.0.0.1", 0, config=config_from(args), max_message_size=MAX_MESSAGE_SIZE
        )
        try:
            port = server.sockets[0].getsockname()[1]
            files = await inspect_files([str(source)])
            with connecting("127.0.0.1", port, timeout=args.connect_timeout, what="demo receiver"):
                conn = await messages.connect(
                    "127.0.0.1",
                    port,
                    config=config_from(args),
                    impairment=impairment,
                    max_message_size=MAX_MESSAGE_SIZE,
                    handshake_timeout=args.connect_timeout,
                )
            sent, stats = await send_with_progress(
                conn, files, as_json=args.json, what="sending the demo file"
            )
        finally:
            await shut_down(server)
        received = out / source.name
        if not (outcomes and outcomes[-1].ok and received.is_file()):
            raise CliError("demo failed: the receiver did not store the file", EXIT_FAILURE)
        digest = await asyncio.to_thread(_sha256, received)
        if digest != files[0].sha256:
            raise CliError("demo failed: the stored file differs from the one sent", EXIT_FAILURE)
    wall = time.monotonic() - began
    summary = send_summary(sent, stats)
    if args.json:
        summary.update(wall_seconds=round(wall, 3), impairment=_describe(args, seed))
        print(json.dumps(summary))
        return EXIT_OK
    print_sent(sent, stats)
    print(
        f"checksum OK: goodput {format_rate(summary['goodput_bytes_per_second'])}, "
        f"{summary['segments_retransmitted']} segments retransmitted, "
        f"RTT {format_duration(summary['srtt'])}, {format_duration(wall)} in all"
    )
    return EXIT_OK


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_GENERATE_BLOCK):
            digest.update(block)
    return digest.hexdigest()
