"""Chat messages as terms on room:lobby and back: what a page, an Elixir app or
``nodemesh publish`` sends is shown; anything else is dropped."""

from __future__ import annotations

from typing import Any

import pytest

from nodemesh.demo.messages import MAX_TEXT, chat_message, from_term, to_term
from nodemesh.term import decode, encode
from nodemesh.term.types import Atom


def test_a_message_survives_the_wire() -> None:
    """A page's message, encoded as the term and decoded as a peer gets it, reads the same."""
    message = chat_message("Ada", "héllo ✨", "amber@127.0.0.1", now=1_700_000_000.5)
    assert message["at"] == 1_700_000_000_500
    wire = decode(encode(to_term(message)))
    assert all(isinstance(key, bytes) for key in wire)  # Elixir sees %{"author" => ...}
    assert from_term(wire) == message


def test_a_bare_binary_is_a_message_without_author() -> None:
    """What `nodemesh publish room:lobby TEXT` or Elixir's broadcast of a string sends."""
    message = from_term(b"hi from elixir", now=2.0)
    assert message is not None
    assert (message["author"], message["text"], message["node"], message["at"]) == (
        "",
        "hi from elixir",
        "",
        2000,
    )


@pytest.mark.parametrize(
    "term",
    [
        Atom("hello"),
        (Atom("ok"), 1),
        {b"author": b"a", b"text": b"t", b"node": b"n", b"id": b"i"},  # no time
        {b"author": b"a", b"text": 3, b"node": b"n", b"id": b"i", b"at": 1},
        {b"author": b"a", b"text": b"t", b"node": b"n", b"id": b"i", b"at": True},
    ],
)
def test_other_terms_are_not_chat(term: Any) -> None:
    """A term that is neither a binary nor a whole chat map is dropped (None)."""
    assert from_term(term) is None


def test_long_texts_and_names_are_cut() -> None:
    """One page cannot flood the others: text and author are bounded on both ends."""
    message = chat_message("x" * 100, "y" * (MAX_TEXT + 5), "n")
    assert len(message["text"]) == MAX_TEXT and len(message["author"]) == 40
    received = from_term({**to_term(message), "text": "z" * (MAX_TEXT + 5)})
    assert received is not None and len(received["text"]) == MAX_TEXT
    assert chat_message("   ", "t", "n")["author"] == "anonymous"
