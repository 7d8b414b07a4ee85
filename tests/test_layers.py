"""The layers in docs/architecture.md hold: pure layers do no I/O, lower never import upper."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).parent.parent / "src" / "nodemesh"

#: Standard-library modules that mean sockets, clocks, threads or processes.
IO_MODULES = {"asyncio", "socket", "selectors", "ssl", "time", "threading", "subprocess"}

#: package -> the nodemesh packages it may import (besides itself).
ALLOWED = {
    "term": {"errors"},
    "dist": {"errors", "term", "cookie"},
    "epmd": {"errors"},
    "runtime": {"errors", "term", "dist", "epmd", "cookie", "_build"},  # _build: statistics()
    "cluster": {"errors", "term", "dist", "epmd", "cookie", "runtime"},
    "health": {"errors", "term", "dist", "epmd", "cookie", "runtime", "cluster"},
    "doctor": {"errors", "term", "dist", "epmd", "cookie", "runtime", "cluster"},
    "services": {"errors", "term", "dist", "epmd", "cookie", "runtime", "cluster"},
    "demo": {"errors", "term", "dist", "epmd", "cookie", "runtime", "cluster", "services"},
}
PURE = {"term", "dist", "epmd/protocol.py"}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def modules(package: str) -> list[Path]:
    target = SRC / package
    return [target] if target.is_file() else sorted(target.rglob("*.py"))


@pytest.mark.parametrize("package", sorted(PURE))
def test_pure_layers_do_no_io(package: str) -> None:
    """The term codec, distribution protocol and EPMD wire format import no I/O modules."""
    for path in modules(package):
        used = {name.split(".")[0] for name in imports_of(path)} & IO_MODULES
        assert not used, f"{path.relative_to(SRC)} imports {sorted(used)}"


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_lower_layers_do_not_import_upper_ones(package: str) -> None:
    """Each package imports only the nodemesh packages below it."""
    allowed = ALLOWED[package] | {package.removesuffix(".py")}
    for path in modules(package):
        for name in imports_of(path):
            parts = name.split(".")
            if parts[0] == "nodemesh" and len(parts) > 1:
                assert parts[1] in allowed, f"{path.relative_to(SRC)} imports {name}"


#: Runtime parts the node is built from; each must work without a Node. ``ratelimit.py``
#: is public (services use it) but a part all the same.
COLLABORATORS = sorted([*(SRC / "runtime").glob("_*.py"), SRC / "runtime" / "ratelimit.py"])


@pytest.mark.parametrize("path", COLLABORATORS, ids=lambda p: p.name)
def test_runtime_parts_do_not_know_the_node(path: Path) -> None:
    """Private runtime modules (connection, tables, dispatch...) never import Node."""
    assert "nodemesh.runtime.node" not in imports_of(path)
