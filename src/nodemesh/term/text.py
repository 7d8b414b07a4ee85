"""Erlang's text form of a term, on one line: what ``io:format("~tp", [T])`` prints.

Used where a person reads terms (``nodemesh subscribe`` prints each message this way).
Pids, references and ports print with their node name, since there is no local node
index to print: ``<a@h.80.0>``, ``#Ref<a@h.3.2.1>``, ``#Port<a@h.7>``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from nodemesh.term.types import (
    Atom,
    BitBinary,
    ExportFun,
    FrozenList,
    ImproperList,
    OpaqueFun,
    Pid,
    Port,
    Reference,
)

__all__ = ["erlang_text"]

_BARE_ATOM = re.compile(r"[a-z][a-zA-Z0-9_@]*\Z")
#: Reserved words (erl_scan): an atom spelled like one must be quoted.
_RESERVED = frozenset(
    {
        "after", "and", "andalso", "band", "begin", "bnot", "bor", "bsl", "bsr", "bxor",
        "case", "catch", "cond", "div", "end", "fun", "if", "let", "maybe", "not", "of",
        "or", "orelse", "receive", "rem", "try", "when", "xor",
    }
)  # fmt: skip
_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\\": "\\\\", "\x1b": "\\e"}


def erlang_text(term: Any) -> str:
    """The term as Erlang source text (``~tp`` without line breaks)."""
    if term is True or term is False:
        return "true" if term else "false"
    if term is None:
        return "undefined"  # what None encodes as
    if isinstance(term, Atom):
        return _atom(term)
    if isinstance(term, int):
        return str(term)
    if isinstance(term, float):
        return repr(term) if math.isfinite(term) else str(term)
    if isinstance(term, str):
        return _binary(term.encode())  # a str is sent as a UTF-8 binary
    if isinstance(term, bytes | bytearray | memoryview):
        return _binary(bytes(term))
    return _compound(term)


def _compound(term: Any) -> str:
    if isinstance(term, list | FrozenList):
        return _list(list(term))
    if isinstance(term, tuple):
        return "{" + ",".join(map(erlang_text, term)) + "}"
    if isinstance(term, Mapping):
        pairs = (f"{erlang_text(k)} => {erlang_text(v)}" for k, v in term.items())
        return "#{" + ",".join(pairs) + "}"
    if isinstance(term, ImproperList):
        head = ",".join(map(erlang_text, term.elements))
        return f"[{head}|{erlang_text(term.tail)}]"
    if isinstance(term, Pid | Reference):
        return str(term)  # <node.id.serial>, #Ref<node.ids>: the node name, not an index
    if isinstance(term, Port):
        return f"#Port<{term.node}.{term.id}>"
    if isinstance(term, ExportFun):
        return f"fun {_atom(term.module)}:{_atom(term.function)}/{term.arity}"
    if isinstance(term, OpaqueFun):
        return "#Fun<>"
    if isinstance(term, BitBinary):
        whole = [str(byte) for byte in term.data[:-1]]
        return "<<" + ",".join([*whole, f"{term.data[-1] >> (8 - term.bits)}:{term.bits}"]) + ">>"
    return repr(term)


def _atom(text: str) -> str:
    if _BARE_ATOM.match(text) and text not in _RESERVED:
        return text
    return "'" + _escape(text, "'") + "'"


def _binary(data: bytes) -> str:
    """``<<"text">>`` when the bytes are printable UTF-8 (``/utf8`` beyond ASCII), else
    the byte values."""
    try:
        text = data.decode()
    except UnicodeDecodeError:
        text = ""
    if not data:
        return "<<>>"
    if not text or not all(c.isprintable() or c in _ESCAPES for c in text):
        return "<<" + ",".join(map(str, data)) + ">>"
    suffix = "" if text.isascii() else "/utf8"
    return f'<<"{_escape(text, chr(34))}"{suffix}>>'


def _list(items: list[Any]) -> str:
    if items and all(type(c) is int and (32 <= c < 127 or c in (9, 10, 13)) for c in items):
        return '"' + _escape("".join(map(chr, items)), '"') + '"'
    return "[" + ",".join(map(erlang_text, items)) + "]"


def _escape(text: str, quote: str) -> str:
    out = []
    for char in text:
        if char == quote:
            out.append("\\" + quote)
        else:
            out.append(_ESCAPES.get(char, char))
    return "".join(out)
