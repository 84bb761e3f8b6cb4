"""The exception tree: rudp errors are caught by the handlers asyncio TCP code already has."""

from __future__ import annotations

import asyncio

import pytest

import rudp
from rudp import errors
from rudp.errors import (
    ConcurrencyError,
    ConnectionRefused,
    ConnectionReset,
    ConnectionTimeout,
    DecodeError,
    HandshakeTimeout,
    InvalidStateError,
    LocalProtocolError,
    MessageTooLarge,
    RemoteProtocolError,
    RudpError,
    SendBufferFull,
)


def test_rudp_error_is_an_exception() -> None:
    assert RudpError.__bases__ == (Exception,)


def test_connection_reset() -> None:
    assert issubclass(ConnectionReset, ConnectionResetError)
    assert issubclass(ConnectionReset, ConnectionError)
    assert issubclass(ConnectionReset, RudpError)
    with pytest.raises(ConnectionResetError, match="^peer reset$"):
        raise ConnectionReset("peer reset")


def test_connection_refused() -> None:
    assert issubclass(ConnectionRefused, ConnectionRefusedError)
    assert issubclass(ConnectionRefused, RudpError)
    assert not issubclass(ConnectionRefused, ConnectionResetError)
    with pytest.raises(ConnectionRefusedError):
        raise ConnectionRefused("refused")


@pytest.mark.parametrize("cls", [ConnectionTimeout, HandshakeTimeout])
def test_timeouts_caught_by_except_timeout_error(cls: type[Exception]) -> None:
    caught = None
    try:
        raise cls("no answer")
    except TimeoutError as exc:
        caught = exc
    assert type(caught) is cls
    assert isinstance(caught, RudpError)


@pytest.mark.parametrize("cls", [ConnectionTimeout, HandshakeTimeout])
def test_timeouts_caught_by_except_asyncio_timeout_error(cls: type[Exception]) -> None:
    caught = None
    try:
        raise cls("no answer")
    except asyncio.TimeoutError as exc:  # noqa: UP041 - the spelling under test
        caught = exc
    assert type(caught) is cls


def test_handshake_timeout_is_a_connection_timeout() -> None:
    assert issubclass(HandshakeTimeout, ConnectionTimeout)
    assert not issubclass(ConnectionTimeout, HandshakeTimeout)


async def test_timeouts_behave_like_asyncio_wait_for_timeouts() -> None:
    async def fail() -> None:
        raise HandshakeTimeout("handshake")

    with pytest.raises(asyncio.TimeoutError, match="^handshake$"):
        await asyncio.wait_for(fail(), timeout=1.0)


@pytest.mark.parametrize("cls", [DecodeError, MessageTooLarge])
def test_value_errors(cls: type[Exception]) -> None:
    assert issubclass(cls, ValueError)
    assert issubclass(cls, RudpError)
    assert not issubclass(cls, LocalProtocolError)
    with pytest.raises(ValueError):
        raise cls("bad")


def test_concurrency_error_is_a_runtime_error() -> None:
    assert issubclass(ConcurrencyError, RuntimeError)
    assert issubclass(ConcurrencyError, RudpError)
    with pytest.raises(RuntimeError):
        raise ConcurrencyError("two readers")


@pytest.mark.parametrize("cls", [InvalidStateError, SendBufferFull])
def test_local_protocol_errors(cls: type[Exception]) -> None:
    assert issubclass(cls, LocalProtocolError)
    assert issubclass(cls, RudpError)
    assert not issubclass(cls, RemoteProtocolError)


def test_local_and_remote_are_disjoint() -> None:
    assert not issubclass(RemoteProtocolError, LocalProtocolError)
    assert not issubclass(LocalProtocolError, RemoteProtocolError)
    assert RemoteProtocolError.__bases__ == (RudpError,)
    assert LocalProtocolError.__bases__ == (RudpError,)


def test_connection_errors_are_not_value_errors() -> None:
    for cls in (ConnectionReset, ConnectionRefused, ConnectionTimeout):
        assert not issubclass(cls, ValueError)
        assert not issubclass(cls, LocalProtocolError)


def _exception_names(module: object) -> list[str]:
    names: list[str] = module.__all__  # type: ignore[attr-defined]
    return [
        name
        for name in names
        if isinstance(getattr(module, name), type)
        and issubclass(getattr(module, name), BaseException)
    ]


EXPECTED_EXCEPTIONS = {
    "ConcurrencyError",
    "ConnectionRefused",
    "ConnectionReset",
    "ConnectionTimeout",
    "DecodeError",
    "HandshakeTimeout",
    "InvalidStateError",
    "LocalProtocolError",
    "MessageTooLarge",
    "RemoteProtocolError",
    "RudpError",
    "SendBufferFull",
}


def test_every_public_exception_derives_from_rudp_error() -> None:
    names = _exception_names(rudp)
    assert EXPECTED_EXCEPTIONS <= set(names)
    for name in names:
        assert issubclass(getattr(rudp, name), RudpError), name


def test_errors_module_exports_only_rudp_errors_and_facade_reexports_them() -> None:
    assert set(errors.__all__) == set(_exception_names(errors))
    assert EXPECTED_EXCEPTIONS <= set(errors.__all__)
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), RudpError), name
        assert getattr(rudp, name) is getattr(errors, name)
        assert name in rudp.__all__
