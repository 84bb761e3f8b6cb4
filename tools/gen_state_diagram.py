"""Regenerate the state machine parts of ``docs/protocol.md`` from ``rudp.core.state``.

Two blocks of the document are generated, each between a pair of HTML comment markers:

* ``<!-- state-diagram:begin -->`` ... ``<!-- state-diagram:end -->``: the Mermaid diagram that
  ``rudp.core.state.mermaid_diagram()`` draws, in a fenced ``mermaid`` block;
* ``<!-- state-table:begin -->`` ... ``<!-- state-table:end -->``: a Markdown table with one row
  per entry of ``rudp.core.state.TRANSITIONS`` (state, trigger, next state), in table order.

Everything outside the markers is left as it is. Run from the repository root::

    .venv/bin/python tools/gen_state_diagram.py           # rewrite docs/protocol.md
    .venv/bin/python tools/gen_state_diagram.py --check   # exit 1 if it is out of date
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # let the script run without an installed rudp
    sys.path.insert(0, str(ROOT))

from rudp.core.state import TRANSITIONS, mermaid_diagram  # noqa: E402

__all__ = [
    "DEFAULT_DOC",
    "DIAGRAM_MARKERS",
    "TABLE_MARKERS",
    "is_up_to_date",
    "main",
    "render_diagram",
    "render_table",
    "replace_block",
    "update_text",
]

DEFAULT_DOC = ROOT / "docs" / "protocol.md"
DIAGRAM_MARKERS = ("<!-- state-diagram:begin -->", "<!-- state-diagram:end -->")
TABLE_MARKERS = ("<!-- state-table:begin -->", "<!-- state-table:end -->")


def render_diagram() -> str:
    """The Mermaid diagram of the transition table, as a fenced code block."""
    return f"```mermaid\n{mermaid_diagram()}\n```"


def render_table() -> str:
    """Every transition of the table as a Markdown table, in the table's own order."""
    rows = ["| State | Trigger | Next state |", "|---|---|---|"]
    for (state, trigger), new_state in TRANSITIONS.items():
        rows.append(f"| `{state.value}` | `{trigger.value}` | `{new_state.value}` |")
    return "\n".join(rows)


def replace_block(text: str, markers: tuple[str, str], body: str) -> str:
    """Return ``text`` with whatever lies between the two ``markers`` replaced by ``body``.

    Raises ``ValueError`` unless each marker occurs exactly once, the begin marker first.
    """
    begin, end = markers
    for marker in markers:
        count = text.count(marker)
        if count != 1:
            raise ValueError(f"expected the marker {marker!r} once, found it {count} times")
    start = text.index(begin) + len(begin)
    stop = text.index(end)
    if stop < start:
        raise ValueError(f"{end!r} comes before {begin!r}")
    return f"{text[:start]}\n{body}\n{text[stop:]}"


def update_text(text: str) -> str:
    """The document ``text`` with both generated blocks brought up to date."""
    text = replace_block(text, DIAGRAM_MARKERS, render_diagram())
    return replace_block(text, TABLE_MARKERS, render_table())


def is_up_to_date(doc: Path = DEFAULT_DOC) -> bool:
    """True when ``doc`` already holds what ``update_text`` would write."""
    text = doc.read_text(encoding="utf-8")
    return update_text(text) == text


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--check",
        action="store_true",
        help="do not write; exit 1 if the document is out of date",
    )
    parser.add_argument(
        "--doc",
        type=Path,
        default=DEFAULT_DOC,
        help="the document to update (default: docs/protocol.md)",
    )
    args = parser.parse_args(argv)
    doc: Path = args.doc
    try:
        text = doc.read_text(encoding="utf-8")
        new_text = update_text(text)
    except (OSError, ValueError) as exc:
        print(f"{doc}: {exc}", file=sys.stderr)
        return 2
    if new_text == text:
        print(f"{doc}: up to date")
        return 0
    if args.check:
        print(
            f"{doc}: out of date with rudp.core.state; run tools/gen_state_diagram.py",
            file=sys.stderr,
        )
        return 1
    doc.write_text(new_text, encoding="utf-8")
    print(f"{doc}: rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
