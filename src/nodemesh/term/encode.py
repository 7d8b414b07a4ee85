"""Encoding of Python values in the Erlang external term format (erts ``erl_ext_dist``).

Theory of operation
-------------------
One recursive function, :func:`_write_all`, appends terms, tag first, to a list of byte
strings that the caller joins once (cheaper than growing a bytearray piece by piece). It
writes the common types itself, tested by exact type (``type(True)`` is ``bool``, not
``int``, so subclass order comes for free): one function instead of a call per term
measured cheaper, pure and compiled (docs/benchmarks.md, "Session 4: the sender"). The
other exact types go through the table ``_LEAVES`` (writers ``(term, out)`` of terms
holding no others, in ``_leaf_writers``) or ``_NESTED`` (containers, ``(term, out,
depth, none)``). Values of other types go through :func:`_nested_for`, which tests
``isinstance`` in an order where ``bool`` precedes ``int``, ``Atom`` precedes ``str`` and
``FrozenList`` precedes ``tuple``, and remembers the writer it found for that type; what
matches nothing raises :class:`EncodeError`.

Nesting is bounded by an explicit ``depth`` (at most :data:`MAX_DEPTH` containers deep),
not by Python's recursion limit: calls between compiled functions do not count against
that limit, so a list that contains itself would overflow the C stack of the compiled
build. ``none`` (the encoded atom Python's ``None`` is written as) is passed down too,
so one set of writers serves every ``none_atom``.

Section numbers in comments are those of ``erl_ext_dist``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from itertools import chain
from typing import Any

from nodemesh.errors import EncodeError
from nodemesh.term._atoms import DEFAULT_NONE_ATOM, check_none_atom
from nodemesh.term._leaf_writers import (
    _ATOMS,
    _SMALL_INTS,
    LEAVES,
    MAX_U32,
    TAG_U8,
    TAG_U16,
    TAG_U32,
    Out,
    Writer,
    _atom,
    _pack_tag_i32,
    _pack_tag_u32,
    _write_int,
    atom_bytes,
    length,
)
from nodemesh.term.types import (
    Atom,
    BitBinary,
    ExportFun,
    FrozenList,
    FrozenMap,
    ImproperList,
    OpaqueFun,
    Pid,
    Port,
    Reference,
    Term,
)

__all__ = [
    "MAX_DEPTH",
    "Encoded",
    "encode",
    "encode_into",
    "encode_once",
    "make_encode_into",
    "none_bytes",
    "write_term",
]

#: How many containers deep a term may nest (a list that contains itself stops here).
#: The pure build takes one Python frame per level (two for ImproperList and subclasses
#: such as namedtuple or OrderedDict): 400 levels stay below Python's default recursion
#: limit (1000) with room for the caller's stack, so both builds refuse the same terms.
#: (Our own decoder reads 256 levels by default: ``DecodeLimits.max_depth``.)
MAX_DEPTH = 400

_SMALL_TUPLES = tuple(TAG_U8.pack(104, n) for n in range(256))  # 12.13 SMALL_TUPLE_EXT
_JUST_INT = {int}
_BINARY_HEADS_SIZE = 256  # 12.19 BINARY_EXT's tag and length for the short ones, kept
_BINARY_HEADS = tuple(TAG_U32.pack(109, n) for n in range(_BINARY_HEADS_SIZE))
_DEFAULT_NONE = atom_bytes(DEFAULT_NONE_ATOM)
_chain = chain.from_iterable  # a map's items as key, value, key, value, ...

Nested = Callable[[Any, Out, int, bytes], None]


def encode(term: Term) -> bytes:
    """Encode ``term`` as an external term: the version byte 131, then the term.

    ``None`` is written as ``undefined`` (see :class:`~nodemesh.term.TermCodec` for
    ``nil``). Raises :class:`EncodeError` if the value (or anything inside it) has no
    Erlang form, or nests more than :data:`MAX_DEPTH` containers deep.
    """
    parts: Out = []
    write_term(term, parts)
    return b"".join(parts)


def encode_into(term: Term, out: bytearray) -> None:
    """Append 131 and the encoded ``term`` to ``out``.

    Raises :class:`EncodeError` as :func:`encode` does; ``out`` is then left unchanged.
    """
    parts: Out = []
    write_term(term, parts)
    out += b"".join(parts)


def write_term(term: Term, parts: Out, none: bytes = _DEFAULT_NONE) -> None:
    """Append 131 and the encoding of ``term`` to ``parts``, byte strings to be joined
    (None is the atom encoded as ``none``). Appending to a list and joining once costs
    less than growing a bytearray by each piece (measured: docs/benchmarks.md, session 4).

    Raises :class:`EncodeError` as :func:`encode` does; ``parts`` may then hold the
    beginning of the encoding.
    """
    parts.append(b"\x83")  # 12.1: the version byte
    try:
        if type(term) is tuple and len(term) < 256:  # most messages: one call less
            parts.append(_SMALL_TUPLES[len(term)])
            _write_all(term, parts, 1, none)
        else:
            _write_all((term,), parts, 0, none)
    except RecursionError:  # the pure build, called from deep in a stack
        raise _too_deep() from None


class Encoded:
    """A term encoded once by :func:`encode_once`, written verbatim wherever it is
    encoded again: a message sent to many processes (a pub/sub broadcast) is encoded once."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data  # the term's encoding, without the version byte

    def __repr__(self) -> str:
        return f"Encoded({len(self.data)} bytes)"


def encode_once(term: Term, *, none_atom: str = DEFAULT_NONE_ATOM) -> Encoded:
    """``term`` encoded now (None as ``none_atom``), to be embedded as is in later
    encodings. Raises :class:`EncodeError` as :func:`encode` does, and ConfigError for a
    ``none_atom`` that cannot stand for None."""
    parts: Out = []
    write_term(term, parts, none_bytes(none_atom))
    return Encoded(b"".join(parts[1:]))


def _write_encoded(term: Encoded, out: Out) -> None:
    out.append(term.data)


def none_bytes(none_atom: str) -> bytes:
    """The encoded atom ``none_atom``, which must be a valid atom name other than true
    and false (ConfigError otherwise): what :func:`write_term` writes None as."""
    if none_atom == DEFAULT_NONE_ATOM:
        return _DEFAULT_NONE
    return atom_bytes(check_none_atom(none_atom))


def make_encode_into(none_atom: str) -> Callable[[Term, bytearray], None]:
    """:func:`encode_into` writing None as the atom ``none_atom``, which must be a
    valid atom name other than true and false (ConfigError otherwise)."""
    none = none_bytes(none_atom)
    if none is _DEFAULT_NONE:
        return encode_into

    def encode_into_with_none(term: Term, out: bytearray) -> None:
        parts: Out = []
        write_term(term, parts, none)
        out += b"".join(parts)

    return encode_into_with_none


def _too_deep() -> EncodeError:
    return EncodeError("the term nests too deeply, or contains itself")


def _write_all(terms: Iterable[Any], out: Out, depth: int, none: bytes) -> None:
    """Append each of ``terms``, ``depth`` containers deep. The common types are written
    here and a container's elements by a call of this function for the container, not
    a call per element: the hot loop of every send (measured; longer than a function
    should be for that). One Python frame per level of tuples, lists and maps."""
    for term in terms:
        kind = type(term)
        if kind is Atom:
            out.append(_ATOMS.get(term) or _atom(term))
        elif kind is int:
            if 0 <= term <= 255:
                out.append(_SMALL_INTS[term])
            elif -0x80000000 <= term <= 0x7FFFFFFF:
                out.append(_pack_tag_i32(98, term))  # 12.6 INTEGER_EXT
            else:
                _write_int(term, out)
        elif kind is bytes:
            size = len(term)
            if size < _BINARY_HEADS_SIZE:
                out.append(_BINARY_HEADS[size])
            else:
                out.append(
                    _pack_tag_u32(109, size if size <= MAX_U32 else length(size, "a binary"))
                )
            out.append(term)
        elif kind is tuple:
            if depth >= MAX_DEPTH:
                raise _too_deep()
            size = len(term)
            out.append(
                _SMALL_TUPLES[size] if size < 256 else TAG_U32.pack(105, length(size, "a tuple"))
            )
            _write_all(term, out, depth + 1, none)
        elif kind is list:
            if not term:
                out.append(b"j")  # NIL_EXT
            elif not _wrote_string(term, out):
                if depth >= MAX_DEPTH:
                    raise _too_deep()
                out.append(TAG_U32.pack(108, length(len(term), "a list")))
                _write_all(term, out, depth + 1, none)
                out.append(b"j")
        elif term is None:
            out.append(none)
        elif kind is dict:
            if depth >= MAX_DEPTH:
                raise _too_deep()
            out.append(TAG_U32.pack(116, length(len(term), "a map")))
            _write_all(_chain(term.items()), out, depth + 1, none)
        else:
            leaf = _LEAVES.get(kind)
            if leaf is not None:
                leaf(term, out)
            else:
                (_NESTED.get(kind) or _nested_for(term))(term, out, depth, none)


# --- Lists (12.17-12.19) ----------------------------------------------------------------


def _write_list(term: list[Any] | FrozenList, out: Out, depth: int, none: bytes) -> None:
    """NIL_EXT, STRING_EXT for up to 65535 ints in 0..255 (as erts does), else LIST_EXT."""
    size = len(term)
    if not size:
        out.append(b"j")
        return
    if _wrote_string(term, out):
        return
    if depth >= MAX_DEPTH:
        raise _too_deep()
    out.append(TAG_U32.pack(108, length(size, "a list")))
    _write_all(term, out, depth + 1, none)
    out.append(b"j")


def _wrote_string(term: list[Any] | FrozenList, out: Out) -> bool:
    """Write a non-empty list of up to 65535 exact ints in 0..255 as STRING_EXT (as erts
    does) and say so; write nothing and return False for any other list."""
    size = len(term)
    if size < 65536 and set(map(type, term)) == _JUST_INT:
        try:
            chars = bytes(term)
        except ValueError:
            return False  # an int outside 0..255
        out.append(TAG_U16.pack(107, size))
        out.append(chars)
        return True
    return False


def _write_improper(term: ImproperList, out: Out, depth: int, none: bytes) -> None:
    if not term.elements:
        raise EncodeError("an ImproperList needs at least one element before its tail")
    if depth >= MAX_DEPTH:
        raise _too_deep()
    out.append(TAG_U32.pack(108, length(len(term.elements), "a list")))
    _write_all((*term.elements, term.tail), out, depth + 1, none)


# --- Maps (12.14-12.15) -----------------------------------------------------------------


def _write_map(term: Mapping[Any, Any], out: Out, depth: int, none: bytes) -> None:
    if depth >= MAX_DEPTH:
        raise _too_deep()
    out.append(TAG_U32.pack(116, length(len(term), "a map")))
    _write_all(_chain(term.items()), out, depth + 1, none)


def _write_tuple(term: tuple[Any, ...], out: Out, depth: int, none: bytes) -> None:
    """A tuple subclass (a namedtuple); _write_all writes exact tuples itself."""
    if depth >= MAX_DEPTH:
        raise _too_deep()
    size = len(term)
    out.append(_SMALL_TUPLES[size] if size < 256 else TAG_U32.pack(105, length(size, "a tuple")))
    _write_all(term, out, depth + 1, none)


# --- Other types -------------------------------------------------------------------------


def _nested_for(term: Term) -> Nested:
    """The writer for a subclass of a supported type, in an order where subclasses
    (bool, Atom, FrozenList) come before the types they derive from. The tables keep it
    for that subclass (a list of IntEnum members then takes the exact-type path), up to
    ``_MAX_WRITERS`` types each, so that classes made on the fly cannot grow them for
    ever."""
    kind = type(term)
    for base, exact, convert in _BY_ISINSTANCE:
        if isinstance(term, base):
            leaf = _LEAVES.get(exact)
            if leaf is None:  # a container: its writer takes any subclass as it is
                nested = _NESTED[exact]
            else:
                if convert is not None:
                    leaf = _as(convert, leaf)
                if len(_LEAVES) < _MAX_WRITERS:
                    _LEAVES[kind] = leaf
                nested = _as_nested(leaf)
            if len(_NESTED) < _MAX_WRITERS:
                _NESTED[kind] = nested
            return nested
    raise EncodeError(f"a {kind.__module__}.{kind.__qualname__} has no Erlang term form")


def _as(convert: Callable[[Any], Any], writer: Writer) -> Writer:
    return lambda term, out: writer(convert(term), out)


def _as_nested(writer: Writer) -> Nested:
    return lambda term, out, depth, none: writer(term, out)


#: Writers by exact type of the terms that contain no others, and of subclasses met.
_LEAVES: dict[type, Writer] = {**LEAVES, Encoded: _write_encoded}
#: Writers of containers by exact type (for subclasses: exact ones are written by _write),
#: and of subclasses met.
_NESTED: dict[type, Nested] = {
    tuple: _write_tuple,
    list: _write_list,
    FrozenList: _write_list,
    dict: _write_map,
    FrozenMap: _write_map,
    ImproperList: _write_improper,
}
_MAX_WRITERS = 64  # per table: the exact types above, and subclasses met since

# Subclasses: (kind, the table entry that writes it, a conversion to apply first or None).
# Order matters (bool < int, Atom < str, FrozenList < tuple).
_BY_ISINSTANCE: tuple[tuple[type | tuple[type, ...], type, Callable[[Any], Any] | None], ...] = (
    (bool, bool, bool),
    (Atom, Atom, None),
    (str, str, str),
    (int, int, int),
    (float, float, float),
    ((bytes, bytearray), bytes, bytes),
    (FrozenList, FrozenList, None),
    (tuple, tuple, None),
    (list, list, None),
    (Mapping, dict, None),
    (Pid, Pid, None),
    (Reference, Reference, None),
    (Port, Port, None),
    (BitBinary, BitBinary, None),
    (ImproperList, ImproperList, None),
    (ExportFun, ExportFun, None),
    (OpaqueFun, OpaqueFun, None),
)
