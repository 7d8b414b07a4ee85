"""Encoding of Python values in the Erlang external term format (erts ``erl_ext_dist``).

Theory of operation
-------------------
A table of writers maps exact Python types to writers ``(term, out)`` that append the
term, tag first, to a bytearray. An exact-type lookup is both the fastest dispatch and
the one that gets subclass order right for free (``type(True)`` is ``bool``, not
``int``). Values of other types go through :func:`_writer_for`, which tests
``isinstance`` in an order where ``bool`` precedes ``int``, ``Atom`` precedes ``str`` and
``FrozenList`` precedes ``tuple``; what matches nothing raises :class:`EncodeError`.
Writers of terms holding no others live in ``_leaf_writers``; the containers are here.

There is one table per ``none_atom`` (the atom ``None`` is written as): ``_WRITERS`` for
the default ``undefined``, others built on first use by :func:`_make_writers`, whose
container writers close over their own table so that a nested ``None`` is written as the
outer call asked, with no option passed down the recursion.

Section numbers in comments are those of ``erl_ext_dist``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from nodemesh.errors import EncodeError
from nodemesh.term._atoms import DEFAULT_NONE_ATOM, check_none_atom
from nodemesh.term._leaf_writers import LEAVES, TAG_U8, TAG_U16, TAG_U32, Writer, atom_bytes, length
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

__all__ = ["Encoded", "encode", "encode_into", "encode_once", "make_encode_into"]

_SMALL_TUPLES = tuple(TAG_U8.pack(104, n) for n in range(256))  # 12.13 SMALL_TUPLE_EXT
_JUST_INT = {int}


def encode(term: Term) -> bytes:
    """Encode ``term`` as an external term: the version byte 131, then the term.

    ``None`` is written as ``undefined`` (see :class:`~nodemesh.term.TermCodec` for
    ``nil``). Raises :class:`EncodeError` if the value (or anything inside it) has no
    Erlang form.
    """
    out = bytearray()
    encode_into(term, out)
    return bytes(out)


def encode_into(term: Term, out: bytearray) -> None:
    """Append 131 and the encoded ``term`` to ``out`` (framing without copies).

    Raises :class:`EncodeError` as :func:`encode` does; ``out`` is then left unchanged.
    """
    start = len(out)
    out.append(131)  # 12.1: the version byte
    try:
        (_WRITERS.get(type(term)) or _writer_for(term, _WRITERS))(term, out)
    except BaseException as exc:
        del out[start:]
        if isinstance(exc, RecursionError):
            raise _too_deep() from None
        raise


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
    out = bytearray()
    (encode_into if none_atom == DEFAULT_NONE_ATOM else make_encode_into(none_atom))(term, out)
    return Encoded(bytes(out[1:]))


def _write_encoded(term: Encoded, out: bytearray) -> None:
    out += term.data


def make_encode_into(none_atom: str) -> Callable[[Term, bytearray], None]:
    """:func:`encode_into` writing None as the atom ``none_atom``, which must be a
    valid atom name other than true and false (ConfigError otherwise)."""
    writers = _WRITERS if none_atom == DEFAULT_NONE_ATOM else _writers_for(none_atom)

    def encode_into(term: Term, out: bytearray) -> None:
        start = len(out)
        out.append(131)  # 12.1: the version byte
        try:
            (writers.get(type(term)) or _writer_for(term, writers))(term, out)
        except BaseException as exc:
            del out[start:]
            if isinstance(exc, RecursionError):
                raise _too_deep() from None
            raise

    return encode_into


def _too_deep() -> EncodeError:
    return EncodeError("the term nests too deeply, or contains itself")


def _writers_for(none_atom: str) -> dict[type, Writer]:
    writers = _TABLES.get(none_atom)
    if writers is None:
        writers = _make_writers(check_none_atom(none_atom))
        if len(_TABLES) < _MAX_TABLES:
            _TABLES[none_atom] = writers
    return writers


def _writer_for(term: Term, writers: dict[type, Writer]) -> Writer:
    """The writer for a subclass of a supported type, in an order where subclasses
    (bool, Atom, FrozenList) come before the types they derive from. The table keeps it
    for that subclass (a list of IntEnum members then takes the exact-type path), up to
    ``_MAX_WRITERS`` types, so that classes made on the fly cannot grow it for ever."""
    for kind, exact, convert in _BY_ISINSTANCE:
        if isinstance(term, kind):
            writer = writers[exact]
            if convert is not None:
                writer = _as(convert, writer)
            if len(writers) < _MAX_WRITERS:
                writers[type(term)] = writer
            return writer
    kind = type(term)
    raise EncodeError(f"a {kind.__module__}.{kind.__qualname__} has no Erlang term form")


def _list_writer(writers: dict[type, Writer]) -> Writer:
    def write_list(term: list[Any] | FrozenList, out: bytearray) -> None:
        """NIL_EXT, STRING_EXT for up to 65535 ints in 0..255 (as erts does), else LIST_EXT."""
        size = len(term)
        if not size:
            out.append(106)
            return
        if size < 65536 and set(map(type, term)) == _JUST_INT:
            try:
                chars = bytes(term)
            except ValueError:
                pass  # an int outside 0..255
            else:
                out += TAG_U16.pack(107, size)
                out += chars
                return
        out += TAG_U32.pack(108, length(size, "a list"))
        get = writers.get
        for item in term:
            (get(type(item)) or _writer_for(item, writers))(item, out)
        out.append(106)

    return write_list


def _improper_writer(writers: dict[type, Writer]) -> Writer:
    def write_improper(term: ImproperList, out: bytearray) -> None:
        if not term.elements:
            raise EncodeError("an ImproperList needs at least one element before its tail")
        out += TAG_U32.pack(108, length(len(term.elements), "a list"))
        get = writers.get
        for item in (*term.elements, term.tail):
            (get(type(item)) or _writer_for(item, writers))(item, out)

    return write_improper


# --- Tuples and maps (12.13-12.15) -----------------------------------------------------


def _tuple_writer(writers: dict[type, Writer]) -> Writer:
    def write_tuple(term: tuple[Any, ...], out: bytearray) -> None:
        size = len(term)
        out += _SMALL_TUPLES[size] if size < 256 else TAG_U32.pack(105, length(size, "a tuple"))
        get = writers.get
        for item in term:
            (get(type(item)) or _writer_for(item, writers))(item, out)

    return write_tuple


def _map_writer(writers: dict[type, Writer]) -> Writer:
    def write_map(term: Mapping[Any, Any], out: bytearray) -> None:
        out += TAG_U32.pack(116, length(len(term), "a map"))
        get = writers.get
        for key, value in term.items():
            (get(type(key)) or _writer_for(key, writers))(key, out)
            (get(type(value)) or _writer_for(value, writers))(value, out)

    return write_map


def _as(convert: Callable[[Any], Any], writer: Writer) -> Writer:
    return lambda term, out: writer(convert(term), out)


#: Writers of the terms that contain no others, whatever the none_atom.


def _make_writers(none_atom: str) -> dict[type, Writer]:
    """The table of writers where None is written as the atom ``none_atom``."""
    none = atom_bytes(none_atom)

    def write_none(term: None, out: bytearray) -> None:
        out += none

    writers = dict(LEAVES)
    write_list, write_map = _list_writer(writers), _map_writer(writers)
    writers.update(
        {
            type(None): write_none,
            tuple: _tuple_writer(writers),
            list: write_list,
            FrozenList: write_list,
            dict: write_map,
            FrozenMap: write_map,
            ImproperList: _improper_writer(writers),
            Encoded: _write_encoded,
        }
    )
    return writers


_WRITERS = _make_writers(DEFAULT_NONE_ATOM)
_TABLES: dict[str, dict[type, Writer]] = {DEFAULT_NONE_ATOM: _WRITERS}
_MAX_TABLES = 8  # beyond this many none_atom choices, build without keeping
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
