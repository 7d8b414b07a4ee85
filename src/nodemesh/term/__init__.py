"""The Erlang external term format: Python values to bytes and back.

See ``docs/terms.md`` for the mapping between Python and Erlang values::

    encode(term) -> bytes                      131, then the term
    encode_into(term, out)                     the same, appended to a bytearray
    encode_once(term) -> Encoded               encoded now, embedded as is in later terms
    decode(data, *, limits) -> term            exactly one term filling data
    decode_from(data, pos, *, limits)          one term at pos -> (term, offset after)
    TermCodec(none_atom="nil", limits=...)     the same four, None being nil (Elixir)
    elixir_module("MyApp.Worker")              Atom('Elixir.MyApp.Worker')

Encoding raises :class:`~nodemesh.errors.EncodeError`; decoding raises only
:class:`~nodemesh.errors.DecodeError`, whatever the bytes.
"""

from nodemesh.term._atoms import check_none_atom
from nodemesh.term.codec import ELIXIR, ERLANG, TermCodec
from nodemesh.term.decode import DEFAULT_LIMITS, DecodeLimits, decode, decode_from
from nodemesh.term.elixir import elixir_module, elixir_module_name
from nodemesh.term.encode import Encoded, encode, encode_into, encode_once
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
    "DEFAULT_LIMITS",
    "ELIXIR",
    "ERLANG",
    "Atom",
    "BitBinary",
    "DecodeLimits",
    "Encoded",
    "ExportFun",
    "FrozenList",
    "FrozenMap",
    "ImproperList",
    "OpaqueFun",
    "Pid",
    "Port",
    "Reference",
    "Term",
    "TermCodec",
    "check_none_atom",
    "decode",
    "decode_from",
    "elixir_module",
    "elixir_module_name",
    "encode",
    "encode_into",
    "encode_once",
]
