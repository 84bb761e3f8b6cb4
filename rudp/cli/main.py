"""``rudp`` (and ``python -m rudp``): the argument parser, and the one place where failures
become an exit code.

Every command is a coroutine function taking the parsed arguments and returning an exit code.
:func:`main` runs it on uvloop when available and turns ``CliError``, Ctrl-C and anything
unexpected into one line on stderr; a traceback only appears with ``-v``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from .. import __version__
from .demo import run_demo
from .exits import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    CliError,
    Terminated,
    print_unexpected,
)
from .options import (
    Parser,
    add_command_options,
    connect_address,
    listen_address,
    seconds,
    setup_logging,
    size,
)
from .perf import run_perf_client, run_perf_server
from .transfer import run_recv, run_send

__all__ = ["build_parser", "main"]

Command = Callable[[argparse.Namespace], Coroutine[Any, Any, int]]


def _add_send(commands: Any) -> None:
    parser = commands.add_parser(
        "send",
        help="send files to a receiver",
        description="Send one or more files over one connection; each is verified by SHA-256.",
    )
    parser.add_argument("files", nargs="+", metavar="FILE")
    parser.add_argument("address", type=connect_address, metavar="HOST:PORT")
    add_command_options(parser, connect=True)
    parser.set_defaults(command=run_send)


def _add_recv(commands: Any) -> None:
    parser = commands.add_parser(
        "recv",
        help="receive files",
        description="Accept transfers; a file appears under its name only once verified.",
    )
    parser.add_argument(
        "--listen", type=listen_address, required=True, metavar="[HOST]:PORT", help="port 0: any"
    )
    parser.add_argument("--out", default=".", metavar="DIR", help="where files go (default .)")
    parser.add_argument("--once", action="store_true", help="exit after the first connection")
    parser.add_argument(
        "--min-free",
        type=size,
        default=0,
        metavar="SIZE",
        help="refuse a file that would leave less free disk space than this",
    )
    add_command_options(parser, connect=False)
    parser.set_defaults(command=run_recv)


def _add_perf(commands: Any) -> None:
    perf = commands.add_parser(
        "perf", help="measure goodput and RTT (like iperf)", description="Measure goodput and RTT."
    )
    roles = perf.add_subparsers(
        dest="role", required=True, metavar="server|client", parser_class=Parser
    )
    server = roles.add_parser("server", help="answer perf clients")
    server.add_argument("--listen", type=listen_address, required=True, metavar="[HOST]:PORT")
    server.add_argument("--once", action="store_true", help="exit after the first test")
    add_command_options(server, connect=False)
    server.set_defaults(command=run_perf_server)

    client = roles.add_parser("client", help="run a test against a perf server")
    client.add_argument("address", type=connect_address, metavar="HOST:PORT")
    amount = client.add_mutually_exclusive_group()
    amount.add_argument("-t", "--time", type=seconds, default=None, metavar="S", help="default 10")
    amount.add_argument("-n", "--bytes", type=size, default=None, metavar="SIZE")
    way = client.add_mutually_exclusive_group()
    way.add_argument("-R", "--reverse", action="store_true", help="server sends, client receives")
    way.add_argument("--bidir", action="store_true", help="both send at once")
    client.add_argument(
        "-i", "--interval", type=seconds, default=1.0, metavar="S", help="report period (0: none)"
    )
    add_command_options(client, connect=True)
    client.set_defaults(command=run_perf_client)


def _add_demo(commands: Any) -> None:
    parser = commands.add_parser(
        "demo",
        help="a file transfer over a lossy loopback link",
        description="Send a generated file to a receiver on loopback over an impaired link.",
    )
    parser.add_argument("--size", type=size, default=32 * 2**20, help="default 32MiB")
    add_command_options(parser, connect=True, profile="throughput")  # made for lossy paths
    parser.set_defaults(command=run_demo, loss=0.05, delay=0.010, reorder=0.01, seed=None)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="rudp", description="Reliable transport over UDP: files, perf, demo.")
    parser.add_argument("--version", action="version", version=f"rudp {__version__}")
    commands = parser.add_subparsers(
        dest="name", required=True, metavar="COMMAND", parser_class=Parser
    )
    _add_send(commands)
    _add_recv(commands)
    _add_perf(commands)
    _add_demo(commands)
    return parser


async def _until_terminated(command: Command, args: argparse.Namespace) -> int:
    """Run ``command``; SIGTERM cancels it as Ctrl-C does (so partial files are removed),
    then raises ``Terminated``."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    terminated = False

    def on_sigterm() -> None:
        nonlocal terminated
        terminated = True
        task.cancel()

    try:
        loop.add_signal_handler(signal.SIGTERM, on_sigterm)
    except (NotImplementedError, RuntimeError):  # not the main thread, or no signals here
        return await command(args)
    try:
        return await command(args)
    except asyncio.CancelledError:
        if terminated:
            raise Terminated from None
        raise
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


def _run(command: Command, args: argparse.Namespace) -> int:
    try:
        import uvloop
    except ImportError:  # not on this platform: the default loop is fine
        factory = None
    else:
        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(_until_terminated(command, args))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (the console script exits with it)."""
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    try:
        return _run(args.command, args)
    except CliError as exc:
        print(f"rudp: error: {exc.message}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("rudp: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Terminated:
        print("rudp: terminated", file=sys.stderr)
        return EXIT_TERMINATED
    except Exception as exc:
        print_unexpected(exc, verbose=args.verbose)
        return EXIT_FAILURE
