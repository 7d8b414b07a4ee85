"""What a node does with each control message it receives (``erl_dist_protocol``,
"Protocol between Connected Nodes").

Messages to unknown processes are dropped, as Erlang drops them. Links and monitors to
processes that do not exist are answered at once with ``noproc``. Trace tokens (the
``*_TT`` variants) are accepted and ignored (the parser drops them). The replies owed
to the peer are built by :mod:`nodemesh.dist.control`; this module decides which.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from nodemesh.dist import control
from nodemesh.dist import events as ev
from nodemesh.runtime._gen_calls import CallRouter
from nodemesh.term.types import Atom, Pid

if TYPE_CHECKING:
    from nodemesh.runtime._processes import ProcessTable
    from nodemesh.runtime._services import Services
    from nodemesh.runtime.mailbox import Mailbox

__all__ = ["Dispatcher", "Peer"]

log = logging.getLogger("nodemesh.node")

SPAWN_REPLY, ERROR = Atom("spawn_reply"), Atom("error")
DOWN, PROCESS = Atom("DOWN"), Atom("process")


class Peer(Protocol):
    """The side of a connection dispatch needs: who, a way to answer, backpressure."""

    @property
    def peer(self) -> str: ...
    @property
    def closed(self) -> bool: ...
    def write(self, frame: bytes) -> None: ...
    def hold_for(self, mailbox: Mailbox) -> None: ...


class _Nobody:
    closed = True


_NOBODY: Any = _Nobody()


class Dispatcher:
    """Acts on what arrives from peers, against a :class:`ProcessTable` and the
    node's :class:`Services`."""

    def __init__(self, processes: ProcessTable, services: Services) -> None:
        self._processes = processes
        self._services = services
        # The same dicts, keyed by Any: one lookup per message, no narrowing in between.
        self._mailboxes: dict[Any, Mailbox] = processes.mailboxes
        self._names: dict[Any, Mailbox] = processes.names
        self._signals = processes.signals  # made with the table, never replaced
        self._node = processes.node
        # The last pid a message went to, by its fields, and its mailbox: messages to
        # one pid in a row (the replies to this node's calls, which all go to its call
        # router) skip the table, whose lookup hashes and compares a Pid in Python (a
        # dataclass), for four int and str compares. A mailbox stays in the table until
        # it closes, and pids are not reused, so a hit finds what the table would.
        self._last: tuple[Any, ...] = (None, None, None, None, _NOBODY)
        self._handlers: dict[type, Callable[[Peer, Any], None]] = {
            ev.Send: self._send,
            ev.RegSend: self._reg_send,
            ev.Link: self._link,
            ev.Unlink: self._unlink,
            ev.Exit: self._exit,
            ev.MonitorP: self._monitor,
            ev.DemonitorP: self._demonitor,
            ev.MonitorPExit: self._monitor_exit,
            ev.SpawnRequest: services.spawn_request,
            ev.SpawnReply: self._spawn_reply,
            ev.AliasSend: self._alias_send,
        }

    def receive(self, conn: Peer, item: ev.Message | ev.ControlEvent) -> None:
        """Act on one message or control event that arrived on ``conn``."""
        # Longer than a function should be: every message comes through here (measured).
        if type(item) is tuple:  # the fast path: (to, message, sender), see control.read
            to, message, sender = item
            last = self._last
            if (
                type(to) is Pid
                and to.id == last[0]
                and to.serial == last[1]
                and to.creation == last[2]
                and to.node == last[3]
                and not last[4].closed  # closed: removed from the table, look again
            ):
                mailbox = last[4]
            else:  # a pid never equals a name: try pids, then names (no type test)
                mailbox = self._mailboxes.get(to)
                if mailbox is not None and type(to) is Pid:
                    self._last = (to.id, to.serial, to.creation, to.node, mailbox)
            if mailbox is None:
                mailbox = self._names.get(to)
                if mailbox is None:
                    if type(to) is Atom and to in self._processes.reserved:
                        self._services.handle(conn, to, sender, message)
                    return
            if mailbox.deliver(message):
                conn.hold_for(mailbox)  # at its bound: stop reading this peer for now
            return
        handler = self._handlers.get(type(item))
        if handler is None:
            log.debug("ignoring control message %r from %s", item, conn.peer)
        else:
            handler(conn, item)

    def _send(self, conn: Peer, event: ev.Send) -> None:
        self.receive(conn, (event.to, event.message, event.sender))

    def _reg_send(self, conn: Peer, event: ev.RegSend) -> None:
        self.receive(conn, (event.name, event.message, event.sender))

    def _deliver(self, conn: Peer, pid: Pid, message: Any) -> None:
        mailbox = self._mailboxes.get(pid)
        if mailbox is not None and mailbox.deliver(message):
            conn.hold_for(mailbox)

    def _alias_send(self, conn: Peer, event: ev.AliasSend) -> None:
        # nodemesh mailboxes have no aliases; such messages are dropped.
        log.debug("dropping message to unknown alias %r", event.alias)

    def _link(self, conn: Peer, event: ev.Link) -> None:
        if event.target in self._mailboxes:
            self._processes.signals.link(event.target, event.sender)
        else:
            conn.write(control.noproc_exit(event))

    def _unlink(self, conn: Peer, event: ev.Unlink) -> None:
        self._processes.signals.unlink(event.target, event.sender)
        if event.unlink_id is not None:
            conn.write(control.unlink_id_ack(event))

    def _exit(self, conn: Peer, event: ev.Exit) -> None:
        """An exit signal: mailboxes get ``('EXIT', From, Reason)``, processes may die."""
        # A link exit also removes the link; if we had none (we unlinked meanwhile), the
        # signal is stale and dropped, as Erlang drops it.
        if event.link and not self._processes.signals.unlink(event.target, event.sender):
            return
        if self._processes.exit_signal(event.target, event.sender, event.reason, link=event.link):
            conn.hold_for(self._mailboxes[event.target])

    def _monitor(self, conn: Peer, event: ev.MonitorP) -> None:
        """A remote process monitors one of ours."""
        target = event.target  # ProcessTable.exists, the pid and name lookups inline
        if target in self._mailboxes or target in self._names or self._processes.exists(target):
            self._signals.monitor(event.ref, event.watcher, target, self._node)
        else:
            conn.write(control.noproc_down(event))

    def _demonitor(self, conn: Peer, event: ev.DemonitorP) -> None:
        self._signals.drop_monitor(event.ref)

    def _monitor_exit(self, conn: Peer, event: ev.MonitorPExit) -> None:
        monitor = self._processes.signals.remove_monitor(event.ref)
        if monitor is not None:
            self._deliver(conn, monitor.watcher, monitor.down_message(event.reason))
            return
        router = self._mailboxes.get(event.watcher)
        if type(router) is CallRouter:
            # A call's monitor is kept by the router itself (see CallRouter): tell it.
            router.deliver((DOWN, event.ref, PROCESS, event.target, event.reason))

    def _spawn_reply(self, conn: Peer, event: ev.SpawnReply) -> None:
        """The answer to one of our spawn requests: with flag 1 the peer linked the new
        process to ours, so our half of the link is made now."""
        if type(event.result) is Pid and event.flags & 1:
            self._processes.signals.link(event.to, event.result)
        if type(event.result) is not Pid:  # the spawn failed: the monitor will never fire
            self._processes.signals.remove_monitor(event.req_id)
            reply = (SPAWN_REPLY, event.req_id, ERROR, event.result)
            self._deliver(conn, event.to, reply)
