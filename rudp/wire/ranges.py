"""RangeSet: a set of integers stored as sorted, disjoint, non-adjacent half-open ranges.

Used for SACK scoreboards and receive reassembly, where the numbers are unbounded sequence
numbers and the set is a handful of runs (cf. aioquic ``quic/rangeset.py``).

Storage is two parallel lists, ``_starts`` and ``_ends``, so that ``bisect`` finds a range in
O(log n) without building a tuple per probe. Complexity, for n stored ranges:

* lookups (``in``, ``covers``, ``range_containing``): O(log n);
* ``holes`` / ``overlap`` over a span touching k ranges: O(log n + k);
* ``add`` / ``subtract`` / ``discard_below``: O(log n) to locate plus one list-slice
  replacement, O(n) memmove in the worst case (a C-level copy; n stays small in practice);
* ``total``: O(n); ``bounds``, ``len``, ``bool``: O(1).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator

__all__ = ["RangeSet"]


def _check(start: int, end: int) -> None:
    if start > end:
        raise ValueError(f"range start {start} is above its end {end}")


class RangeSet:
    """A mutable set of ints held as sorted, disjoint, non-adjacent ``[start, end)`` ranges."""

    __slots__ = ("_starts", "_ends")

    def __init__(self, ranges: Iterable[tuple[int, int]] = ()) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []
        for start, end in ranges:
            self.add(start, end)

    # --- mutation -----------------------------------------------------------------------

    def add(self, start: int, end: int) -> None:
        """Add ``[start, end)``, merging every range it overlaps or touches."""
        _check(start, end)
        if start == end:
            return
        starts, ends = self._starts, self._ends
        # Ranges i..j-1 overlap or are adjacent: end >= start and start <= end.
        i = bisect_left(ends, start)
        j = bisect_right(starts, end, i)
        if i == j:
            starts.insert(i, start)
            ends.insert(i, end)
            return
        new_start = starts[i] if starts[i] < start else start
        new_end = ends[j - 1] if ends[j - 1] > end else end
        starts[i:j] = (new_start,)
        ends[i:j] = (new_end,)

    def subtract(self, start: int, end: int) -> None:
        """Remove ``[start, end)``, splitting a range that spans it."""
        _check(start, end)
        if start == end:
            return
        starts, ends = self._starts, self._ends
        # Ranges i..j-1 share at least one integer with [start, end).
        i = bisect_right(ends, start)
        j = bisect_left(starts, end, i)
        if i >= j:
            return
        new_starts: list[int] = []
        new_ends: list[int] = []
        if starts[i] < start:
            new_starts.append(starts[i])
            new_ends.append(start)
        if ends[j - 1] > end:
            new_starts.append(end)
            new_ends.append(ends[j - 1])
        starts[i:j] = new_starts
        ends[i:j] = new_ends

    def discard_below(self, point: int) -> None:
        """Drop every integer below ``point`` (e.g. once the cumulative ACK passes it)."""
        starts, ends = self._starts, self._ends
        i = bisect_right(ends, point)
        if i:
            del starts[:i]
            del ends[:i]
        if starts and starts[0] < point:
            starts[0] = point

    # --- queries ------------------------------------------------------------------------

    def __contains__(self, x: object) -> bool:
        if not isinstance(x, int):
            return False
        i = bisect_right(self._starts, x) - 1
        return i >= 0 and x < self._ends[i]

    def range_containing(self, x: int) -> tuple[int, int] | None:
        """Return the stored range holding ``x``, or None."""
        i = bisect_right(self._starts, x) - 1
        if i >= 0 and x < self._ends[i]:
            return (self._starts[i], self._ends[i])
        return None

    def covers(self, start: int, end: int) -> bool:
        """True if all of ``[start, end)`` lies inside one stored range (an empty span: True)."""
        _check(start, end)
        if start == end:
            return True
        i = bisect_right(self._starts, start) - 1
        return i >= 0 and end <= self._ends[i]

    def holes(self, start: int, end: int) -> list[tuple[int, int]]:
        """Return the sub-ranges of ``[start, end)`` not in the set, ascending."""
        _check(start, end)
        starts, ends = self._starts, self._ends
        out: list[tuple[int, int]] = []
        cursor = start
        k = bisect_right(ends, start)
        n = len(starts)
        while k < n and starts[k] < end:
            if starts[k] > cursor:
                out.append((cursor, starts[k]))
            cursor = ends[k]
            k += 1
        if cursor < end:
            out.append((cursor, end))
        return out

    def overlap(self, start: int, end: int) -> int:
        """Return how many integers of ``[start, end)`` are in the set."""
        _check(start, end)
        starts, ends = self._starts, self._ends
        count = 0
        k = bisect_right(ends, start)
        n = len(starts)
        while k < n and starts[k] < end:
            lo = starts[k] if starts[k] > start else start
            hi = ends[k] if ends[k] < end else end
            count += hi - lo
            k += 1
        return count

    def bounds(self) -> tuple[int, int]:
        """Return ``(lowest member, highest member + 1)``; ValueError if empty."""
        if not self._starts:
            raise ValueError("bounds() of an empty RangeSet")
        return (self._starts[0], self._ends[-1])

    def total(self) -> int:
        """Return the number of integers in the set."""
        return sum(self._ends) - sum(self._starts)

    # --- container protocol -------------------------------------------------------------

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return zip(self._starts, self._ends, strict=True)

    def __len__(self) -> int:
        return len(self._starts)

    def __bool__(self) -> bool:
        return bool(self._starts)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RangeSet):
            return NotImplemented
        return self._starts == other._starts and self._ends == other._ends

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"RangeSet({list(self)!r})"
