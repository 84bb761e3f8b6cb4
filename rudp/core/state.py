"""The connection lifecycle as one table (h11 style).

Everything that changes a connection's state is listed in ``TRANSITIONS``; the engine feeds it
``Trigger`` values and the table answers with the next state. A pair missing from the table is
a bug in the caller and raises ``LocalProtocolError`` naming both. The state diagram in
``docs/protocol.md`` is generated from this table (``tools/gen_state_diagram.py``).
"""

from __future__ import annotations

import enum

from ..errors import LocalProtocolError

__all__ = ["ConnState", "StateMachine", "TRANSITIONS", "Trigger"]


class ConnState(enum.Enum):
    """Where a connection is in its lifecycle (RFC 9293 §3.3.2 names where they match)."""

    CLOSED = "CLOSED"
    INIT_SENT = "INIT_SENT"  # client: INIT sent, waiting for the COOKIE (SYN_SENT)
    COOKIE_ECHOED = "COOKIE_ECHOED"  # client: echo sent, data may flow, echo not yet confirmed
    ESTABLISHED = "ESTABLISHED"
    FIN_WAIT_1 = "FIN_WAIT_1"  # our FIN queued or sent, not yet acknowledged
    FIN_WAIT_2 = "FIN_WAIT_2"  # our FIN acknowledged, waiting for the peer's
    CLOSING = "CLOSING"  # simultaneous close: both FINs sent, ours not yet acknowledged
    TIME_WAIT = "TIME_WAIT"  # both FINs done; absorbs the peer's last retransmissions
    CLOSE_WAIT = "CLOSE_WAIT"  # peer's FIN received; we may still send
    LAST_ACK = "LAST_ACK"  # peer's FIN received, ours sent, waiting for its ACK


class Trigger(enum.Enum):
    """What happened to the connection."""

    CONNECT = "connect"  # client: the application opened the connection
    RECV_COOKIE = "recv_cookie"  # client: a valid COOKIE arrived
    RECV_CONFIRM = "recv_confirm"  # client: the server confirmed the echo
    ACCEPT_ECHO = "accept_echo"  # server: a valid COOKIE-ECHO created the connection
    SEND_FIN = "send_fin"  # the application closed its sending side
    RECV_FIN = "recv_fin"  # the peer's FIN arrived in order
    FIN_ACKED = "fin_acked"  # the peer acknowledged our FIN
    TIMER = "timer"  # TIME_WAIT ran out
    RESET = "reset"  # reset received or sent (abort)
    FAIL = "fail"  # timeout or protocol error


S = ConnState
T = Trigger

TRANSITIONS: dict[tuple[ConnState, Trigger], ConnState] = {
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
# A reset or a failure ends any live connection at once (RFC 9293 §3.10.7.4).
for _state in ConnState:
    if _state is not S.CLOSED:
        TRANSITIONS[(_state, T.RESET)] = S.CLOSED
        TRANSITIONS[(_state, T.FAIL)] = S.CLOSED
del _state

# States in which the application may still write.
SENDABLE = frozenset({S.COOKIE_ECHOED, S.ESTABLISHED, S.CLOSE_WAIT})
# States in which segments are sent and acknowledged.
SYNCHRONIZED = frozenset(
    {S.COOKIE_ECHOED, S.ESTABLISHED, S.FIN_WAIT_1, S.FIN_WAIT_2, S.CLOSING, S.TIME_WAIT}
    | {S.CLOSE_WAIT, S.LAST_ACK}
)
# States in which the peer may still send us data.
RECEIVING = frozenset({S.COOKIE_ECHOED, S.ESTABLISHED, S.FIN_WAIT_1, S.FIN_WAIT_2})


class StateMachine:
    """Applies ``TRANSITIONS``; knows nothing about roles, so both ends share the rules."""

    __slots__ = ("state",)

    def __init__(self, state: ConnState = ConnState.CLOSED) -> None:
        self.state = state

    def process(self, trigger: Trigger) -> ConnState:
        """Move to the state the table names, or raise ``LocalProtocolError``."""
        try:
            self.state = TRANSITIONS[(self.state, trigger)]
        except KeyError:
            raise LocalProtocolError(
                f"no transition for {trigger.value!r} in state {self.state.value}"
            ) from None
        return self.state


def mermaid_diagram() -> str:
    """The transition table as a Mermaid state diagram (reset/fail edges folded into a note)."""
    lines = ["stateDiagram-v2", "    [*] --> CLOSED"]
    for (src, trig), dst in TRANSITIONS.items():
        if trig in (T.RESET, T.FAIL):
            continue
        lines.append(f"    {src.value} --> {dst.value}: {trig.value}")
    lines.append("    note right of CLOSED: reset or fail from any state leads here")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover - documentation generator
    print(mermaid_diagram())
