"""The hot path of decoding: terms read straight from ``bytes`` (``erl_ext_dist``).

Theory of operation
-------------------
``decode_from`` hands a ``bytes`` input here (every frame ``dist.framing`` returns is
one); other buffers go through the table of readers of ``_containers``. :func:`term`
reads the term whose tag is at ``pos``: tuples, lists and maps here, every other tag
through ``table``, the readers of the same ``none_atom``, so both paths decode alike.
:func:`_items` reads a container's elements with the commonest tags of distribution
messages inline (SMALL_ATOM_UTF8 through the atom cache, SMALL_INTEGER, INTEGER,
BINARY, NEW_PID through the pid cache, NEWER_REFERENCE through the reference cache,
NIL) and the rest through ``table``.

Why a second reader beside ``_containers``: these are module functions taking every
option as an argument (the atom ``cache`` and ``table`` of one ``none_atom``), with no
closures, so that ``_scan.pxd`` can make them C functions with C-typed offsets and byte
indexing in the compiled build (callgrind: a closure call and a memoryview index each
cost hundreds of instructions there). The pure-Python build runs the same lines.

Bounds are those of ``_containers``: nesting ``budget``, every count checked against the
bytes left before anything is allocated, variable lengths checked before slicing, and
fixed-width fields left to raise ``IndexError``, which ``decode_from`` translates.
"""

from __future__ import annotations

from typing import Any

from nodemesh.errors import DecodeError
from nodemesh.term._atoms import NAMES_CACHE
from nodemesh.term._containers import freeze, overcount, too_deep, with_tail
from nodemesh.term._leaves import CREATION_IDS, PIDS, REFS, make_reference
from nodemesh.term._reading import CACHE_SIZE, MISS, Reader, check_end
from nodemesh.term.types import Atom, Term

Table = tuple[Reader, ...]

_PIDS: dict[bytes, Any] = PIDS  # compiled: a C global of type dict (see _scan.pxd)
_REFS: dict[bytes, Any] = REFS  # the same for references
_NODES: dict[bytes, Any] = NAMES_CACHE  # node names by their bytes, as _atoms reads them


def term(
    data: bytes, pos: int, budget: int, cache: dict[bytes, Any], table: Table
) -> tuple[Term, int]:
    """The term whose tag is at ``pos``, and the offset after it."""
    tag = data[pos]
    if tag == 104:  # 12.13 SMALL_TUPLE_EXT: Arity (1 byte)
        items, end = _items(data, pos + 2, data[pos + 1], budget, cache, table, pos)
        return tuple(items), end
    if tag == 108:
        return _list(data, pos, budget, cache, table)
    if tag == 116:
        return _map(data, pos, budget, cache, table)
    return table[tag](data, pos + 1, budget)


def _u32(data: bytes, pos: int) -> int:
    """A 4-byte big-endian length (bytes shifted one by one: C arithmetic when compiled)."""
    value = data[pos]
    value = value << 24 | data[pos + 1] << 16 | data[pos + 2] << 8 | data[pos + 3]
    return value


def _list(
    data: bytes, pos: int, budget: int, cache: dict[bytes, Any], table: Table
) -> tuple[Term, int]:
    """12.18 LIST_EXT: Length, Elements, Tail (NIL_EXT for a proper list)."""
    items, end = _items(data, pos + 5, _u32(data, pos + 1), budget, cache, table, pos)
    if data[end] == 106:  # NIL_EXT
        return items, end + 1
    tail, end = term(data, end, budget - 1, cache, table)
    return with_tail(items, tail), end


def _map(
    data: bytes, pos: int, budget: int, cache: dict[bytes, Any], table: Table
) -> tuple[Term, int]:
    """12.15 MAP_EXT: Arity, then K1, V1, ... Kn, Vn; duplicate keys are not allowed."""
    if budget <= 0:
        raise too_deep(pos)
    arity = _u32(data, pos + 1)
    items, end = _items(data, pos + 5, 2 * arity, budget, cache, table, pos)
    result: dict[Any, Any] = {}
    for i in range(0, 2 * arity, 2):
        try:
            result[items[i]] = items[i + 1]
        except TypeError:  # a list or map key: use its hashable twin
            result[freeze(items[i])] = items[i + 1]
    if len(result) != arity:
        raise DecodeError(
            f"map at offset {pos} repeats a key, or has keys Python cannot tell "
            "apart (1, 1.0 and true; a list and a tuple with the same elements)"
        )
    return result, end


def _items(
    data: bytes,
    pos: int,
    count: int,
    budget: int,
    cache: dict[bytes, Any],
    table: Table,
    tagpos: int,
) -> tuple[list[Any], int]:
    """``count`` terms from ``pos``, one level below the container tagged at ``tagpos``.

    One function with the common tags inline: a measured hot loop, hence its length.
    """
    size = len(data)
    if budget <= 0 or count > size - pos:
        raise too_deep(tagpos) if budget <= 0 else overcount(data, pos, count, tagpos)
    budget -= 1
    raw = data  # compiled: a C pointer to the bytes, sliced only within [0, size]
    items: list[Any] = [None] * count
    for i in range(count):
        tag = data[pos]
        if tag == 119:  # 12.31 SMALL_ATOM_UTF8_EXT, as _atoms reads it
            end = pos + 2 + data[pos + 1]
            value = cache.get(raw[pos + 2 : end], MISS) if end <= size else MISS
            if value is MISS:  # decoded (and cached), or refused, by the table's reader
                value, end = table[119](data, pos + 1, budget)
            pos = end
        elif tag == 97:  # 12.5 SMALL_INTEGER_EXT
            value = data[pos + 1]
            pos += 2
        elif tag == 109:  # 12.19 BINARY_EXT: Len, Data
            end = pos + 5 + _u32(data, pos + 1)
            if end > size:
                check_end(data, end, pos)
            value = raw[pos + 5 : end]
            pos = end
        elif tag == 98:  # 12.6 INTEGER_EXT: signed 32 bits
            number = _u32(data, pos + 1)
            value = number - 0x100000000 if number > 0x7FFFFFFF else number
            pos += 5
        elif tag == 88 and data[pos + 1] == 119:  # 12.12 NEW_PID_EXT, node a small atom
            end = pos + 15 + data[pos + 2]  # tag, atom tag, Len, name, 3 x 4 bytes
            value = _PIDS.get(raw[pos + 1 : end]) if end <= size else None  # _leaves' key
            if value is None:
                value, end = table[88](data, pos + 1, budget)
            pos = end
        elif tag == 90 and data[pos + 3] == 119:  # 12.24 NEWER_REFERENCE_EXT, small atom node
            # Tag, Len (2), atom tag, its Len, name, Creation (4), Len ID words; _leaves' key
            end = pos + 9 + data[pos + 4] + 4 * (data[pos + 1] << 8 | data[pos + 2])
            value = None
            if end <= size:
                key = raw[pos + 1 : end]
                value = _REFS.get(key)
                if value is None:
                    value = _fresh_ref(data, pos, key)
            if value is None:
                value, end = table[90](data, pos + 1, budget)
            pos = end
        elif tag == 104 or tag == 108 or tag == 116:
            value, pos = term(data, pos, budget, cache, table)
        elif tag == 106:  # 12.16 NIL_EXT
            value = []
            pos += 1
        else:
            value, pos = table[tag](data, pos + 1, budget)
        items[i] = value
    return items, pos


def _fresh_ref(data: bytes, pos: int, key: bytes) -> Any:
    """The NEWER_REFERENCE_EXT at ``pos`` (``key``: its bytes after the tag, within the
    input), read here and remembered in the reference cache when its node is a name
    already read (in a pid, say) and it has 1 to 5 ID words; else None, and ``table``
    reads it (and says what is wrong). A gen_server call brings one new reference to each
    side: the cache is filled inline (``_reading.remember``'s bound), not by a call."""
    count = data[pos + 1] << 8 | data[pos + 2]
    start = pos + 5  # the node's text: after tag, Len (2), atom tag and its length
    stop = start + data[pos + 4]
    if count == 0 or count > 5:
        return None
    raw = data
    node = _NODES.get(raw[start:stop])
    if type(node) is not Atom:
        return None
    words = CREATION_IDS[count].unpack_from(data, stop)  # one call, pure or compiled
    ref = make_reference(node, words[0], words[1:])
    if len(_REFS) >= CACHE_SIZE:
        _REFS.clear()
    _REFS[key] = ref
    return ref
