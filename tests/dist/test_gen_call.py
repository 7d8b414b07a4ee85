"""CallFrames builds byte for byte the frames dist.control builds for a gen_server call."""

from __future__ import annotations

from nodemesh.dist import control
from nodemesh.dist.gen_call import CallFrames, ReplyFrames
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
