"""The mutable counters behind each :class:`~nodemesh.cluster.metrics.TopologyStatistics`."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from types import MappingProxyType

from nodemesh.cluster.events import ClusterEvent, ConnectNode, DisconnectNode, NodeJoined, NodeLeft
from nodemesh.cluster.metrics import TopologyStatistics

__all__ = ["Counters"]


@dataclass(slots=True)
class Counters:
    """One topology's counters, kept by its run; :meth:`snapshot` freezes them."""

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
