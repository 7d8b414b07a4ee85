"""The cluster: a node's topologies running side by side, and what they report.

``Cluster(node, topologies)`` validates everything when constructed; :meth:`Cluster.start`
starts one task per topology and returns at once (the first discovery round does not
hold up the application). The cluster watches the node's own NodeUp / NodeDown events:
they become :class:`~nodemesh.cluster.events.NodeJoined` / ``NodeLeft`` attributed to a
topology, and they wake polling topologies so that a listed node whose connection dropped
is reconnected at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Iterable, Mapping
from types import MappingProxyType, TracebackType
from typing import Any

from nodemesh.cluster.config import ClusterConfig
from nodemesh.cluster.events import ClusterEvent, ClusterEventStream, NodeJoined, NodeLeft
from nodemesh.cluster.metrics import ClusterStatistics
from nodemesh.cluster.run import TopologyRun
from nodemesh.cluster.topology import Topology, collect
from nodemesh.epmd.client import default_epmd_port
from nodemesh.runtime.events import EventStream, NodeDown, NodeUp
from nodemesh.runtime.node import Node

__all__ = ["Cluster"]

log = logging.getLogger("nodemesh.cluster")


class Cluster:
    """Forms and heals the cluster of ``node`` with the given topologies.

    ``topologies`` are :class:`Topology` objects or a libcluster-shaped mapping
    (``{"local": {"strategy": "gossip", "config": {...}}}``). Raises
    :class:`~nodemesh.errors.ConfigError` here, before anything starts, for any bad
    topology. Use ``async with Cluster(node, topologies) as cluster:`` or call
    :meth:`start` and :meth:`aclose`; start the node first.
    """

    def __init__(
        self,
        node: Node,
        topologies: Iterable[Topology] | Mapping[str, Any],
        *,
        config: ClusterConfig | None = None,
    ) -> None:
        self.node = node
        self.config = config or ClusterConfig()
        self.topologies: tuple[Topology, ...] = collect(topologies)
        self.epmd_port = node.config.epmd_port or default_epmd_port()
        self.rng = random.Random()
        self._runs = {t.name: TopologyRun(self, t) for t in self.topologies}
        self._streams: set[ClusterEventStream] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._node_events: EventStream | None = None
        self._claims: dict[str, tuple[str, str]] = {}  # node -> (topology, reason)
        self._members: dict[str, str | None] = {}  # connected node -> its topology
        self._pruned: set[str] = set()
        self._started = False
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        """Start every topology in its own task and return without waiting for them."""
        if self._started:
            return
        self._started = True
        self._node_events = self.node.events(max_queued=0)  # ours: read at once, unbounded
        for peer in self.node.nodes():
            self._joined(peer, None, "connected")
        self._tasks.append(asyncio.create_task(self._watch(self._node_events)))
        for run in self._runs.values():
            task = asyncio.create_task(run.supervise(), name=f"nodemesh-topology-{run.name}")
            self._tasks.append(task)
        log.debug("cluster of %s started: %s", self.node.name, ", ".join(self._runs) or "none")

    async def aclose(self) -> None:
        """Stop every topology (connections stay up) and end the event streams."""
        self._closed = True
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._node_events is not None:
            self._node_events.close()
        for stream in list(self._streams):
            stream.close()

    async def __aenter__(self) -> Cluster:
        await self.start()
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # -- what users read ---------------------------------------------------------------
    def events(self) -> ClusterEventStream:
        """Subscribe to cluster events from now on (an async iterator)."""
        stream = ClusterEventStream(
            self._streams.discard,
            max_queued=self.node.config.max_queued_events,
            label="cluster event stream",
        )
        if self._closed:
            stream.close()
        else:
            self._streams.add(stream)
        return stream

    def statistics(self) -> ClusterStatistics:
        """A frozen snapshot of every topology's counters."""
        per = {name: run.counters.snapshot() for name, run in self._runs.items()}
        return ClusterStatistics(MappingProxyType(per), frozenset(self.node.nodes()))

    def metrics(self) -> ClusterStatistics:
        """The same as :meth:`statistics` (the name metrics libraries look for)."""
        return self.statistics()

    # -- internal: called by the topology runs (nodemesh.cluster.run) ------------------
    def publish(self, event: ClusterEvent) -> None:
        topology = getattr(event, "topology", None)
        run = self._runs.get(topology) if isinstance(topology, str) else None
        if run is not None:
            run.counters.count(event)
        for stream in list(self._streams):
            stream.put_nowait(event)

    def claim(self, node: str, topology: str, reason: str) -> None:
        """``topology`` is connecting to ``node``: its NodeUp is attributed to it."""
        self._claims.setdefault(node, (topology, reason))

    def unclaim(self, node: str, topology: str) -> None:
        if self._claims.get(node, ("",))[0] == topology:
            del self._claims[node]

    def mark_pruned(self, node: str) -> None:
        self._pruned.add(node)

    def listed_elsewhere(self, topology: str) -> set[str]:
        """Nodes that topologies other than ``topology`` list or connected."""
        nodes: set[str] = set()
        for name, run in self._runs.items():
            if name != topology:
                nodes |= run.poll.listed | run.known
        return nodes

    # -- node events -------------------------------------------------------------------
    async def _watch(self, events: EventStream) -> None:
        async for event in events:
            if isinstance(event, NodeUp):
                claim = self._claims.pop(event.node, None)
                if claim is not None:
                    self._joined(event.node, *claim)
                else:
                    self._joined(event.node, self._owner(event.node), "connected")
            elif isinstance(event, NodeDown):
                self._left(event.node, event.reason)
        log.debug("node %s stopped: the cluster stops", self.node.name)
        for task in self._tasks:
            if task is not asyncio.current_task():
                task.cancel()

    def _owner(self, node: str) -> str | None:
        for run in self._runs.values():
            if node in run.poll.listed or node in run.known:
                return run.name
        return None

    def _joined(self, node: str, topology: str | None, reason: str) -> None:
        self._members[node] = topology
        self._pruned.discard(node)  # a prune whose disconnect found nothing to do
        now = asyncio.get_running_loop().time()
        for run in self._runs.values():
            run.poll.node_up(node, now)
        self.publish(NodeJoined(node, topology, reason))

    def _left(self, node: str, reason: str) -> None:
        self._claims.pop(node, None)
        topology = self._members.pop(node, None) or self._owner(node)
        if node in self._pruned:
            self._pruned.discard(node)
            reason = "pruned"
        now = asyncio.get_running_loop().time()
        for run in self._runs.values():
            run.known.discard(node)
            run.poll.node_down(node, now, run)
        self.publish(NodeLeft(node, topology, reason))
