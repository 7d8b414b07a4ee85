"""Python value types for Erlang terms that have no natural Python equivalent.

The full mapping (see ``docs/terms.md``):

======================  ==========================================================
Erlang                  Python
======================  ==========================================================
atom ``true``/``false`` ``True`` / ``False``
``undefined``           ``None`` (``nil`` instead for :class:`~nodemesh.term.TermCodec`
                        with ``none_atom="nil"``, the Elixir convention)
other atoms             :class:`Atom` (a ``str`` subclass)
integer, float          ``int`` (any size), ``float``
binary                  ``bytes`` (``str`` encodes as a UTF-8 binary, the Elixir
                        string convention; decoding never yields ``str``)
bitstring               :class:`BitBinary`
list                    ``list`` (a string such as ``"abc"`` is a list of ints)
improper list           :class:`ImproperList`
tuple                   ``tuple``
map                     ``dict`` (unhashable keys become :class:`FrozenList` /
                        :class:`FrozenMap`)
pid, reference, port    :class:`Pid`, :class:`Reference`, :class:`Port`
``fun M:F/A``           :class:`ExportFun`
closures                :class:`OpaqueFun` (carried as their encoded bytes)
======================  ==========================================================

These are immutable value types: equal when their fields are equal, hashable, and usable
as dictionary keys, as their Erlang counterparts are.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Atom",
    "BitBinary",
    "ExportFun",
    "FrozenList",
    "FrozenMap",
    "ImproperList",
    "OpaqueFun",
    "Pid",
    "Port",
    "Reference",
    "Term",
]

#: Any value the codec can encode or produce. Kept as ``Any`` on purpose: terms are
#: arbitrarily nested and a precise recursive alias buys little for users.
Term = Any


class Atom(str):
    """An Erlang atom. A ``str`` subclass, so ``Atom("ok") == "ok"`` is true.

    Atoms are never interned in a global table: decoding untrusted input cannot
    grow memory beyond the input itself.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Atom({str.__repr__(self)})"


@dataclass(frozen=True, slots=True)
class Pid:
    """A process identifier: ``<node.id.serial>`` plus the node's creation."""

    node: Atom
    id: int
    serial: int
    creation: int

    def __str__(self) -> str:
        return f"<{self.node}.{self.id}.{self.serial}>"


@dataclass(frozen=True, slots=True)
class Reference:
    """A reference (``make_ref()``, monitor refs, aliases); ``ids`` are 32-bit words."""

    node: Atom
    creation: int
    ids: tuple[int, ...]

    def __str__(self) -> str:
        return "#Ref<" + ".".join([str(self.node), *map(str, reversed(self.ids))]) + ">"


@dataclass(frozen=True, slots=True)
class Port:
    """A port identifier."""

    node: Atom
    id: int
    creation: int


@dataclass(frozen=True, slots=True)
class BitBinary:
    """A bitstring whose last byte holds only ``bits`` significant bits (1..8)."""

    data: bytes
    bits: int


@dataclass(frozen=True, slots=True)
class ImproperList:
    """A list whose tail is not ``[]``: ``[1, 2 | tail]`` is ``ImproperList([1, 2], tail)``.

    ``elements`` is stored as a tuple so the value stays hashable.
    """

    elements: tuple[Any, ...]
    tail: Any

    def __init__(self, elements: Any, tail: Any) -> None:
        object.__setattr__(self, "elements", tuple(elements))
        object.__setattr__(self, "tail", tail)


@dataclass(frozen=True, slots=True)
class ExportFun:
    """An external fun, ``fun Module:Function/Arity``."""

    module: Atom
    function: Atom
    arity: int


@dataclass(frozen=True, slots=True)
class OpaqueFun:
    """A closure (NEW_FUN_EXT). Python cannot run it; it is carried as its encoded bytes
    (tag included) and re-encoded unchanged, so it can be passed back to Erlang."""

    raw: bytes


class FrozenList(tuple[Any, ...]):
    """An Erlang list used as a map key (Python lists are not hashable).

    Encodes as a list, not a tuple.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"FrozenList({list(self)!r})"


class FrozenMap(Mapping[Any, Any]):
    """An Erlang map used as a map key (Python dicts are not hashable)."""

    __slots__ = ("_hash", "_items")

    def __init__(self, items: Mapping[Any, Any]) -> None:
        self._items = dict(items)
        self._hash: int | None = None

    def __getitem__(self, key: Any) -> Any:
        return self._items[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(frozenset(self._items.items()))
        return self._hash

    def __repr__(self) -> str:
        return f"FrozenMap({self._items!r})"
