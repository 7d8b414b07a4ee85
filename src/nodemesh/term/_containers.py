"""Readers of the terms that hold other terms: tuples, lists, maps and closures
(erts User's Guide, ``erl_ext_dist`` 12.13-12.18, 12.25, 12.26).

Theory of operation
-------------------
:func:`make_readers` builds the whole table of readers, indexed by tag byte, for one
choice of the atom that decodes as None (see ``_atoms``). As in the standard library's
``json.scanner.py_make_scanner``, the container readers are closures over that one table
and that one atom cache: a nested term is read with the outer term's choice, and no
option travels down the recursion. Each element costs what it did with a single table.

Containers call their elements' readers with one less unit of nesting ``budget``; every
count is checked against the bytes left before anything is allocated (each element
takes at least one byte, so a count can never exceed what remains).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nodemesh.errors import DecodeError
from nodemesh.term._atoms import AtomReaders, atom_at, atom_readers
from nodemesh.term._leaves import LEAVES, int_at
from nodemesh.term._reading import Buffer, Reader, check_end, u32
from nodemesh.term.types import FrozenList, FrozenMap, ImproperList, OpaqueFun, Term

Elements = Callable[[Buffer, int, int, int, int], tuple[list[Any], int]]
#: An atom cache's lookup (None: a miss, or the none_atom) and membership test.
Probes = tuple[Callable[[Any], Any], Callable[[Any], bool]]

_PID_TAGS = frozenset((88, 103))  # NEW_PID_EXT, PID_EXT


def make_readers(none: str | None) -> tuple[tuple[Reader, ...], dict[bytes, Any]]:
    """Readers for every tag, where the atom ``none`` decodes as None (no atom if None),
    and the cache of SMALL_ATOM_UTF8 atoms they fill (``_scan`` reads it too); tags
    that are not terms get a reader that raises DecodeError."""
    table: list[Reader] = []  # filled below; the closures index it
    atoms = atom_readers(none)
    elements = _elements_reader(table, atoms)
    containers: dict[int, Reader] = {
        104: _tuple_reader(elements, small=True),
        105: _tuple_reader(elements, small=False),
        108: _list_reader(elements, table),
        112: _new_fun_reader(elements, table),
        116: _map_reader(table),
        117: _old_fun_reader(elements, table),
    }
    for tag in range(256):
        table.append(
            containers.get(tag) or atoms.by_tag.get(tag) or LEAVES.get(tag) or _refuse(tag)
        )
    return tuple(table), atoms.cache


def overcount(data: Buffer, pos: int, count: int, tagpos: int) -> DecodeError:
    """Every element takes at least one byte: a count the input cannot hold is refused."""
    return DecodeError(
        f"tag {data[tagpos]} at offset {tagpos} declares {count} elements, "
        f"only {len(data) - pos} bytes remain"
    )


def too_deep(tagpos: int) -> DecodeError:
    return DecodeError(f"the term at offset {tagpos} nests deeper than max_depth")


def _elements_reader(readers: list[Reader], atoms: AtomReaders) -> Elements:
    cache, read_atom = atoms.cache, atoms.read

    def from_view(key: Buffer) -> Any:
        return cache.get(bytes(key))  # a memoryview slice is not hashable

    def view_known(key: Buffer) -> bool:
        return bytes(key) in cache

    # Bound once: the cache is cleared in place, never replaced.
    on_bytes: Probes = (cache.get, cache.__contains__)
    on_views: Probes = (from_view, view_known)

    def elements(
        data: Buffer, pos: int, count: int, budget: int, tagpos: int
    ) -> tuple[list[Any], int]:
        """``count`` terms from ``pos``. Small atoms, small integers and binaries, the
        commonest elements of distribution messages, are read inline, not by a call."""
        size = len(data)
        if budget <= 0 or count > size - pos:
            raise too_deep(tagpos) if budget <= 0 else overcount(data, pos, count, tagpos)
        budget, table = budget - 1, readers
        lookup, known = on_bytes if type(data) is bytes else on_views
        items: list[Any] = []
        append = items.append
        for _ in range(count):
            tag = data[pos]
            if tag == 119:  # 12.31 SMALL_ATOM_UTF8_EXT, as _atoms reads it
                end = pos + 2 + data[pos + 1]
                key = data[pos + 2 : end]
                value = lookup(key)
                # None is a miss, or the cached value of the none_atom.
                if end > size or (value is None and not known(key)):
                    value = read_atom(data, pos + 2, end, True, pos)
                pos = end
            elif tag == 97:  # 12.5 SMALL_INTEGER_EXT
                value, pos = data[pos + 1], pos + 2
            elif tag == 109:  # 12.19 BINARY_EXT, as _leaves reads it
                end = pos + 5 + u32(data, pos + 1)[0]
                if end > size:
                    check_end(data, end, pos)
                value, pos = data[pos + 5 : end], end
                if type(value) is not bytes:
                    value = bytes(value)
            else:
                value, pos = table[tag](data, pos + 1, budget)
            append(value)
        return items, pos

    return elements


def _tuple_reader(elements: Elements, *, small: bool) -> Reader:
    def small_tuple(data: Buffer, pos: int, budget: int) -> tuple[Term, int]:
        items, end = elements(data, pos + 1, data[pos], budget, pos - 1)
        return tuple(items), end  # 12.13 SMALL_TUPLE_EXT: Arity (1 byte)

    def large_tuple(data: Buffer, pos: int, budget: int) -> tuple[Term, int]:
        items, end = elements(data, pos + 4, u32(data, pos)[0], budget, pos - 1)
        return tuple(items), end  # 12.14 LARGE_TUPLE_EXT: Arity (4 bytes)

    return small_tuple if small else large_tuple


def _list_reader(elements: Elements, readers: list[Reader]) -> Reader:
    def read_list(data: Buffer, pos: int, budget: int) -> tuple[Term, int]:
        """12.18 LIST_EXT: Length, Elements, Tail (NIL_EXT for a proper list)."""
        items, end = elements(data, pos + 4, u32(data, pos)[0], budget, pos - 1)
        if data[end] == 106:  # NIL_EXT
            return items, end + 1
        tail, end = readers[data[end]](data, end + 1, budget - 1)
        return with_tail(items, tail), end

    return read_list


def with_tail(items: list[Any], tail: Term) -> Term:
    """Normalise as erts does: ``[a | [b]]`` is ``[a, b]``, and ``[ | t]`` is ``t``."""
    if type(tail) is list:
        return items + tail
    if type(tail) is ImproperList:
        return ImproperList([*items, *tail.elements], tail.tail)
    return ImproperList(items, tail) if items else tail


def _map_reader(readers: list[Reader]) -> Reader:
    def read_map(data: Buffer, pos: int, budget: int) -> tuple[Term, int]:
        """12.15 MAP_EXT: Arity, then K1, V1, ... Kn, Vn; duplicate keys are not allowed."""
        if budget <= 0:
            raise too_deep(pos - 1)
        arity, start = u32(data, pos)[0], pos + 4
        if 2 * arity > len(data) - start:
            raise overcount(data, start, 2 * arity, pos - 1)
        budget, pos = budget - 1, start
        result: dict[Any, Any] = {}
        for _ in range(arity):
            key, pos = readers[data[pos]](data, pos + 1, budget)
            value, pos = readers[data[pos]](data, pos + 1, budget)
            try:
                result[key] = value
            except TypeError:  # a list or map key: use its hashable twin
                result[freeze(key)] = value
        if len(result) != arity:
            raise DecodeError(
                f"map at offset {start - 5} repeats a key, or has keys Python cannot tell "
                "apart (1, 1.0 and true; a list and a tuple with the same elements)"
            )
        return result, pos

    return read_map


def freeze(term: Term) -> Term:
    """The hashable twin of a decoded term: lists become FrozenList, maps FrozenMap."""
    kind = type(term)
    if kind is list:
        return FrozenList(map(freeze, term))
    if kind is dict:
        return FrozenMap({key: freeze(value) for key, value in term.items()})
    if kind is tuple:
        return tuple(map(freeze, term))
    if kind is ImproperList:
        return ImproperList(map(freeze, term.elements), freeze(term.tail))
    return term


# --- Closures (12.25, 12.26): validated, then kept as their bytes -------------------------


def _fun_env(
    elements: Elements, readers: list[Reader], data: Buffer, pos: int, budget: int, tagpos: int
) -> int:
    """Module, two integers and the creator pid, then the free variables: validated,
    since the fun is kept as its bytes. Returns the offset after them."""
    num_free = u32(data, pos)[0]
    _, pos = atom_at(data, pos + 4)
    _, pos = int_at(data, pos)
    _, pos = int_at(data, pos)
    if data[pos] not in _PID_TAGS:
        raise DecodeError(f"expected the fun's pid at offset {pos}, got tag {data[pos]}")
    _, pos = readers[data[pos]](data, pos + 1, budget)
    return elements(data, pos, num_free, budget, tagpos)[1]


def _new_fun_reader(elements: Elements, readers: list[Reader]) -> Reader:
    def new_fun(data: Buffer, pos: int, budget: int) -> tuple[Term, int]:
        """12.26 NEW_FUN_EXT: Size (counting itself), Arity, Uniq (16), Index, NumFree,
        Module, OldIndex, OldUniq, Pid, Free vars. Kept whole, tag included."""
        end = pos + u32(data, pos)[0]
        check_end(data, end, pos - 1)
        # NumFree sits at pos + 25; _fun_env reads it, then Module from pos + 29.
        if _fun_env(elements, readers, data, pos + 25, budget, pos - 1) != end:
            raise DecodeError(f"NEW_FUN_EXT at offset {pos - 1}: Size does not match its fields")
        return OpaqueFun(bytes(data[pos - 1 : end])), end

    return new_fun


def _old_fun_reader(elements: Elements, readers: list[Reader]) -> Reader:
    def old_fun(data: Buffer, pos: int, budget: int) -> tuple[Term, int]:
        """12.25 FUN_EXT (not emitted since R8): NumFree, Pid, Module, Index, Uniq, Free vars."""
        num_free = u32(data, pos)[0]
        if data[pos + 4] not in _PID_TAGS:
            raise DecodeError(f"expected the fun's pid at offset {pos + 4}")
        _, end = readers[data[pos + 4]](data, pos + 5, budget)
        _, end = atom_at(data, end)
        _, end = int_at(data, end)
        _, end = int_at(data, end)
        end = elements(data, end, num_free, budget, pos - 1)[1]
        return OpaqueFun(bytes(data[pos - 1 : end])), end

    return old_fun


# --- Tags that are not terms ----------------------------------------------------------------

_REFUSED = {
    68: "a distribution header (68), not a term",
    69: "a fragment header (69), not a term",
    80: "a compressed term (80) is only allowed right after the version byte",
    82: "ATOM_CACHE_REF (82) needs the atom cache of a distribution header, which nodemesh "
    "does not negotiate",
    121: "LOCAL_EXT (121) is only meaningful to the node that encoded it",
    131: "a version byte (131) inside a term",
}


def _refuse(tag: int) -> Reader:
    why = _REFUSED.get(tag, f"unknown tag {tag}")

    def reader(data: Buffer, pos: int, budget: int) -> tuple[Term, int]:
        raise DecodeError(f"{why}, at offset {pos - 1}")

    return reader
