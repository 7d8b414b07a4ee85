"""The pure half of ``global`` (OTP 25.2 ``kernel/src/global.erl``): tables, no I/O.

What the ETS tables ``global_names`` and ``global_locks`` and the server's ``known``
map hold on an Erlang node, with the decisions global.erl takes on them: who may take a
lock (``can_set_lock``), what a name exchange yields (``exchange_names``) and how the
resulting operations apply (``do_ops``). The server in :mod:`._global` feeds it the
messages and carries out what it returns; nothing here touches a socket or a clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nodemesh.term.types import Atom, ExportFun, Pid, Reference

__all__ = [
    "Clash",
    "ExchangeOps",
    "GlobalState",
    "NameEntry",
    "NodeDown",
    "NodeUp",
    "Session",
    "lock_id",
    "pid_order",
    "term_key",
]

GLOBAL = Atom("global")  # ?GLOBAL_RID: the resource global's own lock is taken on
INSERT, DELETE = Atom("insert"), Atom("delete")
#: ``fun global:random_exit_name/3``, the resolve method of ``register_name/2``.
RANDOM_EXIT_NAME = ExportFun(GLOBAL, Atom("random_exit_name"), 3)
VSN = 8  # ?vsn of OTP 25's global; see docs/global.md for why we advertise it


def pid_order(pid: Pid) -> tuple[int, int, str, int]:
    """Erlang's term order for pids, checked on OTP 25.2 with ``lists:sort/1``: the
    serial, then the number, then the node name, then the creation."""
    return (pid.serial, pid.id, str(pid.node), pid.creation)


def lock_id(mine: Pid, his: Pid) -> tuple[Atom, list[Pid]]:
    """``locker_lock_id/2``: both lockers use ``{global, lists:sort([A, B])}``, so the
    nodes both partitions hold can be locked by either side."""
    return (GLOBAL, sorted([mine, his], key=pid_order))


@dataclass(slots=True)
class NameEntry:
    """A row of ``global_names``: the pid, its resolve method, our monitor on it."""

    name: Any  # as it arrived (a list stays a list); the table key is hashable
    pid: Pid
    method: Any
    monitor: Reference | None = None


@dataclass(slots=True)
class Session:
    """One connect session with a node (the process dictionary of global.erl):
    ``sync_tag_my``/``sync_tag_his``, ``wait_lock``, ``save_ops`` and ``lock_id``."""

    my_tag: int
    his_tag: Any = None
    his_vsn: int = 0
    his_names: list[Any] | None = None  # {wait_lock, N} = {exchange, NameList}
    lock_set: bool = False  # {wait_lock, N} = lock_is_set
    my_ops: list[Any] | None = None  # {save_ops, N} = Ops
    his_resolved: tuple[Any, Any] | None = None  # {save_ops, N} = {resolved, Ops, Known}
    lock: Any = None  # {lock_id, N}
    resolving: bool = False


@dataclass(frozen=True, slots=True)
class Clash:
    """A name both sides hold with different pids, to be resolved on ``node(theirs)``."""

    name: Any
    his_pid: Pid
    his_method: Any
    our_pid: Pid
    our_method: Any


@dataclass(frozen=True, slots=True)
class NodeUp:
    node: str


@dataclass(frozen=True, slots=True)
class NodeDown:
    node: str
    how: str = "disconnected"  # or remove_connection, ignore_node (handle_nodedown)


@dataclass(frozen=True, slots=True)
class ExchangeOps:
    """``{exchange_ops, Node, Tag, Ops, Resolved}`` from the resolver task."""

    node: str
    tag: int
    ops: list[Any]
    resolved: list[Any]


@dataclass(slots=True)
class GlobalState:
    """The node's view: names, locks, known nodes with their protocol versions."""

    node: str
    names: dict[Any, NameEntry] = field(default_factory=dict)
    # ResourceId -> (LockRequesterId, {holder pid: monitor ref or None})
    locks: dict[Any, tuple[Any, dict[Pid, Reference | None]]] = field(default_factory=dict)
    known: dict[str, int] = field(default_factory=dict)
    pending: dict[str, int] = field(default_factory=dict)
    removing: set[str] = field(default_factory=set)
    synced: set[str] = field(default_factory=set)
    sessions: dict[str, Session] = field(default_factory=dict)
    pre_connect: dict[str, tuple[int, Any, Any]] = field(default_factory=dict)

    # -- locks (handle_set_lock, handle_del_lock) --------------------------------------
    def can_set_lock(self, lock: Any) -> bool:
        """``can_set_lock/1``: free, or held under the same requester id."""
        if not (type(lock) is tuple and len(lock) == 2):
            return False
        held = self.locks.get(term_key(lock[0]))
        return held is None or held[0] == lock[1]

    def set_lock(self, lock: Any, pid: Pid) -> tuple[bool, bool]:
        """Take ``lock`` for ``pid``: (granted, newly holding: monitor it)."""
        if not self.can_set_lock(lock):
            return False, False
        resource, requester = term_key(lock[0]), lock[1]
        _, holders = self.locks.setdefault(resource, (requester, {}))
        if pid in holders:
            return True, False
        holders[pid] = None
        return True, True

    def del_lock(self, lock: Any, pid: Pid) -> Reference | None:
        """``handle_del_lock/3``: drop ``pid`` from ``lock``; its monitor to remove."""
        if not (type(lock) is tuple and len(lock) == 2):
            return None
        resource = term_key(lock[0])
        held = self.locks.get(resource)
        if held is None or held[0] != lock[1] or pid not in held[1]:
            return None
        ref = held[1].pop(pid)
        if not held[1]:
            del self.locks[resource]
        return ref

    def drop_holder(self, pid: Pid) -> None:
        """A lock holder is gone (its DOWN arrived): it holds nothing any more."""
        for resource in [r for r, (_, holders) in self.locks.items() if pid in holders]:
            holders = self.locks[resource][1]
            del holders[pid]
            if not holders:
                del self.locks[resource]

    def global_lock_set(self) -> bool:
        """``is_global_lock_set/0``."""
        return GLOBAL in self.locks

    # -- names -------------------------------------------------------------------------
    def entry(self, name: Any) -> NameEntry | None:
        return self.names.get(term_key(name))

    def where(self, name: Any) -> Pid | None:
        entry = self.names.get(term_key(name))
        return None if entry is None else entry.pid

    def has_name(self, pid: Pid) -> bool:
        """``check_dupname/2``'s question: is ``pid`` registered under some name?"""
        return any(entry.pid == pid for entry in self.names.values())

    def insert(self, name: Any, pid: Pid, method: Any) -> Reference | None:
        """``ins_name``: register (replacing); returns the old entry's monitor ref."""
        old = self.names.get(term_key(name))
        self.names[term_key(name)] = NameEntry(name, pid, method)
        return None if old is None else old.monitor

    def delete(self, name: Any) -> Reference | None:
        """``delete_global_name2``; returns the monitor ref to remove."""
        old = self.names.pop(term_key(name), None)
        return None if old is None else old.monitor

    def names_of(self, pid: Pid, ref: Reference) -> list[Any]:
        """Names whose monitor ``ref`` fired (``del_name/2``)."""
        return [e.name for e in self.names.values() if e.pid == pid and e.monitor == ref]

    def name_list(self) -> list[tuple[Any, Pid, Any]]:
        """``get_names/0``: what an ``exchange`` carries."""
        return [(e.name, e.pid, e.method) for e in self.names.values()]

    def exchange_names(self, his: str, names: Any) -> tuple[list[Any], list[Any], list[Clash]]:
        """``exchange_names/4`` without the rpc: (Ops, Resolved, clashes to resolve).
        Clashes are ours to resolve only when our node name is the smaller."""
        ops: list[Any] = []
        res: list[Any] = []
        clashes: list[Clash] = []
        for item in names if type(names) is list else []:
            if not (type(item) is tuple and len(item) == 3 and type(item[1]) is Pid):
                continue
            name, pid, method = item
            ours = self.names.get(term_key(name))
            if ours is None:
                ops.append((INSERT, (name, pid, method)))
            elif ours.pid != pid and self.node < his:
                clashes.append(Clash(name, pid, method, ours.pid, ours.method))
        return ops, res, clashes

    def do_ops(self, ops: Any) -> tuple[list[tuple[Any, Pid]], list[Reference]]:
        """``do_ops/5``: apply inserts and deletes. Returns (names to monitor, monitor
        refs to drop)."""
        to_monitor: list[tuple[Any, Pid]] = []
        to_drop: list[Reference] = []
        for op in ops if type(ops) is list else []:
            if type(op) is not tuple or len(op) != 2:
                continue
            if op[0] == INSERT and type(op[1]) is tuple and len(op[1]) == 3:
                name, pid, method = op[1]
                if type(pid) is not Pid:
                    continue
                old = self.insert(name, pid, method)
                if old is not None:
                    to_drop.append(old)
                to_monitor.append((name, pid))
            elif op[0] == DELETE:
                old = self.delete(op[1])
                if old is not None:
                    to_drop.append(old)
        return to_monitor, to_drop

    # -- known nodes -------------------------------------------------------------------
    def node_vsn(self, node: str) -> int:
        if node == self.node:
            return VSN
        return self.known.get(node, self.pending.get(node, 0))

    def known_list(self, his_vsn: int) -> list[Any]:
        """``mk_known_list/2``: ``[{Node, Vsn}]`` for version 7 and up, else names."""
        if his_vsn < 7:
            return [Atom(n) for n in self.known]
        return [(Atom(n), v) for n, v in self.known.items()]

    def add_to_known(self, nodes: Any) -> list[str]:
        """``add_to_known/2``: the nodes that were not known before."""
        added: list[str] = []
        for item in nodes if type(nodes) is list else []:
            node, vsn = (item, 0) if type(item) is Atom else _node_vsn(item)
            if node is None or node == self.node:
                continue
            if node not in self.known:
                self.known[node] = vsn
                added.append(node)
            elif self.known[node] < 0:
                self.known[node] = vsn
        return added

    def forget(self, node: str) -> Session | None:
        """``handle_nodedown``'s bookkeeping: the node is neither known nor synced."""
        self.known.pop(node, None)
        self.pending.pop(node, None)
        self.synced.discard(node)
        self.pre_connect.pop(node, None)
        return self.sessions.pop(node, None)


def term_key(term: Any) -> Any:
    """A term usable as a dict key (Erlang lists arrive as Python lists)."""
    if type(term) is list:
        return tuple(term_key(t) for t in term)
    if type(term) is tuple:
        return tuple(term_key(t) for t in term)
    if type(term) is dict:
        return tuple(sorted(((repr(k), term_key(v)) for k, v in term.items())))
    return term


def _node_vsn(item: Any) -> tuple[str | None, int]:
    if type(item) is tuple and len(item) == 2 and type(item[0]) is Atom and type(item[1]) is int:
        return str(item[0]), item[1]
    return None, 0
