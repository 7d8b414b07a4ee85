"""Decoding of the Erlang external term format (erts User's Guide, ``erl_ext_dist``).

Theory of operation
-------------------
:func:`decode_from` checks the version byte, inflates a compressed term if need be, and
hands the tag byte to a table of readers: one reader per tag, ``(data, pos, budget) ->
(value, end)``, where ``pos`` is the offset after the tag and ``end`` the offset after the
term. Atoms are read in ``_atoms``, other terms holding no terms in ``_leaves``, the
containers in ``_containers``; they call their elements' readers directly with one less
unit of nesting ``budget``, which starts at ``DecodeLimits.max_depth``. There is one
table per ``none_atom`` (the atom that decodes as None): ``READERS`` for the default
``undefined``, others built on first use and kept; :func:`make_decode_from` binds one.
An uncompressed term in ``bytes`` (every distribution frame) is read by ``_scan``
instead, the hot path: containers and the common tags there, the rest by the table.

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
from dataclasses import dataclass
from typing import Any, Protocol

from nodemesh.errors import ConfigError, DecodeError
from nodemesh.term._atoms import DEFAULT_NONE_ATOM, check_none_atom
from nodemesh.term._containers import make_readers
from nodemesh.term._reading import Buffer, Reader, u32
from nodemesh.term._scan import term
from nodemesh.term.types import Term

__all__ = ["DEFAULT_LIMITS", "DecodeLimits", "decode", "decode_from", "make_decode_from"]

#: The highest nesting limit accepted: beyond it the interpreter's own recursion limit
#: (and the C stack used to hash deeply nested map keys) would be the real bound.
MAX_DEPTH_CEILING = 10_000

#: The readers for the default none_atom, ``undefined``, and their atom cache.
READERS, ATOMS = make_readers(DEFAULT_NONE_ATOM)
_TABLES: dict[str, tuple[tuple[Reader, ...], dict[bytes, Any]]] = {
    DEFAULT_NONE_ATOM: (READERS, ATOMS)
}
_MAX_TABLES = 8  # beyond this many none_atom choices, build without keeping


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

    The atom ``undefined`` decodes as None (see :class:`~nodemesh.term.TermCodec` for
    ``nil``). Raises :class:`DecodeError` if the bytes are malformed, exceed ``limits``,
    or trailing bytes follow the term.
    """
    term, end = decode_from(data, 0, limits=limits)
    return whole(data, term, end)


def whole(data: bytes | bytearray | memoryview, term: Term, end: int) -> Term:
    """``term`` if it ended at the end of ``data``; raises DecodeError otherwise."""
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
                return term(data, pos + 1, limits.max_depth, ATOMS, READERS)
        except _ESCAPES as exc:
            raise _translate(exc, data, pos) from None
        return _decode_at(data, pos, limits, READERS)
    return _decode_view(data, pos, limits, READERS)


class DecodeFrom(Protocol):
    """``decode_from(data, pos=0) -> (term, offset after it)``, options bound."""

    def __call__(
        self, data: bytes | bytearray | memoryview, pos: int = 0, /
    ) -> tuple[Term, int]: ...


def make_decode_from(none_atom: str, limits: DecodeLimits) -> DecodeFrom:
    """:func:`decode_from` with ``limits`` bound, where the atom ``none_atom`` decodes
    as None; ``none_atom`` must be a valid atom name other than true and false
    (ConfigError otherwise)."""
    readers, atoms = _readers_for(none_atom)
    depth = limits.max_depth

    def decode_from(data: bytes | bytearray | memoryview, pos: int = 0) -> tuple[Term, int]:
        if type(data) is bytes:
            try:  # the hot path, as in the module's decode_from
                if data[pos] == 131 and data[pos + 1] != 80 and pos >= 0:
                    return term(data, pos + 1, depth, atoms, readers)
            except _ESCAPES as exc:
                raise _translate(exc, data, pos) from None
            return _decode_at(data, pos, limits, readers)
        return _decode_view(data, pos, limits, readers)

    return decode_from


def _decode_view(
    data: bytes | bytearray | memoryview,
    pos: int,
    limits: DecodeLimits,
    readers: tuple[Reader, ...],
) -> tuple[Term, int]:
    try:
        return _decode_at(_as_buffer(data), pos, limits, readers)
    except DecodeError as exc:
        message = str(exc)
    # Raised outside the handler so that no traceback keeps a view of ``data`` alive:
    # the caller may resize its bytearray as soon as it has caught the error.
    raise DecodeError(message)


#: What readers let escape: fixed-width reads past the end, and exhausted resources.
_ESCAPES = (IndexError, struct.error, RecursionError, MemoryError)


def _readers_for(none_atom: str) -> tuple[tuple[Reader, ...], dict[bytes, Any]]:
    tables = _TABLES.get(none_atom)
    if tables is None:
        tables = make_readers(check_none_atom(none_atom))
        if len(_TABLES) < _MAX_TABLES:
            _TABLES[none_atom] = tables
    return tables


def _decode_at(
    buf: Buffer, pos: int, limits: DecodeLimits, readers: tuple[Reader, ...]
) -> tuple[Term, int]:
    """12.1: the version byte, then a term or a compressed term."""
    try:
        if buf[pos] != 131 or pos < 0:
            raise _no_version(buf, pos)
        if buf[pos + 1] == 80:
            return _compressed(buf, pos + 2, limits, readers)
        return readers[buf[pos + 1]](buf, pos + 2, limits.max_depth)
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


def _compressed(
    data: Buffer, pos: int, limits: DecodeLimits, readers: tuple[Reader, ...]
) -> tuple[Term, int]:
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
    term, end = _decode_inner(readers, inner, limits.max_depth, pos - 2)
    if end != size:
        raise DecodeError(f"compressed term at offset {pos - 2} has trailing bytes")
    return term, len(data) - len(inflater.unused_data)


def _decode_inner(
    readers: tuple[Reader, ...], inner: bytes, budget: int, where: int
) -> tuple[Term, int]:
    """Offsets in errors from here on count from the start of the decompressed data."""
    try:
        return readers[inner[0]](inner, 1, budget)
    except (IndexError, struct.error):
        raise DecodeError(f"compressed term at offset {where} is truncated inside") from None
    except DecodeError as exc:
        raise DecodeError(f"inside the compressed term at offset {where}: {exc}") from None
