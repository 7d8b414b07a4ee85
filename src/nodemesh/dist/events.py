"""Control messages as typed events (no I/O).

``erl_dist_protocol``, "Protocol between Connected Nodes": after the handshake every
frame carries a control tuple led by an operation code, maybe followed by a payload.
:func:`nodemesh.dist.control.parse` turns one into an event below, h11 style: frozen,
slotted, one class per meaning. Variants that differ only on the wire are one event:
the ``*_TT`` forms (their trace token is dropped), and ``EXIT`` with its ``PAYLOAD_EXIT``
form (the reason in the control tuple or after it).

Ordinary messages (SEND, SEND_SENDER, REG_SEND) have a fast path: see
:func:`nodemesh.dist.control.read`, which hands them over as a bare :data:`Message`
tuple instead of a :class:`Send` or :class:`RegSend`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nodemesh.term.types import Atom, Pid, Reference

__all__ = [
    "AliasSend",
    "ControlEvent",
    "DemonitorP",
    "Exit",
    "Link",
    "Message",
    "MonitorP",
    "MonitorPExit",
    "Other",
    "RegSend",
    "Send",
    "SpawnReply",
    "SpawnRequest",
    "Unlink",
    "UnlinkIdAck",
]

#: The fast path's form of SEND, SEND_SENDER and REG_SEND: ``(to, message, sender)``,
#: ``to`` a pid or a registered name, ``sender`` None for a plain SEND.
Message = tuple[Pid | Atom, Any, Pid | None]


@dataclass(frozen=True, slots=True)
class Send:
    """SEND / SEND_SENDER (``{2, '', To}``, ``{22, From, To}``) and their ``_TT`` forms."""

    to: Pid
    message: Any
    sender: Pid | None


@dataclass(frozen=True, slots=True)
class RegSend:
    """REG_SEND ``{6, From, '', ToName}`` (and ``_TT``): a message to a registered name."""

    sender: Pid
    name: Atom
    message: Any


@dataclass(frozen=True, slots=True)
class Link:
    """LINK ``{1, From, To}``: ``sender`` links to our process ``target``."""

    sender: Pid
    target: Pid


@dataclass(frozen=True, slots=True)
class Unlink:
    """UNLINK ``{4, From, To}`` or UNLINK_ID ``{35, Id, From, To}`` (``unlink_id`` set:
    the peer waits for UNLINK_ID_ACK)."""

    sender: Pid
    target: Pid
    unlink_id: int | None = None


@dataclass(frozen=True, slots=True)
class UnlinkIdAck:
    """UNLINK_ID_ACK ``{36, Id, From, To}``: the peer removed a link we removed."""

    unlink_id: int
    sender: Pid
    target: Pid


@dataclass(frozen=True, slots=True)
class Exit:
    """An exit signal from ``sender`` to ``target``: EXIT/PAYLOAD_EXIT (``link`` True: a
    linked process exited) or EXIT2/PAYLOAD_EXIT2 (``erlang:exit/2``), and ``_TT`` forms."""

    sender: Pid
    target: Pid
    reason: Any
    link: bool


@dataclass(frozen=True, slots=True)
class MonitorP:
    """MONITOR_P ``{19, FromPid, ToProc, Ref}``: ``watcher`` monitors our ``target``."""

    watcher: Pid
    target: Pid | Atom
    ref: Reference


@dataclass(frozen=True, slots=True)
class DemonitorP:
    """DEMONITOR_P ``{20, FromPid, ToProc, Ref}``: the monitor ``ref`` is removed."""

    watcher: Pid
    target: Pid | Atom
    ref: Reference


@dataclass(frozen=True, slots=True)
class MonitorPExit:
    """MONITOR_P_EXIT / PAYLOAD_MONITOR_P_EXIT: a process we monitor is gone."""

    target: Pid | Atom
    watcher: Pid
    ref: Reference
    reason: Any


@dataclass(frozen=True, slots=True)
class SpawnRequest:
    """SPAWN_REQUEST ``{29, ReqId, From, GroupLeader, {M, F, A}, Opts}`` + ArgList."""

    req_id: Reference
    sender: Pid
    group_leader: Pid
    mfa: Any
    opts: Any
    args: Any


@dataclass(frozen=True, slots=True)
class SpawnReply:
    """SPAWN_REPLY ``{31, ReqId, To, Flags, Result}``: a pid, or an error atom."""

    req_id: Reference
    to: Pid
    flags: int
    result: Pid | Atom


@dataclass(frozen=True, slots=True)
class AliasSend:
    """ALIAS_SEND ``{33, From, Alias}`` + Msg: a message to a process alias."""

    sender: Pid
    alias: Reference
    message: Any


@dataclass(frozen=True, slots=True)
class Other:
    """A well-formed operation nodemesh does not act on (NODE_LINK, GROUP_LEADER)."""

    op: int
    control: tuple[Any, ...]


ControlEvent = (
    Send
    | RegSend
    | Link
    | Unlink
    | UnlinkIdAck
    | Exit
    | MonitorP
    | DemonitorP
    | MonitorPExit
    | SpawnRequest
    | SpawnReply
    | AliasSend
    | Other
)
