"""erlang_text: terms printed as Erlang source, checked against what erl itself prints."""

from __future__ import annotations

import pytest

from nodemesh.term import Atom, BitBinary, ExportFun, FrozenList, ImproperList, Pid, Reference
from nodemesh.term.text import erlang_text


@pytest.mark.parametrize(
    ("term", "text"),
    [
        (Atom("ok"), "ok"),
        (Atom("Elixir.MyApp"), "'Elixir.MyApp'"),
        (Atom("end"), "'end'"),
        (Atom("it's"), "'it\\'s'"),
        (Atom("node@host"), "node@host"),
        (True, "true"),
        (None, "undefined"),
        (-12, "-12"),
        (1.5, "1.5"),
        (b"hi", '<<"hi">>'),
        ("héllo".encode(), '<<"héllo"/utf8>>'),
        (b"\x00\xff", "<<0,255>>"),
        (b"", "<<>>"),
        (b'say "x"\n', '<<"say \\"x\\"\\n">>'),
        ("text", '<<"text">>'),
        ([104, 105], '"hi"'),
        ([1, 2, Atom("a")], "[1,2,a]"),
        ([], "[]"),
        (FrozenList([1000]), "[1000]"),
        ((Atom("a"), (1, b"x")), '{a,{1,<<"x">>}}'),
        ({Atom("k"): [1]}, "#{k => [1]}"),
        (ImproperList((1, 2), Atom("t")), "[1,2|t]"),
        (Pid(Atom("a@h"), 80, 0, 1), "<a@h.80.0>"),
        (Reference(Atom("a@h"), 1, (3, 2, 1)), "#Ref<a@h.1.2.3>"),
        (ExportFun(Atom("lists"), Atom("map"), 2), "fun lists:map/2"),
        (BitBinary(b"\x01\xe0", 3), "<<1,7:3>>"),
    ],
)
def test_erlang_text(term: object, text: str) -> None:
    """Each kind of term prints as erl's ~tp prints it (pids and refs with node names)."""
    assert erlang_text(term) == text
