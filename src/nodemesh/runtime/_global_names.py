"""Global names on a visible node: the table's upkeep, clash resolution, the API.

Registering from Python does what ``global:register_name/2`` does: a transaction
(``trans_all_known``) takes global's own lock ``{global, RegistrarPid}`` on every known
node, checks the name is free, sends ``{register, Name, Pid, Method}`` to every
``global_name_server`` and gives the lock back. The method is ``fun
global:random_exit_name/3``, Erlang's default, so a clash at the next connect is
resolved the same way whichever side registered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from typing import Any

from nodemesh.dist import control
from nodemesh.errors import NodemeshError
from nodemesh.runtime._global import GlobalServer
from nodemesh.runtime._global_locker import LockClient
from nodemesh.runtime._global_proc import Host, NodeParts, Proc
from nodemesh.runtime._global_state import (
    DELETE,
    GLOBAL,
    INSERT,
    RANDOM_EXIT_NAME,
    Clash,
    ExchangeOps,
    NodeDown,
    NodeUp,
    Session,
    term_key,
)
from nodemesh.term.types import Atom, ExportFun, Pid, Reference

__all__ = ["GlobalNames"]

log = logging.getLogger("nodemesh.global")

NONE, KILL = Atom("none"), Atom("kill")
CONFLICT = Atom("global_name_conflict")
REGISTER, UNREGISTER = Atom("register"), Atom("unregister")


class GlobalNames:
    """global for one visible node: its server, locker, registrar and names."""

    def __init__(self, node: Host, parts: NodeParts) -> None:
        self.node, self.parts = node, parts
        self.server = GlobalServer(node, self)
        self.state = self.server.state
        registrar = Proc(node, node.mailbox(max_queued=0), self.server.handle_call)
        self._registrar = LockClient(registrar, self.server)
        self._one_at_a_time = asyncio.Lock()
        self._waiters: list[asyncio.Future[None]] = []
        node.services.rpc.expose("global", "resolve_it", self.resolve_it)

    def start(self) -> None:
        self.parts.tasks.spawn(self.server.run())
        self.parts.tasks.spawn(self.server.locker.run())

    def node_up(self, peer: str) -> None:
        self.server.mailbox.deliver(NodeUp(peer))

    def node_down(self, peer: str) -> None:
        self.server.mailbox.deliver(NodeDown(peer))

    # -- the table, with a monitor on every holder --------------------------------------
    def set_lock(self, lock: Any, pid: Pid) -> bool:
        granted, new = self.state.set_lock(lock, pid)
        if new and pid.node != self.node.name:
            ref = self.node.monitor(self.server.pid, pid)
            self.state.locks[lock_key(lock)][1][pid] = ref
        return granted

    def del_lock(self, lock: Any, pid: Pid) -> None:
        ref = self.state.del_lock(lock, pid)
        if ref is not None:
            self.node.demonitor(self.server.pid, ref)

    def insert(self, name: Any, pid: Pid, method: Any) -> None:
        old = self.state.insert(name, pid, method)
        if old is not None:
            self.node.demonitor(self.server.pid, old)
        self._watch(name, pid)

    def delete(self, name: Any) -> None:
        old = self.state.delete(name)
        if old is not None:
            self.node.demonitor(self.server.pid, old)

    def down(self, ref: Any, pid: Pid) -> None:
        """A monitored holder died (or its node went away): its locks and names go."""
        if type(ref) is Reference:
            for name in self.state.names_of(pid, ref):
                self.state.delete(name)
        self.state.drop_holder(pid)

    def do_ops(self, ops: Any) -> None:
        to_monitor, to_drop = self.state.do_ops(ops)
        for ref in to_drop:
            self.node.demonitor(self.server.pid, ref)
        for name, pid in to_monitor:
            self._watch(name, pid)

    def _watch(self, name: Any, pid: Pid) -> None:
        """Monitor the holder of ``name``. erlang:monitor/2 connects to a node not yet
        connected (connect_all may still be on its way); ours would fire at once."""
        node = self.node
        if pid.node == node.name or node.is_connected(str(pid.node)):
            entry = self.state.entry(name)
            if entry is not None and entry.pid == pid:
                entry.monitor = node.monitor(self.server.pid, pid)
            return

        async def connect_then_watch() -> None:
            await node.connect(str(pid.node))
            entry = self.state.entry(name)
            if entry is not None and entry.pid == pid and entry.monitor is None:
                entry.monitor = node.monitor(self.server.pid, pid)

        self.parts.tasks.spawn(connect_then_watch())

    # -- name exchange -----------------------------------------------------------------
    def resolve(self, node: str, session: Session, names: Any) -> None:
        """The resolver: compare his names with ours, resolve clashes where Erlang would
        (on the node of our pid), report ``ExchangeOps`` to the server."""
        ops, res, clashes = self.state.exchange_names(node, names)
        session.resolving = True
        self.parts.tasks.spawn(self._resolve(node, session.my_tag, ops, res, clashes))

    async def _resolve(
        self, node: str, tag: int, ops: list[Any], res: list[Any], clashes: list[Clash]
    ) -> None:
        for clash in clashes:
            winner = await self._resolve_clash(clash)
            his = (INSERT, (clash.name, clash.his_pid, clash.his_method))
            if winner == clash.his_pid:
                ops.append(his)
            elif winner == clash.our_pid:
                res.append((INSERT, (clash.name, clash.our_pid, clash.our_method)))
            else:
                ops.append((DELETE, clash.name))
                res.append((DELETE, clash.name))
        self.server.mailbox.deliver(ExchangeOps(node, tag, ops, res))

    async def _resolve_clash(self, clash: Clash) -> Any:
        args = [clash.our_method, clash.name, clash.his_pid, clash.our_pid]
        where = str(clash.our_pid.node)
        if where == self.node.name:
            return self.resolve_it(*args)
        try:
            return await self.node.rpc(where, "global", "resolve_it", args, timeout=30.0)
        except NodemeshError as exc:  # as global.erl's {badrpc, _}: his pid wins
            log.info("global: cannot resolve the clash on %r at %s: %s", clash.name, where, exc)
            return clash.his_pid

    def resolve_it(self, method: Any, name: Any, pid1: Any, pid2: Any) -> Any:
        """``global:resolve_it/4`` for the resolve methods of global.erl (see
        :meth:`_kill` for what killing a mailbox means); funs Python cannot run
        (closures) make the name go, as a failing fun does."""
        if type(pid1) is not Pid or type(pid2) is not Pid:
            return NONE
        low, high = (pid1, pid2) if str(pid1.node) < str(pid2.node) else (pid2, pid1)
        fun = method.function if type(method) is ExportFun and method.module == GLOBAL else None
        if fun == "random_exit_name":
            log.info("global: name conflict, terminating %r", (name, high))
            self._kill(high)
            return low
        if fun == "random_notify_name":
            self._send(high, (CONFLICT, name))
            return low
        if fun == "notify_all_name":
            self._send(pid1, (CONFLICT, name, pid2))
            self._send(pid2, (CONFLICT, name, pid1))
            return NONE
        log.info("global: cannot run resolve method %.100r for %r here", method, name)
        return NONE

    def _kill(self, pid: Pid) -> None:
        """``exit(Pid, kill)``. Mailboxes trap exits (docs/node.md), so a local loser
        receives ``('EXIT', GlobalServerPid, kill)``, exactly what an Erlang node's
        ``exit/2`` delivers to it: the name is gone; closing is the owner's choice."""
        if pid.node == self.node.name:
            self.parts.processes.deliver(pid, (Atom("EXIT"), self.server.pid, KILL))
            return
        conn = self.parts.connections.get(str(pid.node))
        if conn is not None:  # exit(Pid, kill)
            ctrl = (control.Op.PAYLOAD_EXIT2.value, self.server.pid, pid)
            conn.write(control.build(ctrl, KILL, with_payload=True))

    def _send(self, pid: Pid, message: Any) -> None:
        with contextlib.suppress(NodemeshError):
            self.node.send_nowait(pid, message)

    # -- the API -----------------------------------------------------------------------
    def whereis(self, name: Any) -> Pid | None:
        """``global:whereis_name/1``: a local pid counts only while alive."""
        pid = self.state.where(name)
        if pid is not None and pid.node == self.node.name:
            return pid if self.parts.processes.get(pid) is not None else None
        return pid

    async def register(self, name: Any, pid: Pid) -> bool:
        async def fun(nodes: list[str]) -> bool:
            if self.state.where(name) is not None or self.state.has_name(pid):
                return False
            await self._registrar.proc.multi_call(nodes, (REGISTER, name, pid, RANDOM_EXIT_NAME))
            return True

        return bool(await self._transaction(fun))

    async def unregister(self, name: Any) -> None:
        async def fun(nodes: list[str]) -> None:
            await self._registrar.proc.multi_call(nodes, (UNREGISTER, name))

        if self.state.where(name) is not None:
            await self._transaction(fun)

    async def _transaction(self, fun: Any) -> Any:
        """``trans_all_known/1``: global's lock on every known node around ``fun``."""
        lock = (GLOBAL, self._registrar.proc.pid)
        async with self._one_at_a_time:
            self._registrar.proc.flush()
            nodes = await self._lock_known(lock)
            try:
                return await fun(nodes)
            finally:
                await self._registrar.delete_global_lock(lock, nodes)

    async def _lock_known(self, lock: Any) -> list[str]:
        """``set_lock_known/2``: the boss first, then all; retried with backoff."""
        times = 0
        while True:
            known = list(self.state.known)
            nodes = [self.node.name, *known]
            boss = max(nodes)
            if await self._registrar.set_lock(lock, [boss]):
                if await self._registrar.set_lock(lock, nodes) and set(self.state.known) <= set(
                    known
                ):
                    return nodes
                await self._registrar.del_lock(lock, nodes)
            # As global.erl's random_sleep/1: 1/4 s at first, doubling up to 8 s.
            await asyncio.sleep(random.uniform(0, min(8.0, (1 << times) / 8)))
            times += 1

    def names(self) -> list[Any]:
        return [entry.name for entry in self.state.names.values()]

    def changed(self) -> None:
        """Wake :meth:`sync` waiters after each message the server handled."""
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def sync(self) -> None:
        """Return once the name tables agree with every visible node connected now
        (``global:sync/0``: each is synced with us, or gone)."""
        while not self.server.visible <= self.state.synced:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter


def lock_key(lock: Any) -> Any:
    return term_key(lock[0])
