"""Term-format options chosen once: which atom is Python's None, and the decode limits.

The module functions (:func:`~nodemesh.term.encode`, :func:`~nodemesh.term.decode_from`,
...) use the defaults: Erlang's ``undefined`` is None. Peers written in Elixir say ``nil``
instead; ``TermCodec(none_atom="nil")`` encodes and decodes for them. Its functions are
built when it is made, so using it costs no more per call than the module functions:
a connection keeps one and calls ``codec.encode_into(term, out)`` and
``codec.decode_from(frame, pos)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from nodemesh.errors import ConfigError
from nodemesh.term._atoms import DEFAULT_NONE_ATOM, check_none_atom
from nodemesh.term.decode import (
    DEFAULT_LIMITS,
    DecodeFrom,
    DecodeLimits,
    make_decode_from,
    whole,
)
from nodemesh.term.encode import make_encode_into, none_bytes
from nodemesh.term.types import Term

__all__ = ["ELIXIR", "ERLANG", "TermCodec"]

Data = bytes | bytearray | memoryview


@dataclass(frozen=True, slots=True)
class TermCodec:
    """Encoding and decoding with ``none_atom`` standing for None, and ``limits``.

    ``none_atom``: the atom Python's ``None`` is written as, and the one read back as
    ``None``: ``"undefined"`` (Erlang's convention, the default) or ``"nil"`` (Elixir's
    ``nil``); any other atom name but ``true`` and ``false`` is accepted. Other atoms,
    ``nil`` included under the default, decode as :class:`~nodemesh.term.Atom`.

    Raises :class:`~nodemesh.errors.ConfigError` on construction for a ``none_atom`` that
    cannot stand for None, or ``limits`` that are not a ``DecodeLimits``.
    """

    none_atom: str = DEFAULT_NONE_ATOM
    limits: DecodeLimits = DEFAULT_LIMITS
    #: ``encode_into(term, out)``: append 131 and ``term``; raises EncodeError, leaving
    #: ``out`` unchanged.
    encode_into: Callable[[Term, bytearray], None] = field(init=False, repr=False, compare=False)
    #: The encoded atom None is written as: ``write_term(term, parts, codec.none_encoded)``
    #: (:func:`nodemesh.term.encode.write_term`) appends a term's pieces to a list.
    none_encoded: bytes = field(init=False, repr=False, compare=False)
    #: ``decode_from(data, pos=0) -> (term, end)``: the term at ``pos``; raises DecodeError.
    decode_from: DecodeFrom = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_none_atom(self.none_atom)
        if not isinstance(self.limits, DecodeLimits):
            raise ConfigError(f"limits must be a DecodeLimits, not {type(self.limits).__name__}")
        object.__setattr__(self, "encode_into", make_encode_into(self.none_atom))
        object.__setattr__(self, "none_encoded", none_bytes(self.none_atom))
        object.__setattr__(self, "decode_from", make_decode_from(self.none_atom, self.limits))

    def encode(self, term: Term) -> bytes:
        """131, then ``term``. Raises EncodeError if it has no Erlang form."""
        out = bytearray()
        self.encode_into(term, out)
        return bytes(out)

    def decode(self, data: Data) -> Term:
        """The one term filling ``data``. Raises DecodeError if malformed, beyond the
        limits, or followed by trailing bytes."""
        term, end = self.decode_from(data, 0)
        return whole(data, term, end)


#: Erlang's conventions: None is ``undefined`` (the module functions do the same).
ERLANG = TermCodec()
#: Elixir's conventions: None is ``nil``.
ELIXIR = TermCodec(none_atom="nil")
