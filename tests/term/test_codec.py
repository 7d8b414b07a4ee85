"""TermCodec and none_atom: which atom is Python's None, for Erlang and for Elixir peers,
and the Elixir module-name helpers."""

from __future__ import annotations

import enum
import zlib
from typing import Any, NamedTuple

import pytest

from nodemesh import NodeConfig
from nodemesh.errors import ConfigError, DecodeError
from nodemesh.term import (
    ELIXIR,
    ERLANG,
    Atom,
    DecodeLimits,
    ExportFun,
    ImproperList,
    Pid,
    Reference,
    TermCodec,
    decode,
    decode_from,
    elixir_module,
    elixir_module_name,
    encode,
    encode_into,
)

NIL = b"w\x03nil"
UNDEFINED = b"w\x09undefined"


def test_module_functions_follow_erlang() -> None:
    """encode/decode: None is undefined both ways; nil stays an Atom."""
    assert encode(None) == b"\x83" + UNDEFINED
    assert decode(b"\x83" + UNDEFINED) is None
    assert decode(b"\x83" + NIL) == Atom("nil")
    assert TermCodec() == ERLANG and ERLANG.encode((None,)) == encode((None,))


def test_elixir_codec_writes_and_reads_nil() -> None:
    """ELIXIR: None is nil both ways; undefined stays an Atom."""
    assert ELIXIR.encode(None) == b"\x83" + NIL
    assert ELIXIR.decode(b"\x83" + NIL) is None
    assert ELIXIR.decode(b"\x83" + UNDEFINED) == Atom("undefined")
    assert ELIXIR.decode(b"\x83d\x00\x03nil") is None  # ATOM_EXT (Latin-1) too
    assert ELIXIR.decode_from(b"\x83" + NIL) == (None, 6)  # pos defaults to 0


class Point(NamedTuple):
    x: Any
    y: Any


class Level(enum.IntEnum):
    LOW = 1


@pytest.mark.parametrize(
    "term",
    [
        (None, [None, 1], {None: None, "k": [None]}),
        ImproperList([None], None),
        Point(None, Level.LOW),  # subclasses take the codec's table too
        [[[(None,)]]],
    ],
)
def test_none_is_nil_at_any_depth(term: Any) -> None:
    """A nested None is written as nil, never as undefined, and read back as None."""
    data = ELIXIR.encode(term)
    assert UNDEFINED not in data and NIL in data
    assert ELIXIR.decode(data) == ERLANG.decode(encode(term))


def test_caches_do_not_leak_between_choices() -> None:
    """Decoding nil with ELIXIR first does not make the default decode it as None."""
    data = encode((Atom("nil"), [Atom("nil")], {Atom("nil"): Atom("nil")}))
    assert ELIXIR.decode(data) == (None, [None], {None: None})
    assert decode(data) == (Atom("nil"), [Atom("nil")], {Atom("nil"): Atom("nil")})
    assert ELIXIR.decode(data) == (None, [None], {None: None})


def test_references_read_again_are_the_same_values() -> None:
    """A reference read a second time (a call's monitor, then its tag) comes from the
    bounded cache of _leaves: equal to the first, wherever and however it is read."""
    ref = Reference(Atom("a@host"), 7, (1, 2, 3))
    other_node = Reference(Atom("b@host"), 7, (1, 2, 3))
    other_ids = Reference(Atom("a@host"), 7, (1, 2, 4))
    data = encode((ref, [other_node], {other_ids: ref}))
    for _ in range(2):
        assert decode(data) == (ref, [other_node], {other_ids: ref})
        assert decode_from(memoryview(bytearray(data)), 0)[0] == decode(data)
        assert decode(encode(ref)) == ref
    assert decode(encode((other_ids, other_node))) == (other_ids, other_node)


def test_references_of_known_and_new_nodes_read_alike() -> None:
    """A reference whose node was read before (in a pid) and one of a node never seen
    decode the same way; too many ID words is an error either way."""
    seen = Pid(Atom("seen@host"), 1, 0, 2)
    for node in ("seen@host", "never-seen-before@host"):
        ref = Reference(Atom(node), 9, (4, 5, 6))
        assert decode(encode((seen, ref))) == (seen, ref)
        six = bytearray(encode((Reference(Atom(node), 9, (1, 2, 3, 4, 5)),)))
        six[5] = 6  # the Len of the reference's ID words (2 bytes after its tag)
        with pytest.raises(DecodeError, match="ID words"):
            decode(bytes(six) + bytes(4))


def test_the_reference_cache_stays_bounded() -> None:
    many = [Reference(Atom("a@host"), 1, (n, 0, 0)) for n in range(_leaves_cache_size() + 50)]
    for ref in many:
        assert decode(encode((ref,))) == (ref,)
    from nodemesh.term import _leaves

    assert 0 < len(_leaves.REFS) <= _leaves_cache_size()


def _leaves_cache_size() -> int:
    from nodemesh.term._reading import CACHE_SIZE

    return CACHE_SIZE


def test_names_inside_pids_and_funs_stay_atoms() -> None:
    """Node and module names are Atoms whatever none_atom says."""
    pid = Pid(Atom("nil"), 1, 0, 1)
    fun = ExportFun(Atom("nil"), Atom("undefined"), 0)
    assert ELIXIR.decode(encode((pid, fun))) == (pid, fun)
    assert decode(encode((pid, fun))) == (pid, fun)


def test_codec_reads_views_offsets_and_compressed_terms() -> None:
    """decode_from takes a bytearray and an offset; compressed terms use the choice too."""
    frame = bytearray(b"p")
    ELIXIR.encode_into((1, None), frame)
    encode_into([None], frame)
    term, end = ELIXIR.decode_from(frame, 1)
    assert term == (1, None)
    assert ELIXIR.decode_from(memoryview(frame), end) == ([Atom("undefined")], len(frame))
    inner = b"l\x00\x00\x00\x01" + NIL + b"j"
    packed = b"\x83P" + len(inner).to_bytes(4, "big") + zlib.compress(inner)
    assert ELIXIR.decode(packed) == [None]
    assert decode(packed) == [Atom("nil")]


def test_codec_keeps_its_limits() -> None:
    """A codec's DecodeLimits apply to every decode it does."""
    codec = TermCodec(none_atom="nil", limits=DecodeLimits(max_depth=2))
    assert codec.decode(encode([[Atom("nil")]])) == [[None]]
    with pytest.raises(DecodeError, match="max_depth"):
        codec.decode(encode([[[None]]]))
    with pytest.raises(DecodeError, match="trailing"):
        codec.decode(encode(1) + b"\x00")


@pytest.mark.parametrize("bad", ["", "true", "false", "x" * 256, None, 1, b"nil"])
def test_bad_none_atoms_are_refused(bad: Any) -> None:
    """none_atom must be a non-empty atom name other than true/false, in both places."""
    with pytest.raises(ConfigError, match="none_atom"):
        TermCodec(none_atom=bad)
    with pytest.raises(ConfigError, match="none_atom"):
        NodeConfig(none_atom=bad)


def test_other_none_atoms_work() -> None:
    """Any other atom may stand for None (here: null, and a non-ASCII one)."""
    for name in ("null", "néant"):
        codec = TermCodec(none_atom=name)
        assert codec.encode(None) == encode(Atom(name))
        assert codec.decode(encode([Atom(name), Atom("nil")])) == [None, Atom("nil")]


def test_node_config_carries_the_choice() -> None:
    """NodeConfig(none_atom=...) is what a connection builds its codec from."""
    config = NodeConfig(none_atom="nil")
    assert TermCodec(none_atom=config.none_atom, limits=config.decode_limits) == ELIXIR
    assert NodeConfig().none_atom == "undefined"
    with pytest.raises(ConfigError, match="DecodeLimits"):
        TermCodec(limits=256)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "atom"),
    [
        ("MyApp.Worker", "Elixir.MyApp.Worker"),
        ("Enum", "Elixir.Enum"),
        ("Elixir.MyApp.Worker", "Elixir.MyApp.Worker"),
        ("A1.B_2", "Elixir.A1.B_2"),
    ],
)
def test_elixir_module_names(name: str, atom: str) -> None:
    """elixir_module adds the Elixir. prefix once; elixir_module_name removes it."""
    assert elixir_module(name) == Atom(atom)
    assert type(elixir_module(name)) is Atom
    assert elixir_module_name(elixir_module(name)) == atom.removeprefix("Elixir.")


@pytest.mark.parametrize(
    "bad", ["", "my_app.worker", ":lists", "MyApp.", "MyApp..Worker", "Élan", "A" * 250]
)
def test_bad_elixir_module_names_are_refused(bad: str) -> None:
    """What is not an Elixir alias raises ConfigError naming it."""
    with pytest.raises(ConfigError):
        elixir_module(bad)


def test_erlang_modules_have_no_elixir_name() -> None:
    """Erlang modules (and Elixir. with no alias) give None."""
    assert elixir_module_name(Atom("lists")) is None
    assert elixir_module_name(Atom("Elixir.")) is None
    assert decode_from(encode(elixir_module("Enum")))[0] == Atom("Elixir.Enum")


def test_many_subclasses_encode_the_same_through_the_remembered_writers() -> None:
    """Subclass writers remembered per table stay right for many classes made on the fly."""
    kinds = [type(f"Int{n}", (int,), {}) for n in range(100)]
    values = [kind(300 + n) for n, kind in enumerate(kinds)]
    for _ in range(2):  # the second pass finds the writers the first one remembered
        assert encode(values) == encode(list(range(300, 400)))
        assert ELIXIR.decode(ELIXIR.encode([Point(None, v) for v in values])) == [
            (None, 300 + n) for n in range(100)
        ]
