"""Deterministic network simulation for driving the sans-I/O protocol core in tests."""

from __future__ import annotations

from .clock import FakeClock
from .link import DropPredicate, GilbertElliott, Impairment, LinkStats, LossyLink
from .net import (
    PERFECT,
    STUCK_TIMER_LIMIT,
    Addr,
    Node,
    Simulator,
    TraceRecord,
    UndeliverableCallback,
)

__all__ = [
    "PERFECT",
    "STUCK_TIMER_LIMIT",
    "Addr",
    "DropPredicate",
    "FakeClock",
    "GilbertElliott",
    "Impairment",
    "LinkStats",
    "LossyLink",
    "Node",
    "Simulator",
    "TraceRecord",
    "UndeliverableCallback",
]
