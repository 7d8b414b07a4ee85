"""Links and monitors between local mailboxes and processes anywhere.

Pure bookkeeping: this table says who must be told what when a process exits or a
connection drops; the node does the telling. Python mailboxes behave like Erlang
processes that trap exits: an exit signal becomes an ``('EXIT', Pid, Reason)`` message.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, NamedTuple

from nodemesh.term.types import Atom, Pid, Reference

__all__ = ["Monitor", "SignalTable"]

NOCONNECTION = Atom("noconnection")


class Monitor(NamedTuple):
    """``watcher`` monitors ``target`` (a pid, or a registered name on ``node``).

    A named tuple, not a frozen dataclass: as immutable, and made without four
    ``object.__setattr__`` calls (a server makes one per call it is sent).
    """

    ref: Reference
    watcher: Pid
    target: Pid | Atom
    node: str

    def down_message(self, reason: Any) -> tuple[Any, ...]:
        """What the watcher receives when the target goes away."""
        target = self.target if isinstance(self.target, Pid) else (self.target, Atom(self.node))
        return (Atom("DOWN"), self.ref, Atom("process"), target, reason)


class SignalTable:
    """Links and monitors, indexed for exits of a process and losses of a node.

    Monitors are kept by their reference's fields, ``(ids, node, creation)``, not by the
    :class:`Reference`: a tuple of those hashes and compares in C, a Reference (a
    dataclass) in Python, and a gen_server call adds and removes one monitor each. The
    index by target holds a target's only monitor's key itself, and a set of keys only
    from its second monitor on: one call at a time then makes and frees no set per call.
    """

    def __init__(self) -> None:
        self._links: defaultdict[Pid, set[Pid]] = defaultdict(set)
        self._monitors: dict[tuple[Any, ...], tuple[Any, ...]] = {}  # Monitor's fields
        self._by_target: dict[tuple[Pid | Atom, str], Any] = {}  # a key, or a set of keys

    # -- links -------------------------------------------------------------------------
    def link(self, a: Pid, b: Pid) -> None:
        self._links[a].add(b)
        self._links[b].add(a)

    def unlink(self, a: Pid, b: Pid) -> bool:
        """Remove the link; True if there was one."""
        had = b in self._links.get(a, ())
        for x, y in ((a, b), (b, a)):
            peers = self._links.get(x)
            if peers is not None:
                peers.discard(y)
                if not peers:
                    del self._links[x]
        return had

    def take_links(self, pid: Pid) -> set[Pid]:
        """Forget every link of ``pid`` (it exited) and return its former partners."""
        peers = self._links.pop(pid, set())
        for other in peers:
            self.unlink(other, pid)
        return peers

    # -- monitors ----------------------------------------------------------------------
    def add_monitor(self, monitor: Monitor) -> None:
        self.monitor(*monitor)

    def monitor(self, ref: Reference, watcher: Pid, target: Pid | Atom, node: str) -> None:
        """Add ``Monitor(ref, watcher, target, node)`` (one per gen_server call served).
        Kept as a plain tuple: a NamedTuple costs a second tuple to make (tuple.__new__
        of a subclass), and most monitors (a call's) are removed without being read."""
        key = (ref.ids, ref.node, ref.creation)
        self._monitors[key] = (ref, watcher, target, node)
        where = (target, node)
        keys = self._by_target.get(where)
        if keys is None:
            self._by_target[where] = key
        elif type(keys) is set:
            keys.add(key)
        elif keys != key:
            self._by_target[where] = {keys, key}

    def remove_monitor(self, ref: Reference) -> Monitor | None:
        """Remove the monitor ``ref`` and return it; None if there is none."""
        found = self.drop_monitor(ref)
        return None if found is None else Monitor(*found)

    def drop_monitor(self, ref: Reference) -> tuple[Any, ...] | None:
        """:meth:`remove_monitor` returning the monitor's fields, not a :class:`Monitor`
        (a DEMONITOR_P does not read them)."""
        key = (ref.ids, ref.node, ref.creation)
        found = self._monitors.pop(key, None)
        if found is not None:
            where = found[2:]  # (target, node)
            keys = self._by_target.get(where)
            if type(keys) is set:
                keys.discard(key)
                if not keys:
                    del self._by_target[where]
            elif keys == key:
                del self._by_target[where]
        return found

    def _keys_of(self, target: Pid | Atom, node: str) -> list[tuple[Any, ...]]:
        keys = self._by_target.get((target, node))
        if keys is None:
            return []
        return list(keys) if type(keys) is set else [keys]

    def take_monitors_of(self, node: str, *targets: Pid | Atom | None) -> list[Monitor]:
        """Remove and return every monitor of one of ``targets`` (all on ``node``)."""
        found: list[Monitor] = []
        for target in targets:
            if target is None:
                continue
            for key in self._keys_of(target, node):
                fields = self._monitors.get(key)
                if fields is not None and self.drop_monitor(fields[0]) is not None:
                    found.append(Monitor(*fields))
        return found

    def take_node(self, node: str) -> tuple[list[tuple[Pid, Pid]], list[Monitor]]:
        """Forget everything involving processes on ``node`` (its connection dropped).

        Returns the broken links as ``(local, remote)`` pairs and the monitors whose
        target or watcher was there.
        """
        links: list[tuple[Pid, Pid]] = []
        for local, peers in list(self._links.items()):
            for remote in [p for p in peers if p.node == node]:
                self.unlink(local, remote)
                links.append((local, remote))
        # (ref, watcher, target, node): the target's node, or the watcher's
        gone = [m for m in self._monitors.values() if m[3] == node or m[1].node == node]
        for fields in gone:
            self.drop_monitor(fields[0])
        return links, [Monitor(*fields) for fields in gone]
