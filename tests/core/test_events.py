"""Engine events: frozen, slotted values, one fact each."""

from __future__ import annotations

import dataclasses

import pytest

from rudp.core import events
from rudp.core.events import (
    Connected,
    ConnectionTerminated,
    DatagramReceived,
    DataReceived,
    EndOfStream,
    Event,
    SendBufferLow,
)
from rudp.errors import ConnectionReset, ConnectionTimeout

SAMPLES: list[Event] = [
    Connected(),
    DataReceived(b"payload"),
    DatagramReceived(b"datagram"),
    EndOfStream(),
    SendBufferLow(),
    ConnectionTerminated(reason="reset", error=ConnectionReset("x"), by_peer=True),
]


def test_module_exports() -> None:
    assert sorted(events.__all__) == [
        "Connected",
        "ConnectionTerminated",
        "DataReceived",
        "DatagramReceived",
        "EndOfStream",
        "Event",
        "SendBufferLow",
    ]


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: type(e).__name__)
def test_events_are_frozen(event: Event) -> None:
    assert isinstance(event, Event)
    assert dataclasses.is_dataclass(event)
    params = type(event).__dataclass_params__
    assert params.frozen is True
    fields = dataclasses.fields(event)
    for field in fields:
        before = getattr(event, field.name)
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(event, field.name, None)
        assert getattr(event, field.name) is before
    # A non-field name raises too: FrozenInstanceError on 3.12+, TypeError on 3.11, where the
    # frozen __setattr__ of a slots=True dataclass refers to the pre-slots class.
    with pytest.raises((AttributeError, TypeError)):
        event.extra = 1
    assert not hasattr(event, "extra")


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: type(e).__name__)
def test_events_are_slotted(event: Event) -> None:
    assert dataclasses.is_dataclass(event)
    assert not hasattr(event, "__dict__")
    assert type(event).__slots__ == tuple(f.name for f in dataclasses.fields(event))
    # Bypassing the frozen __setattr__ still cannot add an attribute: there is no __dict__.
    with pytest.raises(AttributeError):
        object.__setattr__(event, "extra", 1)


def test_base_event_is_slotted_and_empty() -> None:
    assert Event.__slots__ == ()
    assert not hasattr(Event(), "__dict__")


def test_connection_terminated_fields() -> None:
    assert [f.name for f in dataclasses.fields(ConnectionTerminated)] == [
        "reason",
        "error",
        "by_peer",
    ]
    error = ConnectionTimeout("retransmission limit")
    event = ConnectionTerminated("timeout", error, False)
    assert event.reason == "timeout"
    assert event.error is error
    assert event.by_peer is False
    clean = ConnectionTerminated(reason="closed", error=None, by_peer=True)
    assert clean.error is None
    assert clean.by_peer is True
    assert clean == ConnectionTerminated("closed", None, True)
    assert clean != ConnectionTerminated("closed", None, False)
    assert repr(clean) == "ConnectionTerminated(reason='closed', error=None, by_peer=True)"


def test_connection_terminated_requires_every_field() -> None:
    with pytest.raises(TypeError):
        ConnectionTerminated("closed", None)  # type: ignore[call-arg]


def test_data_received_value_semantics() -> None:
    event = DataReceived(b"abc")
    assert event.data == b"abc"
    assert event == DataReceived(b"abc")
    assert event != DataReceived(b"abd")
    assert hash(event) == hash(DataReceived(b"abc"))
    assert repr(event) == "DataReceived(data=b'abc')"
    assert [f.name for f in dataclasses.fields(DataReceived)] == ["data"]


def test_fieldless_events_are_equal_per_class() -> None:
    assert Connected() == Connected()
    assert EndOfStream() == EndOfStream()
    assert SendBufferLow() == SendBufferLow()
    connected: object = Connected()
    assert connected != EndOfStream()
    assert repr(EndOfStream()) == "EndOfStream()"
    for cls in (Connected, EndOfStream, SendBufferLow):
        assert dataclasses.fields(cls) == ()
