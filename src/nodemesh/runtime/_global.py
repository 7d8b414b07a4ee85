"""``global_name_server`` for a visible node: global.erl's server, message by message.

One coroutine reads the registered mailbox ``global_name_server``: the casts and calls
of the other nodes' servers, their lockers' ``lock_set``, and the node's own nodeup and
nodedown (delivered into the same mailbox, so a nodeup is seen before anything that
came over the new connection, as ``net_kernel:monitor_nodes`` guarantees in Erlang).
The tables and decisions are in :mod:`._global_state`; the locker in
:mod:`._global_locker`; the names API and clash resolution in :mod:`._global_names`.
Message shapes are those of the comment block "Messages in the protocol" at the top of
OTP 25.2's ``kernel/src/global.erl``; the handlers keep that file's names.
"""

from __future__ import annotations

import itertools
import logging
from typing import TYPE_CHECKING, Any

from nodemesh.runtime._global_links import LOST_CONNECTION, REMOVE_CONNECTION, Links
from nodemesh.runtime._global_locker import Cancel, Him, Locker
from nodemesh.runtime._global_proc import GNS, Host, Proc, send
from nodemesh.runtime._global_state import (
    VSN,
    ExchangeOps,
    GlobalState,
    NodeDown,
    NodeUp,
    Session,
)
from nodemesh.term.types import Atom, Pid

if TYPE_CHECKING:
    from nodemesh.runtime._global_names import GlobalNames

__all__ = ["GlobalServer", "NodeDown", "NodeUp"]

log = logging.getLogger("nodemesh.global")

A = Atom
GEN_CALL, GEN_CAST, DOWN = A("$gen_call"), A("$gen_cast"), A("DOWN")


class GlobalServer:
    """The state and the handlers; :meth:`run` is the server's loop."""

    def __init__(self, node: Host, names: GlobalNames) -> None:
        self.node, self.names = node, names
        self.state = GlobalState(node.name)
        self.mailbox = node.register(GNS, max_queued=0)
        self.pid = self.mailbox.pid
        self.locker = Locker(Proc(node, node.mailbox(max_queued=0), self.handle_call), self)
        self._tags = itertools.count(1)
        self.visible: set[str] = set()
        self.links = Links(self)

    async def run(self) -> None:
        """Handle messages until the node closes (the mailbox then raises)."""
        async for message in self.mailbox:
            try:
                self.handle(message)
            except Exception:  # one bad message must not stop the server
                log.exception("global_name_server: cannot handle %.200r", message)

    def handle(self, message: Any) -> None:
        if type(message) is NodeUp:
            self.visible.add(message.node)
            self.handle_nodeup(message.node)
        elif type(message) is NodeDown:
            self.visible.discard(message.node)
            self.handle_nodedown(message.node, message.how)
        elif type(message) is ExchangeOps:
            self.exchange_ops(message)
        elif type(message) is tuple and message:
            self._erlang(message)
        else:
            log.info("global_name_server: ignoring %.200r", message)
        self.names.changed()

    def _erlang(self, message: tuple[Any, ...]) -> None:
        tag, size = message[0], len(message)
        if tag == GEN_CALL and size == 3 and _from(message[1]):
            reply = self.handle_call(message[1][0], message[2])
            if reply is not NotImplemented:
                self.node.send_nowait(message[1][0], (message[1][1], reply), sender=self.pid)
        elif tag == GEN_CAST and size == 2 and type(message[1]) is tuple and message[1]:
            self._cast(message[1])
        elif tag == DOWN and size == 5 and type(message[3]) is Pid:
            self.names.down(message[1], message[3])
        elif tag == "init_connect_ack" and size == 4:
            self.init_connect_ack(_name(message[1]), message[2], message[3])
        elif tag == "cancel_connect" and size == 3:
            self.cancel_connect(_name(message[1]), message[2])
        elif tag == LOST_CONNECTION and size == 5:
            self.links.lost_connection(message)
        elif tag == REMOVE_CONNECTION and size == 2:
            self.links.remove_connection(_name(message[1]))
        else:
            log.info("global_name_server: ignoring %.200r", message)

    def _cast(self, m: tuple[Any, ...]) -> None:
        tag, size = m[0], len(m)
        if tag == "init_connect" and size == 4:
            self.init_connect(m[1], _name(m[2]), m[3])
        elif tag == "lock_set" and size in (4, 5) and type(m[1]) is Pid:
            session = self.state.sessions.get(str(m[1].node))
            if size == 4 or (session is not None and session.my_tag == m[4]):
                self.locker.proc.mailbox.deliver(m)
        elif tag == "exchange" and size == 5:
            self.exchange(_name(m[1]), m[2], m[4])
        elif tag == "resolved" and size == 7:
            self.resolved_cast(_name(m[1]), m[2], m[3], m[6])
        elif tag == "new_nodes" and size == 6:
            self.new_nodes(m[2], m[4])
        elif tag == "in_sync" and size == 3:
            self.in_sync(_name(m[1]))
        elif tag not in ("async_del_name", "async_del_lock"):
            log.info("global_name_server: ignoring cast %.200r", m)

    def handle_call(self, caller: Pid, request: Any) -> Any:
        """``handle_call/3`` for the requests other nodes make; NotImplemented: no reply."""
        if type(request) is not tuple or not request:
            return NotImplemented
        tag, size = request[0], len(request)
        if tag == "set_lock" and size == 2:
            return self.names.set_lock(request[1], caller)
        if tag == "del_lock" and size == 2:
            self.names.del_lock(request[1], caller)
            return True
        if tag in ("register", "register_ext") and size >= 4 and type(request[2]) is Pid:
            self.names.insert(request[1], request[2], request[3])
            return A("yes")
        if tag == "unregister" and size == 2:
            self.names.delete(request[1])
            return A("ok")
        if tag == "get_known":
            return self.state.known_list(0)
        if tag == "get_synced":
            return [A(n) for n in self.state.synced]
        if tag == "get_protocol_version":
            return VSN
        log.info("global_name_server: ignoring call %.200r", request)
        return NotImplemented

    # -- connect sessions --------------------------------------------------------------
    def handle_nodeup(self, node: str) -> None:
        """Make ourselves known to ``node`` (``handle_nodeup/2``)."""
        state = self.state
        if node in state.known or node in state.sessions:
            return
        session = Session(my_tag=next(self._tags))
        state.sessions[node] = session
        init: tuple[Any, ...] = (A("locker"), A("no_longer_a_pid"), {}, self.locker.proc.pid)
        self.cast(node, (A("init_connect"), (VSN, session.my_tag), self.node.atom, init))
        early = state.pre_connect.pop(node, None)
        if early is not None:  # resend_pre_connect
            self.init_connect((early[0], early[2]), node, early[1])

    def init_connect(self, vsn: Any, node: str, init: Any) -> None:
        if not (type(vsn) is tuple and len(vsn) >= 2 and type(vsn[0]) is int):
            log.info("global: illegal protocol version %.100r from %s", vsn, node)
            return
        his_vsn, his_tag = vsn[0], vsn[1]
        state, use = self.state, min(vsn[0], VSN)
        if node in state.pending:  # an out-of-sync attempt: cancel both, start over
            self.send(node, (A("cancel_connect"), self.node.atom, his_tag))
            self.restart_connect(node)
            return
        session = state.sessions.get(node)
        if session is None:
            if self.node.is_connected(node):  # before our nodeup; bounded by connections
                state.pre_connect[node] = (use, init, his_tag)
            return
        if not (type(init) is tuple and len(init) == 4 and type(init[3]) is Pid):
            log.info("global: bad init_connect from %s: %.200r", node, init)
            return
        session.his_tag, session.his_vsn = his_tag, use
        self.locker.proc.mailbox.deliver(Him(node, init[3], use, session.my_tag, his_tag))
        if his_vsn >= 8:
            ack = (A("init_connect_ack"), self.node.atom, his_tag, session.my_tag)
            self.send(node, ack)
        state.pending[node] = his_vsn

    def init_connect_ack(self, node: str, his_my: Any, his_his: Any) -> None:
        session = self.state.sessions.get(node)
        if session is not None and session.my_tag == his_my and session.his_tag == his_his:
            return
        self.send(node, (A("cancel_connect"), self.node.atom, his_his))
        self.restart_connect(node)

    def cancel_connect(self, node: str, my_tag: Any) -> None:
        session = self.state.sessions.get(node)
        if session is not None and session.my_tag == my_tag:
            self.restart_connect(node, notify=False)

    def restart_connect(self, node: str, *, notify: bool = True) -> None:
        session = self.state.sessions.get(node)
        self.cancel_locker(node, session.my_tag if session else None, notify=notify)
        self.state.sessions.pop(node, None)
        self.state.pending.pop(node, None)
        if session is not None and node in self.visible:
            self.handle_nodeup(node)

    def lock_is_set(self, node: str, tag: int, lock: Any) -> None:
        """The locker holds the lock on both partitions: send our names."""
        session = self._session(node, tag)
        if session is None:
            return
        names = self.state.name_list()
        self.cast(node, (A("exchange"), self.node.atom, names, [], session.his_tag))
        session.lock = lock
        if session.his_names is not None:
            self.names.resolve(node, session, session.his_names)
        else:
            session.lock_set = True

    def exchange(self, node: str, names: Any, tag: Any) -> None:
        session = self._session(node, tag)
        if session is None:
            return
        if session.lock_set:
            self.names.resolve(node, session, names)
        else:
            session.his_names = names if type(names) is list else []

    def exchange_ops(self, done: ExchangeOps) -> None:
        session = self._session(done.node, done.tag)
        if session is None:
            return
        known = self.state.known_list(session.his_vsn)
        resolved: tuple[Any, ...] = (
            A("resolved"),
            self.node.atom,
            done.resolved,
            known,
            A("unused"),
            [],
        )
        self.cast(done.node, (*resolved, session.his_tag))
        session.my_ops = done.ops
        if session.his_resolved is not None:
            self.resolved(done.node, session, *session.his_resolved)

    def resolved_cast(self, node: str, his_resolved: Any, his_known: Any, tag: Any) -> None:
        session = self._session(node, tag)
        if session is None:
            return
        if session.my_ops is not None:
            self.resolved(node, session, his_resolved, his_known)
        else:
            session.his_resolved = (his_resolved, his_known)

    def resolved(self, node: str, session: Session, his_resolved: Any, his_known: Any) -> None:
        """``resolved/5``: apply the ops, tell our partition, meet his (connect_all)."""
        state = self.state
        ops = list(session.my_ops or []) + (his_resolved if type(his_resolved) is list else [])
        his_nodes = [n for n in _nodes(his_known) if n != state.node]
        new = [(A(node), state.node_vsn(node))] + [(A(n), v) for n, v in _node_vsns(his_known)]
        self.links.sync_others(his_nodes)
        extra = [(A("vsn"), session.his_vsn), (A("lock"), session.lock)]
        self.names.do_ops(ops)
        state.synced.add(node)
        for other in his_nodes:
            self.cancel_resolved(other)
        message: tuple[Any, ...] = (A("new_nodes"), self.node.atom, ops, [], new, extra)
        old_known = list(state.known)

        def tell_partition() -> None:  # before the lock goes: new_nodes, then del_lock
            for peer in old_known:
                self.cast(peer, message)

        self.cancel_resolved(node, tell_partition)
        added = state.add_to_known(new)
        log.info("global: synced with %s; now known to us: %s", node, added)

    def cancel_resolved(self, node: str, then: Any = None) -> None:
        """``cancel_resolved_locker/3``: no cancel_connect is owed any more."""
        session = self.state.sessions.get(node)
        self.state.pending.pop(node, None)
        self.cancel_locker(node, session.my_tag if session else None, then, notify=False)
        self.state.sessions.pop(node, None)

    def new_nodes(self, ops: Any, nodes: Any) -> None:
        added = self.state.add_to_known(nodes)
        self.links.sync_others(added)
        self.names.do_ops(ops)

    def in_sync(self, node: str) -> None:
        """``{in_sync, Node, true}``: the other partition knows us already."""
        self.state.synced.add(node)
        self.cancel_resolved(node)

    def cancel_locker(self, node: str, tag: Any, then: Any = None, *, notify: bool = True) -> None:
        self.locker.proc.mailbox.deliver(Cancel(node, tag, then))
        session = self.state.sessions.get(node)
        if notify and node in self.state.pending and session is not None:
            self.send(node, (A("cancel_connect"), self.node.atom, session.his_tag))

    def handle_nodedown(self, node: str, how: str) -> None:
        state = self.state
        session = state.sessions.get(node)
        self.cancel_locker(node, session.my_tag if session else None, notify=False)
        potentially = node in state.known or node in state.pending
        if how == "remove_connection":
            state.removing.add(node)
        elif node in state.removing:
            state.removing.discard(node)
        elif how == "disconnected" and potentially:
            self.links.inform_connection_loss(node)
        state.forget(node)

    # -- sending -----------------------------------------------------------------------
    def cast(self, node: str, message: Any) -> None:
        send(self.node, self.pid, node, (GEN_CAST, message))

    def send(self, node: str, message: Any) -> None:
        send(self.node, self.pid, node, message)

    def _session(self, node: str, tag: Any) -> Session | None:
        """The session with ``node`` if ``tag`` is its; else cancel (an old session)."""
        session = self.state.sessions.get(node)
        if session is not None and session.my_tag == tag:
            return session
        self.cancel_locker(node, tag)
        return None


def _from(term: Any) -> bool:
    return type(term) is tuple and len(term) == 2 and type(term[0]) is Pid


def _name(term: Any) -> str:
    return str(term) if type(term) is Atom else ""


def _node_vsns(known: Any) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    for item in known if type(known) is list else []:
        if type(item) is Atom:
            out.append((str(item), 0))
        elif type(item) is tuple and len(item) == 2 and type(item[0]) is Atom:
            out.append((str(item[0]), item[1] if type(item[1]) is int else 0))
    return out


def _nodes(known: Any) -> list[str]:
    return [n for n, _ in _node_vsns(known)]
