"""Decoding malformed or hostile bytes: every case raises DecodeError, nothing else,
quickly and without allocating what the input merely claims."""

from __future__ import annotations

import struct
import zlib
from typing import Any

import pytest

from nodemesh._build import implementation
from nodemesh.errors import ConfigError, DecodeError
from nodemesh.term import (
    DEFAULT_LIMITS,
    Atom,
    BitBinary,
    DecodeLimits,
    ExportFun,
    ImproperList,
    Pid,
    Port,
    Reference,
    decode,
    decode_from,
    encode,
)

U32_MAX = b"\xff\xff\xff\xff"
NODE = b"w\x01n"
FLOAT_TEXT = b"1.50000000000000000000e+00"


def _float_ext(text: bytes) -> bytes:
    return b"\x83c" + text + bytes(31 - len(text))


def _compressed(inner: bytes, declared: int | None = None) -> bytes:
    size = len(inner) if declared is None else declared
    return b"\x83P" + struct.pack(">I", size) + zlib.compress(inner)


def _new_fun(size_delta: int = 0, num_free: int = 0, free: bytes = b"") -> bytes:
    body = (
        b"\x01"
        + bytes(16)
        + b"\x00\x00\x00\x00"
        + struct.pack(">I", num_free)
        + b"w\x01m"
        + b"a\x00a\x00"
        + b"X"
        + NODE
        + bytes(12)
        + free
    )
    return b"\x83p" + struct.pack(">I", len(body) + 4 + size_delta) + body


MALFORMED: dict[str, bytes] = {
    "empty input": b"",
    "version byte only": b"\x83",
    "version byte missing": b"a\x01",
    "wrong version byte": b"\x84a\x01",
    "unknown tag 0": b"\x83\x00",
    "unknown tag 255": b"\x83\xff",
    "ATOM_CACHE_REF": b"\x83R\x00",
    "LOCAL_EXT": b"\x83y\x00\x00\x00\x00",
    "distribution header": b"\x83D\x00",
    "version byte inside a term": b"\x83h\x01\x83a\x01",
    "compressed tag inside a term": b"\x83h\x01P\x00\x00\x00\x02" + zlib.compress(b"a\x01"),
    "trailing byte": b"\x83a\x01\x00",
    "trailing term": b"\x83a\x01\x83a\x01",
    "SMALL_INTEGER truncated": b"\x83a",
    "INTEGER truncated": b"\x83b\x00\x00\x00",
    "NEW_FLOAT truncated": b"\x83F\x00\x00",
    "NEW_FLOAT NaN": b"\x83F\x7f\xf8\x00\x00\x00\x00\x00\x00",
    "NEW_FLOAT +inf": b"\x83F\x7f\xf0\x00\x00\x00\x00\x00\x00",
    "NEW_FLOAT -inf": b"\x83F\xff\xf0\x00\x00\x00\x00\x00\x00",
    "FLOAT_EXT truncated": b"\x83c" + FLOAT_TEXT,
    "FLOAT_EXT junk after the number": _float_ext(b"1.5xyz"),
    "FLOAT_EXT leading space": _float_ext(b" 1.5"),
    "FLOAT_EXT nan": _float_ext(b"nan"),
    "FLOAT_EXT inf": _float_ext(b"inf"),
    "FLOAT_EXT overflow": _float_ext(b"1e999"),
    "FLOAT_EXT empty": _float_ext(b""),
    "FLOAT_EXT non-ascii": _float_ext(b"\xff1.5"),
    "SMALL_BIG truncated digits": b"\x83n\x03\x00\x01\x02",
    "SMALL_BIG missing sign": b"\x83n\x01",
    "LARGE_BIG huge length": b"\x83o" + U32_MAX + b"\x00\x01\x02",
    "SMALL_ATOM_UTF8 truncated": b"\x83w\x05ab",
    "SMALL_ATOM_UTF8 bad UTF-8": b"\x83w\x02\xff\xfe",
    "SMALL_ATOM_UTF8 overlong NUL": b"\x83w\x02\xc0\x80",
    "SMALL_ATOM_UTF8 surrogate": b"\x83w\x03\xed\xa0\x80",
    "SMALL_ATOM_UTF8 cut multibyte": b"\x83w\x02\xe4\xb8",
    "ATOM_UTF8 truncated length": b"\x83v\x00",
    "ATOM_UTF8 256 characters": b"\x83v\x01\x00" + b"a" * 256,
    "ATOM_EXT 256 characters": b"\x83d\x01\x00" + b"a" * 256,
    "ATOM_EXT truncated": b"\x83d\x00\x03ab",
    "SMALL_ATOM truncated": b"\x83s\x03ab",
    "SMALL_TUPLE missing element": b"\x83h\x02a\x01",
    "SMALL_TUPLE arity beyond input": b"\x83h\xff",
    "LARGE_TUPLE arity 2^32-1": b"\x83i" + U32_MAX + b"a\x01" * 5,
    "LARGE_TUPLE truncated arity": b"\x83i\x00\x00",
    "LIST length 2^32-1": b"\x83l" + U32_MAX + b"a\x01" * 5,
    "LIST missing tail": b"\x83l\x00\x00\x00\x01a\x01",
    "LIST bad tail": b"\x83l\x00\x00\x00\x01a\x01\x00",
    "STRING_EXT truncated": b"\x83k\x00\x03ab",
    "MAP arity 2^32-1": b"\x83t" + U32_MAX + b"a\x01" * 5,
    "MAP key without value": b"\x83t\x00\x00\x00\x01a\x01",
    "MAP duplicate key": b"\x83t\x00\x00\x00\x02a\x01a\x02a\x01a\x03",
    "MAP keys 1 and true": b"\x83t\x00\x00\x00\x02a\x01a\x02w\x04truea\x03",
    "MAP keys 1 and 1.0": b"\x83t\x00\x00\x00\x02a\x01a\x02F\x3f\xf0" + bytes(6) + b"a\x03",
    "BINARY length 2^32-1": b"\x83m" + U32_MAX + b"abc",
    "BINARY one byte short": b"\x83m\x00\x00\x00\x05abcd",
    "BIT_BINARY 0 bits": b"\x83M\x00\x00\x00\x01\x00\xff",
    "BIT_BINARY 9 bits": b"\x83M\x00\x00\x00\x01\x09\xff",
    "BIT_BINARY empty with 8 bits": b"\x83M\x00\x00\x00\x00\x08",
    "BIT_BINARY truncated": b"\x83M\x00\x00\x00\x02\x03\xff",
    "BIT_BINARY length 2^32-1": b"\x83M" + U32_MAX + b"\x01\xff",
    "NEW_PID node not an atom": b"\x83Xa\x01" + bytes(12),
    "NEW_PID node truncated": b"\x83Xw\x05ab",
    "NEW_PID fields truncated": b"\x83X" + NODE + bytes(11),
    "NEW_PID node bad UTF-8": b"\x83Xw\x01\xff" + bytes(12),
    "PID_EXT creation over 2 bits": b"\x83g" + NODE + bytes(8) + b"\x04",
    "PID_EXT truncated": b"\x83g" + NODE + bytes(8),
    "NEWER_REFERENCE 6 words": b"\x83Z\x00\x06" + NODE + bytes(4 + 24),
    "NEWER_REFERENCE words truncated": b"\x83Z\x00\x03" + NODE + bytes(4 + 8),
    "NEWER_REFERENCE node not an atom": b"\x83Z\x00\x01m\x00\x00\x00\x01n" + bytes(8),
    "NEW_REFERENCE creation over 2 bits": b"\x83r\x00\x01" + NODE + b"\x04" + bytes(4),
    "REFERENCE_EXT truncated": b"\x83e" + NODE + bytes(4),
    "V4_PORT truncated": b"\x83x" + NODE + bytes(11),
    "NEW_PORT truncated": b"\x83Y" + NODE + bytes(7),
    "PORT_EXT creation over 2 bits": b"\x83f" + NODE + bytes(4) + b"\x04",
    "EXPORT arity 256": b"\x83qw\x01mw\x01fb\x00\x00\x01\x00",
    "EXPORT arity negative": b"\x83qw\x01mw\x01fb\xff\xff\xff\xff",
    "EXPORT arity not an integer": b"\x83qw\x01mw\x01fw\x01a",
    "EXPORT module not an atom": b"\x83qm\x00\x00\x00\x01mw\x01fa\x01",
    "EXPORT truncated": b"\x83qw\x01m",
    "NEW_FUN Size too small": _new_fun(size_delta=-1),
    "NEW_FUN Size too large": _new_fun(size_delta=1) + b"\x00",
    "NEW_FUN Size beyond input": _new_fun(size_delta=100),
    "NEW_FUN free variable missing": _new_fun(num_free=1),
    "NEW_FUN NumFree 2^32-1": _new_fun(num_free=2**32 - 1, free=b"a\x01"),
    "NEW_FUN pid not a pid": _new_fun()[:-16] + b"a\x00" + bytes(14),
    "FUN_EXT truncated": b"\x83u\x00\x00\x00\x00X" + NODE,
    "compressed header truncated": b"\x83P\x00\x00",
    "compressed size too large": _compressed(b"a\x01", declared=3),
    "compressed size too small": _compressed(b"h\x02a\x01a\x02", declared=3),
    "compressed size 0": _compressed(b"", declared=0),
    "compressed garbage": b"\x83P\x00\x00\x00\x02garbage!",
    "compressed stream cut short": _compressed(b"a\x01" * 50)[:-3],
    "compressed inner trailing bytes": _compressed(b"a\x01\x00"),
    "compressed inner truncated": _compressed(b"h\x02a\x01"),
    "compressed inside compressed": _compressed(b"P\x00\x00\x00\x02" + zlib.compress(b"a\x01")),
    "compressed over max_decompressed_size": b"\x83P\x04\x00\x00\x01" + zlib.compress(b"j"),
    "compressed inner bad tag": _compressed(b"\x00"),
    "depth bomb of tuples": b"\x83" + b"h\x01" * 100_000 + b"j",
    "depth bomb of lists": b"\x83" + b"l\x00\x00\x00\x01" * 100_000,
    "depth bomb of maps": b"\x83" + b"t\x00\x00\x00\x01a\x01" * 10_000 + b"j",
    "depth bomb in improper tails": b"\x83" + b"l\x00\x00\x00\x01a\x01" * 10_000 + b"j",
}


@pytest.mark.parametrize("data", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_input_raises_decode_error(data: bytes) -> None:
    """Every malformed or hostile input raises DecodeError, from any buffer type."""
    with pytest.raises(DecodeError):
        decode(data)
    with pytest.raises(DecodeError):
        decode(bytearray(data))
    with pytest.raises(DecodeError):
        decode(memoryview(data))


def test_unknown_tag_message_names_tag_and_offset() -> None:
    """The error for an unknown tag says which tag, and where."""
    with pytest.raises(DecodeError, match=r"unknown tag 0, at offset 3"):
        decode(b"\x83h\x01\x00")


def test_atom_cache_ref_message_explains_itself() -> None:
    """ATOM_CACHE_REF is refused with a message naming it."""
    with pytest.raises(DecodeError, match=r"ATOM_CACHE_REF \(82\).*offset 1"):
        decode(b"\x83R\x00")


def test_huge_declared_count_fails_before_allocating() -> None:
    """An arity of 2^32-1 with ten bytes left is refused from the count alone."""
    with pytest.raises(DecodeError, match="declares 4294967295 elements"):
        decode(b"\x83i" + U32_MAX + b"a\x01" * 5)


# A rich term whose every strict prefix must fail.
_RICH = encode(
    (
        6,
        Pid(Atom("nm@host"), 1, 2, 3),
        [1, 300, 2**70, -(2**70), 1.5, b"bin", "str", [1, 2, 3], ImproperList([1], Atom("t"))],
        {Atom("k"): (Reference(Atom("nm@host"), 4, (1, 2, 3)), Port(Atom("nm@host"), 9, 1))},
        BitBinary(b"\xf0", 4),
        ExportFun(Atom("lists"), Atom("map"), 2),
        Atom("世界"),
        True,
    )
)
_COMPRESSED = b"\x83P" + struct.pack(">I", len(_RICH) - 1) + zlib.compress(_RICH[1:])


@pytest.mark.parametrize("whole", [_RICH, _COMPRESSED, _new_fun(num_free=1, free=b"a\x01")])
def test_every_truncation_raises_decode_error(whole: bytes) -> None:
    """Cutting a valid encoding short at any byte raises DecodeError."""
    decode(whole)  # the whole is valid
    for end in range(len(whole)):
        with pytest.raises(DecodeError):
            decode(whole[:end])


def test_decode_from_reads_consecutive_terms() -> None:
    """decode_from returns each term and the offset where the next one starts."""
    data = encode((6, Atom("a"))) + encode(b"payload")
    control, end = decode_from(data)
    assert control == (6, Atom("a"))
    assert decode_from(data, end) == (b"payload", len(data))
    assert decode_from(memoryview(data), end) == (b"payload", len(data))


@pytest.mark.parametrize("pos", [-1, -100, 3, 100])
def test_decode_from_outside_the_input_raises_decode_error(pos: int) -> None:
    """An offset outside the buffer (or negative) raises DecodeError."""
    with pytest.raises(DecodeError):
        decode_from(b"\x83a\x01", pos)


def test_decode_from_a_memoryview_of_another_format() -> None:
    """A memoryview whose items are not bytes is read as its underlying bytes."""
    raw = encode([1, 2, 3, 4])  # 131, 107, 0, 4, 1, 2, 3, 4: eight bytes
    view = memoryview(bytearray(raw)).cast("H")
    assert decode(view) == [1, 2, 3, 4]


def test_bytearray_can_be_resized_after_a_decode_error() -> None:
    """A failed decode of a bytearray leaves no view of it alive in the traceback."""
    buffer = bytearray(encode((Atom("a"), b"bin", Pid(Atom("n"), 1, 2, 3))))[:-1]
    with pytest.raises(DecodeError) as caught:
        decode_from(buffer)
    assert caught.value.__context__ is None
    buffer.extend(b"more")  # raises BufferError while a memoryview export is alive


@pytest.mark.parametrize(
    ("limits", "nested"),
    [(DecodeLimits(max_depth=1), ((1,),)), (DecodeLimits(max_depth=2), [[[Atom("x")]]])],
)
def test_max_depth_bounds_nesting(limits: DecodeLimits, nested: Any) -> None:
    """A term nesting one level deeper than max_depth is refused."""
    with pytest.raises(DecodeError, match="max_depth"):
        decode(encode(nested), limits=limits)
    assert decode(encode(nested[0]), limits=limits) == nested[0]


def test_nesting_beyond_the_recursion_limit_is_a_decode_error() -> None:
    """With max_depth above what Python's stack allows, RecursionError never escapes:
    pure Python refuses the term, the compiled decoder (no Python frames) may read it."""
    deep = b"\x83" + b"h\x01" * 9_999 + b"j"
    try:
        term = decode(deep, limits=DecodeLimits(max_depth=10_000))
    except DecodeError:
        assert implementation() == "pure Python"
    else:
        for _ in range(9_999):
            (term,) = term
        assert term == []


def test_max_decompressed_size_bounds_inflation() -> None:
    """A compressed term larger than max_decompressed_size is refused; 0 refuses all."""
    data = _compressed(b"m\x00\x00\x01\x00" + bytes(256))
    assert decode(data) == bytes(256)
    with pytest.raises(DecodeError, match="max_decompressed_size"):
        decode(data, limits=DecodeLimits(max_decompressed_size=100))
    with pytest.raises(DecodeError, match="max_decompressed_size"):
        decode(_compressed(b"a\x01"), limits=DecodeLimits(max_decompressed_size=0))


def test_compressed_term_ends_where_its_stream_ends() -> None:
    """decode_from of a compressed term returns the offset after its zlib stream."""
    data = _compressed(b"a\x07") + encode(8)
    term, end = decode_from(data)
    assert term == 7
    assert decode_from(data, end) == (8, len(data))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_depth": 0},
        {"max_depth": -1},
        {"max_depth": 10_001},
        {"max_depth": True},
        {"max_depth": 2.0},
        {"max_depth": "3"},
        {"max_decompressed_size": -1},
        {"max_decompressed_size": 2**32},
        {"max_decompressed_size": None},
    ],
    ids=repr,
)
def test_decode_limits_reject_bad_values(kwargs: dict[str, Any]) -> None:
    """DecodeLimits validates on construction and raises ConfigError."""
    with pytest.raises(ConfigError):
        DecodeLimits(**kwargs)


def test_default_limits() -> None:
    """The defaults allow 256 levels of nesting and 64 MiB decompressed."""
    assert DEFAULT_LIMITS.max_depth == 256
    assert DEFAULT_LIMITS.max_decompressed_size == 64 * 1024 * 1024
