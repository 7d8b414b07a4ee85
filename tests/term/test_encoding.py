"""Encoding: the exact bytes chosen for each value, round trips at every boundary, and
the values that have no Erlang form."""

from __future__ import annotations

import enum
import struct
from collections import OrderedDict, namedtuple
from types import MappingProxyType
from typing import Any

import pytest

from nodemesh.errors import EncodeError
from nodemesh.term import (
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
    decode,
    decode_from,
    encode,
    encode_into,
)
from nodemesh.term.encode import MAX_DEPTH

NODE = Atom("nm@host")
NODE_BYTES = b"w\x07nm@host"


def short(value: Any) -> str:
    """A test id: huge ints have no repr (Python caps int-to-str at 4300 digits)."""
    if type(value) is int and value.bit_length() > 64:
        return f"int:{'-' if value < 0 else ''}{value.bit_length()}bits"
    return f"{type(value).__name__}:{repr(value)[:40]}"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, b"w\x04true"),
        (False, b"w\x05false"),
        (None, b"w\x09undefined"),
        (Atom(""), b"w\x00"),
        (Atom("ok"), b"w\x02ok"),
        (0, b"a\x00"),
        (255, b"a\xff"),
        (256, b"b\x00\x00\x01\x00"),
        (-1, b"b\xff\xff\xff\xff"),
        (2**31 - 1, b"b\x7f\xff\xff\xff"),
        (-(2**31), b"b\x80\x00\x00\x00"),
        (2**31, b"n\x04\x00\x00\x00\x00\x80"),
        (-(2**31) - 1, b"n\x04\x01\x01\x00\x00\x80"),
        (2**64, b"n\x09\x00" + bytes(8) + b"\x01"),
        (1.5, b"F\x3f\xf8" + bytes(6)),
        (b"", b"m\x00\x00\x00\x00"),
        (b"ab", b"m\x00\x00\x00\x02ab"),
        ("é", b"m\x00\x00\x00\x02\xc3\xa9"),
        ([], b"j"),
        ([1, 2], b"k\x00\x02\x01\x02"),
        ([True], b"l\x00\x00\x00\x01w\x04truej"),
        ([1, 256], b"l\x00\x00\x00\x02a\x01b\x00\x00\x01\x00j"),
        (ImproperList([1], 2), b"l\x00\x00\x00\x01a\x01a\x02"),
        ((), b"h\x00"),
        ((1, Atom("a")), b"h\x02a\x01w\x01a"),
        ({}, b"t\x00\x00\x00\x00"),
        ({Atom("k"): 1}, b"t\x00\x00\x00\x01w\x01ka\x01"),
        (Pid(NODE, 1, 2, 3), b"X" + NODE_BYTES + struct.pack(">III", 1, 2, 3)),
        (Reference(NODE, 7, (1, 2, 3)), b"Z\x00\x03" + NODE_BYTES + struct.pack(">4I", 7, 1, 2, 3)),
        (Port(NODE, 5, 9), b"Y" + NODE_BYTES + struct.pack(">II", 5, 9)),
        (Port(NODE, 2**40, 9), b"x" + NODE_BYTES + struct.pack(">QI", 2**40, 9)),
        (BitBinary(b"\x80", 1), b"M\x00\x00\x00\x01\x01\x80"),
        (ExportFun(Atom("lists"), Atom("map"), 2), b"qw\x05listsw\x03mapa\x02"),
    ],
    ids=short,
)
def test_exact_encoding(value: Any, expected: bytes) -> None:
    """Each value is written with the tag and layout Erlang itself uses for it."""
    assert encode(value) == b"\x83" + expected


@pytest.mark.parametrize(
    "value",
    [
        0,
        255,
        256,
        -1,
        2**31 - 1,
        2**31,
        -(2**31),
        -(2**31) - 1,
        2**32,
        2**64,
        -(2**64),
        2**2039,
        2**2040,
        -(2**2040),
        3**20000,
        -(7**9000),
        0.0,
        -0.0,
        1.5,
        -2.5e-300,
        5e-324,
        1.7976931348623157e308,
        Atom(""),
        Atom("ok"),
        Atom("héllo"),
        Atom("世界"),
        Atom("a" * 255),
        Atom("é" * 127 + "a"),
        Atom("é" * 128),
        Atom("世" * 255),
        True,
        False,
        b"",
        b"\x00\xff" * 1000,
        [],
        [1, 2, 3],
        [0] * 65535,
        [255] * 65536,
        [1, -1, 2**70, 1.5, Atom("x"), b"y", [], [[]]],
        ImproperList([1, 2], Atom("tail")),
        ImproperList([[]], b"bin"),
        (),
        tuple(range(255)),
        tuple(range(256)),
        (1, (2, (3, (4,)))),
        {},
        {Atom("a"): {Atom("b"): {Atom("c"): []}}},
        {i: i * i for i in range(40)},
        {FrozenList([1, 2]): Atom("x"), FrozenMap({Atom("a"): 1}): [1]},
        {(1, FrozenList([2])): b"k"},
        Pid(NODE, 0, 0, 0),
        Pid(NODE, 2**32 - 1, 2**32 - 1, 2**32 - 1),
        Reference(NODE, 2**32 - 1, (1, 2, 3)),
        Reference(NODE, 1, (1, 2, 3, 4, 5)),
        Reference(NODE, 1, ()),
        Port(NODE, 2**32 - 1, 2**32 - 1),
        Port(NODE, 2**64 - 1, 1),
        BitBinary(b"\xff\x80", 1),
        BitBinary(b"\xfe", 7),
        ExportFun(Atom("m"), Atom("f"), 255),
    ],
    ids=short,
)
def test_round_trip(value: Any) -> None:
    """Decoding what was encoded gives back an equal value of the same type."""
    decoded = decode(encode(value))
    assert decoded == value
    assert type(decoded) is type(value) or isinstance(value, FrozenList | FrozenMap)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Atom("undefined"), None),
        ("text", b"text"),
        (bytearray(b"ab"), b"ab"),
        (memoryview(b"abc")[1:], b"bc"),
        (FrozenList([1, 2]), [1, 2]),
        (FrozenMap({1: 2}), {1: 2}),
        (Atom("true"), True),
        (BitBinary(b"\xff", 8), b"\xff"),
        (BitBinary(b"\xff", 3), BitBinary(b"\xe0", 3)),
        (ImproperList([1], [2, 3]), [1, 2, 3]),
        (ImproperList([1], ImproperList([2], 3)), ImproperList([1, 2], 3)),
    ],
    ids=short,
)
def test_lossy_round_trip(value: Any, expected: Any) -> None:
    """Values with several Python spellings decode to the one the mapping documents."""
    decoded = decode(encode(value))
    assert decoded == expected
    assert type(decoded) is type(expected)


class Colour(enum.IntEnum):
    RED = 1


class MyAtom(Atom):
    __slots__ = ()


class MyStr(str):
    __slots__ = ()


Point = namedtuple("Point", "x y")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Colour.RED, b"a\x01"),
        (MyAtom("a"), b"w\x01a"),
        (MyStr("a"), b"m\x00\x00\x00\x01a"),
        (Point(1, 2), b"h\x02a\x01a\x02"),
        (FrozenList([1, 300]), b"l\x00\x00\x00\x02a\x01b\x00\x00\x01,j"),
        (OrderedDict(a=1), b"t\x00\x00\x00\x01m\x00\x00\x00\x01aa\x01"),
        (MappingProxyType({1: 2}), b"t\x00\x00\x00\x01a\x01a\x02"),
        (memoryview(struct.pack("=H", 1)).cast("H"), b"m\x00\x00\x00\x02" + struct.pack("=H", 1)),
        ([Colour.RED], b"l\x00\x00\x00\x01a\x01j"),  # only exact ints make a STRING_EXT
        ([False, 1], b"l\x00\x00\x00\x02w\x05falsea\x01j"),
    ],
    ids=short,
)
def test_subclasses_follow_their_most_specific_type(value: Any, expected: bytes) -> None:
    """Subclasses encode as their most specific supported type (bool before int, ...)."""
    assert encode(value) == b"\x83" + expected


def test_opaque_fun_is_written_back_unchanged() -> None:
    """An OpaqueFun is re-emitted byte for byte, inside any container."""
    raw = (
        b"p\x00\x00\x00\x34\x01"
        + bytes(16)
        + b"\x00\x00\x00\x00\x00\x00\x00\x00"
        + b"w\x01m"
        + b"a\x00a\x00"
        + b"X"
        + NODE_BYTES
        + bytes(12)
    )
    raw = raw[:1] + struct.pack(">I", len(raw) - 1) + raw[5:]
    fun = decode(b"\x83" + raw)
    assert fun == OpaqueFun(raw)
    assert encode((fun, [fun])) == b"\x83h\x02" + raw + b"l\x00\x00\x00\x01" + raw + b"j"


def test_encode_into_appends_after_existing_bytes() -> None:
    """encode_into appends 131 and the term, leaving what was in the buffer alone."""
    out = bytearray(b"head")
    encode_into((6, Atom("a")), out)
    encode_into(b"x", out)
    assert out == b"head\x83h\x02a\x06w\x01a\x83m\x00\x00\x00\x01x"
    first, end = decode_from(out, 4)
    assert first == (6, Atom("a"))
    assert decode_from(out, end) == (b"x", len(out))


class _Opaque:
    pass


def _self_referencing() -> list[Any]:
    loop: list[Any] = [1]
    loop.append(loop)
    return loop


def _self_containing_map() -> dict[Any, Any]:
    loop: dict[Any, Any] = {}
    loop[Atom("me")] = (loop,)
    return loop


def _nested(wrap: Any, depth: int) -> Any:
    term: Any = Atom("x")  # not an int: [1] is a STRING_EXT, which holds no terms
    for _ in range(depth):
        term = wrap(term)
    return term


_WRAPS = {
    "tuple": lambda t: (t,),
    "list": lambda t: [t],
    "map": lambda t: {1: t},
    "FrozenList": lambda t: FrozenList([t]),
    "FrozenMap": lambda t: FrozenMap({1: t}),
    "ImproperList": lambda t: ImproperList([t], 2),
    "namedtuple": lambda t: Point(t, 2),
    "OrderedDict": lambda t: OrderedDict(k=t),
}


@pytest.mark.parametrize(
    "value",
    [
        {1, 2},
        frozenset(),
        _Opaque(),
        1j,
        float("nan"),
        float("inf"),
        float("-inf"),
        [1, float("nan")],
        {Atom("k"): {2}},
        Atom("a" * 256),
        Atom("\ud800"),
        "\udcff",
        BitBinary(b"", 1),
        BitBinary(b"\x01", 0),
        BitBinary(b"\x01", 9),
        ImproperList([], 1),
        Pid(NODE, -1, 0, 0),
        Pid(NODE, 2**32, 0, 0),
        Pid(NODE, 0, 0, 2**32),
        Pid(1, 0, 0, 0),  # type: ignore[arg-type]
        Pid(NODE, "1", 0, 0),  # type: ignore[arg-type]
        Reference(NODE, 0, (1, 2, 3, 4, 5, 6)),
        Reference(NODE, 0, (-1,)),
        Port(NODE, -1, 0),
        Port(NODE, 2**64, 0),
        ExportFun(Atom("m"), Atom("f"), 256),
        ExportFun(Atom("m"), 3, 1),  # type: ignore[arg-type]
        OpaqueFun(b""),
        _self_referencing(),
        _self_containing_map(),
        _nested(_WRAPS["tuple"], MAX_DEPTH + 1),
    ],
    ids=short,
)
def test_values_without_an_erlang_form_raise_encode_error(value: Any) -> None:
    """Anything Erlang cannot hold raises EncodeError, and encode_into writes nothing."""
    with pytest.raises(EncodeError):
        encode(value)
    out = bytearray(b"keep")
    with pytest.raises(EncodeError):
        encode_into(value, out)
    assert out == b"keep"


@pytest.mark.parametrize("kind", sorted(_WRAPS))
def test_nesting_is_bounded_by_max_depth(kind: str) -> None:
    """MAX_DEPTH containers nest (pure and compiled alike); one more raises EncodeError,
    never RecursionError or a crash of the compiled build, and nothing is written."""
    wrap = _WRAPS[kind]
    deepest = encode(_nested(wrap, MAX_DEPTH))
    assert deepest[:2] == encode(wrap(Atom("x")))[:2]
    out = bytearray(b"keep")
    with pytest.raises(EncodeError, match="nests too deeply"):
        encode_into(_nested(wrap, MAX_DEPTH + 1), out)
    assert out == b"keep"


def test_a_term_containing_itself_raises_encode_error_at_any_depth() -> None:
    """A list holding itself, reached from inside other containers, is refused: the
    explicit depth bound stops it in the compiled build too (no C stack overflow)."""
    loop = _self_referencing()
    for term in (loop, [loop], {1: (loop,)}, ImproperList([loop], 1), FrozenList([loop])):
        with pytest.raises(EncodeError, match="nests too deeply"):
            encode(term)


def test_encode_error_names_the_python_type() -> None:
    """The message of an unsupported value says which type it was."""
    with pytest.raises(EncodeError, match=r"builtins\.set"):
        encode([1, {2}])
