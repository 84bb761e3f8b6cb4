"""Library exceptions, translated into the one-line errors and exit codes of ``exits``.

Each translation knows what the command was doing (connecting, listening, transferring), which
the exception alone does not: ``ConnectionRefusedError`` means "no receiver" only when
connecting.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import RudpError
from .exits import EXIT_CONNECTION_LOST, EXIT_LISTEN, EXIT_NO_RECEIVER, EXIT_USAGE, CliError

__all__ = ["CONNECTION_FAILURES", "connecting", "listening", "lost", "show_address"]


def show_address(host: str | None, port: int) -> str:
    """``host:port`` as typed (IPv6 literals in brackets, no host as ``*``)."""
    if host is None:
        return f"*:{port}"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@contextmanager
def connecting(host: str, port: int, *, timeout: float, what: str = "receiver") -> Iterator[None]:
    """Around a connect: no answer, a refusal and an unknown host become ``CliError``."""
    where = show_address(host, port)
    try:
        yield
    except socket.gaierror as exc:
        raise CliError(f"cannot resolve host {host!r}: {exc.strerror}", EXIT_USAGE) from exc
    except ConnectionRefusedError as exc:
        raise CliError(f"no {what} at {where}: connection refused", EXIT_NO_RECEIVER) from exc
    except TimeoutError as exc:
        raise CliError(
            f"no {what} at {where}: no answer within {timeout:g} s", EXIT_NO_RECEIVER
        ) from exc
    except OSError as exc:
        raise CliError(f"cannot reach {where}: {exc.strerror or exc}", EXIT_NO_RECEIVER) from exc


@contextmanager
def listening(host: str | None, port: int) -> Iterator[None]:
    """Around a bind: an address in use (or not ours, or forbidden) becomes ``CliError``."""
    where = show_address(host, port)
    try:
        yield
    except socket.gaierror as exc:
        raise CliError(f"cannot resolve host {host!r}: {exc.strerror}", EXIT_USAGE) from exc
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            reason = "address already in use"
        elif exc.errno in (errno.EACCES, errno.EPERM):
            reason = "permission denied"
        elif exc.errno == errno.EADDRNOTAVAIL:
            reason = "not an address of this machine"
        else:
            reason = exc.strerror or str(exc)
        raise CliError(f"cannot listen on {where}: {reason}", EXIT_LISTEN) from exc


def lost(exc: BaseException, doing: str) -> CliError:
    """A connection that failed mid-way (reset, timed out, closed early)."""
    detail = str(exc) or type(exc).__name__
    return CliError(f"connection lost while {doing}: {detail}", EXIT_CONNECTION_LOST)


CONNECTION_FAILURES: tuple[type[BaseException], ...] = (RudpError, ConnectionError, TimeoutError)
"""What a connection that dies mid-way raises (``rudp.ConnectionClosed`` is a ``RudpError``)."""
