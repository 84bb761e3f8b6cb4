"""``rudp send`` and ``rudp recv``: the file-transfer commands, wired to the network.

The protocol itself lives in ``sender``/``receiver``; this module opens the connection or the
server, picks the display and prints results (a line per file, or JSON with ``--json``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from .. import messages
from .exits import (
    EXIT_CHECKSUM,
    EXIT_CONNECTION_LOST,
    EXIT_FAILURE,
    EXIT_INPUT,
    EXIT_OK,
    EXIT_REJECTED,
    CliError,
    print_unexpected,
)
from .failures import CONNECTION_FAILURES, connecting, listening, lost, show_address
from .options import config_from, impairment_from
from .progress import make_progress
from .protocol import MAX_MESSAGE_SIZE
from .receiver import Outcome, Receiver
from .sender import LocalFile, SentFile, inspect_files, send_files
from .units import format_bytes, format_duration, format_rate

__all__ = [
    "close_quietly",
    "closing",
    "peer_of",
    "print_sent",
    "run_recv",
    "run_send",
    "send_summary",
]

_CLOSE_TIMEOUT = 10.0


def peer_of(conn: Any) -> str:
    """``host:port`` of a connection's peer, for messages."""
    peer = conn.peername
    if isinstance(peer, tuple) and len(peer) >= 2:
        return show_address(str(peer[0]), int(peer[1]))
    return str(peer)


async def close_quietly(conn: Any) -> None:
    """Close gracefully, but never hang or fail on a peer that is already gone."""
    try:
        async with asyncio.timeout(_CLOSE_TIMEOUT):
            await conn.close()
    except CONNECTION_FAILURES:
        return


async def shut_down(server: Any) -> None:
    """Stop serving and wait, bounded, for the server's connections to go."""
    server.close()
    try:
        async with asyncio.timeout(_CLOSE_TIMEOUT):
            await server.wait_closed()
    except TimeoutError:
        return


async def send_with_progress(
    conn: Any, files: list[LocalFile], *, as_json: bool, what: str
) -> tuple[list[SentFile], dict[str, Any]]:
    """Send ``files`` with a progress display, close ``conn``; the files and its last stats."""
    progress = make_progress(json=as_json, stream=sys.stdout)
    async with closing(conn):
        try:
            sent = await send_files(conn, files, progress)
        except CONNECTION_FAILURES as exc:
            raise lost(exc, what) from exc
        finally:
            progress.close()
        stats = dict(conn.stats)
    return sent, stats


@asynccontextmanager
async def closing(conn: Any) -> AsyncIterator[Any]:
    """Close ``conn`` on the way out; on Ctrl-C reset it instead, so the receiver drops the
    partial file at once rather than after its idle timeout."""
    try:
        yield conn
    except asyncio.CancelledError:
        conn.abort()
        raise
    finally:
        await close_quietly(conn)


def send_summary(sent: list[SentFile], stats: dict[str, Any]) -> dict[str, Any]:
    """The ``--json`` result of a send (also what the demo reports from)."""
    total = sum(f.size for f in sent)
    seconds = sum(f.seconds for f in sent)
    return {
        "ok": True,
        "files": [
            {
                "name": f.name,
                "size": f.size,
                "sha256": f.sha256,
                "seconds": round(f.seconds, 6),
                "goodput_bytes_per_second": round(f.goodput, 1),
                "segments_retransmitted": f.retransmitted,
            }
            for f in sent
        ],
        "bytes": total,
        "seconds": round(seconds, 6),
        "goodput_bytes_per_second": round(total / seconds, 1) if seconds > 0 else 0.0,
        "segments_retransmitted": stats.get("segments_retransmitted", 0),
        "bytes_retransmitted": stats.get("bytes_retransmitted", 0),
        "srtt": stats.get("srtt"),
    }


def print_sent(sent: list[SentFile], stats: dict[str, Any]) -> None:
    """One line per verified file, then the totals when there were several."""
    for f in sent:
        print(
            f"{f.name}: checksum OK (sha256 {f.sha256}), {format_bytes(f.size)} in "
            f"{format_duration(f.seconds)}, goodput {format_rate(f.goodput)}, "
            f"{f.retransmitted} segments retransmitted"
        )
    if len(sent) > 1:
        summary = send_summary(sent, stats)
        print(
            f"sent {len(sent)} files, {format_bytes(summary['bytes'])} in "
            f"{format_duration(summary['seconds'])}: goodput "
            f"{format_rate(summary['goodput_bytes_per_second'])}, "
            f"{summary['segments_retransmitted']} segments retransmitted"
        )


async def run_send(args: argparse.Namespace) -> int:
    """``rudp send FILE... HOST:PORT``."""
    host, port = args.address
    files = await inspect_files(args.files)
    with connecting(host, port, timeout=args.connect_timeout):
        conn = await messages.connect(
            host,
            port,
            config=config_from(args),
            impairment=impairment_from(args),
            max_message_size=MAX_MESSAGE_SIZE,
            handshake_timeout=args.connect_timeout,
        )
    sent, stats = await send_with_progress(
        conn, files, as_json=args.json, what=f"sending to {show_address(host, port)}"
    )
    if args.json:
        print(json.dumps(send_summary(sent, stats)))
    else:
        print_sent(sent, stats)
    return EXIT_OK


def _exit_code(outcome: Outcome) -> int:
    if outcome.ok:
        return EXIT_OK
    if outcome.code == "checksum":
        return EXIT_CHECKSUM
    if outcome.code == "lost":
        return EXIT_CONNECTION_LOST
    if outcome.code == "protocol":
        return EXIT_FAILURE
    return EXIT_REJECTED


def _print_outcome(outcome: Outcome, *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(outcome.as_dict()), flush=True)
    elif outcome.ok:
        rate = outcome.size / outcome.seconds if outcome.seconds > 0 else 0.0
        print(
            f"received {outcome.name} ({format_bytes(outcome.size)}) from {outcome.peer} in "
            f"{format_duration(outcome.seconds)}, {format_rate(rate)}: checksum OK "
            f"(sha256 {outcome.sha256})",
            flush=True,
        )
    else:
        print(f"failed {outcome.name} from {outcome.peer}: {outcome.error}", flush=True)


def _out_dir(text: str) -> Path:
    out = Path(text)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(f"cannot use output directory {text}: {exc.strerror}", EXIT_INPUT) from exc
    if not out.is_dir():
        raise CliError(f"cannot use output directory {text}: not a directory", EXIT_INPUT)
    return out


async def run_recv(args: argparse.Namespace) -> int:
    """``rudp recv --listen HOST:PORT [--out DIR] [--once]``."""
    host, port = args.listen
    out = _out_dir(args.out)
    outcomes: list[Outcome] = []
    first_done = asyncio.Event()

    def report(outcome: Outcome) -> None:
        outcomes.append(outcome)
        _print_outcome(outcome, as_json=args.json)

    receiver = Receiver(out, report=report, min_free=args.min_free)

    async def handler(conn: Any) -> None:
        peer = peer_of(conn)
        try:
            await receiver.handle(conn, peer)
        except Exception as exc:  # a bug: one line (no traceback), and serve the next sender
            conn.abort()
            print_unexpected(exc, verbose=args.verbose, doing=f"receiving from {peer}")
        finally:
            first_done.set()

    with listening(host, port):
        server = await messages.serve(
            handler,
            host,
            port,
            config=config_from(args),
            impairment=impairment_from(args),
            max_message_size=MAX_MESSAGE_SIZE,
        )
    try:
        bound = server.sockets[0].getsockname()
        where = show_address(str(bound[0]), int(bound[1]))
        if args.json:
            event = {"event": "listening", "host": bound[0], "port": bound[1], "out": str(out)}
            print(json.dumps(event), flush=True)
        else:
            print(f"listening on {where}, saving to {out}", flush=True)
        # Not serve_forever(): cancelled, it waits for transfers in progress to end.
        await (first_done if args.once else asyncio.Event()).wait()
    except asyncio.CancelledError:
        server.abort_clients()  # Ctrl-C: reset the senders rather than leave them waiting
        raise
    finally:
        await shut_down(server)
    return next((code for code in map(_exit_code, outcomes) if code), EXIT_OK)
