"""Layering rules 1-2 of STYLE.md (b): wire/ and core/ stay free of I/O, clocks and entropy.

Every ``.py`` file under ``rudp/wire`` and ``rudp/core`` is parsed with ``ast``; every import
(top level or nested in a function, ``if`` or ``try`` block, relative ones resolved to absolute
names, plus ``__import__("x")`` / ``importlib.import_module("x")`` with a literal name) is
checked, and the check follows imports of other ``rudp`` modules transitively (core imports
``rudp.errors`` and ``rudp.config``, so those must be clean too). The façade
``rudp/__init__.py`` is not followed: it may import anything, by design.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import rudp

PROJECT_ROOT = Path(rudp.__file__).resolve().parent.parent
PURE_PACKAGES = ("rudp.wire", "rudp.core")

FORBIDDEN = (
    "asyncio",
    "socket",
    "selectors",
    "time",
    "random",
    "os",
    "secrets",
    "threading",
    "uuid",
    "rudp.aio",
    "rudp.streams",
    "rudp.messages",
)
CRYPTOGRAPHY = "cryptography"
CRYPTOGRAPHY_ALLOWED_IN = frozenset({"rudp.core.cookie"})
FACADE = "rudp"


# --- the checker ------------------------------------------------------------------------------


def _within(name: str, package: str) -> bool:
    """``name`` is ``package`` or one of its submodules."""
    return name == package or name.startswith(package + ".")


def _resolve_base(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    parts = module.split(".") if is_package else module.split(".")[:-1]
    up = node.level - 1
    if up >= len(parts):
        raise ValueError(f"relative import beyond the top-level package in {module}")
    base = parts[: len(parts) - up]
    if node.module:
        base.append(node.module)
    return ".".join(base)


def _dynamic_import_name(node: ast.Call) -> str | None:
    func = node.func
    name = (
        func.id
        if isinstance(func, ast.Name)
        else func.attr
        if isinstance(func, ast.Attribute)
        else None
    )
    if name not in ("__import__", "import_module") or not node.args:
        return None
    arg = node.args[0]
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value
    return None


def imported_modules(source: str, module: str, *, is_package: bool = False) -> set[str]:
    """Every absolute module name ``source`` (the text of ``module``) may import.

    ``from a import b`` yields both ``a`` and ``a.b`` (``b`` may be a submodule)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve_base(node, module, is_package)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
        elif isinstance(node, ast.Call):
            dynamic = _dynamic_import_name(node)
            if dynamic is not None:
                names.add(dynamic)
    return names


def direct_violations(source: str, module: str, *, is_package: bool = False) -> list[str]:
    """The imports of ``module`` that break the rules, sorted."""
    bad: set[str] = set()
    for name in imported_modules(source, module, is_package=is_package):
        if any(_within(name, forbidden) for forbidden in FORBIDDEN):
            bad.add(name)
        elif _within(name, CRYPTOGRAPHY) and module not in CRYPTOGRAPHY_ALLOWED_IN:
            bad.add(name)
    return sorted(bad)


def module_file(root: Path, name: str) -> tuple[Path, bool] | None:
    """The file of module ``name`` under ``root`` and whether it is a package, or None."""
    path = root.joinpath(*name.split("."))
    if (path / "__init__.py").is_file():
        return path / "__init__.py", True
    if path.with_suffix(".py").is_file():
        return path.with_suffix(".py"), False
    return None


def module_name(root: Path, path: Path) -> tuple[str, bool]:
    rel = path.relative_to(root).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def check_tree(root: Path, packages: tuple[str, ...] = PURE_PACKAGES) -> tuple[list[str], set[str]]:
    """Check every module of ``packages`` under ``root`` and, transitively, every ``rudp``
    module they import (with its parent packages, except the façade). Returns the violations
    as readable lines and the set of modules checked."""
    queue: list[tuple[str, Path, bool, tuple[str, ...]]] = []
    for package in packages:
        for path in sorted(root.joinpath(*package.split(".")).rglob("*.py")):
            name, is_package = module_name(root, path)
            queue.append((name, path, is_package, (name,)))
    seen: set[str] = set()
    problems: list[str] = []
    while queue:
        name, path, is_package, chain = queue.pop(0)
        if name in seen:
            continue
        seen.add(name)
        source = path.read_text(encoding="utf-8")
        for bad in direct_violations(source, name, is_package=is_package):
            problems.append(f"{name} imports {bad} (via {' -> '.join(chain)})")
        for imported in sorted(imported_modules(source, name, is_package=is_package)):
            if not _within(imported, FACADE):
                continue
            parts = imported.split(".")
            # Importing a.b.c runs a.b's __init__ too; the façade itself is exempt.
            for depth in range(2, len(parts) + 1):
                target = ".".join(parts[:depth])
                found = module_file(root, target)
                if found is not None and target not in seen:
                    queue.append((target, found[0], found[1], (*chain, target)))
    return problems, seen


# --- the real tree ------------------------------------------------------------------------------


def test_wire_and_core_import_nothing_forbidden() -> None:
    problems, _ = check_tree(PROJECT_ROOT)
    assert problems == []


def test_walk_covers_every_pure_module_and_their_rudp_dependencies() -> None:
    _, seen = check_tree(PROJECT_ROOT)
    expected = set()
    for package in PURE_PACKAGES:
        for path in PROJECT_ROOT.joinpath(*package.split(".")).rglob("*.py"):
            expected.add(module_name(PROJECT_ROOT, path)[0])
    assert "rudp.core.connection" in expected
    assert "rudp.wire.packet" in expected
    assert expected <= seen
    # Followed transitively: the core depends on these two.
    assert {"rudp.errors", "rudp.config"} <= seen
    assert FACADE not in seen


# --- self-tests of the checker ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import time", ["time"]),
        ("from os import path", ["os", "os.path"]),
        ("import os.path", ["os.path"]),
        ("import asyncio.events as ev", ["asyncio.events"]),
        ("from .. import aio", ["rudp.aio"]),
        (
            "from ..aio.protocol import EndpointProtocol",
            ["rudp.aio.protocol", "rudp.aio.protocol.EndpointProtocol"],
        ),
        ("import rudp.streams", ["rudp.streams"]),
        ("from rudp import messages", ["rudp.messages"]),
        ("def f():\n    import socket\n", ["socket"]),
        (
            "if True:\n    from selectors import DefaultSelector\n",
            ["selectors", "selectors.DefaultSelector"],
        ),
        ("try:\n    import uuid\nexcept ImportError:\n    pass\n", ["uuid"]),
        (
            "class C:\n    def m(self):\n        from random import Random\n",
            ["random", "random.Random"],
        ),
        ("import secrets, threading", ["secrets", "threading"]),
        ("__import__('random')", ["random"]),
        ("import importlib\nimportlib.import_module('socket')", ["socket"]),
        (
            "from cryptography.hazmat.primitives import hmac",
            [
                "cryptography.hazmat.primitives",
                "cryptography.hazmat.primitives.hmac",
            ],
        ),
    ],
)
def test_checker_catches_forbidden_imports(source: str, expected: list[str]) -> None:
    assert direct_violations(source, "rudp.core.connection") == expected


@pytest.mark.parametrize(
    "source",
    [
        "import timeit",
        "import randomness_free_helper",
        "from ossaudiodev import x",
        "import struct, heapq, math",
        "from typing import Any",
        "from ..errors import RudpError",
        "from . import recvbuf as rx",
        "from ..wire.ranges import RangeSet",
        "import rudp.errors",
        "from rudp.timeouts import x",
    ],
)
def test_checker_allows_clean_imports(source: str) -> None:
    assert direct_violations(source, "rudp.core.connection") == []


def test_relative_import_beyond_top_level_is_an_error() -> None:
    with pytest.raises(ValueError, match="beyond the top-level package in rudp.core.connection"):
        imported_modules("from ...rudp import x", "rudp.core.connection")


def test_relative_imports_resolve_against_packages_and_modules() -> None:
    assert imported_modules("from . import packet", "rudp.wire", is_package=True) == {
        "rudp.wire",
        "rudp.wire.packet",
    }
    assert imported_modules("from . import packet", "rudp.wire.ranges") == {
        "rudp.wire",
        "rudp.wire.packet",
    }
    assert imported_modules("from .. import aio", "rudp.core", is_package=True) == {
        "rudp",
        "rudp.aio",
    }
    assert direct_violations("from .. import streams", "rudp.wire", is_package=True) == [
        "rudp.streams"
    ]


def test_cryptography_allowed_only_in_cookie() -> None:
    source = "from cryptography.hazmat.primitives import hmac"
    assert direct_violations(source, "rudp.core.cookie") == []
    assert direct_violations(source, "rudp.core.endpoint") == [
        "cryptography.hazmat.primitives",
        "cryptography.hazmat.primitives.hmac",
    ]
    assert direct_violations("import cryptography", "rudp.wire.packet") == ["cryptography"]


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_tree_check_follows_rudp_imports_transitively(tmp_path: Path) -> None:
    _write(tmp_path, "rudp/__init__.py", "import asyncio\nfrom . import streams\n")  # façade
    _write(tmp_path, "rudp/streams.py", "import socket\n")
    _write(tmp_path, "rudp/helper.py", "from . import deeper\n")
    _write(tmp_path, "rudp/deeper.py", "def f():\n    import time\n")
    _write(tmp_path, "rudp/wire/__init__.py", "")
    _write(tmp_path, "rudp/wire/codec.py", "import struct\n")
    _write(tmp_path, "rudp/core/__init__.py", "")
    _write(tmp_path, "rudp/core/engine.py", "from ..helper import thing\n")
    _write(tmp_path, "rudp/core/cookie.py", "from cryptography import x\n")
    problems, seen = check_tree(tmp_path)
    assert problems == [
        "rudp.deeper imports time (via rudp.core.engine -> rudp.helper -> rudp.deeper)",
    ]
    assert seen == {
        "rudp.wire",
        "rudp.wire.codec",
        "rudp.core",
        "rudp.core.engine",
        "rudp.core.cookie",
        "rudp.helper",
        "rudp.deeper",
    }


def test_tree_check_runs_parent_package_init(tmp_path: Path) -> None:
    _write(tmp_path, "rudp/__init__.py", "")
    _write(tmp_path, "rudp/core/__init__.py", "")
    _write(tmp_path, "rudp/core/engine.py", "from ..util.sub import x\n")
    _write(tmp_path, "rudp/util/__init__.py", "import threading\n")
    _write(tmp_path, "rudp/util/sub.py", "")
    problems, _ = check_tree(tmp_path, ("rudp.core",))
    assert problems == [
        "rudp.util imports threading (via rudp.core.engine -> rudp.util)",
    ]
