"""The ``rudp`` command line: ``send``/``recv`` for files, ``perf`` for goodput and RTT, and
``demo``.

Everything here is an application of the public API (``rudp.messages`` for files, the
streams API for ``perf``); nothing in the library depends on it.
"""

from __future__ import annotations

__all__: list[str] = []
