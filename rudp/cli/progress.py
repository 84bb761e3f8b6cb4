"""Progress of a file being sent: a ``rich`` bar on a terminal, plain lines otherwise.

A bar redraws in place, which is right for a person and wrong for a log file or a pipe, so
when stdout is not a terminal the same facts (bytes, rate, ETA, RTT, retransmissions) come
as one line per ``interval`` seconds. ``--json`` shows no progress at all: stdout then
carries only the result object.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from .units import format_bytes, format_duration

__all__ = ["FileProgress", "NullProgress", "PlainProgress", "RichProgress", "make_progress"]


class FileProgress(Protocol):
    """What the sender reports while it sends; ``stats`` is the connection's ``stats``."""

    def start_file(self, name: str, size: int, stats: Mapping[str, Any]) -> None: ...

    def update(self, done: int, stats: Mapping[str, Any]) -> None: ...

    def finish_file(self) -> None: ...

    def close(self) -> None: ...


def _rtt(stats: Mapping[str, Any]) -> str:
    srtt = stats.get("srtt")
    return format_duration(srtt) if isinstance(srtt, int | float) else "-"


def _retransmitted(stats: Mapping[str, Any]) -> int:
    value = stats.get("segments_retransmitted", 0)
    return value if isinstance(value, int) else 0


class NullProgress:
    """Shows nothing (``--json``)."""

    def start_file(self, name: str, size: int, stats: Mapping[str, Any]) -> None:
        return None

    def update(self, done: int, stats: Mapping[str, Any]) -> None:
        return None

    def finish_file(self) -> None:
        return None

    def close(self) -> None:
        return None


class PlainProgress:
    """One line per ``interval`` seconds (and one when a file ends), for pipes and logs."""

    def __init__(
        self,
        stream: TextIO,
        *,
        interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream
        self._interval = interval
        self._clock = clock
        self._name = ""
        self._size = 0
        self._done = 0
        self._started = 0.0
        self._last_line = 0.0
        self._retx_base = 0
        self._stats: Mapping[str, Any] = {}

    def start_file(self, name: str, size: int, stats: Mapping[str, Any]) -> None:
        self._name, self._size, self._done = name, size, 0
        self._started = self._last_line = self._clock()
        self._retx_base = _retransmitted(stats)
        self._stats = stats

    def update(self, done: int, stats: Mapping[str, Any]) -> None:
        self._done, self._stats = done, stats
        now = self._clock()
        if now - self._last_line >= self._interval:
            self._last_line = now
            self._line(now)

    def finish_file(self) -> None:
        self._line(self._clock())

    def close(self) -> None:
        return None

    def _line(self, now: float) -> None:
        elapsed = now - self._started
        rate = self._done / elapsed if elapsed > 0 else 0.0
        eta = (self._size - self._done) / rate if rate > 0 else None
        percent = 100.0 * self._done / self._size if self._size else 100.0
        retx = _retransmitted(self._stats) - self._retx_base
        print(
            f"{self._name}: {format_bytes(self._done)} / {format_bytes(self._size)} "
            f"({percent:.0f} %), {format_bytes(rate)}/s, ETA {format_duration(eta)}, "
            f"RTT {_rtt(self._stats)}, retransmitted {retx}",
            file=self._stream,
            flush=True,
        )


class RichProgress:
    """A ``rich`` progress bar per file, kept on screen when the file is done."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("RTT {task.fields[rtt]}  retx {task.fields[retx]}"),
            console=console,
        )
        self._task: TaskID | None = None
        self._retx_base = 0
        self._progress.start()

    def start_file(self, name: str, size: int, stats: Mapping[str, Any]) -> None:
        self._retx_base = _retransmitted(stats)
        self._task = self._progress.add_task(name, total=size, rtt=_rtt(stats), retx=0)

    def update(self, done: int, stats: Mapping[str, Any]) -> None:
        if self._task is not None:
            retx = _retransmitted(stats) - self._retx_base
            self._progress.update(self._task, completed=done, rtt=_rtt(stats), retx=retx)

    def finish_file(self) -> None:
        if self._task is not None:
            self._progress.refresh()
            self._task = None

    def close(self) -> None:
        self._progress.stop()


def make_progress(*, json: bool, stream: TextIO) -> FileProgress:
    """The display that suits ``stream``: none for ``--json``, a bar on a terminal, else lines."""
    if json:
        return NullProgress()
    if stream.isatty():
        return RichProgress(Console(file=stream))
    return PlainProgress(stream)
