"""Property tests: generated terms round-trip, and no input, however mangled, makes the
decoder raise anything but DecodeError."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nodemesh.errors import DecodeError
from nodemesh.term import (
    ELIXIR,
    ERLANG,
    Atom,
    BitBinary,
    ExportFun,
    FrozenList,
    ImproperList,
    Pid,
    Port,
    Reference,
    TermCodec,
    decode,
    decode_from,
    encode,
)

SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])

u32 = st.integers(0, 2**32 - 1)
# true and false decode as bools, and undefined (nil for Elixir) as None: not as Atoms.
NOT_ATOMS = ("true", "false", "undefined", "nil")
atoms = st.text(max_size=255).filter(lambda t: t not in NOT_ATOMS).map(Atom)


@st.composite
def bit_binaries(draw: st.DrawFn) -> BitBinary:
    """A bitstring whose unused low bits are zero, as Erlang normalises them."""
    data = draw(st.binary(min_size=1, max_size=16))
    bits = draw(st.integers(1, 7))
    return BitBinary(data[:-1] + bytes((data[-1] & (0xFF << (8 - bits)) & 0xFF,)), bits)


leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(-(2**2100), 2**2100),
    st.floats(allow_nan=False, allow_infinity=False),
    st.binary(max_size=64),
    atoms,
    bit_binaries(),
    st.builds(Pid, atoms, u32, u32, u32),
    st.builds(Reference, atoms, u32, st.lists(u32, max_size=5).map(tuple)),
    st.builds(Port, atoms, st.integers(0, 2**64 - 1), u32),
    st.builds(ExportFun, atoms, atoms, st.integers(0, 255)),
)
keys = st.recursive(
    leaves, lambda inner: st.lists(inner, max_size=3).map(FrozenList) | st.tuples(inner, inner)
)


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=6),
        st.lists(children, max_size=6).map(tuple),
        st.dictionaries(keys, children, max_size=5),
        # A list tail would merge into the elements, as it does in Erlang.
        st.builds(ImproperList, st.lists(children, min_size=1, max_size=4), leaves),
    )


terms = st.recursive(leaves, _containers, max_leaves=30)


@SETTINGS
@given(terms)
def test_generated_terms_round_trip(term: Any) -> None:
    """Any generated term decodes back to an equal value."""
    assert decode(encode(term)) == term


@SETTINGS
@given(terms, st.sampled_from([ERLANG, ELIXIR]))
def test_generated_terms_round_trip_through_either_codec(term: Any, codec: TermCodec) -> None:
    """Either codec decodes its own encoding back to an equal value, None included."""
    assert codec.decode(codec.encode(term)) == term


@SETTINGS
@given(st.lists(terms, min_size=1, max_size=4))
def test_consecutive_terms_decode_in_order(items: list[Any]) -> None:
    """decode_from walks a buffer of several terms, each offset leading to the next."""
    data = b"".join(map(encode, items))
    pos, seen = 0, []
    while pos < len(data):
        term, pos = decode_from(memoryview(data), pos)
        seen.append(term)
    assert seen == items
    assert pos == len(data)


def _decode_or_error(data: bytes) -> None:
    """Decoding yields a value that re-encodes to itself, or raises DecodeError."""
    try:
        value = decode(data)
    except DecodeError:
        return
    assert decode(encode(value)) == value


@SETTINGS
@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_decode_error(data: bytes) -> None:
    """Random bytes (with or without the version byte) never raise anything else."""
    _decode_or_error(data)
    _decode_or_error(b"\x83" + data)


edits = st.lists(
    st.tuples(
        st.sampled_from(["flip", "set", "insert", "delete"]), st.integers(0), st.integers(0, 255)
    ),
    min_size=1,
    max_size=4,
)


def _mutate(data: bytes, operations: list[tuple[str, int, int]]) -> bytes:
    buffer = bytearray(data)
    for operation, where, value in operations:
        index = where % (len(buffer) + 1)
        if operation == "insert":
            buffer.insert(index, value)
        elif index < len(buffer):
            if operation == "delete":
                del buffer[index]
            elif operation == "set":
                buffer[index] = value
            else:
                buffer[index] ^= 1 << (value % 8)
    return bytes(buffer)


@SETTINGS
@given(terms, edits)
def test_mutated_encodings_raise_only_decode_error(term: Any, operations: Any) -> None:
    """Flipped, overwritten, inserted or deleted bytes give a value or DecodeError."""
    _decode_or_error(_mutate(encode(term), operations))


def _outcome(data: bytes | memoryview) -> tuple[str, Any]:
    try:
        return "value", decode(data)
    except DecodeError as exc:
        return "error", str(exc)


@SETTINGS
@given(terms, edits)
def test_bytes_and_views_decode_alike(term: Any, operations: Any) -> None:
    """``bytes`` (read by _scan) and a memoryview (read by the reader table) give the
    same value, or the same DecodeError message, for intact and mutated encodings."""
    for data in (encode(term), _mutate(encode(term), operations)):
        assert _outcome(data) == _outcome(memoryview(data))
