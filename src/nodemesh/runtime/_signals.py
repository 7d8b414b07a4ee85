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
    dataclass) in Python, and a gen_server call adds and removes one monitor each.
    """

    def __init__(self) -> None:
        self._links: defaultdict[Pid, set[Pid]] = defaultdict(set)
        self._monitors: dict[tuple[Any, ...], Monitor] = {}
        self._by_target: defaultdict[tuple[Pid | Atom, str], set[tuple[Any, ...]]] = defaultdict(
            set
        )

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
        ref = monitor.ref
        key = (ref.ids, ref.node, ref.creation)
        self._monitors[key] = monitor
        self._by_target[monitor.target, monitor.node].add(key)

    def remove_monitor(self, ref: Reference) -> Monitor | None:
        key = (ref.ids, ref.node, ref.creation)
        monitor = self._monitors.pop(key, None)
        if monitor is not None:
            refs = self._by_target.get((monitor.target, monitor.node))
            if refs is not None:
                refs.discard(key)
                if not refs:
                    del self._by_target[monitor.target, monitor.node]
        return monitor

    def take_monitors_of(self, node: str, *targets: Pid | Atom | None) -> list[Monitor]:
        """Remove and return every monitor of one of ``targets`` (all on ``node``)."""
        found: list[Monitor] = []
        for target in targets:
            if target is None:
                continue
            for key in list(self._by_target.get((target, node), ())):
                monitor = self._monitors.get(key)
                if monitor is not None and self.remove_monitor(monitor.ref) is not None:
                    found.append(monitor)
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
        monitors = [
            m for m in list(self._monitors.values()) if m.node == node or m.watcher.node == node
        ]
        for monitor in monitors:
            self.remove_monitor(monitor.ref)
        return links, monitors
