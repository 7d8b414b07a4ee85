"""What users import: the names the README and docs use exist at the top level."""

from __future__ import annotations

import nodemesh
import nodemesh.cluster


def test_top_level_exports_resolve() -> None:
    """Every name in nodemesh.__all__ and nodemesh.cluster.__all__ is importable."""
    for module in (nodemesh, nodemesh.cluster):
        missing = [name for name in module.__all__ if not hasattr(module, name)]
        assert missing == []


def test_readme_names() -> None:
    """The README's example imports Node and Atom from nodemesh."""
    from nodemesh import Atom, Node, NodeConfig, NodeDown, NodeUp

    assert Node.__module__ == "nodemesh.runtime.node"
    assert Atom("x") == "x"
    assert NodeConfig().hidden
    assert NodeUp("a@b") != NodeDown("a@b", "x")


def test_errors_users_meet_are_exported() -> None:
    """RpcError (raised by handlers) and NameTakenError are top-level NodemeshErrors."""
    from nodemesh import NameTakenError, NodemeshError, RpcError

    assert issubclass(RpcError, NodemeshError)
    assert issubclass(NameTakenError, NodemeshError) and issubclass(NameTakenError, ValueError)
    assert RpcError("oops").reason == "oops"
