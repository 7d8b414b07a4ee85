"""Readers of the terms that contain no other terms (erts User's Guide, ``erl_ext_dist``).

Numbers, binaries, pids, ports, references and ``fun M:F/A``; atoms are in ``_atoms``.
Each reader is ``(data, pos, budget) -> (value, end)`` (see ``_reading``); ``budget``
(nesting left) is unused by leaves.
Section numbers in comments are those of ``erl_ext_dist``.

Readers raise :class:`DecodeError` for what they check and let ``IndexError`` /
``struct.error`` escape when a fixed-width field runs past the input (``decode_from``
translates those). Variable lengths are checked against the input before slicing.
"""

from __future__ import annotations

import re
import struct

from nodemesh.errors import DecodeError
from nodemesh.term._atoms import atom_at
from nodemesh.term._reading import Buffer, Reader, check_end, remember, u32
from nodemesh.term.types import Atom, BitBinary, ExportFun, Pid, Port, Reference, Term

_U16 = struct.Struct(">H")
_I32 = struct.Struct(">i")
_F64 = struct.Struct(">d")
_U32_U8 = struct.Struct(">IB")
_U32x2 = struct.Struct(">II")
_U32x3 = struct.Struct(">III")
_U32x2_U8 = struct.Struct(">IIB")
_U64_U32 = struct.Struct(">QI")
_REF_IDS = tuple(struct.Struct(f">{n}I") for n in range(6))  # erts accepts 0..5 words
CREATION_IDS = tuple(struct.Struct(f">{n + 1}I") for n in range(6))  # NEWER_REFERENCE
_u16 = _U16.unpack_from
_FLOAT_TEXT = re.compile(rb"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
PIDS: dict[bytes, Pid] = {}  # bounded like the atom caches (see _reading)
#: References by their bytes (tag off), bounded the same way. A reference is usually
#: read more than once in a short while: a gen_server call's monitor reference comes in
#: MONITOR_P, again as the call's tag and again in DEMONITOR_P; a hit costs a slice
#: and a lookup instead of the node atom, an unpack and a Reference (~7,000
#: instructions compiled).
REFS: dict[bytes, Reference] = {}


# --- Numbers (12.5-12.7, 12.20, 12.21, 12.29) -------------------------------------------


def _small_int(data: Buffer, pos: int, budget: int) -> tuple[Term, int]:
    return data[pos], pos + 1  # 12.5 SMALL_INTEGER_EXT: unsigned 8 bits


def _int(data: Buffer, pos: int, budget: int) -> tuple[Term, int]:
    return _I32.unpack_from(data, pos)[0], pos + 4  # 12.6 INTEGER_EXT: signed 32 bits


def int_at(data: Buffer, pos: int) -> tuple[int, int]:
    """Integer fields inside funs (12.25-12.27): SMALL_INTEGER_EXT or INTEGER_EXT."""
    tag = data[pos]
    if tag == 97:
        return data[pos + 1], pos + 2
    if tag == 98:
        return _I32.unpack_from(data, pos + 1)[0], pos + 5
    raise DecodeError(f"expected an integer at offset {pos}, got tag {tag}")


def _big(data: Buffer, start: int, size: int, sign: int, tagpos: int) -> tuple[Term, int]:
    """Sign byte (erts reads any non-zero as negative), then little-endian digits."""
    end = start + size
    check_end(data, end, tagpos)
    value = int.from_bytes(data[start:end], "little")
    return (-value if sign else value), end


def _small_big(data: Buffer, pos: int, budget: int) -> tuple[Term, int]:
    return _big(data, pos + 2, data[pos], data[pos + 1], pos - 1)  # 12.20 SMALL_BIG_EXT


def _large_big(data: Buffer, pos: int, budget: int) -> tuple[Term, int]:
    size, sign = _U32_U8.unpack_from(data, pos)  # 12.21 LARGE_BIG_EXT
    return _big(data, pos + 5, size, sign, pos - 1)


def _finite(value: float, tagpos: int) -> float:
    if value - value != 0.0:  # NaN or an infinity: Erlang has neither (12.7, 12.29)
        raise DecodeError(f"float at offset {tagpos} is not finite")
    return value


def _new_float(data: Buffer, pos: int, budget: int) -> tuple[Term, int]:
    return _finite(_F64.unpack_from(data, pos)[0], pos - 1), pos + 8  # 12.29 NEW_FLOAT_EXT


def _float_text(data: Buffer, pos: int, budget: int) -> tuple[Term, int]:
    """12.7 FLOAT_EXT: "%.20e" text NUL-padded to 31 bytes; erts refuses anything else."""
    check_end(data, pos + 31, pos - 1)
    text = bytes(data[pos : pos + 31]).split(b"\0", 1)[0]
    if _FLOAT_TEXT.fullmatch(text) is None:
        raise DecodeError(f"FLOAT_EXT at offset {pos - 1} is not a float: {text!r}")
    return _finite(float(text), pos - 1), pos + 31


# --- Binaries and strings (12.17, 12.19, 12.28) -----------------------------------------


def _binary(data: Buffer, pos: int, budget: int) -> tuple[Term, int]:
    end = pos + 4 + u32(data, pos)[0]  # 12.19 BINARY_EXT: Len, Data
    if end > len(data):
        check_end(data, end, pos - 1)
    value = data[pos + 4 : end]
    return (value if type(value) is bytes else bytes(value)), end


def _bit_binary(data: Buffer, pos: int, budget: int) -> tuple[Term, int]:
    """12.28 BIT_BINARY_EXT: Len, Bits (1..8 used in the last byte), Data."""
    size, bits = _U32_U8.unpack_from(data, pos)
    end = pos + 5 + size
    check_end(data, end, pos - 1)
    if size == 0 and bits == 0:
        return b"", end  # erts decodes this as <<>>
    if size == 0 or not 1 <= bits <= 8:
        raise DecodeError(f"BIT_BINARY_EXT at offset {pos - 1}: {bits} bits of {size} bytes")
    raw = bytes(data[pos + 5 : end])
    if bits == 8:
        return raw, end  # whole bytes: a binary, as erts decodes it
    last = raw[-1] & (0xFF00 >> bits)  # erts zeroes the unused low bits
    return BitBinary(raw[:-1] + bytes((last & 0xFF,)), bits), end


def _nil(data: Buffer, pos: int, budget: int) -> tuple[Term, int]:
    return [], pos  # 12.16 NIL_EXT


def _string(data: Buffer, pos: int, budget: int) -> tuple[Term, int]:
    end = pos + 2 + _u16(data, pos)[0]  # 12.17 STRING_EXT: a list of bytes
    check_end(data, end, pos - 1)
    return list(data[pos + 2 : end]), end


# --- Identifiers (12.8-12.12, 12.22-12.24) ---------------------------------------------


def _old_creation(creation: int, tagpos: int) -> int:
    if creation > 3:  # 12.11: "only two bits are significant, the rest are to be 0"
        raise DecodeError(f"creation {creation} at offset {tagpos} does not fit in 2 bits")
    return creation


def _new_pid(data: Buffer, pos: int, budget: int) -> tuple[Term, int]:
    """12.12 NEW_PID_EXT: Node, ID, Serial, Creation (32 bits each)."""
    tag = data[pos]  # the node atom's tag: find the pid's end without decoding the atom
    end = pos + (14 + data[pos + 1] if tag == 119 or tag == 115 else 15 + _u16(data, pos + 1)[0])
    key = data[pos:end]
    pid = PIDS.get(key if type(key) is bytes else bytes(key))  # a hit skips Pid.__init__
    if pid is None or end > len(data):
        node, fields = atom_at(data, pos)
        pid = Pid(node, *_U32x3.unpack_from(data, fields))
        remember(PIDS, key, pid)
    return pid, end


def _pid(data: Buffer, pos: int, budget: int) -> tuple[Term, int]:
    node, end = atom_at(data, pos)  # 12.11 PID_EXT: Creation is one byte
    ident, serial, creation = _U32x2_U8.unpack_from(data, end)
    return Pid(node, ident, serial, _old_creation(creation, pos - 1)), end + 9


def _v4_port(data: Buffer, pos: int, budget: int) -> tuple[Term, int]:
    node, end = atom_at(data, pos)  # 12.10 V4_PORT_EXT: 64-bit ID, 32-bit Creation
    return Port(node, *_U64_U32.unpack_from(data, end)), end + 12


def _new_port(data: Buffer, pos: int, budget: int) -> tuple[Term, int]:
    node, end = atom_at(data, pos)  # 12.9 NEW_PORT_EXT: 32-bit ID and Creation
    return Port(node, *_U32x2.unpack_from(data, end)), end + 8


def _port(data: Buffer, pos: int, budget: int) -> tuple[Term, int]:
    node, end = atom_at(data, pos)  # 12.8 PORT_EXT: Creation is one byte
    ident, creation = _U32_U8.unpack_from(data, end)
    return Port(node, ident, _old_creation(creation, pos - 1)), end + 5


def _ref_ids(data: Buffer, pos: int, count: int, tagpos: int) -> tuple[int, ...]:
    if count >= len(_REF_IDS):
        raise DecodeError(f"reference at offset {tagpos} has {count} ID words (at most 5)")
    return _REF_IDS[count].unpack_from(data, pos)


_new = object.__new__
_set_node = Reference.__dict__["node"].__set__  # the slot's member descriptor
_set_creation = Reference.__dict__["creation"].__set__  # the slot's member descriptor
_set_ids = Reference.__dict__["ids"].__set__  # the slot's member descriptor


def make_reference(node: Atom, creation: int, ids: tuple[int, ...]) -> Reference:
    """``Reference(node, creation, ids)`` without the frozen dataclass's ``__init__``
    (three ``object.__setattr__`` calls from Python: half the cost of reading a
    reference); its slots are filled directly, the same value results."""
    ref = _new(Reference)
    _set_node(ref, node)
    _set_creation(ref, creation)
    _set_ids(ref, ids)
    return ref


def _newer_ref(data: Buffer, pos: int, budget: int) -> tuple[Term, int]:
    """12.24 NEWER_REFERENCE_EXT: Len, Node, Creation (4 bytes), Len ID words.

    Creation and the words in one unpack: four of these arrive per gen_server call (the
    monitor, the call's tag, the reply's, the demonitor), and each struct call counts."""
    count = (data[pos] << 8) | data[pos + 1]
    key = None
    if data[pos + 2] == 119:  # the node a small atom (always, from OTP): the end is known
        stop = pos + 8 + data[pos + 3] + 4 * count  # Len, atom tag, its Len, name, words
        if stop <= len(data):
            key = data[pos:stop]
            if type(key) is not bytes:
                key = bytes(key)
            ref = REFS.get(key)
            if ref is not None:
                return ref, stop
    node, end = atom_at(data, pos + 2)
    if count >= len(_REF_IDS):
        raise DecodeError(f"reference at offset {pos - 1} has {count} ID words (at most 5)")
    words = CREATION_IDS[count].unpack_from(data, end)
    ref = make_reference(node, words[0], words[1:])
    if key is not None:
        remember(REFS, key, ref)
    return ref, end + 4 + 4 * count


def _new_ref(data: Buffer, pos: int, budget: int) -> tuple[Term, int]:
    """12.23 NEW_REFERENCE_EXT: as NEWER_REFERENCE_EXT with a one-byte Creation."""
    count = _u16(data, pos)[0]
    node, end = atom_at(data, pos + 2)
    creation = _old_creation(data[end], pos - 1)
    ids = _ref_ids(data, end + 1, count, pos - 1)
    return Reference(node, creation, ids), end + 1 + 4 * count


def _ref(data: Buffer, pos: int, budget: int) -> tuple[Term, int]:
    node, end = atom_at(data, pos)  # 12.22 REFERENCE_EXT: one ID word, one-byte Creation
    ident, creation = _U32_U8.unpack_from(data, end)
    return Reference(node, _old_creation(creation, pos - 1), (ident,)), end + 5


# --- Exports (12.27) -----------------------------------------------------------------


def _export(data: Buffer, pos: int, budget: int) -> tuple[Term, int]:
    """12.27 EXPORT_EXT: Module, Function, Arity (erts takes tag 97 or 98)."""
    module, pos = atom_at(data, pos)
    function, pos = atom_at(data, pos)
    arity, end = int_at(data, pos)
    if not 0 <= arity <= 255:
        raise DecodeError(f"fun arity {arity} at offset {pos} is not in 0..255")
    return ExportFun(module, function, arity), end


LEAVES: dict[int, Reader] = {
    70: _new_float,
    77: _bit_binary,
    88: _new_pid,
    89: _new_port,
    90: _newer_ref,
    97: _small_int,
    98: _int,
    99: _float_text,
    101: _ref,
    102: _port,
    103: _pid,
    106: _nil,
    107: _string,
    109: _binary,
    110: _small_big,
    111: _large_big,
    113: _export,
    114: _new_ref,
    120: _v4_port,
}
