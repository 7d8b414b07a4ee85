"""The frozen snapshots of the cluster's counters: ``Cluster.statistics()``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

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
