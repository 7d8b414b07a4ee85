"""encode_once: a term encoded once and embedded verbatim in later encodings."""

from __future__ import annotations

from nodemesh.term import Atom, TermCodec, decode, encode, encode_once


def test_embeds_verbatim() -> None:
    """Placed inside another term, it encodes exactly as the term itself would."""
    inner = (Atom("chat"), b"room", [1, 2.5, {Atom("k"): b"v"}])
    once = encode_once(inner)
    assert encode((Atom("wrap"), once)) == encode((Atom("wrap"), inner))
    assert decode(encode([once, once])) == [inner, inner]


def test_none_atom_is_chosen_when_encoding_once() -> None:
    """None inside is written with the none_atom given to encode_once, whatever codec
    embeds it later (a PubSub passes its node's none_atom)."""
    nil = encode_once((None,), none_atom="nil")
    assert encode(nil) == TermCodec(none_atom="nil").encode((None,))
    assert decode(encode(encode_once((None,)))) == (None,)
