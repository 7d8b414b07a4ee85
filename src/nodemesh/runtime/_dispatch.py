"""What a node does with each control message it receives (``erl_dist_protocol``,
"Protocol between Connected Nodes").

Messages to unknown processes are dropped, as Erlang drops them. Links and monitors to
processes that do not exist are answered at once with ``noproc``. Trace tokens (the
``*_TT`` variants) are accepted and ignored.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from nodemesh.dist import control
from nodemesh.dist.control import Op
from nodemesh.runtime._services import Services
from nodemesh.runtime._signals import Monitor
from nodemesh.term.types import Atom, Pid, Reference

if TYPE_CHECKING:
    from nodemesh.runtime._connection import Connection
    from nodemesh.runtime.node import Node

log = logging.getLogger("nodemesh.node")

NOPROC = Atom("noproc")
EXIT = Atom("EXIT")


def dispatch(node: Node, conn: Connection, ctrl: tuple[Any, ...], payload: Any) -> None:
    """Act on one control message ``ctrl`` (with ``payload``) that arrived on ``conn``."""
    op = ctrl[0]
    if op == 6 or op == 16:  # REG_SEND{,_TT}: {6, From, Unused, ToName}
        name = ctrl[3]
        mailbox = node._names.get(name)
        if mailbox is not None:
            mailbox.deliver(payload)
        elif name in Services.NAMES:
            node.services.handle(conn, name, ctrl[1], payload)
    elif op == 22 or op == 2 or op == 12 or op == 23:  # SEND_SENDER, SEND{,_TT}
        mailbox = node._mailboxes.get(ctrl[2])
        if mailbox is not None:
            mailbox.deliver(payload)
    else:
        _HANDLERS.get(op, _ignore)(node, conn, ctrl, payload)


def _ignore(node: Node, conn: Connection, ctrl: tuple[Any, ...], payload: Any) -> None:
    log.debug("ignoring control message %r from %s", ctrl[0], conn.peer)


def _alias_send(node: Node, conn: Connection, ctrl: tuple[Any, ...], payload: Any) -> None:
    # {33, From, Alias}: nodemesh mailboxes have no aliases; such messages are dropped.
    log.debug("dropping message to unknown alias %r", ctrl[2])


def _link(node: Node, conn: Connection, ctrl: tuple[Any, ...], payload: Any) -> None:
    _, sender, target = ctrl[:3]
    if type(sender) is not Pid or type(target) is not Pid:
        return
    if target in node._mailboxes:
        node.signals.link(target, sender)
    else:
        conn.write(control.exit_signal(target, sender, NOPROC))


def _unlink(node: Node, conn: Connection, ctrl: tuple[Any, ...], payload: Any) -> None:
    if ctrl[0] == Op.UNLINK_ID:  # {35, Id, From, To}: acknowledge with {36, Id, To, From}
        _, unlink_id, sender, target = ctrl[:4]
        node.signals.unlink(target, sender)
        conn.write(control.build((Op.UNLINK_ID_ACK.value, unlink_id, target, sender)))
    else:  # {4, From, To}
        node.signals.unlink(ctrl[2], ctrl[1])


def _exit(node: Node, conn: Connection, ctrl: tuple[Any, ...], payload: Any) -> None:
    """EXIT/EXIT2 and their payload forms: deliver ``('EXIT', From, Reason)``."""
    op, sender, target = ctrl[0], ctrl[1], ctrl[2]
    if op in (Op.EXIT, Op.EXIT2):
        reason = ctrl[3]
    elif op in (Op.EXIT_TT, Op.EXIT2_TT):
        reason = ctrl[4]
    else:
        reason = payload
    is_link_exit = op in (Op.EXIT, Op.EXIT_TT, Op.PAYLOAD_EXIT, Op.PAYLOAD_EXIT_TT)
    # A link exit also removes the link; if we had none (we unlinked meanwhile), the
    # signal is stale and dropped, as Erlang drops it.
    if is_link_exit and not node.signals.unlink(target, sender):
        return
    mailbox = node._mailboxes.get(target)
    if mailbox is not None:
        mailbox.deliver((EXIT, sender, reason))


def _monitor(node: Node, conn: Connection, ctrl: tuple[Any, ...], payload: Any) -> None:
    """{19, FromPid, ToProc, Ref}: a remote process monitors one of ours."""
    _, watcher, target, ref = ctrl[:4]
    if type(watcher) is not Pid or type(ref) is not Reference:
        return
    if type(target) is Pid:
        exists = target in node._mailboxes
    else:
        exists = target in node._names or target in Services.NAMES
    monitor = Monitor(ref, watcher, target, node.name)
    if exists:
        node.signals.add_monitor(monitor)
    else:
        conn.write(control.monitor_exit(target, watcher, ref, NOPROC))


def _demonitor(node: Node, conn: Connection, ctrl: tuple[Any, ...], payload: Any) -> None:
    ref = ctrl[3]
    if type(ref) is Reference:
        node.signals.remove_monitor(ref)


def _monitor_exit(node: Node, conn: Connection, ctrl: tuple[Any, ...], payload: Any) -> None:
    """{21, FromProc, ToPid, Ref, Reason} or {28, FromProc, ToPid, Ref} + Reason."""
    ref = ctrl[3]
    reason = ctrl[4] if ctrl[0] == Op.MONITOR_P_EXIT else payload
    monitor = node.signals.remove_monitor(ref) if type(ref) is Reference else None
    if monitor is not None:
        node._deliver(monitor.watcher, monitor.down_message(reason))


def _spawn_request(node: Node, conn: Connection, ctrl: tuple[Any, ...], payload: Any) -> None:
    node.services.spawn_request(conn, ctrl, payload)


def _spawn_reply(node: Node, conn: Connection, ctrl: tuple[Any, ...], payload: Any) -> None:
    """{31, ReqId, To, Flags, Result}: the answer to one of our spawn requests."""
    _, req_id, target, _flags, result = ctrl[:5]
    if type(result) is not Pid:  # the spawn failed: the monitor will never fire
        node.signals.remove_monitor(req_id) if type(req_id) is Reference else None
        node._deliver(target, (Atom("spawn_reply"), req_id, Atom("error"), result))


_HANDLERS = {
    Op.LINK: _link,
    Op.UNLINK: _unlink,
    Op.UNLINK_ID: _unlink,
    Op.EXIT: _exit,
    Op.EXIT_TT: _exit,
    Op.EXIT2: _exit,
    Op.EXIT2_TT: _exit,
    Op.PAYLOAD_EXIT: _exit,
    Op.PAYLOAD_EXIT_TT: _exit,
    Op.PAYLOAD_EXIT2: _exit,
    Op.PAYLOAD_EXIT2_TT: _exit,
    Op.MONITOR_P: _monitor,
    Op.DEMONITOR_P: _demonitor,
    Op.MONITOR_P_EXIT: _monitor_exit,
    Op.PAYLOAD_MONITOR_P_EXIT: _monitor_exit,
    Op.SPAWN_REQUEST: _spawn_request,
    Op.SPAWN_REPLY: _spawn_reply,
    Op.ALIAS_SEND: _alias_send,
    Op.ALIAS_SEND_TT: _alias_send,
}
