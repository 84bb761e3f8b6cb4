"""docs/protocol.md stays in step with the code: the generated state machine blocks match
``rudp.core.state``, and every state, trigger and ``Config`` field is documented."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from rudp.config import Config
from rudp.core.state import TRANSITIONS, ConnState, Trigger

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "protocol.md"
GENERATOR = ROOT / "tools" / "gen_state_diagram.py"


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_state_diagram", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = _load_generator()


@pytest.fixture(scope="module")
def doc_text() -> str:
    return DOC.read_text(encoding="utf-8")


def test_state_blocks_are_up_to_date() -> None:
    assert gen.is_up_to_date(DOC), (
        "docs/protocol.md is out of date with rudp.core.state: "
        "run .venv/bin/python tools/gen_state_diagram.py"
    )


def test_check_mode_passes_on_the_doc(capsys: pytest.CaptureFixture[str]) -> None:
    assert gen.main(["--check", "--doc", str(DOC)]) == 0
    capsys.readouterr()


def test_check_mode_fails_on_a_stale_doc_and_rewrite_fixes_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = tmp_path / "protocol.md"
    begin, end = gen.TABLE_MARKERS
    stale.write_text(
        f"# doc\n\n{gen.DIAGRAM_MARKERS[0]}\nold\n{gen.DIAGRAM_MARKERS[1]}\n\n{begin}\n{end}\n",
        encoding="utf-8",
    )
    assert gen.main(["--check", "--doc", str(stale)]) == 1
    assert gen.main(["--doc", str(stale)]) == 0
    assert gen.main(["--check", "--doc", str(stale)]) == 0
    text = stale.read_text(encoding="utf-8")
    assert text.startswith("# doc\n")
    assert "old" not in text
    capsys.readouterr()


def test_missing_marker_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "protocol.md"
    broken.write_text(f"{gen.DIAGRAM_MARKERS[0]}\n{gen.DIAGRAM_MARKERS[1]}\n", encoding="utf-8")
    assert gen.main(["--check", "--doc", str(broken)]) == 2
    capsys.readouterr()


def test_generated_table_has_every_transition(doc_text: str) -> None:
    for (state, trigger), new_state in TRANSITIONS.items():
        row = f"| `{state.value}` | `{trigger.value}` | `{new_state.value}` |"
        assert row in doc_text, f"transition row missing: {row}"


@pytest.mark.parametrize("state", list(ConnState), ids=lambda s: s.value)
def test_every_state_is_documented(doc_text: str, state: ConnState) -> None:
    # Its one-line explanation in the "States" list, beyond the generated blocks.
    assert f"- `{state.value}`:" in doc_text


@pytest.mark.parametrize("trigger", list(Trigger), ids=lambda t: t.value)
def test_every_trigger_is_documented(doc_text: str, trigger: Trigger) -> None:
    assert f"- `{trigger.value}`:" in doc_text


@pytest.mark.parametrize("name", [f.name for f in dataclasses.fields(Config)])
def test_every_config_field_is_documented(doc_text: str, name: str) -> None:
    assert f"`{name}`" in doc_text, f"Config.{name} is not described in docs/protocol.md"
