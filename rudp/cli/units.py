"""Parsing and printing the quantities a person types and reads: sizes, durations, percents,
rates.

Parsers raise ``ValueError`` with a message that says what was expected; argparse turns it
into a usage error naming the option.
"""

from __future__ import annotations

import math
import re

__all__ = [
    "format_bytes",
    "format_duration",
    "format_rate",
    "parse_duration",
    "parse_percent",
    "parse_size",
]

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?)b?\s*$", re.IGNORECASE)
_EXPONENT = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4, "p": 5}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min)?\s*$", re.IGNORECASE)
_DURATION_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0}


def parse_size(text: str) -> int:
    """``"32MiB"`` -> 33554432. Suffixes k/M/G/T/P are powers of 1000, KiB ... PiB of 1024;
    a trailing ``B`` is optional; no suffix means bytes."""
    match = _SIZE.match(text)
    if match is None:
        raise ValueError(f"not a size: {text!r} (examples: 4096, 500k, 32MiB, 1G)")
    number, prefix, binary = match.groups()
    if binary and not prefix:
        raise ValueError(f"not a size: {text!r} (examples: 4096, 500k, 32MiB, 1G)")
    base = 1024 if binary else 1000
    value = float(number) * base ** _EXPONENT[prefix.lower()]
    if value != int(value):
        raise ValueError(f"not a whole number of bytes: {text!r}")
    return int(value)


def parse_duration(text: str, *, default_unit: str) -> float:
    """``"20ms"``, ``"1.5s"``, ``"2min"`` -> seconds; a bare number is in ``default_unit``
    (``"ms"`` or ``"s"``)."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"not a duration: {text!r} (examples: 20ms, 1.5s)")
    number, unit = match.groups()
    seconds = float(number) * _DURATION_UNIT[(unit or default_unit).lower()]
    if not math.isfinite(seconds):
        raise ValueError(f"not a finite duration: {text!r}")
    return seconds


def parse_percent(text: str) -> float:
    """``"5"`` or ``"5%"`` -> 0.05: probabilities are typed as percents, in [0, 100]."""
    stripped = text.strip().removesuffix("%").strip()
    try:
        value = float(stripped)
    except ValueError:
        raise ValueError(f"not a percentage: {text!r} (examples: 5, 0.5%)") from None
    if not 0.0 <= value <= 100.0:  # also rejects NaN
        raise ValueError(f"a percentage must be in [0, 100], got {text!r}")
    return value / 100.0


def format_bytes(count: float) -> str:
    """Binary units, three significant figures: ``32.0 MiB``, ``512 B``."""
    if count < 1024:
        return f"{count:.0f} B"
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        count /= 1024
        if count < 1024 or unit == "PiB":
            break
    return f"{count:.1f} {unit}" if count < 100 else f"{count:.0f} {unit}"


def format_rate(bytes_per_second: float) -> str:
    """A goodput in bit/s (what network people compare), bytes/s alongside."""
    bits = bytes_per_second * 8
    for unit, scale in (("Gbit/s", 1e9), ("Mbit/s", 1e6), ("kbit/s", 1e3)):
        if bits >= scale:
            shown = f"{bits / scale:.1f} {unit}"
            break
    else:
        shown = f"{bits:.0f} bit/s"
    return f"{shown} ({format_bytes(bytes_per_second)}/s)"


def format_duration(seconds: float | None) -> str:
    """``"-"`` when unknown, ``"850 ms"`` below a second, ``"12.3 s"`` above, ``"4m05s"`` above
    a minute."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds + 0.5), 60)
    return f"{minutes}m{rest:02d}s"
