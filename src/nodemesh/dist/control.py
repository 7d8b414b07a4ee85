"""Control messages of the distribution protocol (no I/O).

``erl_dist_protocol``, "Protocol between Connected Nodes": every message is a control
tuple whose first element is an operation code, optionally followed by a payload term.
Builders here return whole frames (length prefix included) ready to write; the parser
turns one frame payload into ``(control, payload)``.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from nodemesh.errors import DecodeError, RemoteProtocolError
from nodemesh.term import DEFAULT_LIMITS, DecodeLimits, decode_from, encode_into
from nodemesh.term.types import Atom, Pid, Reference

__all__ = ["Op", "build", "parse"]

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

EMPTY_ATOM = Atom("")


def build(control: tuple[Any, ...], payload: Any = None, *, with_payload: bool = False) -> bytes:
    """Encode one frame: length prefix, pass-through byte, control term, payload term."""
    out = bytearray(b"\x00\x00\x00\x00p")
    encode_into(control, out)
    if with_payload:
        encode_into(payload, out)
    out[0:4] = (len(out) - 4).to_bytes(4, "big")
    return bytes(out)


def send(to: Pid, message: Any, sender: Pid | None = None) -> bytes:
    """A message to a pid: SEND_SENDER when the sender is known, else SEND."""
    if sender is not None:
        return build((Op.SEND_SENDER.value, sender, to), message, with_payload=True)
    return build((Op.SEND.value, EMPTY_ATOM, to), message, with_payload=True)


def reg_send(sender: Pid, name: Atom, message: Any) -> bytes:
    """A message to a registered name on the peer."""
    return build((Op.REG_SEND.value, sender, EMPTY_ATOM, name), message, with_payload=True)


def monitor_exit(from_proc: Pid | Atom, to: Pid, ref: Reference, reason: Any) -> bytes:
    """The monitored process ``from_proc`` is gone (PAYLOAD_MONITOR_P_EXIT)."""
    control = (Op.PAYLOAD_MONITOR_P_EXIT.value, from_proc, to, ref)
    return build(control, reason, with_payload=True)


def exit_signal(sender: Pid, to: Pid, reason: Any) -> bytes:
    """A linked process exited (PAYLOAD_EXIT)."""
    return build((Op.PAYLOAD_EXIT.value, sender, to), reason, with_payload=True)


def parse(
    frame: bytes | memoryview, limits: DecodeLimits = DEFAULT_LIMITS
) -> tuple[tuple[Any, ...], Any]:
    """Decode one non-empty frame payload into ``(control, payload)``.

    ``payload`` is None for operations without one. Raises :class:`RemoteProtocolError`
    (or its subclass :class:`DecodeError`) for anything malformed, never another error.
    """
    if frame[0] != PASS_THROUGH:
        raise RemoteProtocolError(
            f"unexpected distribution header {frame[0]} (only pass-through 112 is negotiated)"
        )
    control, pos = decode_from(frame, 1, limits=limits)
    if type(control) is not tuple or not control or type(control[0]) is not int:
        raise DecodeError(f"control message is not a tuple led by an operation: {control!r:.80}")
    shape = _SHAPES.get(control[0])
    if shape is None:
        raise RemoteProtocolError(f"unknown control operation {control[0]}")
    if len(control) != shape[0]:
        name = Op(control[0]).name
        raise RemoteProtocolError(f"control {name} has {len(control)} elements, not {shape[0]}")
    payload = None
    if shape[1]:
        payload, pos = decode_from(frame, pos, limits=limits)
    if pos != len(frame):
        raise RemoteProtocolError(f"{len(frame) - pos} unexpected bytes after the message")
    return control, payload
