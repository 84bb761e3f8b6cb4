from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from .helpers import Receiver


@pytest.fixture
async def receiver(tmp_path: Path) -> AsyncIterator[Receiver]:
    """A ``rudp recv`` on a free loopback port, writing to ``tmp_path/out``; stopped with
    Ctrl-C at the end (its exit code is then 130)."""
    out = tmp_path / "out"
    running = await Receiver.start(out, "--idle-timeout", "2")
    yield running
    result = await running.stop()
    assert result.code in (0, 130), result.stderr
    assert "Traceback" not in result.stderr
