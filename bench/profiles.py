"""Print the top functions of the cProfile dumps a ``--profile DIR`` run left."""

from __future__ import annotations

import sys
from pathlib import Path

from bench.loopback import profile_rows

__all__ = ["print_profiles"]


def print_profiles(directory: str, top: int = 15) -> None:
    for path in sorted(Path(directory).glob("*.prof")):
        total, rows = profile_rows(str(path), top)
        print(f"\n== {path.name}: top {top} by tottime of {total:.3f} s profiled")
        print(f"  {'ncalls':>10} {'tottime':>8} {'%':>5} {'cumtime':>8}  function")
        for row in rows:
            share = 100 * row.tottime / total if total else 0.0
            print(
                f"  {row.ncalls:>10} {row.tottime:8.3f} {share:5.1f} {row.cumtime:8.3f}  "
                f"{row.function}"
            )


if __name__ == "__main__":
    print_profiles(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 15)
