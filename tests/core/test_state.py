"""The connection lifecycle table: pure table tests, no bytes (cf. h11 ``test_state.py``).

The expected table is written out here by hand from RFC 9293 §3.3.2 (adapted to the
INIT / COOKIE / COOKIE-ECHO handshake), so a change to ``TRANSITIONS`` must show up here too.
"""

from __future__ import annotations

import itertools

import pytest

from rudp.core.state import (
    RECEIVING,
    SENDABLE,
    SYNCHRONIZED,
    TRANSITIONS,
    ConnState,
    StateMachine,
    Trigger,
    mermaid_diagram,
)
from rudp.errors import LocalProtocolError

S = ConnState
T = Trigger

EXPECTED_NORMAL: dict[tuple[ConnState, Trigger], ConnState] = {
    (S.CLOSED, T.CONNECT): S.INIT_SENT,
    (S.CLOSED, T.ACCEPT_ECHO): S.ESTABLISHED,
    (S.INIT_SENT, T.RECV_COOKIE): S.COOKIE_ECHOED,
    (S.COOKIE_ECHOED, T.RECV_CONFIRM): S.ESTABLISHED,
    (S.COOKIE_ECHOED, T.SEND_FIN): S.FIN_WAIT_1,
    (S.ESTABLISHED, T.SEND_FIN): S.FIN_WAIT_1,
    (S.ESTABLISHED, T.RECV_FIN): S.CLOSE_WAIT,
    (S.FIN_WAIT_1, T.FIN_ACKED): S.FIN_WAIT_2,
    (S.FIN_WAIT_1, T.RECV_FIN): S.CLOSING,
    (S.FIN_WAIT_2, T.RECV_FIN): S.TIME_WAIT,
    (S.FIN_WAIT_2, T.TIMER): S.CLOSED,
    (S.CLOSING, T.FIN_ACKED): S.TIME_WAIT,
    (S.CLOSE_WAIT, T.SEND_FIN): S.LAST_ACK,
    (S.LAST_ACK, T.FIN_ACKED): S.CLOSED,
    (S.TIME_WAIT, T.TIMER): S.CLOSED,
}
LIVE_STATES = [state for state in ConnState if state is not S.CLOSED]
EXPECTED: dict[tuple[ConnState, Trigger], ConnState] = {
    **EXPECTED_NORMAL,
    **{(state, T.RESET): S.CLOSED for state in LIVE_STATES},
    **{(state, T.FAIL): S.CLOSED for state in LIVE_STATES},
}
MISSING = [pair for pair in itertools.product(ConnState, Trigger) if pair not in EXPECTED]


def test_enums_are_exactly_the_documented_members() -> None:
    assert [s.value for s in ConnState] == [
        "CLOSED",
        "INIT_SENT",
        "COOKIE_ECHOED",
        "ESTABLISHED",
        "FIN_WAIT_1",
        "FIN_WAIT_2",
        "CLOSING",
        "TIME_WAIT",
        "CLOSE_WAIT",
        "LAST_ACK",
    ]
    assert [t.value for t in Trigger] == [
        "connect",
        "recv_cookie",
        "recv_confirm",
        "accept_echo",
        "send_fin",
        "recv_fin",
        "fin_acked",
        "timer",
        "reset",
        "fail",
    ]


def test_table_is_exactly_the_expected_table() -> None:
    assert TRANSITIONS == EXPECTED
    assert len(TRANSITIONS) == 15 + 2 * 9
    assert len(MISSING) == 10 * 10 - len(EXPECTED)


@pytest.mark.parametrize(("pair", "target"), sorted(EXPECTED.items(), key=str), ids=str)
def test_every_listed_pair_gives_the_listed_state(
    pair: tuple[ConnState, Trigger], target: ConnState
) -> None:
    state, trigger = pair
    sm = StateMachine(state)
    assert sm.process(trigger) is target
    assert sm.state is target


@pytest.mark.parametrize("pair", MISSING, ids=str)
def test_every_unlisted_pair_raises_naming_trigger_and_state(
    pair: tuple[ConnState, Trigger],
) -> None:
    state, trigger = pair
    sm = StateMachine(state)
    with pytest.raises(LocalProtocolError) as info:
        sm.process(trigger)
    message = str(info.value)
    assert message == f"no transition for {trigger.value!r} in state {state.value}"
    assert trigger.value in message
    assert state.value in message
    assert sm.state is state  # a refused trigger changes nothing
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__ is True


@pytest.mark.parametrize("trigger", [T.RESET, T.FAIL])
@pytest.mark.parametrize("state", LIVE_STATES)
def test_reset_and_fail_close_every_live_state(state: ConnState, trigger: Trigger) -> None:
    sm = StateMachine(state)
    assert sm.process(trigger) is S.CLOSED


@pytest.mark.parametrize("trigger", [T.RESET, T.FAIL])
def test_reset_and_fail_in_closed_raise(trigger: Trigger) -> None:
    sm = StateMachine()
    with pytest.raises(LocalProtocolError, match=f"'{trigger.value}' in state CLOSED"):
        sm.process(trigger)
    assert sm.state is S.CLOSED


def test_default_initial_state_is_closed() -> None:
    assert StateMachine().state is S.CLOSED
    assert StateMachine(S.TIME_WAIT).state is S.TIME_WAIT


def run(sm: StateMachine, triggers: list[Trigger]) -> list[ConnState]:
    return [sm.process(trigger) for trigger in triggers]


def test_client_active_close_path() -> None:
    sm = StateMachine()
    path = run(
        sm,
        [T.CONNECT, T.RECV_COOKIE, T.RECV_CONFIRM, T.SEND_FIN, T.FIN_ACKED, T.RECV_FIN, T.TIMER],
    )
    assert path == [
        S.INIT_SENT,
        S.COOKIE_ECHOED,
        S.ESTABLISHED,
        S.FIN_WAIT_1,
        S.FIN_WAIT_2,
        S.TIME_WAIT,
        S.CLOSED,
    ]


def test_client_closes_before_the_echo_is_confirmed() -> None:
    sm = StateMachine()
    path = run(sm, [T.CONNECT, T.RECV_COOKIE, T.SEND_FIN, T.FIN_ACKED])
    assert path == [S.INIT_SENT, S.COOKIE_ECHOED, S.FIN_WAIT_1, S.FIN_WAIT_2]


def test_server_passive_close_path() -> None:
    sm = StateMachine()
    path = run(sm, [T.ACCEPT_ECHO, T.RECV_FIN, T.SEND_FIN, T.FIN_ACKED])
    assert path == [S.ESTABLISHED, S.CLOSE_WAIT, S.LAST_ACK, S.CLOSED]


def test_simultaneous_close_goes_through_closing() -> None:
    sm = StateMachine()
    path = run(sm, [T.ACCEPT_ECHO, T.SEND_FIN, T.RECV_FIN, T.FIN_ACKED, T.TIMER])
    assert path == [S.ESTABLISHED, S.FIN_WAIT_1, S.CLOSING, S.TIME_WAIT, S.CLOSED]


def test_fin_wait_2_timeout() -> None:
    sm = StateMachine()
    path = run(sm, [T.ACCEPT_ECHO, T.SEND_FIN, T.FIN_ACKED, T.TIMER])
    assert path == [S.ESTABLISHED, S.FIN_WAIT_1, S.FIN_WAIT_2, S.CLOSED]


def test_closed_machine_can_be_reused_for_a_new_connect() -> None:
    sm = StateMachine()
    run(sm, [T.CONNECT, T.RESET])
    assert sm.process(T.CONNECT) is S.INIT_SENT


def test_state_sets() -> None:
    assert SENDABLE == {S.COOKIE_ECHOED, S.ESTABLISHED, S.CLOSE_WAIT}
    assert RECEIVING == {S.COOKIE_ECHOED, S.ESTABLISHED, S.FIN_WAIT_1, S.FIN_WAIT_2}
    assert SYNCHRONIZED == set(ConnState) - {S.CLOSED, S.INIT_SENT}


def test_every_state_is_reachable_from_closed() -> None:
    reached = {S.CLOSED}
    frontier = [S.CLOSED]
    while frontier:
        src = frontier.pop()
        for (state, _), dst in TRANSITIONS.items():
            if state is src and dst not in reached:
                reached.add(dst)
                frontier.append(dst)
    assert reached == set(ConnState)


def test_mermaid_diagram_lists_every_state_and_non_reset_transition() -> None:
    diagram = mermaid_diagram()
    lines = diagram.splitlines()
    assert lines[0] == "stateDiagram-v2"
    assert lines[1] == "    [*] --> CLOSED"
    edges = [line for line in lines if " --> " in line and "[*]" not in line]
    assert sorted(edges) == sorted(
        f"    {src.value} --> {dst.value}: {trig.value}"
        for (src, trig), dst in EXPECTED_NORMAL.items()
    )
    for state in ConnState:
        assert state.value in diagram
    # reset/fail edges are folded into one note instead of one edge per state
    assert not [line for line in lines if line.endswith((": reset", ": fail"))]
    assert lines[-1] == "    note right of CLOSED: reset or fail from any state leads here"
