"""Writers of the terms that contain no other terms (erts User's Guide, ``erl_ext_dist``).

Atoms, numbers, binaries, bitstrings, pids, references, ports and funs. Each writer is
``(term, out)``: it appends the term, tag first, to ``out`` (a list of byte strings that
the caller joins), and raises :class:`EncodeError` for a value it cannot write. Section
numbers in comments are those of ``erl_ext_dist``; the tables of writers, and the
containers, are in ``encode``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, TypeAlias

from nodemesh.errors import EncodeError
from nodemesh.term.types import Atom, BitBinary, ExportFun, OpaqueFun, Pid, Port, Reference

#: Where writers append: byte strings, joined once at the end.
Out: TypeAlias = list[bytes | bytearray | memoryview]
Writer: TypeAlias = Callable[[Any, Out], None]

TAG_U8 = struct.Struct(">BB")
TAG_U16 = struct.Struct(">BH")
TAG_U32 = struct.Struct(">BI")
_TAG_I32 = struct.Struct(">Bi")
_TAG_F64 = struct.Struct(">Bd")
_TAG_U32_U8 = struct.Struct(">BIB")
_U32x2 = struct.Struct(">II")
_U32x3 = struct.Struct(">III")
_U64_U32 = struct.Struct(">QI")
_REF_BODY = tuple(struct.Struct(f">I{n}I") for n in range(6))  # Creation, then n words
_pack_u32x3 = _U32x3.pack
_pack_tag_u32 = TAG_U32.pack
_pack_tag_i32 = _TAG_I32.pack
_SMALL_INTS = tuple(TAG_U8.pack(97, n) for n in range(256))  # 12.5 SMALL_INTEGER_EXT
MAX_U32 = 0xFFFFFFFF

# Encoded atoms by text, cleared when full: encoding the same names again is the norm.
_CACHE_SIZE = 1024
_ATOMS: dict[str, bytes] = {}


def length(size: int, what: str) -> int:
    if size > MAX_U32:
        raise EncodeError(f"{what} of {size} elements does not fit a 32-bit length")
    return size


# --- Atoms (12.2, 12.30, 12.31) ---------------------------------------------------------


def _atom(text: str) -> bytes:
    """The encoded atom, from the cache when it was seen lately."""
    cached = _ATOMS.get(text)
    if cached is None:
        cached = atom_bytes(text)
        if len(_ATOMS) >= _CACHE_SIZE:
            _ATOMS.clear()
        _ATOMS[text] = cached
    return cached


def atom_bytes(text: str) -> bytes:
    """SMALL_ATOM_UTF8_EXT up to 255 bytes, ATOM_UTF8_EXT above; at most 255 characters."""
    if not isinstance(text, str):
        raise EncodeError(f"an atom name must be an Atom or str, not {type(text).__qualname__}")
    if len(text) > 255:
        raise EncodeError(f"atom {text[:40]!r}... is longer than 255 characters")
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:
        raise EncodeError(f"atom {text[:40]!r} is not valid Unicode") from None
    if len(raw) < 256:
        return TAG_U8.pack(119, len(raw)) + raw
    return TAG_U16.pack(118, len(raw)) + raw


def _node_atom(name: object) -> bytes:
    """Node, module and function names: Atom or str (anything else is refused)."""
    if type(name) is Atom or type(name) is str:
        return _atom(name)
    return atom_bytes(name)  # type: ignore[arg-type]  # raises EncodeError, or a subclass


def _write_atom(term: str, out: Out) -> None:
    out.append(_ATOMS.get(term) or _atom(term))


def _write_bool(term: bool, out: Out) -> None:
    out.append(b"w\x04true" if term else b"w\x05false")


# --- Numbers (12.5, 12.6, 12.20, 12.21, 12.29) ------------------------------------------


def _write_int(term: int, out: Out) -> None:
    if 0 <= term <= 255:
        out.append(_SMALL_INTS[term])
    elif -0x80000000 <= term <= 0x7FFFFFFF:
        out.append(_pack_tag_i32(98, term))
    else:
        negative = term < 0
        magnitude = -term if negative else term
        size = (magnitude.bit_length() + 7) // 8
        if size < 256:
            out.append(bytes((110, size, negative)))  # SMALL_BIG_EXT: n, Sign
        else:
            out.append(_TAG_U32_U8.pack(111, length(size, "a bignum"), negative))
        out.append(magnitude.to_bytes(size, "little"))


def _write_float(term: float, out: Out) -> None:
    if term - term != 0.0:
        raise EncodeError(f"{term!r} has no Erlang form: Erlang floats are finite")
    out.append(_TAG_F64.pack(70, term))


# --- Binaries, bitstrings, lists (12.17-12.19, 12.28) -----------------------------------


def _write_bytes(term: bytes | bytearray | memoryview, out: Out) -> None:
    size = len(term)
    out.append(_pack_tag_u32(109, size if size <= MAX_U32 else length(size, "a binary")))
    out.append(term)


def _write_view(term: memoryview, out: Out) -> None:
    _write_bytes(term.cast("B") if term.c_contiguous else term.tobytes(), out)


def _write_str(term: str, out: Out) -> None:
    try:
        _write_bytes(term.encode("utf-8"), out)
    except UnicodeEncodeError:
        raise EncodeError(f"str {term[:40]!r} is not valid Unicode") from None


def _write_bit_binary(term: BitBinary, out: Out) -> None:
    data, bits = term.data, term.bits
    if not isinstance(data, bytes | bytearray) or not data or not 1 <= bits <= 8:
        raise EncodeError(f"{term!r:.80}: needs non-empty bytes and bits in 1..8")
    out.append(_TAG_U32_U8.pack(77, length(len(data), "a bitstring"), bits))
    out.append(data)


# --- Identifiers and funs (12.10, 12.9, 12.12, 12.24, 12.26, 12.27) ---------------------


def _fields(layout: struct.Struct, term: object, *fields: int) -> bytes:
    try:
        return layout.pack(*fields)
    except struct.error:
        raise EncodeError(f"{term!r:.120}: a field is not an int of the allowed size") from None


def _write_pid(term: Pid, out: Out) -> None:
    out.append(b"X")  # NEW_PID_EXT: Node, ID, Serial, Creation
    out.append(_node_atom(term.node))
    try:
        out.append(_pack_u32x3(term.id, term.serial, term.creation))
    except struct.error:
        _fields(_U32x3, term, term.id, term.serial, term.creation)


def _write_reference(term: Reference, out: Out) -> None:
    ids = term.ids  # NEWER_REFERENCE_EXT: Len, Node, Creation, ID words
    if not isinstance(ids, tuple | list) or len(ids) > 5:
        raise EncodeError(f"{term!r:.120}: ids must be at most 5 ints")
    out.append(TAG_U16.pack(90, len(ids)))
    out.append(_node_atom(term.node))
    out.append(_fields(_REF_BODY[len(ids)], term, term.creation, *ids))


def _write_port(term: Port, out: Out) -> None:
    """NEW_PORT_EXT when the ID fits 32 bits (every OTP 23+ node reads it), else V4."""
    small = isinstance(term.id, int) and 0 <= term.id <= MAX_U32
    out.append(b"Y" if small else b"x")
    out.append(_node_atom(term.node))
    out.append(_fields(_U32x2 if small else _U64_U32, term, term.id, term.creation))


def _write_export(term: ExportFun, out: Out) -> None:
    if type(term.arity) is not int or not 0 <= term.arity <= 255:
        raise EncodeError(f"{term!r:.120}: arity must be an int in 0..255")
    out.append(b"q")  # EXPORT_EXT: Module, Function, Arity as SMALL_INTEGER_EXT
    out.append(_node_atom(term.module))
    out.append(_node_atom(term.function))
    out.append(_SMALL_INTS[term.arity])


def _write_opaque_fun(term: OpaqueFun, out: Out) -> None:
    if not isinstance(term.raw, bytes | bytearray) or not term.raw:
        raise EncodeError(f"{term!r:.80}: raw must be the fun's encoded bytes")
    out.append(term.raw)


#: The writers by exact type (whatever the none_atom).
LEAVES: dict[type, Writer] = {
    Atom: _write_atom,
    bool: _write_bool,
    int: _write_int,
    float: _write_float,
    bytes: _write_bytes,
    bytearray: _write_bytes,
    memoryview: _write_view,
    str: _write_str,
    Pid: _write_pid,
    Reference: _write_reference,
    Port: _write_port,
    BitBinary: _write_bit_binary,
    ExportFun: _write_export,
    OpaqueFun: _write_opaque_fun,
}
