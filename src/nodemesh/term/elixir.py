"""Elixir's names for modules: ``MyApp.Worker`` is the atom ``'Elixir.MyApp.Worker'``.

Elixir writes a module as an alias; the compiler turns ``MyApp.Worker`` into the atom
``:"Elixir.MyApp.Worker"``, which is what crosses the wire (in ``rpc`` calls, in the
``__struct__`` key of a struct, in ``{Module, Function, Args}`` tuples). Erlang modules
(``:lists``, ``:erlang``) are plain atoms with no prefix.
"""

from __future__ import annotations

import re

from nodemesh.errors import ConfigError
from nodemesh.term.types import Atom

__all__ = ["elixir_module", "elixir_module_name"]

PREFIX = "Elixir."
# Elixir's alias syntax: segments of an ASCII capital, then letters, digits, underscores.
_ALIAS = re.compile(r"[A-Z][A-Za-z0-9_]*(?:\.[A-Z][A-Za-z0-9_]*)*")


def elixir_module(name: str) -> Atom:
    """The atom of the Elixir module ``name``: ``"MyApp.Worker"`` gives
    ``Atom("Elixir.MyApp.Worker")``. A name that already has the prefix is returned as an
    Atom unchanged, as Elixir's ``Module.concat/1`` does.

    Raises :class:`~nodemesh.errors.ConfigError` if ``name`` is not an Elixir alias
    (``"my_app.worker"``, ``":lists"``, ``""``) or the atom would exceed 255 characters.
    """
    if not isinstance(name, str):
        raise ConfigError(f"an Elixir module name is a str, not {type(name).__name__}")
    alias = name[len(PREFIX) :] if name.startswith(PREFIX) else name
    if not _ALIAS.fullmatch(alias):
        raise ConfigError(
            f"{name!r} is not an Elixir module name such as 'MyApp.Worker' (segments start "
            "with a capital letter); Erlang modules such as 'lists' are plain Atoms"
        )
    if len(PREFIX) + len(alias) > 255:
        raise ConfigError(f"the module atom for {name[:40]!r}... exceeds 255 characters")
    return Atom(PREFIX + alias)


def elixir_module_name(module: str) -> str | None:
    """The Elixir alias of a module atom (``'Elixir.MyApp.Worker'`` gives
    ``"MyApp.Worker"``), or None for an Erlang module such as ``lists``."""
    if module.startswith(PREFIX) and _ALIAS.fullmatch(module[len(PREFIX) :]):
        return module[len(PREFIX) :]
    return None
