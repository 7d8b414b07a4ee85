"""Counters kept by the cluster runner, and the frozen snapshots it hands out."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from nodemesh.cluster.events import ClusterEvent, ConnectNode, DisconnectNode, NodeJoined, NodeLeft

__all__ = ["ClusterStatistics", "TopologyStatistics"]


@dataclass(frozen=True, slots=True)
class TopologyStatistics:
    """One topology's counters since the cluster started.

    ``connect_errors`` and ``disconnect_errors`` count by reason (``unreachable``,
    ``not_part_of_network``, ``already_disconnected``). ``listed`` is the last good
    discovery answer (polling strategies). ``reconnects`` counts nodes reconnected after
    their connection dropped while discovery still listed them.
    """

    strategy: str
    running: bool
    restarts: int
    discovery_rounds: int
    discovery_errors: int
    listed: frozenset[str]
    connects_ok: int
    connect_errors: Mapping[str, int]
    disconnects_ok: int
    disconnect_errors: Mapping[str, int]
    nodes_joined: int
    nodes_left: int
    reconnects: int


@dataclass(frozen=True, slots=True)
class ClusterStatistics:
    """A snapshot of every topology's counters, and the nodes connected at that time."""

    topologies: Mapping[str, TopologyStatistics]
    nodes: frozenset[str]

    @property
    def connects_ok(self) -> int:
        """Successful connects, all topologies."""
        return sum(t.connects_ok for t in self.topologies.values())

    @property
    def connect_errors(self) -> int:
        """Failed connects, all topologies and reasons."""
        return sum(sum(t.connect_errors.values()) for t in self.topologies.values())

    @property
    def discovery_errors(self) -> int:
        """Failed lookups, all topologies."""
        return sum(t.discovery_errors for t in self.topologies.values())


@dataclass(slots=True)
class Counters:
    """The mutable counters behind one :class:`TopologyStatistics` (runner-internal)."""

    strategy: str
    running: bool = False
    restarts: int = 0
    discovery_rounds: int = 0
    discovery_errors: int = 0
    listed: frozenset[str] = frozenset()
    connects_ok: int = 0
    connect_errors: Counter[str] = field(default_factory=Counter)
    disconnects_ok: int = 0
    disconnect_errors: Counter[str] = field(default_factory=Counter)
    nodes_joined: int = 0
    nodes_left: int = 0
    reconnects: int = 0

    def count(self, event: ClusterEvent) -> None:
        """Count what ``event`` says about this topology."""
        if isinstance(event, ConnectNode):
            if event.ok:
                self.connects_ok += 1
            else:
                self.connect_errors[event.reason or "unknown"] += 1
        elif isinstance(event, DisconnectNode):
            if event.ok:
                self.disconnects_ok += 1
            else:
                self.disconnect_errors[event.reason or "unknown"] += 1
        elif isinstance(event, NodeJoined):
            self.nodes_joined += 1
            self.reconnects += event.reason == "reconnected"
        elif isinstance(event, NodeLeft):
            self.nodes_left += 1

    def snapshot(self) -> TopologyStatistics:
        return TopologyStatistics(
            strategy=self.strategy,
            running=self.running,
            restarts=self.restarts,
            discovery_rounds=self.discovery_rounds,
            discovery_errors=self.discovery_errors,
            listed=self.listed,
            connects_ok=self.connects_ok,
            connect_errors=MappingProxyType(dict(self.connect_errors)),
            disconnects_ok=self.disconnects_ok,
            disconnect_errors=MappingProxyType(dict(self.disconnect_errors)),
            nodes_joined=self.nodes_joined,
            nodes_left=self.nodes_left,
            reconnects=self.reconnects,
        )
