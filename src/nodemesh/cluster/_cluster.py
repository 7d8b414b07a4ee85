"""The cluster: a node's topologies running side by side, and what they report.

``Cluster(node, topologies)`` validates everything when constructed. :meth:`Cluster.run`
runs one task per topology in a task group until cancelled, for callers that own a task
group; ``async with Cluster(...)`` (or :meth:`Cluster.start` / :meth:`Cluster.aclose`)
runs it in a background task and returns at once (the first discovery round does not
hold up the application). The cluster watches the node's own NodeUp / NodeDown events:
its :class:`~nodemesh.cluster._membership.Membership` turns them into
:class:`~nodemesh.cluster.events.NodeJoined` / ``NodeLeft`` attributed to a topology, and
they wake polling topologies so that a listed node whose connection dropped is
reconnected at once.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Iterable, Mapping
from types import MappingProxyType, TracebackType
from typing import Any

from nodemesh.cluster._membership import Membership
from nodemesh.cluster._topology_run import TopologyRun
from nodemesh.cluster.config import ClusterConfig
from nodemesh.cluster.events import ClusterEvent, ClusterEventStream
from nodemesh.cluster.metrics import ClusterStatistics
from nodemesh.cluster.topology import Topology, collect
from nodemesh.epmd.client import default_epmd_port
from nodemesh.runtime.events import EventStream, NodeDown, NodeUp
from nodemesh.runtime.node import Node
from nodemesh.runtime.streams import Publisher, Stream

__all__ = ["Cluster"]

log = logging.getLogger("nodemesh.cluster")


class Cluster:
    """Forms and heals the cluster of ``node`` with the given topologies.

    ``topologies`` are :class:`Topology` objects or a libcluster-shaped mapping
    (``{"local": {"strategy": "gossip", "config": {...}}}``). Raises
    :class:`~nodemesh.errors.ConfigError` here, before anything starts, for any bad
    topology. Start the node first, then either ``await cluster.run()`` in a task group
    you own, or ``async with Cluster(node, topologies) as cluster:``.
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
        self._membership = Membership(self._deliver)
        for spec in self.topologies:
            run = TopologyRun(
                spec,
                node,
                self._membership,
                epmd_port=self.epmd_port,
                config=self.config,
                rng=self.rng,
            )
            self._membership.add(run)
        self._publisher: Publisher[ClusterEvent] = Publisher("cluster event stream")
        self._task: asyncio.Task[None] | None = None
        self._node_events: EventStream | None = None
        self._started = False
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------------
    async def run(self) -> None:
        """Run every topology until cancelled, or until the node stops; then end the
        event streams. Connections stay up. For callers that own a task group
        (``tg.create_task(cluster.run())``). Raises :class:`RuntimeError` if this cluster
        runs already or was closed."""
        events = self._begin()
        await self._run(events)

    async def start(self) -> None:
        """Run the cluster in a background task and return without waiting for any
        topology; :meth:`aclose` stops it. Does nothing if started already. Raises
        :class:`RuntimeError` if :meth:`run` runs it already or it was closed."""
        if self._task is not None:
            return
        events = self._begin()
        self._task = asyncio.create_task(
            self._run(events), name=f"nodemesh-cluster-{self.node.name}"
        )

    async def aclose(self) -> None:
        """Stop every topology (connections stay up) and end the event streams."""
        self._closed = True
        task, self._task = self._task, None
        try:
            if task is not None:
                task.cancel()
                await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # aclose itself was cancelled: not ours to swallow
        finally:
            self._end_streams()

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
        if self._closed:  # stopping or stopped: a stream that has ended already
            stream: ClusterEventStream = Stream(label="cluster event stream")
            stream.close()
            return stream
        return self._publisher.subscribe(self.node.config.max_queued_events)

    def statistics(self) -> ClusterStatistics:
        """A frozen snapshot of every topology's counters."""
        runs = self._membership.runs
        per = {name: run.counters.snapshot() for name, run in runs.items()}
        return ClusterStatistics(MappingProxyType(per), frozenset(self.node.nodes()))

    def metrics(self) -> ClusterStatistics:
        """The same as :meth:`statistics` (the name metrics libraries look for)."""
        return self.statistics()

    # -- internal ----------------------------------------------------------------------
    def _begin(self) -> EventStream:
        """Subscribe to the node's events and report the peers connected already, in one
        step (no await in between: no NodeUp is missed or counted twice)."""
        if self._started or self._closed:
            raise RuntimeError(f"the cluster of {self.node.name} was started already")
        self._started = True
        self._node_events = self.node.events(max_queued=0)  # ours: read at once, unbounded
        now = asyncio.get_running_loop().time()
        for peer in self.node.nodes():
            self._membership.node_up(peer, now)
        return self._node_events

    async def _run(self, events: EventStream) -> None:
        runs = self._membership.runs
        log.debug("cluster of %s started: %s", self.node.name, ", ".join(runs) or "none")
        try:
            async with asyncio.TaskGroup() as tg:
                supervisors = [
                    tg.create_task(run.supervise(), name=f"nodemesh-topology-{name}")
                    for name, run in runs.items()
                ]
                tg.create_task(self._watch(events, supervisors))
        finally:
            self._closed = True
            self._end_streams()

    async def _watch(self, events: EventStream, supervisors: list[asyncio.Task[None]]) -> None:
        """Hand the node's NodeUp / NodeDown to the membership until the node stops."""
        loop = asyncio.get_running_loop()
        async for event in events:
            if isinstance(event, NodeUp):
                self._membership.node_up(event.node, loop.time())
            elif isinstance(event, NodeDown):
                self._membership.node_down(event.node, event.reason, loop.time())
        log.debug("node %s stopped: the cluster stops", self.node.name)
        for task in supervisors:  # a task group takes a cancelled child as a clean end
            task.cancel()

    def _deliver(self, event: ClusterEvent) -> None:
        self._publisher.publish(event)

    def _end_streams(self) -> None:
        node_events, self._node_events = self._node_events, None
        if node_events is not None:
            node_events.close()
        self._publisher.close()
