"""Who is connected and through which topology: the cluster's shared bookkeeping.

:class:`Membership` is the :class:`~nodemesh.cluster._topology_run.TopologySink` of every
topology run. A run *claims* a node before it connects to it, so that the node's NodeUp
becomes ``NodeJoined(node, topology, reason)``; a NodeUp nobody claimed is attributed to
the topology that lists the node (reason ``"connected"``). A node a run *prunes* leaves
with reason ``"pruned"``. It does no I/O and reads no clock: the cluster passes ``now``.
"""

from __future__ import annotations

from collections.abc import Callable, Set

from nodemesh.cluster._topology_run import TopologyRun
from nodemesh.cluster.events import ClusterEvent, NodeJoined, NodeLeft

__all__ = ["Membership"]


class Membership:
    """The topology runs, the claims on nodes being connected, and where events go.

    ``deliver`` receives every event, once counted by the topology it names.
    """

    def __init__(self, deliver: Callable[[ClusterEvent], None]) -> None:
        self._deliver = deliver
        self.runs: dict[str, TopologyRun] = {}
        self._claims: dict[str, tuple[str, str]] = {}  # node -> (topology, reason)
        self._members: dict[str, str | None] = {}  # connected node -> its topology
        self._pruned: set[str] = set()

    def add(self, run: TopologyRun) -> None:
        self.runs[run.name] = run

    # -- TopologySink ------------------------------------------------------------------
    def publish(self, event: ClusterEvent) -> None:
        self._deliver(event)

    def claim(self, node: str, topology: str, reason: str) -> None:
        self._claims.setdefault(node, (topology, reason))

    def unclaim(self, node: str, topology: str) -> None:
        if self._claims.get(node, ("",))[0] == topology:
            del self._claims[node]

    def pruning(self, node: str) -> None:
        self._pruned.add(node)

    def listed_elsewhere(self, topology: str) -> Set[str]:
        nodes: set[str] = set()
        for name, run in self.runs.items():
            if name != topology:
                nodes |= run.nodes()
        return nodes

    # -- the node's own events ---------------------------------------------------------
    def node_up(self, node: str, now: float) -> NodeJoined:
        """A connection to ``node`` came up: tell every run, publish who brought it."""
        claim = self._claims.pop(node, None)
        topology, reason = claim if claim is not None else (self.owner(node), "connected")
        self._members[node] = topology
        self._pruned.discard(node)  # a prune whose disconnect found nothing to do
        for run in self.runs.values():
            run.node_up(node, now)
        joined = NodeJoined(node, topology, reason)
        self._announce(joined)
        return joined

    def node_down(self, node: str, reason: str, now: float) -> NodeLeft:
        """The connection to ``node`` went down: tell every run, publish why."""
        self._claims.pop(node, None)
        topology = self._members.pop(node, None) or self.owner(node)
        if node in self._pruned:
            self._pruned.discard(node)
            reason = "pruned"
        for run in self.runs.values():
            run.node_down(node, now)
        left = NodeLeft(node, topology, reason)
        self._announce(left)
        return left

    def owner(self, node: str) -> str | None:
        """The first topology that lists ``node`` or connected it, if any."""
        return next((run.name for run in self.runs.values() if run.lists(node)), None)

    def _announce(self, event: NodeJoined | NodeLeft) -> None:
        run = self.runs.get(event.topology) if event.topology is not None else None
        if run is not None:
            run.counters.count(event)
        self._deliver(event)
