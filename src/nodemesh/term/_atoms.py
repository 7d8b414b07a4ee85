"""Decoding atoms (erl_ext_dist 12.2, 12.30-12.33), and which atom is Python's None.

Erlang has no null; by convention Erlang code says ``undefined`` and Elixir says ``nil``
(a plain atom: ``nil === :nil``). The ``none_atom`` option names the atom that is
Python's ``None`` in both directions; ``true`` and ``false`` are always the bools.

Each choice gets its own readers and caches from :func:`atom_readers`, so a cached value
never leaks from one choice to another, and a hit costs one dictionary lookup.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nodemesh.errors import ConfigError, DecodeError
from nodemesh.term._reading import MISS, Buffer, Reader, check_end, remember
from nodemesh.term.types import Atom, Term

#: Erlang's convention, and the default: ``None`` is ``undefined`` (Elixir: ``nil``).
DEFAULT_NONE_ATOM = "undefined"

_U16 = struct.Struct(">H").unpack_from


def check_none_atom(value: object) -> str:
    """Return ``value`` if it can be the atom for ``None``: a non-empty atom name of at
    most 255 characters, other than ``true`` and ``false``. Raises ConfigError."""
    if not isinstance(value, str):
        raise ConfigError(f"none_atom must be an atom name (str), not {type(value).__name__}")
    if not 0 < len(value) <= 255 or value in ("true", "false"):
        raise ConfigError(
            f"none_atom {value[:40]!r} cannot stand for None: use 'undefined' (Erlang) or "
            "'nil' (Elixir), or another non-empty atom name other than true and false"
        )
    return str(value)


@dataclass(frozen=True, slots=True)
class AtomReaders:
    """The atom decoding of one ``none_atom`` choice.

    ``cache`` maps the UTF-8 bytes of an atom to its value (a hit skips decoding; a miss
    returns ``MISS``); ``read(data, start, end, utf8, tagpos)`` decodes the text between
    ``start`` and ``end``; ``by_tag`` holds the readers of the four atom tags.
    """

    cache: dict[bytes, Any]
    read: Callable[[Buffer, int, int, bool, int], Term]
    by_tag: dict[int, Reader]


def atom_readers(none: str | None) -> AtomReaders:
    """Readers for which the atom ``none`` decodes as None (no atom does when None)."""
    utf8: dict[bytes, Any] = {}
    latin1: dict[bytes, Any] = {}
    special: dict[str, Any] = {"true": True, "false": False}
    if none is not None:
        special[none] = None

    def read(data: Buffer, start: int, end: int, is_utf8: bool, tagpos: int) -> Term:
        check_end(data, end, tagpos)
        cache = utf8 if is_utf8 else latin1
        raw = bytes(data[start:end])
        value = cache.get(raw, MISS)
        if value is MISS:
            text = _text(raw, is_utf8, tagpos)
            value = special.get(text, MISS)
            if value is MISS:
                value = Atom(text)
            remember(cache, raw, value)
        return value

    def small_utf8(data: Buffer, pos: int, budget: int) -> tuple[Term, int]:
        end = pos + 1 + data[pos]  # 12.31 SMALL_ATOM_UTF8_EXT: Len (1 byte), AtomName
        key = data[pos + 1 : end]
        value = utf8.get(key if type(key) is bytes else bytes(key), MISS)
        if value is MISS or end > len(data):
            value = read(data, pos + 1, end, True, pos - 1)
        return value, end

    return AtomReaders(utf8, read, _by_tag(read, small_utf8))


def _by_tag(
    read: Callable[[Buffer, int, int, bool, int], Term], small_utf8: Reader
) -> dict[int, Reader]:
    def utf8(data: Buffer, pos: int, budget: int) -> tuple[Term, int]:
        end = pos + 2 + _U16(data, pos)[0]  # 12.30 ATOM_UTF8_EXT: Len (2 bytes)
        return read(data, pos + 2, end, True, pos - 1), end

    def small_latin1(data: Buffer, pos: int, budget: int) -> tuple[Term, int]:
        end = pos + 1 + data[pos]  # 12.33 SMALL_ATOM_EXT: Latin-1
        return read(data, pos + 1, end, False, pos - 1), end

    def latin1(data: Buffer, pos: int, budget: int) -> tuple[Term, int]:
        end = pos + 2 + _U16(data, pos)[0]  # 12.32 ATOM_EXT: Latin-1
        return read(data, pos + 2, end, False, pos - 1), end

    return {100: latin1, 115: small_latin1, 118: utf8, 119: small_utf8}


def _text(raw: bytes, utf8: bool, tagpos: int) -> str:
    """An atom's text: UTF-8 or Latin-1, at most 255 characters."""
    try:
        text = str(raw, "utf-8" if utf8 else "latin-1")
    except UnicodeDecodeError:
        raise DecodeError(f"atom at offset {tagpos} is not valid UTF-8") from None
    if len(text) > 255:
        raise DecodeError(f"atom at offset {tagpos} is longer than 255 characters")
    return text


#: Node, module and function names are read with no atom standing for None;
#: NAMES_CACHE holds those read so far (UTF-8 bytes to Atom, or a bool for true/false).
_NAME_READERS = atom_readers(None)
_NAMES = _NAME_READERS.by_tag
NAMES_CACHE = _NAME_READERS.cache


def atom_at(data: Buffer, pos: int) -> tuple[Atom, int]:
    """Node, module and function names: an atom tag is required; always an Atom."""
    tag = data[pos]
    if tag not in _NAMES:
        raise DecodeError(f"expected an atom at offset {pos}, got tag {tag}")
    value, end = _NAMES[tag](data, pos + 1, 0)
    if type(value) is bool:
        value = Atom("true" if value else "false")
    return value, end
