"""Undo of a spurious window reduction, shared by the controllers.

When a recovery turns out spurious (the original transmissions had arrived: timestamps,
RFC 3522 / RFC 4015, or D-SACKs of every retransmission, RFC 3708), the sender hands back the
state it took with ``snapshot()`` just before the reduction. Each controller names the fields
that make up its window state in ``UNDO_FIELDS`` (RFC 9438 §4.9 lists CUBIC's); ``restore``
puts them back and keeps cwnd if it has grown past the saved one since (Linux
``tcp_undo_cwnd_reduction``: cwnd = max(cwnd, prior_cwnd)).
"""

from __future__ import annotations

from typing import Any

__all__ = ["Undoable"]


class Undoable:
    """Mixin: ``snapshot`` / ``restore`` over the class's ``UNDO_FIELDS``."""

    __slots__ = ()
    UNDO_FIELDS: tuple[str, ...] = ("cwnd", "ssthresh")
    cwnd: int

    def snapshot(self) -> object:
        """The window state, to ``restore`` if the coming reduction proves spurious."""
        return tuple(getattr(self, name) for name in self.UNDO_FIELDS)

    def restore(self, state: object, *, now: float) -> None:
        """Put back a ``snapshot``; cwnd stays where it is if it is larger now."""
        cwnd = self.cwnd
        values: tuple[Any, ...] = state  # type: ignore[assignment]
        for name, value in zip(self.UNDO_FIELDS, values, strict=True):
            setattr(self, name, value)
        if cwnd > self.cwnd:
            setattr(self, "cwnd", cwnd)  # noqa: B010 - the subclass's slot
