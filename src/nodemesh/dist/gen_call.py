"""The frames of one gen_server call out of a node (no I/O).

A call (``stdlib/src/gen.erl``, ``do_call/4``) is MONITOR_P of the server, then
``{'$gen_call', {From, Ref}, Request}`` to it (SEND_SENDER to a pid, REG_SEND to a name),
and after the reply DEMONITOR_P. From one caller pid to one server these frames differ
only in the reference and the request, so :class:`CallFrames` keeps the rest of their
bytes per destination and encodes just those two per call: the same bytes as
:mod:`nodemesh.dist.control` builds (``tests/dist/test_gen_call.py`` checks it), for a
third of the encoding work on the caller's side.
"""

from __future__ import annotations

from typing import Any

from nodemesh.dist.control import Op
from nodemesh.term import encode
from nodemesh.term.codec import ERLANG, TermCodec
from nodemesh.term.types import Atom, Pid, Reference

__all__ = ["CallFrames", "ReplyFrames"]

GEN_CALL = Atom("$gen_call")
_VERSION, _TUPLE2, _TUPLE3, _TUPLE4 = b"\x83", b"h\x02", b"h\x03", b"h\x04"  # erl_ext_dist 12.13
_MAX_DESTINATIONS = 1024


def _element(term: Any) -> bytes:
    """``term`` encoded without the version byte, to be placed inside a tuple."""
    return encode(term)[1:]


class CallFrames:
    """Frames of calls from the pid ``caller``; ``codec`` encodes requests."""

    def __init__(self, caller: Pid, codec: TermCodec = ERLANG) -> None:
        self._caller = _element(caller)
        self._pid = caller
        self._encode = codec.encode
        # destination -> (MONITOR_P head, request head, DEMONITOR_P head), each missing
        # its reference (and the request its term) at the end.
        self._heads: dict[Pid | Atom, tuple[bytes, bytes, bytes]] = {}

    def _heads_for(self, server: Pid | Atom) -> tuple[bytes, bytes, bytes]:
        heads = self._heads.get(server)
        if heads is None:
            me, there = self._caller, _element(server)
            monitor = b"p" + _VERSION + _TUPLE4 + _element(Op.MONITOR_P.value) + me + there
            demonitor = b"p" + _VERSION + _TUPLE4 + _element(Op.DEMONITOR_P.value) + me + there
            if type(server) is Pid:
                ctrl = encode((Op.SEND_SENDER.value, self._pid, server))
            else:
                ctrl = encode((Op.REG_SEND.value, self._pid, Atom(""), server))
            request = b"p" + ctrl + _VERSION + _TUPLE3 + _element(GEN_CALL) + _TUPLE2 + me
            heads = (monitor, request, demonitor)
            if len(self._heads) >= _MAX_DESTINATIONS:
                self._heads.clear()
            self._heads[server] = heads
        return heads

    def call(self, server: Pid | Atom, ref: Reference, request: Any) -> tuple[bytes, bytes]:
        """MONITOR_P and the request as whole frames (length prefixes included), and the
        reference's bytes for :meth:`demonitor`. Raises :class:`EncodeError` if the
        request has no term form."""
        monitor, head, _ = self._heads_for(server)
        ref_bytes = _element(ref)
        body = self._encode(request)
        first = monitor + ref_bytes
        second = head + ref_bytes + body[1:]
        return (
            len(first).to_bytes(4, "big")
            + first
            + len(second).to_bytes(4, "big")
            + second,
            ref_bytes,
        )

    def demonitor(self, server: Pid | Atom, ref_bytes: bytes) -> bytes:
        """DEMONITOR_P of the call whose reference encodes as ``ref_bytes``."""
        frame = self._heads_for(server)[2] + ref_bytes
        return len(frame).to_bytes(4, "big") + frame


class ReplyFrames:
    """Frames of replies from gen_servers (``gen:reply/2``); ``codec`` encodes values.

    A reply is ``{Tag, Value}``, sent to the alias of an OTP 24+ tag (ALIAS_SEND) or to
    the caller's pid (SEND_SENDER). The control term depends only on the server and the
    caller's pid (a node calls from one pid, its call router) or the server alone, so its
    bytes are kept; the tag and the value are encoded per reply.
    """

    def __init__(self, codec: TermCodec = ERLANG) -> None:
        self._encode = codec.encode
        self._heads: dict[tuple[Pid, Pid | None], bytes] = {}

    def _head(self, server: Pid, to: Pid | None) -> bytes:
        head = self._heads.get((server, to))
        if head is None:
            if to is None:  # ALIAS_SEND {33, From, Alias}: the alias follows
                head = b"p" + _VERSION + b"h\x03" + _element(Op.ALIAS_SEND.value) + _element(server)
            else:
                head = b"p" + encode((Op.SEND_SENDER.value, server, to)) + _VERSION + _TUPLE2
            if len(self._heads) >= _MAX_DESTINATIONS:
                self._heads.clear()
            self._heads[server, to] = head
        return head

    def to_pid(self, server: Pid, to: Pid, tag: Any, value: Any) -> bytes:
        """SEND_SENDER of ``{tag, value}`` to ``to``. Raises EncodeError as encode does."""
        frame = self._head(server, to) + _element(tag) + self._encode(value)[1:]
        return len(frame).to_bytes(4, "big") + frame

    def to_alias(self, server: Pid, alias: Reference, tag: Any, value: Any) -> bytes:
        """ALIAS_SEND of ``{tag, value}`` to ``alias``. Raises EncodeError."""
        body = _element(tag) + self._encode(value)[1:]
        frame = self._head(server, None) + _element(alias) + _VERSION + _TUPLE2 + body
        return len(frame).to_bytes(4, "big") + frame
