"""Which build of the message path is in use: compiled (Cython) or pure Python.

A wheel built from source where a C compiler exists carries, beside every module listed
in :data:`COMPILED_MODULES`, that module compiled by Cython (see ``hatch_build.py``); the
import system prefers an extension module to a ``.py`` file of the same name, so the
compiled one is used. ``NODEMESH_PURE_PYTHON=1`` in the environment when ``nodemesh`` is
first imported makes those modules load from their ``.py`` files instead (a finder placed
before the standard one), so one install can run either way, as the test script does.
The ``.py`` files are the source of truth: the compiled modules are the same code.
"""

from __future__ import annotations

import importlib.machinery
import os
import sys
from collections.abc import Sequence
from types import ModuleType

__all__ = ["COMPILED_MODULES", "implementation", "use_pure_python_if_asked"]

#: The modules a wheel built with a compiler carries compiled: the term decoder and
#: encoder, frame splitting and control messages (what every message goes through); a
#: ``.pxd`` beside a module's ``.py`` gives Cython C types for it (``term/_scan.pxd``).
#: The encoder bounds nesting by a depth of its own (MAX_DEPTH), not by Python's
#: recursion limit, which calls between compiled functions do not count.
COMPILED_MODULES = (
    "nodemesh.term._atoms",
    "nodemesh.term._containers",
    "nodemesh.term._leaves",
    "nodemesh.term._reading",
    "nodemesh.term._scan",
    "nodemesh.term.decode",
    "nodemesh.term._leaf_writers",
    "nodemesh.term.encode",
    "nodemesh.dist.control",
    "nodemesh.dist.framing",
)

_PURE = frozenset(COMPILED_MODULES)
_SOURCE = (importlib.machinery.SourceFileLoader, importlib.machinery.SOURCE_SUFFIXES)


class _SourceOnlyFinder:
    """Finds the modules of :data:`COMPILED_MODULES` as ``.py`` files only."""

    @staticmethod
    def find_spec(
        name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if name not in _PURE or not path:
            return None
        for folder in path:
            spec = importlib.machinery.FileFinder(folder, _SOURCE).find_spec(name, target)
            if spec is not None:
                return spec
        return None


def use_pure_python_if_asked() -> None:
    """Place the source-only finder first when ``NODEMESH_PURE_PYTHON=1``."""
    if os.environ.get("NODEMESH_PURE_PYTHON") == "1" and not any(
        isinstance(finder, _SourceOnlyFinder) for finder in sys.meta_path
    ):
        sys.meta_path.insert(0, _SourceOnlyFinder())


def implementation() -> str:
    """``"compiled (Cython)"`` if the message path runs compiled, else ``"pure Python"``."""
    module = sys.modules.get("nodemesh.term.decode")
    origin = getattr(module, "__file__", None) or ""
    if origin.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)):
        return "compiled (Cython)"
    return "pure Python"


use_pure_python_if_asked()
