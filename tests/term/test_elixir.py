"""The Elixir-facing conversions against real Elixir: ``nil``, strings as binaries,
charlists, module aliases, keyword lists and structs, in both directions (one
``elixir`` run)."""

from __future__ import annotations

import base64
import subprocess
from typing import Any

import pytest

from nodemesh.term import ELIXIR, Atom, elixir_module
from support.erlang import require_elixir

pytestmark = pytest.mark.interop

# The same value as Elixir writes it (struct/2, since a struct literal cannot follow its
# defmodule in one script), and as Python sends it and gets it back.
ELIXIR_VALUE = """%{
  none: nil, text: "héllo", bytes: <<0, 255>>, charlist: 'abc',
  module: MyApp.Worker, erlang_module: :lists, keyword: [a: 1, b: nil],
  user: struct(MyApp.User, name: "ann"), tuple: {:ok, nil}
}"""
SCRIPT = """
defmodule MyApp.User do
  defstruct name: nil, age: nil
end
expected = %(value)s
got = :erlang.binary_to_term(Base.decode64!("%(sent)s"))
IO.puts(inspect(got == expected))
IO.puts(inspect(is_struct(got.user, MyApp.User)))
IO.puts(Base.encode64(:erlang.term_to_binary(expected)))
"""


def _python_value(text: Any) -> dict[Atom, Any]:
    """The map above in Python, with ``text`` for what Elixir strings are on each side."""
    return {
        Atom("none"): None,
        Atom("text"): text("héllo"),
        Atom("bytes"): b"\x00\xff",
        Atom("charlist"): [ord(c) for c in "abc"],
        Atom("module"): elixir_module("MyApp.Worker"),
        Atom("erlang_module"): Atom("lists"),
        Atom("keyword"): [(Atom("a"), 1), (Atom("b"), None)],
        Atom("user"): {
            Atom("__struct__"): elixir_module("MyApp.User"),
            Atom("name"): text("ann"),
            Atom("age"): None,
        },
        Atom("tuple"): (Atom("ok"), None),
    }


def test_elixir_reads_what_python_sends_and_python_reads_what_elixir_sends() -> None:
    """ELIXIR-encoded str/None/aliases are == Elixir's literal (the dict with __struct__
    is a %MyApp.User{}); Elixir's term decodes to the documented Python values."""
    sent = base64.b64encode(ELIXIR.encode(_python_value(str))).decode()
    proc = subprocess.run(
        [require_elixir(), "-e", SCRIPT % {"value": ELIXIR_VALUE, "sent": sent}],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    equal, is_struct, reply = proc.stdout.split()
    assert (equal, is_struct) == ("true", "true")
    assert ELIXIR.decode(base64.b64decode(reply)) == _python_value(str.encode)
