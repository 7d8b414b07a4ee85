"""The codec against real Erlang/OTP: terms built by Erlang decode to the expected Python
values, and terms encoded by Python are ``=:=`` to Erlang literals. Two `erl` runs in
all (one per direction); the Python -> Erlang run also gets the closures Erlang made
in the first run, re-encoded by Python, and calls them."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import pytest

from nodemesh.errors import DecodeError
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
    encode,
)
from support.erlang import erl_eval

pytestmark = pytest.mark.interop

# A module compiled in memory in both runs: its closures carry the same Uniq (the MD5
# of the module), so a closure made in one run is callable in the other.
FIXTURE = (
    "FixtureForms = [begin {ok, Tok, _} = erl_scan:string(S), {ok, Form} = "
    'erl_parse:parse_form(Tok), Form end || S <- ["-module(nm_codec_fixture).", '
    '"-export([adder/1]).", "adder(X) -> fun(Y) -> X + Y end."]], '
    "{ok, FixtureMod, FixtureBeam} = compile:forms(FixtureForms, []), "
    '{module, _} = code:load_binary(FixtureMod, "nm_codec_fixture.erl", FixtureBeam)'
)

A, B, C, X, Y, Z = map(Atom, "abcxyz")
REJECTED = object()  # marks an Erlang term that nodemesh refuses by design

# name: (Erlang expression, term_to_binary options, expected Python value)
FROM_ERLANG: dict[str, tuple[str, str, Any]] = {
    "atom_latin1": ("hello", "[]", Atom("hello")),
    "atom_latin1_high": ("list_to_atom([104,233,108,108,111])", "[]", Atom("héllo")),
    "atom_unicode": ("list_to_atom([16#4e16,16#754c])", "[]", Atom("世界")),
    "atom_empty": ("''", "[]", Atom("")),
    "atom_255": ("list_to_atom(lists:duplicate(255, $a))", "[]", Atom("a" * 255)),
    "atom_255_unicode": ("list_to_atom(lists:duplicate(255, 16#4e16))", "[]", Atom("世" * 255)),
    "atoms_minor_2": (
        "{hello, list_to_atom([233])}",
        "[{minor_version, 2}]",
        (Atom("hello"), Atom("é")),
    ),
    "booleans": ("{true, false, undefined, nil}", "[]", (True, False, None, Atom("nil"))),
    "booleans_minor_2": ("{true, false}", "[{minor_version, 2}]", (True, False)),
    "int_0": ("0", "[]", 0),
    "int_255": ("255", "[]", 255),
    "int_256": ("256", "[]", 256),
    "int_minus_1": ("-1", "[]", -1),
    "int_max_32": ("2147483647", "[]", 2**31 - 1),
    "int_over_32": ("2147483648", "[]", 2**31),
    "int_min_32": ("-2147483648", "[]", -(2**31)),
    "int_under_32": ("-2147483649", "[]", -(2**31) - 1),
    "big_64": ("1 bsl 64", "[]", 2**64),
    "big_minus_64": ("-(1 bsl 64)", "[]", -(2**64)),
    "big_255_bytes": ("1 bsl 2039", "[]", 2**2039),
    "big_256_bytes": ("1 bsl 2040", "[]", 2**2040),
    "big_negative_large": ("-(3 bsl 70000)", "[]", -(3 << 70000)),
    "big_huge": ("1 bsl 100000", "[]", 2**100000),
    "floats": ("{1.5, 0.1, -2.5e-300, 1.0e300, -0.0}", "[]", (1.5, 0.1, -2.5e-300, 1e300, -0.0)),
    "float_ext": ("{1.5, 0.1, -2.5e-300}", "[{minor_version, 0}]", (1.5, 0.1, -2.5e-300)),
    "binary_empty": ("<<>>", "[]", b""),
    "binary": ("<<0, 1, 255>>", "[]", b"\x00\x01\xff"),
    "binary_large": ("binary:copy(<<7>>, 70000)", "[]", b"\x07" * 70000),
    "bits_1": ("<<1:1>>", "[]", BitBinary(b"\x80", 1)),
    "bits_10": ("<<255, 3:2>>", "[]", BitBinary(b"\xff\xc0", 2)),
    "bits_7": ("<<5:7>>", "[]", BitBinary(b"\x0a", 7)),
    "string": ('"abc"', "[]", [97, 98, 99]),
    "string_65535": ("lists:duplicate(65535, $a)", "[]", [97] * 65535),
    "string_65536": ("lists:duplicate(65536, $a)", "[]", [97] * 65536),
    "nil": ("[]", "[]", []),
    "list": ('[1, 300, a, <<"b">>, 1.5, [c]]', "[]", [1, 300, A, b"b", 1.5, [C]]),
    "improper": ("[1 | 2]", "[]", ImproperList([1], 2)),
    "improper_atoms": ("[a, b | c]", "[]", ImproperList([A, B], C)),
    "improper_binary_tail": ('[1, 2 | <<"t">>]', "[]", ImproperList([1, 2], b"t")),
    "tuple_empty": ("{}", "[]", ()),
    "tuple_nested": ("{1, {2, {3}}}", "[]", (1, (2, (3,)))),
    "tuple_255": ("list_to_tuple(lists:seq(1, 255))", "[]", tuple(range(1, 256))),
    "tuple_256": ("list_to_tuple(lists:seq(1, 256))", "[]", tuple(range(1, 257))),
    "map_empty": ("#{}", "[]", {}),
    "map": ('#{a => 1, <<"b">> => [2]}', "[]", {A: 1, b"b": [2]}),
    "map_40_keys": (
        "maps:from_list([{I, I * I} || I <- lists:seq(1, 40)])",
        "[]",
        {i: i * i for i in range(1, 41)},
    ),
    "map_unhashable_keys": (
        "#{[1, 2] => x, #{a => [1]} => y, {[3]} => z}",
        "[]",
        {FrozenList([1, 2]): X, FrozenMap({A: FrozenList([1])}): Y, (FrozenList([3]),): Z},
    ),
    "map_nested": ("#{a => #{b => #{c => []}}}", "[]", {A: {B: {C: []}}}),
    "map_int_and_float_keys": ("#{1 => a, 1.0 => b}", "[]", REJECTED),
    "export_fun": ("fun lists:map/2", "[]", ExportFun(Atom("lists"), Atom("map"), 2)),
    "compressed": (
        'lists:duplicate(100, <<"abc">>)',
        "[compressed]",
        [b"abc"] * 100,
    ),
    "compressed_9": (
        "{lists:seq(1, 1000), maps:from_list([{I, I} || I <- lists:seq(1, 50)])}",
        "[{compressed, 9}]",
        (list(range(1, 1001)), {i: i for i in range(1, 51)}),
    ),
    "deep_200": (
        "lists:foldl(fun(_, Acc) -> [Acc] end, [], lists:seq(1, 200))",
        "[]",
        None,  # built below
    ),
}
_deep: Any = []
for _ in range(200):
    _deep = [_deep]
FROM_ERLANG["deep_200"] = (*FROM_ERLANG["deep_200"][:2], _deep)

# Terms only a running node can make: decoded, then checked against their ~p text.
RUNTIME = {
    "pid": "self()",
    "ref": "make_ref()",
    "port": "hd(erlang:ports())",
    "closure_eval": "begin Free = 42, fun(N) -> Free + N end end",
    "closure_compiled": "nm_codec_fixture:adder(5)",
}


def _emit(name: str, expression: str, options: str) -> str:
    return f'Emit("{name}", {expression}, {options})'


@pytest.fixture(scope="module")
def from_erlang() -> dict[str, bytes]:
    """One erl run prints term_to_binary of every corpus term, base64-encoded."""
    lines = [_emit(name, expr, opts) for name, (expr, opts, _) in FROM_ERLANG.items()]
    for name, expr in RUNTIME.items():
        lines.append(f"{name.capitalize()}Term = {expr}")
        lines.append(_emit(name, f"{name.capitalize()}Term", "[]"))
        lines.append(
            _emit(
                f"{name}_text",
                f'lists:flatten(io_lib:format("~p", [{name.capitalize()}Term]))',
                "[]",
            )
        )
    program = ", ".join(
        [
            FIXTURE,
            'Emit = fun(Name, Term, Opts) -> io:format("~s ~s~n", '
            "[Name, base64:encode(term_to_binary(Term, Opts))]) end",
            *lines,
        ]
    )
    out = erl_eval(program, timeout=60)
    pairs = (line.split(" ") for line in out.splitlines() if line)
    return {name: base64.b64decode(b64) for name, b64 in pairs}


@pytest.mark.parametrize("name", FROM_ERLANG)
def test_erlang_term_decodes_to_expected_value(from_erlang: dict[str, bytes], name: str) -> None:
    """Each term Erlang encodes decodes to the Python value the mapping promises."""
    expected = FROM_ERLANG[name][2]
    if expected is REJECTED:
        with pytest.raises(DecodeError, match="cannot tell"):
            decode(from_erlang[name])
        return
    decoded = decode(from_erlang[name])
    assert decoded == expected
    assert type(decoded) is type(expected)


def _numbers(from_erlang: dict[str, bytes], name: str, pattern: str) -> list[int]:
    """The numbers in the ~p text Erlang printed for a runtime term."""
    text = bytes(decode(from_erlang[f"{name}_text"])).decode()
    found = re.fullmatch(pattern, text)
    assert found is not None, text
    return [int(number) for number in found.group(1).split(".")]


def test_erlang_pid_ref_and_port_decode(from_erlang: dict[str, bytes]) -> None:
    """self(), make_ref() and a port decode with the numbers Erlang prints for them."""
    node = Atom("nonode@nohost")
    pid, ref, port = (decode(from_erlang[name]) for name in ("pid", "ref", "port"))
    ident, serial = _numbers(from_erlang, "pid", r"<0\.(\d+\.\d+)>")
    assert pid == Pid(node, ident, serial, 0)
    words = _numbers(from_erlang, "ref", r"#Ref<0\.([\d.]+)>")
    assert ref == Reference(node, 0, tuple(reversed(words)))
    (number,) = _numbers(from_erlang, "port", r"#Port<0\.(\d+)>")
    assert port == Port(node, number, 0)
    for name in ("pid", "ref", "port"):
        assert encode(decode(from_erlang[name])) == from_erlang[name].replace(
            b"d\x00\x0dnonode@nohost", b"w\x0dnonode@nohost"
        )


@pytest.mark.parametrize("name", ["closure_eval", "closure_compiled"])
def test_erlang_closure_decodes_as_opaque_fun(from_erlang: dict[str, bytes], name: str) -> None:
    """A closure decodes to an OpaqueFun holding its bytes, and re-encodes to them."""
    fun = decode(from_erlang[name])
    assert fun == OpaqueFun(from_erlang[name][1:])
    assert encode(fun) == from_erlang[name]


NODE = "a@b"
# name: (Python value, Erlang expression it must be =:= to)
TO_ERLANG: dict[str, tuple[Any, str]] = {
    "true": (True, "true"),
    "none": (None, "undefined"),
    "atom": (Atom("ok"), "ok"),
    "atom_empty": (Atom(""), "''"),
    "atom_latin1": (Atom("héllo"), "list_to_atom([104,233,108,108,111])"),
    "atom_unicode": (Atom("世界"), "list_to_atom([16#4e16,16#754c])"),
    "atom_255_unicode": (Atom("世" * 255), "list_to_atom(lists:duplicate(255, 16#4e16))"),
    "ints": (
        (0, 255, 256, -1, 2**31 - 1, 2**31, -(2**31), -(2**31) - 1),
        "{0, 255, 256, -1, 2147483647, 2147483648, -2147483648, -2147483649}",
    ),
    "bigs": (
        (2**64, -(2**64), 2**2039, 2**2040, -(3 << 70000)),
        "{1 bsl 64, -(1 bsl 64), 1 bsl 2039, 1 bsl 2040, -(3 bsl 70000)}",
    ),
    "big_huge": (2**100000, "1 bsl 100000"),
    "floats": ((1.5, 0.1, -2.5e-300, 1e300), "{1.5, 0.1, -2.5e-300, 1.0e300}"),
    "binaries": ((b"", b"\x00\xff", "héllo"), "{<<>>, <<0, 255>>, <<104,195,169,108,108,111>>}"),
    "binary_large": (b"x" * 70000, 'binary:copy(<<"x">>, 70000)'),
    "bits": ((BitBinary(b"\x80", 1), BitBinary(b"\xff\xc0", 2)), "{<<1:1>>, <<255, 3:2>>}"),
    "lists": (([], [1, 2, 3], [True, 1, A], [1, 256]), "{[], [1,2,3], [true,1,a], [1,256]}"),
    "string_65535": ([97] * 65535, "lists:duplicate(65535, 97)"),
    "string_65536": ([97] * 65536, "lists:duplicate(65536, 97)"),
    "improper": (ImproperList([1, 2], Atom("t")), "[1, 2 | t]"),
    "tuples": (((), (1, (2, (3,)))), "{{}, {1, {2, {3}}}}"),
    "tuple_256": (tuple(range(256)), "list_to_tuple(lists:seq(0, 255))"),
    "map_empty": ({}, "#{}"),
    "map_40_keys": (
        {i: i * i for i in range(40)},
        "maps:from_list([{I, I * I} || I <- lists:seq(0, 39)])",
    ),
    "map_list_keys": (
        {FrozenList([1, 2]): X, FrozenMap({A: 1}): Y, (FrozenList([3]),): Z, "k": b"v"},
        '#{[1, 2] => x, #{a => 1} => y, {[3]} => z, <<"k">> => <<"v">>}',
    ),
    "map_nested": ({A: {B: {C: []}}}, "#{a => #{b => #{c => []}}}"),
    "local_pid": (Pid(Atom("nonode@nohost"), 80, 0, 0), 'list_to_pid("<0.80.0>")'),
    "pid": (
        Pid(Atom(NODE), 7, 3, 0xDEADBEEF),
        'binary_to_term(<<131, 88, 100, 0, 3, "a@b", 7:32, 3:32, 16#DEADBEEF:32>>)',
    ),
    "reference": (
        Reference(Atom(NODE), 0xDEADBEEF, (1, 2, 3)),
        'binary_to_term(<<131, 90, 3:16, 100, 0, 3, "a@b", 16#DEADBEEF:32, 1:32, 2:32, 3:32>>)',
    ),
    "port": (
        Port(Atom(NODE), 5, 0xDEADBEEF),
        'binary_to_term(<<131, 89, 100, 0, 3, "a@b", 5:32, 16#DEADBEEF:32>>)',
    ),
    "port_v4": (
        Port(Atom(NODE), 2**40, 7),
        'binary_to_term(<<131, 120, 100, 0, 3, "a@b", (1 bsl 40):64, 7:32>>)',
    ),
    "export_fun": (ExportFun(Atom("lists"), Atom("map"), 2), "fun lists:map/2"),
}


@pytest.fixture(scope="module")
def to_erlang(
    from_erlang: dict[str, bytes], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """One erl run decodes every Python encoding and prints whether it is =:= to the
    Erlang literal (or, for closures, to Erlang's own decoding, and callable)."""
    checks = {name: (value, f"T =:= ({expr})") for name, (value, expr) in TO_ERLANG.items()}
    for name, argument, result in (("closure_eval", 1, 43), ("closure_compiled", 1, 6)):
        original = base64.b64encode(from_erlang[name]).decode()
        same = f'T =:= binary_to_term(base64:decode(<<"{original}">>))'
        fun = decode(from_erlang[name])
        checks[name] = (fun, f"{same} andalso T({argument}) =:= {result}")
        nested = f'{{f, [binary_to_term(base64:decode(<<"{original}">>))]}}'
        checks[f"{name}_nested"] = ((Atom("f"), [fun]), f"T =:= {nested}")
    data = Path(tmp_path_factory.mktemp("codec")) / "to_erlang.txt"
    data.write_text(
        "".join(f"{n} {base64.b64encode(encode(v)).decode()}\n" for n, (v, _) in checks.items())
    )
    program = ", ".join(
        [
            FIXTURE,
            f'{{ok, Raw}} = file:read_file("{data}")',
            'Data = maps:from_list([list_to_tuple(binary:split(L, <<" ">>)) || '
            'L <- binary:split(Raw, <<"\\n">>, [global, trim_all])])',
            "Check = fun(Name, Pred) -> R = try Pred(binary_to_term(base64:decode("
            "maps:get(list_to_binary(Name), Data)))) catch C:E -> {C, E} end, "
            'io:format("~s ~p~n", [Name, R]) end',
            *(f'Check("{n}", fun(T) -> {pred} end)' for n, (_, pred) in checks.items()),
        ]
    )
    out = erl_eval(program, timeout=60)
    return dict(line.split(" ", 1) for line in out.splitlines() if line)


@pytest.mark.parametrize(
    "name",
    [
        *TO_ERLANG,
        "closure_eval",
        "closure_compiled",
        "closure_eval_nested",
        "closure_compiled_nested",
    ],
)
def test_python_encoding_is_equal_in_erlang(to_erlang: dict[str, str], name: str) -> None:
    """What Python encoded is =:= in Erlang to the literal (closures: and callable)."""
    assert to_erlang[name] == "true"
