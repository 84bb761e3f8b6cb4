"""Exit codes and the one-line error every failure becomes.

A command raises :class:`CliError` with a message meant for a person and the exit code that
classifies it; ``main`` prints ``rudp: error: <message>`` to stderr and exits with the code.
The codes are documented in ``docs/cli.md`` and are part of the command line's contract:
scripts branch on them.
"""

from __future__ import annotations

import sys
import traceback

__all__ = [
    "EXIT_CHECKSUM",
    "EXIT_CONNECTION_LOST",
    "EXIT_FAILURE",
    "EXIT_INPUT",
    "EXIT_INTERRUPTED",
    "EXIT_LISTEN",
    "EXIT_NO_RECEIVER",
    "EXIT_OK",
    "EXIT_REJECTED",
    "EXIT_TERMINATED",
    "EXIT_USAGE",
    "CliError",
    "Terminated",
    "print_unexpected",
]

EXIT_OK = 0
EXIT_FAILURE = 1
"""Anything not classified below (a bug: run with ``-v`` for the traceback)."""
EXIT_USAGE = 2
"""Bad arguments, including an address that does not parse or resolve (argparse uses 2 too)."""
EXIT_INPUT = 3
"""A file to send is missing or unreadable, or the output directory is unusable."""
EXIT_NO_RECEIVER = 4
"""Nothing answered: connection refused, or no handshake within ``--connect-timeout``."""
EXIT_LISTEN = 5
"""Cannot listen on the address: in use, or not allowed."""
EXIT_REJECTED = 6
"""The receiver refused or could not store a file (out of disk space, write error, bad name)."""
EXIT_CHECKSUM = 7
"""The receiver's SHA-256 of a file differs from the sender's."""
EXIT_CONNECTION_LOST = 8
"""The connection failed mid-transfer (peer reset, timed out, or closed early)."""
EXIT_INTERRUPTED = 130
"""Ctrl-C (SIGINT), as shells report it (128 + 2)."""
EXIT_TERMINATED = 143
"""SIGTERM (what ``kill`` and service managers send), as shells report it (128 + 15)."""


class CliError(Exception):
    """A failure to report as one line on stderr, with its exit code."""

    def __init__(self, message: str, code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class Terminated(Exception):
    """SIGTERM arrived; the command was cancelled and cleaned up as for Ctrl-C."""


def print_unexpected(exc: BaseException, *, verbose: int, doing: str = "") -> None:
    """One line on stderr for an exception nothing expected (a bug); the traceback with -v."""
    if verbose:
        traceback.print_exception(exc)
    hint = "" if verbose else " (run with -v for details)"
    where = f" while {doing}" if doing else ""
    print(f"rudp: error: unexpected {type(exc).__name__}{where}: {exc}{hint}", file=sys.stderr)
