"""Decoding of the Erlang external term format (erts User's Guide, ``erl_ext_dist``).

Theory of operation
-------------------
:func:`decode_from` checks the version byte, inflates a compressed term if need be, and
hands the tag byte to ``READERS``: one reader per tag, ``(data, pos, budget) -> (value,
end)``, where ``pos`` is the offset after the tag and ``end`` the offset after the term.
Readers of terms holding no other terms live in ``_leaves``; the containers below call
their elements' readers directly with one less unit of nesting ``budget``, which starts
at ``DecodeLimits.max_depth``.

Untrusted input can only raise :class:`DecodeError`:

* fixed-width fields are read by indexing and ``struct.unpack_from``; input that ends
  early raises ``IndexError`` / ``struct.error``, which :func:`decode_from` translates;
* every length field is checked against the bytes left before anything is allocated
  (each element takes at least one byte, so a count can never exceed what remains);
* compressed terms (tag 80) are inflated into at most ``max_decompressed_size`` bytes.

Atoms are not interned: a small cache of recently seen atom texts (cleared when full)
only saves re-decoding the same few names over and over, and it never grows.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nodemesh.errors import ConfigError, DecodeError
from nodemesh.term._leaves import (
    LEAVES,
    UTF8_ATOMS,
    Buffer,
    Reader,
    atom_at,
    check_end,
    int_at,
    read_atom,
    u32,
    view_lookup,
)
from nodemesh.term.types import FrozenList, FrozenMap, ImproperList, OpaqueFun, Term

__all__ = ["DEFAULT_LIMITS", "DecodeLimits", "decode", "decode_from"]

#: The highest nesting limit accepted: beyond it the interpreter's own recursion limit
#: (and the C stack used to hash deeply nested map keys) would be the real bound.
MAX_DEPTH_CEILING = 10_000

_PID_TAGS = frozenset((88, 103))  # NEW_PID_EXT, PID_EXT


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    """Bounds on what decoding untrusted bytes may cost.

    ``max_depth``: how deeply containers (tuples, lists, maps, funs) may nest.
    ``max_decompressed_size``: the largest size a compressed term may declare (bytes);
    0 refuses compressed terms altogether.

    Raises :class:`~nodemesh.errors.ConfigError` on construction when out of range.
    """

    max_depth: int = 256
    max_decompressed_size: int = 64 * 1024 * 1024

    def __post_init__(self) -> None:
        _check_int("max_depth", self.max_depth, 1, MAX_DEPTH_CEILING)
        _check_int("max_decompressed_size", self.max_decompressed_size, 0, 0xFFFFFFFF)


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if type(value) is not int:
        raise ConfigError(f"DecodeLimits.{name} must be an int, not {type(value).__name__}")
    if not low <= value <= high:
        raise ConfigError(f"DecodeLimits.{name} must be in {low}..{high}, got {value}")


DEFAULT_LIMITS = DecodeLimits()


def decode(data: bytes | bytearray | memoryview, *, limits: DecodeLimits = DEFAULT_LIMITS) -> Term:
    """Decode exactly one term (version byte 131 first) that fills all of ``data``.

    Raises :class:`DecodeError` if the bytes are malformed, exceed ``limits``, or
    trailing bytes follow the term.
    """
    term, end = decode_from(data, 0, limits=limits)
    size = len(data) if type(data) is bytes else memoryview(data).nbytes
    if end != size:
        raise DecodeError(f"{size - end} trailing bytes after the term, at offset {end}")
    return term


def decode_from(
    data: bytes | bytearray | memoryview, pos: int = 0, *, limits: DecodeLimits = DEFAULT_LIMITS
) -> tuple[Term, int]:
    """Decode the term (version byte 131 first) at ``pos``; return it and the offset after.

    ``data`` is read in place, never copied: pass the receive buffer and an offset. A
    distribution message is two such terms in a row (control message, then payload).
    Raises :class:`DecodeError` if the bytes are malformed or exceed ``limits``.
    """
    if type(data) is bytes:
        try:  # the hot path, inlined: an uncompressed term in bytes
            if data[pos] == 131 and data[pos + 1] != 80 and pos >= 0:
                return READERS[data[pos + 1]](data, pos + 2, limits.max_depth)
        except _ESCAPES as exc:
            raise _translate(exc, data, pos) from None
        return _decode_at(data, pos, limits)
    try:
        return _decode_at(_as_buffer(data), pos, limits)
    except DecodeError as exc:
        message = str(exc)
    # Raised outside the handler so that no traceback keeps a view of ``data`` alive:
    # the caller may resize its bytearray as soon as it has caught the error.
    raise DecodeError(message)


#: What readers let escape: fixed-width reads past the end, and exhausted resources.
_ESCAPES = (IndexError, struct.error, RecursionError, MemoryError)


def _decode_at(buf: Buffer, pos: int, limits: DecodeLimits) -> tuple[Term, int]:
    """12.1: the version byte, then a term or a compressed term."""
    try:
        if buf[pos] != 131 or pos < 0:
            raise _no_version(buf, pos)
        if buf[pos + 1] == 80:
            return _compressed(buf, pos + 2, limits)
        return READERS[buf[pos + 1]](buf, pos + 2, limits.max_depth)
    except _ESCAPES as exc:
        raise _translate(exc, buf, pos) from None


def _translate(exc: BaseException, buf: Buffer, pos: int) -> DecodeError:
    if isinstance(exc, RecursionError):
        return DecodeError(f"the term at offset {pos} nests too deeply for Python")
    if isinstance(exc, MemoryError):
        return DecodeError(f"the term at offset {pos} does not fit in memory")
    if not 0 <= pos < len(buf):
        return DecodeError(f"no term at offset {pos} of {len(buf)} bytes")
    return DecodeError(f"truncated: the term at offset {pos} runs past the input")


def _no_version(buf: Buffer, pos: int) -> DecodeError:
    if pos < 0:
        return DecodeError(f"no term at offset {pos}")
    return DecodeError(f"expected the version byte 131 at offset {pos}, got {buf[pos]}")


def _as_buffer(data: bytes | bytearray | memoryview) -> Buffer:
    """``bytes`` as is; anything else as a read-only byte view (slices must be hashable
    for the atom cache, and no copy of a large receive buffer is made)."""
    if type(data) is bytes:
        return data
    view = memoryview(data)
    if view.format != "B" or view.ndim != 1:
        if not view.c_contiguous:
            return view.tobytes()
        view = view.cast("B")
    return view.toreadonly()


def _compressed(data: Buffer, pos: int, limits: DecodeLimits) -> tuple[Term, int]:
    """12.1 Compressed Term Format: UncompressedSize (4 bytes) then a zlib stream
    holding the tag and data of one term; the stream's end is the term's end."""
    (size,) = u32(data, pos)
    if size > limits.max_decompressed_size:
        raise DecodeError(
            f"compressed term at offset {pos - 2} declares {size} bytes, more than "
            f"max_decompressed_size ({limits.max_decompressed_size})"
        )
    inflater = zlib.decompressobj()
    try:
        # One byte of room beyond the declared size shows a stream that is too long.
        inner = inflater.decompress(data[pos + 4 :], size + 1)
    except zlib.error as exc:
        raise DecodeError(f"compressed term at offset {pos - 2}: {exc}") from None
    if not inflater.eof or len(inner) != size:
        raise DecodeError(
            f"compressed term at offset {pos - 2} declares {size} bytes but its zlib "
            f"stream holds {len(inner)}{'' if inflater.eof else ' or more, or is cut short'}"
        )
    term, end = _decode_inner(inner, limits.max_depth, pos - 2)
    if end != size:
        raise DecodeError(f"compressed term at offset {pos - 2} has trailing bytes")
    return term, len(data) - len(inflater.unused_data)


def _decode_inner(inner: bytes, budget: int, where: int) -> tuple[Term, int]:
    """Offsets in errors from here on count from the start of the decompressed data."""
    try:
        return READERS[inner[0]](inner, 1, budget)
    except (IndexError, struct.error):
        raise DecodeError(f"compressed term at offset {where} is truncated inside") from None
    except DecodeError as exc:
        raise DecodeError(f"inside the compressed term at offset {where}: {exc}") from None


def _overcount(data: Buffer, pos: int, count: int, tagpos: int) -> DecodeError:
    """Every element takes at least one byte: a count the input cannot hold is refused."""
    return DecodeError(
        f"tag {data[tagpos]} at offset {tagpos} declares {count} elements, "
        f"only {len(data) - pos} bytes remain"
    )


def _too_deep(tagpos: int) -> DecodeError:
    return DecodeError(f"the term at offset {tagpos} nests deeper than max_depth")


# --- Containers (12.13-12.18) ----------------------------------------------------------


def _elements(
    data: Buffer, pos: int, count: int, budget: int, tagpos: int
) -> tuple[list[Any], int]:
    """``count`` terms from ``pos``. Small atoms, small integers and binaries, the
    commonest elements of distribution messages, are read inline rather than by a call."""
    size = len(data)
    if budget <= 0 or count > size - pos:
        raise _too_deep(tagpos) if budget <= 0 else _overcount(data, pos, count, tagpos)
    readers, budget = READERS, budget - 1
    atom: Callable[[Any], Any] = UTF8_ATOMS.get if type(data) is bytes else view_lookup
    items: list[Any] = []
    append = items.append
    for _ in range(count):
        tag = data[pos]
        if tag == 119:  # 12.31 SMALL_ATOM_UTF8_EXT, as in _small_atom_utf8
            end = pos + 2 + data[pos + 1]
            value = atom(data[pos + 2 : end])
            if value is None or end > size:
                value = read_atom(data, pos + 2, end, True, pos)
            pos = end
        elif tag == 97:  # 12.5 SMALL_INTEGER_EXT
            value, pos = data[pos + 1], pos + 2
        elif tag == 109:  # 12.19 BINARY_EXT, as in _binary
            end = pos + 5 + u32(data, pos + 1)[0]
            if end > size:
                check_end(data, end, pos)
            value, pos = data[pos + 5 : end], end
            if type(value) is not bytes:
                value = bytes(value)
        else:
            value, pos = readers[tag](data, pos + 1, budget)
        append(value)
    return items, pos


def _small_tuple(data: Buffer, pos: int, budget: int) -> tuple[Term, int]:
    items, end = _elements(data, pos + 1, data[pos], budget, pos - 1)
    return tuple(items), end  # 12.13 SMALL_TUPLE_EXT: Arity (1 byte)


def _large_tuple(data: Buffer, pos: int, budget: int) -> tuple[Term, int]:
    items, end = _elements(data, pos + 4, u32(data, pos)[0], budget, pos - 1)
    return tuple(items), end  # 12.14 LARGE_TUPLE_EXT: Arity (4 bytes)


def _list(data: Buffer, pos: int, budget: int) -> tuple[Term, int]:
    """12.18 LIST_EXT: Length, Elements, Tail (NIL_EXT for a proper list)."""
    items, end = _elements(data, pos + 4, u32(data, pos)[0], budget, pos - 1)
    if data[end] == 106:  # NIL_EXT
        return items, end + 1
    tail, end = READERS[data[end]](data, end + 1, budget - 1)
    return _with_tail(items, tail), end


def _with_tail(items: list[Any], tail: Term) -> Term:
    """Normalise as erts does: ``[a | [b]]`` is ``[a, b]``, and ``[ | t]`` is ``t``."""
    if type(tail) is list:
        return items + tail
    if type(tail) is ImproperList:
        return ImproperList([*items, *tail.elements], tail.tail)
    return ImproperList(items, tail) if items else tail


def _map(data: Buffer, pos: int, budget: int) -> tuple[Term, int]:
    """12.15 MAP_EXT: Arity, then K1, V1, ... Kn, Vn; duplicate keys are not allowed."""
    if budget <= 0:
        raise _too_deep(pos - 1)
    arity, start = u32(data, pos)[0], pos + 4
    if 2 * arity > len(data) - start:
        raise _overcount(data, start, 2 * arity, pos - 1)
    readers, budget, pos = READERS, budget - 1, start
    result: dict[Any, Any] = {}
    for _ in range(arity):
        key, pos = readers[data[pos]](data, pos + 1, budget)
        value, pos = readers[data[pos]](data, pos + 1, budget)
        try:
            result[key] = value
        except TypeError:  # a list or map key: use its hashable twin
            result[_freeze(key)] = value
    if len(result) != arity:
        raise DecodeError(
            f"map at offset {start - 5} repeats a key, or has keys Python cannot tell "
            "apart (1, 1.0 and true; a list and a tuple with the same elements)"
        )
    return result, pos


def _freeze(term: Term) -> Term:
    """The hashable twin of a decoded term: lists become FrozenList, maps FrozenMap."""
    kind = type(term)
    if kind is list:
        return FrozenList(map(_freeze, term))
    if kind is dict:
        return FrozenMap({key: _freeze(value) for key, value in term.items()})
    if kind is tuple:
        return tuple(map(_freeze, term))
    if kind is ImproperList:
        return ImproperList(map(_freeze, term.elements), _freeze(term.tail))
    return term


# --- Funs (12.25-12.27) ----------------------------------------------------------------


def _fun_env(data: Buffer, pos: int, budget: int, tagpos: int) -> int:
    """Module, two integers and the creator pid, then the free variables: validated,
    since the fun is kept as its bytes. Returns the offset after them."""
    num_free = u32(data, pos)[0]
    _, pos = atom_at(data, pos + 4)
    _, pos = int_at(data, pos)
    _, pos = int_at(data, pos)
    if data[pos] not in _PID_TAGS:
        raise DecodeError(f"expected the fun's pid at offset {pos}, got tag {data[pos]}")
    _, pos = READERS[data[pos]](data, pos + 1, budget)
    return _elements(data, pos, num_free, budget, tagpos)[1]


def _new_fun(data: Buffer, pos: int, budget: int) -> tuple[Term, int]:
    """12.26 NEW_FUN_EXT: Size (counting itself), Arity, Uniq (16), Index, NumFree,
    Module, OldIndex, OldUniq, Pid, Free vars. Kept whole, tag included."""
    end = pos + u32(data, pos)[0]
    check_end(data, end, pos - 1)
    # NumFree sits at pos + 25; _fun_env reads it, then Module from pos + 29.
    if _fun_env(data, pos + 25, budget, pos - 1) != end:
        raise DecodeError(f"NEW_FUN_EXT at offset {pos - 1}: Size does not match its fields")
    return OpaqueFun(bytes(data[pos - 1 : end])), end


def _old_fun(data: Buffer, pos: int, budget: int) -> tuple[Term, int]:
    """12.25 FUN_EXT (not emitted since R8): NumFree, Pid, Module, Index, Uniq, Free vars."""
    num_free = u32(data, pos)[0]
    if data[pos + 4] not in _PID_TAGS:
        raise DecodeError(f"expected the fun's pid at offset {pos + 4}")
    _, end = READERS[data[pos + 4]](data, pos + 5, budget)
    _, end = atom_at(data, end)
    _, end = int_at(data, end)
    _, end = int_at(data, end)
    end = _elements(data, end, num_free, budget, pos - 1)[1]
    return OpaqueFun(bytes(data[pos - 1 : end])), end


# --- The dispatch table ----------------------------------------------------------------

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


_CONTAINERS: dict[int, Reader] = {
    104: _small_tuple,
    105: _large_tuple,
    108: _list,
    112: _new_fun,
    116: _map,
    117: _old_fun,
}

#: Indexed by tag byte; tags that are not terms get a reader that raises DecodeError.
READERS: tuple[Reader, ...] = tuple(
    _CONTAINERS.get(tag) or LEAVES.get(tag) or _refuse(tag) for tag in range(256)
)
