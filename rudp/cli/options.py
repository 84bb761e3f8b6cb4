"""The options every command shares, and how they become API objects.

* Addresses are ``HOST:PORT`` (``[v6addr]:PORT`` for IPv6 literals; ``:PORT`` listens on
  every interface).
* The network impairment flags map one to one onto ``rudp.Impairment`` and impair this
  endpoint's datagrams in **both** directions: ``--delay 10ms`` adds 10 ms each way (20 ms to
  the round trip) and ``--loss 5`` loses 5 % each way. Impair one side of a transfer, not both,
  unless you want the effects doubled.
* Timeouts keep a dead peer from hanging a command: ``--connect-timeout`` bounds the
  handshake, ``--idle-timeout`` the silence of a peer (keepalives keep a quiet but live peer
  talking).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from typing import NoReturn, TypeVar

from ..aio.impairment import Impairment
from ..config import PROFILE_NAMES, Config
from .exits import EXIT_USAGE
from .units import parse_duration, parse_percent, parse_size

__all__ = [
    "Address",
    "Parser",
    "add_command_options",
    "add_common_options",
    "add_impairment_options",
    "add_timeout_options",
    "config_from",
    "connect_address",
    "impairment_from",
    "listen_address",
    "milliseconds",
    "percent",
    "seconds",
    "setup_logging",
    "size",
]

Address = tuple[str | None, int]
T = TypeVar("T")


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line on stderr (usage only with ``--help``)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _split_address(text: str) -> tuple[str, str]:
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise ValueError
        return host, rest[1:]
    host, sep, port = text.rpartition(":")
    if not sep or ":" in host:
        raise ValueError
    return host, port


def _parse_address(text: str, *, listen: bool) -> Address:
    expected = "[HOST]:PORT" if listen else "HOST:PORT"
    try:
        host, port_text = _split_address(text)
        port = int(port_text, 10)
    except ValueError:
        raise ValueError(f"bad address {text!r}: expected {expected}") from None
    if not 0 <= port <= 65535 or (port == 0 and not listen):
        raise ValueError(f"bad port in {text!r}: expected 1-65535" + (" or 0" if listen else ""))
    if not host:
        if not listen:
            raise ValueError(f"bad address {text!r}: expected {expected}")
        return None, port
    return host, port


def _argument_type(name: str, parse: Callable[[str], T]) -> Callable[[str], T]:
    """An argparse ``type=`` whose ``ValueError`` message reaches the user (argparse would
    otherwise print only "invalid <name> value")."""

    def convert(text: str) -> T:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = name
    return convert


connect_address = _argument_type("address", lambda text: _parse_address(text, listen=False))
"""argparse type: the ``HOST:PORT`` to connect to."""
listen_address = _argument_type("address", lambda text: _parse_address(text, listen=True))
"""argparse type: the ``[HOST]:PORT`` to listen on (port 0 picks a free one)."""
percent = _argument_type("percentage", parse_percent)
milliseconds = _argument_type("duration", lambda text: parse_duration(text, default_unit="ms"))
"""argparse type: a duration whose bare numbers are milliseconds."""
seconds = _argument_type("duration", lambda text: parse_duration(text, default_unit="s"))
"""argparse type: a duration whose bare numbers are seconds."""
size = _argument_type("size", parse_size)


def add_command_options(
    parser: argparse.ArgumentParser, *, connect: bool, profile: str = "fair"
) -> None:
    """What every command takes: logging, JSON, profile, timeouts and the impairment flags."""
    add_common_options(parser, profile=profile)
    add_timeout_options(parser, connect=connect)
    add_impairment_options(parser)


def add_common_options(parser: argparse.ArgumentParser, *, profile: str = "fair") -> None:
    """``-v`` (repeatable), ``--json`` and ``--profile``."""
    parser.add_argument(
        "--profile",
        choices=sorted(PROFILE_NAMES),
        default=profile,
        help="transport profile (rudp.Config.profile): fair = CUBIC, shares a bottleneck with "
        "TCP; throughput = model-based congestion control for lossy or long paths; background "
        f"= LEDBAT, yields to other traffic; latency = for interactive traffic (default {profile})",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log to stderr: -v info, -vv debug (also shows tracebacks of unexpected errors)",
    )
    parser.add_argument(
        "--json", action="store_true", help="machine-readable results on stdout, no progress"
    )


def add_impairment_options(parser: argparse.ArgumentParser) -> None:
    """The ``rudp.Impairment`` flags, applied to this endpoint's datagrams both ways."""
    group = parser.add_argument_group(
        "network impairment (this endpoint, each direction: --delay 10ms adds 20 ms of RTT)"
    )
    group.add_argument("--loss", type=percent, default=0.0, metavar="PCT", help="loss, %%")
    group.add_argument(
        "--delay", type=milliseconds, default=0.0, metavar="MS", help="one-way delay (ms, or 0.1s)"
    )
    group.add_argument(
        "--jitter", type=milliseconds, default=0.0, metavar="MS", help="extra random delay"
    )
    group.add_argument(
        "--reorder", type=percent, default=0.0, metavar="PCT", help="datagrams held back 10 ms, %%"
    )
    group.add_argument(
        "--duplicate", type=percent, default=0.0, metavar="PCT", help="datagrams sent twice, %%"
    )
    group.add_argument("--seed", type=int, default=None, help="seed of the random draws")


def add_timeout_options(parser: argparse.ArgumentParser, *, connect: bool) -> None:
    """``--idle-timeout``, and ``--connect-timeout`` on the side that connects."""
    if connect:
        parser.add_argument(
            "--connect-timeout",
            type=seconds,
            default=5.0,
            metavar="S",
            help="give up if the handshake takes longer (default 5 s)",
        )
    parser.add_argument(
        "--idle-timeout",
        type=seconds,
        default=30.0,
        metavar="S",
        help="drop a connection whose peer is silent this long (default 30 s)",
    )


def impairment_from(args: argparse.Namespace) -> Impairment | None:
    """The ``Impairment`` the flags describe, or None for a perfect network."""
    impairment = Impairment(
        loss=args.loss,
        delay=args.delay,
        jitter=args.jitter,
        reorder=args.reorder,
        duplicate=args.duplicate,
        seed=args.seed,
    )
    return None if impairment.is_perfect else impairment


def config_from(args: argparse.Namespace) -> Config:
    """Liveness settings: keepalives well inside the idle timeout, so only a dead peer trips it."""
    idle = args.idle_timeout
    if idle <= 0:
        raise ValueError("--idle-timeout must be > 0")
    keepalive = min(5.0, idle / 3)
    return Config.profile(
        args.profile,
        idle_timeout=idle,
        keepalive_idle=keepalive,
        keepalive_interval=keepalive,
        keepalive_probes=9,
    )


def setup_logging(verbosity: int) -> None:
    """Logging to stderr for ``-v``; silent otherwise (warnings still show)."""
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(
        stream=sys.stderr,
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
