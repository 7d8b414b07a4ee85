"""CallFrames builds byte for byte the frames dist.control builds for a gen_server call."""

from __future__ import annotations

import struct

import pytest

from nodemesh.dist import control
from nodemesh.dist.gen_call import CallFrames, ReplyFrames, reference_prefix
from nodemesh.errors import EncodeError
from nodemesh.term import encode
from nodemesh.term.codec import TermCodec
from nodemesh.term.types import Atom, ImproperList, Pid, Reference

ME = Pid(Atom("py@127.0.0.1"), 7, 0, 3)
SERVER = Pid(Atom("erl@127.0.0.1"), 80, 0, 1_700_000_000)
REF = Reference(Atom("py@127.0.0.1"), 3, (1, 2, 3))
NIL = TermCodec(none_atom="nil")


def test_call_to_a_name_matches_control() -> None:
    """MONITOR_P + REG_SEND of {'$gen_call', {Me, Ref}, Req}, and DEMONITOR_P, by name."""
    frames = CallFrames(ME)
    for _ in range(2):  # built, then from the cached heads
        request = (Atom("get"), b"k", None, [1, 2.5])
        out, ref_bytes = frames.call(Atom("kv"), REF, request)
        message = (Atom("$gen_call"), (ME, REF), request)
        expected = control.monitor_p(ME, Atom("kv"), REF) + control.reg_send(
            ME, Atom("kv"), message
        )
        assert out == expected
        assert frames.demonitor(Atom("kv"), ref_bytes) == control.demonitor_p(
            ME, Atom("kv"), REF
        )


def test_call_to_a_pid_matches_control_with_the_codec() -> None:
    """To a pid it is SEND_SENDER; the request goes through the caller's codec (nil)."""
    frames = CallFrames(ME, NIL)
    out, _ = frames.call(SERVER, REF, None)
    message = (Atom("$gen_call"), (ME, REF), None)
    expected = control.monitor_p(ME, SERVER, REF) + control.send(SERVER, message, ME, codec=NIL)
    assert out == expected


def test_replies_match_control() -> None:
    """Replies to a pid (SEND_SENDER) and to an OTP 24+ alias (ALIAS_SEND), byte for byte."""
    replies = ReplyFrames(NIL)
    alias_tag = ImproperList([Atom("alias")], REF)
    for _ in range(2):  # built, then from the cached heads
        assert replies.to_pid(SERVER, ME, REF, None) == control.send(
            ME, (REF, None), SERVER, codec=NIL
        )
        assert replies.to_alias(SERVER, REF, alias_tag, [b"v"]) == control.alias_send(
            SERVER, REF, (alias_tag, [b"v"]), codec=NIL
        )


def test_reference_bytes_from_kept_heads_match_the_encoder() -> None:
    """Call and reply frames encode references from a head kept per node: the bytes are
    the encoder's for any reference, and a reference the encoder refuses is refused."""
    replies, frames = ReplyFrames(), CallFrames(ME)
    refs = [
        REF,
        Reference(Atom("py@127.0.0.1"), 0xFFFF_FFFF, (0x3FFFF, 0xFFFF_FFFF, 0)),
        Reference(Atom("erl@host"), 1, (5, 6, 7)),
        Reference(Atom("erl@host"), 2, (5, 6, 7, 8, 9)),  # five words: the encoder's path
        Reference(Atom("old@host"), 2, (5,)),
    ]
    for ref in refs * 2:  # built, then from the kept head
        assert replies.to_pid(SERVER, ME, ref, 1) == control.send(ME, (ref, 1), SERVER)
        out, ref_bytes = frames.call(SERVER, ref, 1)
        assert out == control.monitor_p(ME, SERVER, ref) + control.send(
            SERVER, (Atom("$gen_call"), (ME, ref), 1), ME
        )
    for bad in (
        Reference(Atom("py@127.0.0.1"), 1 << 32, (1, 2, 3)),
        Reference(Atom("py@127.0.0.1"), 1, (1, -2, 3)),
        Reference(Atom("py@127.0.0.1"), 1, (1, "2", 3)),
    ):
        with pytest.raises(EncodeError):
            replies.to_pid(SERVER, ME, bad, 1)
        with pytest.raises(EncodeError):
            frames.call(SERVER, bad, 1)


def test_reference_prefix_and_encoded_call() -> None:
    """reference_prefix plus three packed words is the encoder's reference, and
    call_encoded with those bytes builds call()'s frames."""
    words = struct.Struct(">III")
    for ref in (REF, Reference(Atom("py@127.0.0.1"), 0xFFFF_FFFF, (0x3FFFF, 1 << 31, 7))):
        ref_bytes = reference_prefix(ref.node, ref.creation) + words.pack(*ref.ids)
        assert ref_bytes == encode(ref)[1:]
        frames = CallFrames(ME)
        assert frames.call_encoded(Atom("kv"), ref_bytes, 5) == frames.call(Atom("kv"), ref, 5)[0]
