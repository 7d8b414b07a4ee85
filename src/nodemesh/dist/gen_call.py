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

import struct
from typing import Any

from nodemesh.dist.control import Op
from nodemesh.term import encode
from nodemesh.term.encode import write_term
from nodemesh.term.codec import ERLANG, TermCodec
from nodemesh.term.types import Atom, Pid, Reference

__all__ = ["CallFrames", "ReplyFrames", "reference_prefix"]

GEN_CALL = Atom("$gen_call")
_VERSION, _TUPLE2, _TUPLE3, _TUPLE4 = b"\x83", b"h\x02", b"h\x03", b"h\x04"  # erl_ext_dist 12.13
_MAX_DESTINATIONS = 1024


_U32 = struct.Struct(">I")
_CREATION_IDS = struct.Struct(">IIII")  # a 3-word reference's Creation and ID words


def _element(term: Any) -> bytes:
    """``term`` encoded without the version byte, to be placed inside a tuple."""
    return encode(term)[1:]


def reference_prefix(node: Atom, creation: int) -> bytes:
    """The bytes of a 3-word reference of ``node`` up to its ID words (tag, length, node
    atom, creation): append the words packed as three big-endian 32-bit integers."""
    return _element(Reference(node, creation, (0, 0, 0)))[:-12]


class _RefBytes:
    """Encodes references (NEWER_REFERENCE_EXT, erl_ext_dist 12.17) from a kept head.

    Every call has a reference (the caller's tag): on both sides of a call it is most of
    what is encoded besides the request and the reply. Its head (tag, length, node atom)
    is the same for all references of one node, so it is kept per node name, and only
    the creation and the id words are packed; anything unusual goes to the encoder.
    """

    __slots__ = ("_heads",)

    def __init__(self) -> None:
        self._heads: dict[str, bytes] = {}

    def encode(self, ref: Reference) -> bytes:
        """``ref`` encoded, without the version byte."""
        ids = ref.ids
        if type(ids) is not tuple or len(ids) != 3:
            return _element(ref)
        head = self._heads.get(ref.node)
        if head is None:
            if type(ref.node) is not Atom:  # the encoder says what is wrong with it
                return _element(ref)
            head = _element(Reference(ref.node, 0, (0, 0, 0)))[:-16]
            if len(self._heads) >= _MAX_DESTINATIONS:
                self._heads.clear()
            self._heads[ref.node] = head
        try:
            return head + _CREATION_IDS.pack(ref.creation, *ids)
        except struct.error:  # out of range, or not ints: EncodeError from the encoder
            return _element(ref)


class CallFrames:
    """Frames of calls from the pid ``caller``; ``codec`` encodes requests."""

    def __init__(self, caller: Pid, codec: TermCodec = ERLANG) -> None:
        self._caller = _element(caller)
        self._pid = caller
        self._none = codec.none_encoded
        self._ref_bytes = _RefBytes().encode  # a bound method: no __call__ slot lookup
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
        ref_bytes = self._ref_bytes(ref)
        return self.call_encoded(server, ref_bytes, request), ref_bytes

    def call_encoded(self, server: Pid | Atom, ref_bytes: bytes, request: Any) -> bytes:
        """:meth:`call`'s frames for a reference already encoded (``ref_bytes``, from
        :func:`reference_prefix`). Raises :class:`EncodeError` as :meth:`call` does."""
        return self.call_then(server, ref_bytes, request, b"")[0]

    def call_then(
        self, server: Pid | Atom, ref_bytes: bytes, request: Any, after: bytes
    ) -> tuple[bytes, bytes]:
        """:meth:`call_encoded`'s frames followed by ``after`` (frames to send with them),
        and the call's DEMONITOR_P (:meth:`demonitor`), from one look at the kept heads.
        Raises :class:`EncodeError` as :meth:`call` does."""
        monitor, head, demonitor = self._heads.get(server) or self._heads_for(server)
        size = len(ref_bytes)
        parts: list[Any] = [head, ref_bytes]
        write_term(request, parts, self._none)  # the request's pieces
        parts[2] = b""  # its version byte: the request is inside the tuple
        # Joined, then measured: cheaper than summing the lengths of the pieces.
        body = b"".join(parts)
        call = (
            _U32.pack(len(monitor) + size),
            monitor,
            ref_bytes,
            _U32.pack(len(body)),
            body,
            after,
        )
        done = (_U32.pack(len(demonitor) + size), demonitor, ref_bytes)
        return b"".join(call), b"".join(done)

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
        self._none = codec.none_encoded
        self._encode = codec.encode
        # SEND_SENDER heads by the pids' fields (server id and serial: a node's servers
        # share its name and creation), not by the Pids: a Pid hashes and compares in
        # Python (a dataclass), a tuple of ints and a str in C.
        self._pid_heads: dict[tuple[Any, ...], bytes] = {}
        self._alias_heads: dict[Pid, bytes] = {}
        self._ref_bytes = _RefBytes().encode  # a bound method: no __call__ slot lookup
        # The last (server, caller) pair and its head, by identity: a server answering
        # one node's calls gets the same Pid objects each time (the decoder keeps the
        # pids it read; the server's is its mailbox's), so the key is not even built.
        self._last: tuple[Any, Any, bytes] = (None, None, b"")

    def _pid_head(self, server: Pid, to: Pid) -> bytes:
        key = (to.node, to.id, to.serial, to.creation, server.node, server.id, server.serial)
        head = self._pid_heads.get(key)
        if head is None:
            if len(self._pid_heads) >= _MAX_DESTINATIONS:
                self._pid_heads.clear()
            ctrl = encode((Op.SEND_SENDER.value, server, to))
            head = self._pid_heads[key] = b"p" + ctrl + _VERSION + _TUPLE2
        self._last = (server, to, head)
        return head

    def to_pid(self, server: Pid, to: Pid, tag: Any, value: Any) -> bytes:
        """SEND_SENDER of ``{tag, value}`` to ``to``. Raises EncodeError as encode does."""
        last = self._last
        head = last[2] if server is last[0] and to is last[1] else self._pid_head(server, to)
        tag_bytes = self._ref_bytes(tag) if type(tag) is Reference else _element(tag)
        parts: list[Any] = [head, tag_bytes]
        write_term(value, parts, self._none)  # the value's pieces
        parts[2] = b""  # its version byte: the value is inside the tuple
        body = b"".join(parts)  # then measured: cheaper than summing the pieces' lengths
        return _U32.pack(len(body)) + body

    def to_alias(self, server: Pid, alias: Reference, tag: Any, value: Any) -> bytes:
        """ALIAS_SEND of ``{tag, value}`` to ``alias``. Raises EncodeError."""
        head = self._alias_heads.get(server)
        if head is None:  # ALIAS_SEND {33, From, Alias}: the alias follows
            head = b"p" + _VERSION + b"h\x03" + _element(Op.ALIAS_SEND.value) + _element(server)
            if len(self._alias_heads) >= _MAX_DESTINATIONS:
                self._alias_heads.clear()
            self._alias_heads[server] = head
        body = _element(tag) + self._encode(value)[1:]
        frame = head + _element(alias) + _VERSION + _TUPLE2 + body
        return len(frame).to_bytes(4, "big") + frame
