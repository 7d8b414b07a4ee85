"""Control messages of the distribution protocol (no I/O).

``erl_dist_protocol``, "Protocol between Connected Nodes": every message is a control
tuple whose first element is an operation code, optionally followed by a payload term.
Builders here return whole frames (length prefix included) ready to write, the replies
a node owes its peer among them (UNLINK_ID_ACK, ``noproc`` exits and DOWNs, SPAWN_REPLY).
:func:`parse` turns one frame payload into a typed event of :mod:`nodemesh.dist.events`;
:func:`read` does the same except for ordinary messages, handed over as a bare tuple
(the fast path: see its docstring for the measurement).
"""

from __future__ import annotations

import struct
from enum import IntEnum
from types import SimpleNamespace
from typing import Any

from nodemesh.dist import events as ev
from nodemesh.errors import DecodeError, RemoteProtocolError
from nodemesh.term.encode import Encoded, write_term
from nodemesh.term.codec import ERLANG, TermCodec
from nodemesh.term.types import Atom, Pid, Reference

__all__ = [
    "Op",
    "alias_send",
    "build",
    "demonitor_p",
    "exit2_signal",
    "exit_signal",
    "link",
    "monitor_exit",
    "monitor_p",
    "parse",
    "read",
    "reg_send",
    "send",
    "spawn_reply",
    "spawn_request",
    "unlink_id",
    "unlink_id_ack",
]

PASS_THROUGH = 112  # 'p': no distribution header (we negotiate no atom cache)


class Op(IntEnum):
    """Operation codes (the first element of the control tuple)."""

    LINK = 1
    SEND = 2
    EXIT = 3
    UNLINK = 4
    NODE_LINK = 5
    REG_SEND = 6
    GROUP_LEADER = 7
    EXIT2 = 8
    SEND_TT = 12
    EXIT_TT = 13
    REG_SEND_TT = 16
    EXIT2_TT = 18
    MONITOR_P = 19
    DEMONITOR_P = 20
    MONITOR_P_EXIT = 21
    SEND_SENDER = 22
    SEND_SENDER_TT = 23
    PAYLOAD_EXIT = 24
    PAYLOAD_EXIT_TT = 25
    PAYLOAD_EXIT2 = 26
    PAYLOAD_EXIT2_TT = 27
    PAYLOAD_MONITOR_P_EXIT = 28
    SPAWN_REQUEST = 29
    SPAWN_REQUEST_TT = 30
    SPAWN_REPLY = 31
    SPAWN_REPLY_TT = 32
    ALIAS_SEND = 33
    ALIAS_SEND_TT = 34
    UNLINK_ID = 35
    UNLINK_ID_ACK = 36


#: The arity of each control tuple, and whether a payload term follows it.
_SHAPES: dict[int, tuple[int, bool]] = {
    Op.LINK: (3, False),
    Op.SEND: (3, True),
    Op.EXIT: (4, False),
    Op.UNLINK: (3, False),
    Op.NODE_LINK: (1, False),
    Op.REG_SEND: (4, True),
    Op.GROUP_LEADER: (3, False),
    Op.EXIT2: (4, False),
    Op.SEND_TT: (4, True),
    Op.EXIT_TT: (5, False),
    Op.REG_SEND_TT: (5, True),
    Op.EXIT2_TT: (5, False),
    Op.MONITOR_P: (4, False),
    Op.DEMONITOR_P: (4, False),
    Op.MONITOR_P_EXIT: (5, False),
    Op.SEND_SENDER: (3, True),
    Op.SEND_SENDER_TT: (4, True),
    Op.PAYLOAD_EXIT: (3, True),
    Op.PAYLOAD_EXIT_TT: (4, True),
    Op.PAYLOAD_EXIT2: (3, True),
    Op.PAYLOAD_EXIT2_TT: (4, True),
    Op.PAYLOAD_MONITOR_P_EXIT: (4, True),
    Op.SPAWN_REQUEST: (6, True),
    Op.SPAWN_REQUEST_TT: (7, True),
    Op.SPAWN_REPLY: (5, False),
    Op.SPAWN_REPLY_TT: (6, False),
    Op.ALIAS_SEND: (3, True),
    Op.ALIAS_SEND_TT: (4, True),
    Op.UNLINK_ID: (4, False),
    Op.UNLINK_ID_ACK: (4, False),
}
_SHAPES = {int(op): shape for op, shape in _SHAPES.items()}

#: Op by number without ``Op(n)`` (an enum call, about 1 µs), and the numbers as plain
#: attributes: on Python 3.11 every ``Op.X`` goes through ``EnumType.__getattr__``
#: (~0.2 µs), which ``_Fields.event`` paid a dozen times per control message (two of
#: them, MONITOR_P and DEMONITOR_P, in every gen_server call).
_OPS: dict[int, Op] = {op.value: op for op in Op}
_N = SimpleNamespace(**{op.name: op.value for op in Op})

EMPTY_ATOM = Atom("")
NOPROC = Atom("noproc")


# -- building ----------------------------------------------------------------------------
def build(
    control: tuple[Any, ...],
    payload: Any = None,
    *,
    with_payload: bool = False,
    codec: TermCodec = ERLANG,
) -> bytes:
    """Encode one frame: length prefix, pass-through byte, control term, payload term.

    The payload is encoded with ``codec`` (which atom is None: ``undefined`` or Elixir's
    ``nil``); control tuples hold no None, so the default encoder serves them.
    """
    parts: list[Any] = [b"p"]
    write_term(control, parts)
    if with_payload:
        write_term(payload, parts, codec.none_encoded)
    return _frame(parts)


def _frame(parts: list[Any]) -> bytes:
    """The frame of these pieces: their 4-byte length, then them."""
    body = b"".join(parts)
    return _pack_length(len(body)) + body


def _head(control: tuple[Any, ...]) -> bytes:
    """The pass-through byte and the encoded control term: a frame's start."""
    parts: list[Any] = [b"p"]
    write_term(control, parts)
    return b"".join(parts)


def send(
    to: Pid, message: Any, sender: Pid | None = None, *, codec: TermCodec = ERLANG
) -> bytes:
    """A message to a pid: SEND_SENDER when the sender is known, else SEND."""
    # The control term, {2, '', To} or {22, From, To}, is the same bytes for every message
    # to one pid (a pub/sub broadcast sends to the same few pids over and over): encode it
    # once. Kept by the pids' identities (hashing a Pid runs its dataclass __hash__ in
    # Python: measured, docs/benchmarks.md session 4), then SEND's by the pid's value.
    if sender is None:
        entry = _BY_ID.get(id(to))
        if entry is None:
            entry = _keep(id(to), (_send_head(to), to))
    else:
        key = (id(to), id(sender))
        entry = _BY_ID.get(key)
        if entry is None:
            entry = _keep(key, (_head((Op.SEND_SENDER.value, sender, to)), to, sender))
    return _message_frame(entry[0], message, codec)


def _message_frame(head: bytes, message: Any, codec: TermCodec) -> bytes:
    """The frame of a kept control term's bytes and ``message`` (a C call when compiled,
    see control.pxd). An encode_once'd message (a broadcast's, one encoding for many
    destinations) is joined as it is, without write_term."""
    if type(message) is Encoded:
        body: bytes = head + b"\x83" + message.data
    else:
        parts: list[Any] = [head]
        write_term(message, parts, codec.none_encoded)
        body = b"".join(parts)  # _frame(parts) inlined: one call less per message
    return _pack_length(len(body)) + body


def _send_head(to: Pid) -> bytes:
    head = _SEND_HEADS.get(to)
    if head is None:
        head = _head((Op.SEND.value, EMPTY_ATOM, to))
        if len(_SEND_HEADS) >= _SEND_HEADS_MAX:
            _SEND_HEADS.clear()
        _SEND_HEADS[to] = head
    return head


def _keep(key: Any, entry: tuple[Any, ...]) -> tuple[Any, ...]:
    """Keep ``entry``, (head, the objects whose ids make ``key``...): it keeps them alive,
    so no other object can have their ids while it is kept."""
    if len(_BY_ID) >= _SEND_HEADS_MAX:
        _BY_ID.clear()
    _BY_ID[key] = entry
    return entry


_SEND_HEADS: dict[Pid, bytes] = {}  # SEND frame starts (no length) by destination
_SEND_HEADS_MAX = 1024
#: Frame starts by the ids of their pids (and REG_SEND's name): (head, pids...) tuples.
_BY_ID: dict[Any, tuple[Any, ...]] = {}
_pack_length = struct.Struct(">I").pack


def reg_send(sender: Pid, name: Atom | str, message: Any, *, codec: TermCodec = ERLANG) -> bytes:
    """A message to a registered name on the peer (``name``: an Atom or str)."""
    # {6, From, '', ToName}, kept per (sender, name) as SEND's control term per pid.
    key = (id(sender), name)
    entry = _BY_ID.get(key)
    if entry is None:
        head = _head((Op.REG_SEND.value, sender, EMPTY_ATOM, Atom(name)))
        entry = _keep(key, (head, sender))
    return _message_frame(entry[0], message, codec)


def link(sender: Pid, target: Pid) -> bytes:
    """LINK: our ``sender`` links to the peer's ``target``."""
    return build((Op.LINK.value, sender, target))


def unlink_id(unlink_id: int, sender: Pid, target: Pid) -> bytes:
    """UNLINK_ID: remove a link; the peer answers with UNLINK_ID_ACK (OTP 23+)."""
    return build((Op.UNLINK_ID.value, unlink_id, sender, target))


def unlink_id_ack(request: ev.Unlink) -> bytes:
    """The UNLINK_ID_ACK owed for an UNLINK_ID: same id, sender and target swapped."""
    assert request.unlink_id is not None, "UNLINK (4) is not acknowledged"
    return build((Op.UNLINK_ID_ACK.value, request.unlink_id, request.target, request.sender))


def exit_signal(sender: Pid, to: Pid, reason: Any, *, codec: TermCodec = ERLANG) -> bytes:
    """A linked process exited (PAYLOAD_EXIT)."""
    return build((Op.PAYLOAD_EXIT.value, sender, to), reason, with_payload=True, codec=codec)


def exit2_signal(sender: Pid, to: Pid, reason: Any, *, codec: TermCodec = ERLANG) -> bytes:
    """``exit(To, Reason)`` sent by ``sender`` (PAYLOAD_EXIT2)."""
    return build((Op.PAYLOAD_EXIT2.value, sender, to), reason, with_payload=True, codec=codec)


def noproc_exit(request: ev.Link) -> bytes:
    """The answer to a LINK to a process that does not exist: an exit with ``noproc``."""
    return exit_signal(request.target, request.sender, NOPROC)


def monitor_p(watcher: Pid, target: Pid | Atom, ref: Reference) -> bytes:
    """MONITOR_P: our ``watcher`` monitors the peer's ``target`` (pid or name)."""
    return build((Op.MONITOR_P.value, watcher, target, ref))


def demonitor_p(watcher: Pid, target: Pid | Atom, ref: Reference) -> bytes:
    """DEMONITOR_P: remove the monitor ``ref``."""
    return build((Op.DEMONITOR_P.value, watcher, target, ref))


def monitor_exit(
    from_proc: Pid | Atom, to: Pid, ref: Reference, reason: Any, *, codec: TermCodec = ERLANG
) -> bytes:
    """The monitored process ``from_proc`` is gone (PAYLOAD_MONITOR_P_EXIT)."""
    control = (Op.PAYLOAD_MONITOR_P_EXIT.value, from_proc, to, ref)
    return build(control, reason, with_payload=True, codec=codec)


def noproc_down(request: ev.MonitorP) -> bytes:
    """The answer to a MONITOR_P of a process that does not exist: DOWN with ``noproc``."""
    return monitor_exit(request.target, request.watcher, request.ref, NOPROC)


def spawn_request(
    req_id: Reference,
    sender: Pid,
    group_leader: Pid,
    mfa: tuple[Atom, Atom, int],
    opts: list[Any],
    args: list[Any],
    *,
    codec: TermCodec = ERLANG,
) -> bytes:
    """SPAWN_REQUEST ``{29, ReqId, From, GroupLeader, {M, F, A}, Opts}`` + ArgList."""
    control = (Op.SPAWN_REQUEST.value, req_id, sender, group_leader, mfa, opts)
    return build(control, args, with_payload=True, codec=codec)


def spawn_reply(request: ev.SpawnRequest, flags: int, result: Pid | Atom) -> bytes:
    """SPAWN_REPLY to ``request``: the new pid (``flags`` 1 link, 2 monitor made), or an
    error atom such as ``notsup``."""
    return build((Op.SPAWN_REPLY.value, request.req_id, request.sender, flags, result))


def alias_send(sender: Pid, alias: Reference, message: Any, *, codec: TermCodec = ERLANG) -> bytes:
    """ALIAS_SEND ``{33, From, Alias}`` + Msg: a message to a process alias (OTP 24+, only
    to peers that advertised DFLAG_ALIAS). A deactivated alias drops it on arrival."""
    return build((Op.ALIAS_SEND.value, sender, alias), message, with_payload=True, codec=codec)


# -- parsing -----------------------------------------------------------------------------
def read(frame: bytes | memoryview, codec: TermCodec = ERLANG) -> ev.Message | ev.ControlEvent:
    """Like :func:`parse`, but SEND, SEND_SENDER and REG_SEND come back as a bare
    ``(to, message, sender)`` tuple (:data:`~nodemesh.dist.events.Message`).

    The fast path: building a frozen dataclass per message cost more than the rest of
    the dispatch on ``bench/dist.py`` (see docs/benchmarks.md), and a message's control
    term, the same bytes for every message of one sender to one process, is looked up
    by its bytes instead of decoded (:func:`_message_head`). Raises as :func:`parse`.
    """
    if frame[0] != PASS_THROUGH:
        raise _bad_header(frame[0])
    decode_from = codec.decode_from  # with the node's limits and none atom
    head = _message_head(frame) if type(frame) is bytes else None
    if head is not None:
        known = _HEADS.get(head)
        # Valid for the decoder that read it: another codec's none_atom could make the
        # name of a REG_SEND None (refused below by _event as not an atom).
        if known is not None and known[2] is decode_from:
            payload, end = decode_from(frame, len(head) + 1)
            if end == len(frame):
                return (known[0], payload, known[1])
    control, pos = decode_from(frame, 1)
    if type(control) is not tuple or not control or type(control[0]) is not int:
        raise _not_control(control)
    op = control[0]
    if op == 22 or op == 2:  # SEND_SENDER {22, From, To}, SEND {2, '', To}
        if len(control) == 3:
            to = control[2]
            payload, end = decode_from(frame, pos)
            if end == len(frame) and type(to) is Pid:
                if op == 2:
                    return _known(head, to, payload, None, decode_from)
                sender = control[1]
                if type(sender) is Pid:
                    return _known(head, to, payload, sender, decode_from)
    elif op == 6 and len(control) == 4:  # REG_SEND {6, From, '', ToName}
        to, sender = control[3], control[1]
        payload, end = decode_from(frame, pos)
        if end == len(frame) and type(to) is Atom and type(sender) is Pid:
            return _known(head, to, payload, sender, decode_from)
    elif (op == 19 or op == 20) and len(control) == 4 and pos == len(frame):
        # MONITOR_P / DEMONITOR_P {Op, FromPid, ToProc, Ref}: two per gen_server call.
        # Anything unexpected goes on to _event, which says what is wrong.
        watcher, target, ref = control[1], control[2], control[3]
        if type(watcher) is Pid and type(ref) is Reference:
            if type(target) is Pid or type(target) is Atom:
                return _monitor_event(_DEMONITOR if op == 20 else _MONITOR, watcher, target, ref)
    return _event(frame, control, pos, codec)


def _slot_setters(cls: type) -> tuple[Any, ...]:
    """The class and the ``__set__`` of each slot of a frozen, slotted dataclass."""
    return (cls, *(cls.__dict__[name].__set__ for name in cls.__slots__))  # type: ignore[attr-defined]


_new = object.__new__
_MONITOR, _DEMONITOR = _slot_setters(ev.MonitorP), _slot_setters(ev.DemonitorP)


def _monitor_event(
    kind: tuple[Any, ...], watcher: Pid, target: Any, ref: Reference
) -> ev.MonitorP | ev.DemonitorP:
    """``MonitorP(watcher, target, ref)`` (or DemonitorP) with its slots filled directly:
    the frozen dataclass's ``__init__`` (``object.__setattr__`` per field, from Python)
    cost twice as much; the same value results."""
    cls, set_watcher, set_target, set_ref = kind
    event = _new(cls)
    set_watcher(event, watcher)
    set_target(event, target)
    set_ref(event, ref)
    return event  # type: ignore[no-any-return]


#: Control terms of messages by their bytes (version byte on): (to, sender, the
#: decode_from that read them). Bounded like the decoder's caches.
_HEADS: dict[bytes, tuple[Any, Any, Any]] = {}
_HEADS_MAX = 1024


def _heads_kept() -> int:
    """How many control terms are remembered (a C global when compiled: the tests ask)."""
    return len(_HEADS)


def _known(head: bytes | None, to: Any, payload: Any, sender: Any, decoder: Any) -> ev.Message:
    """The message, its control term's bytes remembered if they had a known shape."""
    if head is not None:
        if len(_HEADS) >= _HEADS_MAX:
            _HEADS.clear()
        _HEADS[head] = (to, sender, decoder)
    return (to, payload, sender)


def _message_head(frame: bytes) -> bytes | None:
    """The control term's bytes (version byte on) if it has the shape erts and nodemesh
    give SEND {2, '', To}, SEND_SENDER {22, From, To} or REG_SEND {6, From, '', Name}
    (SMALL_TUPLE_EXT, SMALL_INTEGER_EXT, NEW_PID_EXT with a SMALL_ATOM_UTF8_EXT node,
    SMALL_ATOM_UTF8_EXT atoms: erl_ext_dist 12.13, 12.5, 12.12, 12.31), else None. Only
    the shape is read here; the bytes are then looked up, or decoded and checked."""
    size = len(frame)
    if size < 6 or frame[1] != 131 or frame[2] != 104 or frame[4] != 97:
        return None
    arity, op = frame[3], frame[5]
    try:
        if op == 6 and arity == 4:
            pos = _pid_end(frame, 6)
            if pos and frame[pos] == 119 and frame[pos + 1] == 0 and frame[pos + 2] == 119:
                pos += 4 + frame[pos + 3]
            else:
                return None
        elif op == 22 and arity == 3:
            pos = _pid_end(frame, 6)
            pos = _pid_end(frame, pos) if pos else 0
        elif op == 2 and arity == 3 and frame[6] == 119 and frame[7] == 0:
            pos = _pid_end(frame, 8)
        else:
            return None
    except IndexError:  # cut short: the decoder reports it
        return None
    raw = frame  # compiled: a C pointer, sliced within the size
    return raw[1:pos] if 0 < pos <= size else None


def _pid_end(frame: bytes, pos: int) -> int:
    """The offset after a NEW_PID_EXT with a SMALL_ATOM_UTF8_EXT node at ``pos``, or 0."""
    if frame[pos] != 88 or frame[pos + 1] != 119:
        return 0
    return pos + 15 + frame[pos + 2]


def parse(frame: bytes | memoryview, codec: TermCodec = ERLANG) -> ev.ControlEvent:
    """Decode one non-empty frame payload into a typed control event.

    Raises :class:`RemoteProtocolError` (or its subclass :class:`DecodeError`) for
    anything malformed, never another error: a wrong header, an unknown operation, a
    control tuple of the wrong arity or with a field of the wrong type (erts drops
    such a connection too: "invalid distribution message"), trailing bytes.
    """
    control, pos = _control(frame, codec)
    return _event(frame, control, pos, codec)


def _control(frame: bytes | memoryview, codec: TermCodec) -> tuple[tuple[Any, ...], int]:
    if frame[0] != PASS_THROUGH:
        raise _bad_header(frame[0])
    control, pos = codec.decode_from(frame, 1)
    if type(control) is not tuple or not control or type(control[0]) is not int:
        raise _not_control(control)
    return control, pos


def _bad_header(header: int) -> RemoteProtocolError:
    return RemoteProtocolError(
        f"unexpected distribution header {header} (only pass-through 112 is negotiated)"
    )


def _not_control(control: Any) -> DecodeError:
    return DecodeError(f"control message is not a tuple led by an operation: {control!r:.80}")


def _event(
    frame: bytes | memoryview, control: tuple[Any, ...], pos: int, codec: TermCodec
) -> ev.ControlEvent:
    shape = _SHAPES.get(control[0])
    if shape is None:
        raise RemoteProtocolError(f"unknown control operation {control[0]}")
    op = _OPS[control[0]]
    if len(control) != shape[0]:
        raise RemoteProtocolError(f"control {op.name} has {len(control)} elements, not {shape[0]}")
    payload = None
    if shape[1]:
        payload, pos = codec.decode_from(frame, pos)
    if pos != len(frame):
        raise RemoteProtocolError(f"{len(frame) - pos} unexpected bytes after the message")
    return _Fields(op, control).event(payload)


class _Fields:
    """Typed access to one control tuple's elements; a wrong type is the peer's error."""

    __slots__ = ("control", "op")

    def __init__(self, op: Op, control: tuple[Any, ...]) -> None:
        self.op, self.control = op, control

    def _get(self, i: int, kinds: tuple[type, ...], what: str) -> Any:
        value = self.control[i]
        if type(value) not in kinds:
            raise RemoteProtocolError(
                f"control {self.op.name}: element {i} is not {what}: {value!r:.80}"
            )
        return value

    def pid(self, i: int) -> Pid:
        return self._get(i, (Pid,), "a pid")  # type: ignore[no-any-return]

    def ref(self, i: int) -> Reference:
        return self._get(i, (Reference,), "a reference")  # type: ignore[no-any-return]

    def proc(self, i: int) -> Pid | Atom:
        return self._get(i, (Pid, Atom), "a pid or a name")  # type: ignore[no-any-return]

    def int(self, i: int) -> int:
        return self._get(i, (int,), "an integer")  # type: ignore[no-any-return]

    def event(self, payload: Any) -> ev.ControlEvent:
        op, c = self.op, self.control
        if op == _N.MONITOR_P or op == _N.DEMONITOR_P:
            return self._simple(payload)
        if op in (_N.SEND, _N.SEND_TT):
            return ev.Send(self.pid(2), payload, None)
        if op in (_N.SEND_SENDER, _N.SEND_SENDER_TT):
            return ev.Send(self.pid(2), payload, self.pid(1))
        if op in (_N.REG_SEND, _N.REG_SEND_TT):
            return ev.RegSend(self.pid(1), self._get(3, (Atom,), "an atom"), payload)
        if op in _EXITS:
            reason = c[3] if op in (_N.EXIT, _N.EXIT2, _N.EXIT_TT, _N.EXIT2_TT) else payload
            if op in (_N.EXIT_TT, _N.EXIT2_TT):
                reason = c[4]  # {13, From, To, TraceToken, Reason}
            return ev.Exit(self.pid(1), self.pid(2), reason, link=op in _LINK_EXITS)
        if op in (_N.MONITOR_P_EXIT, _N.PAYLOAD_MONITOR_P_EXIT):
            reason = c[4] if op == _N.MONITOR_P_EXIT else payload
            return ev.MonitorPExit(self.proc(1), self.pid(2), self.ref(3), reason)
        if op in (_N.SPAWN_REQUEST, _N.SPAWN_REQUEST_TT):
            gl = self.pid(3)
            return ev.SpawnRequest(self.ref(1), self.pid(2), gl, c[4], c[5], payload)
        if op in (_N.SPAWN_REPLY, _N.SPAWN_REPLY_TT):
            return ev.SpawnReply(self.ref(1), self.pid(2), self.int(3), self.proc(4))
        return self._simple(payload)

    def _simple(self, payload: Any) -> ev.ControlEvent:
        op = self.op
        if op == _N.MONITOR_P:  # first: with DEMONITOR_P, in every gen_server call
            return ev.MonitorP(self.pid(1), self.proc(2), self.ref(3))
        if op == _N.DEMONITOR_P:
            return ev.DemonitorP(self.pid(1), self.proc(2), self.ref(3))
        if op == _N.LINK:
            return ev.Link(self.pid(1), self.pid(2))
        if op == _N.UNLINK:
            return ev.Unlink(self.pid(1), self.pid(2))
        if op == _N.UNLINK_ID:
            return ev.Unlink(self.pid(2), self.pid(3), self.int(1))
        if op == _N.UNLINK_ID_ACK:
            return ev.UnlinkIdAck(self.int(1), self.pid(2), self.pid(3))
        if op in (_N.ALIAS_SEND, _N.ALIAS_SEND_TT):
            return ev.AliasSend(self.pid(1), self.ref(2), payload)
        return ev.Other(int(op), self.control)


_EXITS = frozenset(
    {
        Op.EXIT,
        Op.EXIT_TT,
        Op.EXIT2,
        Op.EXIT2_TT,
        Op.PAYLOAD_EXIT,
        Op.PAYLOAD_EXIT_TT,
        Op.PAYLOAD_EXIT2,
        Op.PAYLOAD_EXIT2_TT,
    }
)
_LINK_EXITS = frozenset({Op.EXIT, Op.EXIT_TT, Op.PAYLOAD_EXIT, Op.PAYLOAD_EXIT_TT})
