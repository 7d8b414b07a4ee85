"""Helpers for cluster tests: a fast runner configuration, waiting for events, and a
recording sink for topology runs tested alone."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Set
from dataclasses import dataclass, field
from typing import Any

from nodemesh.cluster import ClusterConfig, ClusterEvent, ClusterEventStream, Topology
from nodemesh.cluster._topology_run import TopologyRun
from nodemesh.cluster.strategy import ClusterNode, PollingStrategy
from nodemesh.errors import DiscoveryError

#: Every delay short, so tests wait milliseconds, not seconds.
FAST = ClusterConfig(
    connect_timeout=3.0,
    retry_min_delay=0.05,
    retry_max_delay=0.2,
    discovery_max_delay=0.2,
    restart_min_delay=0.05,
    restart_max_delay=0.4,
)


async def next_event(
    stream: ClusterEventStream,
    match: Callable[[ClusterEvent], bool],
    timeout: float = 10.0,
    seen: list[ClusterEvent] | None = None,
) -> ClusterEvent:
    """The next event from ``stream`` that ``match`` accepts (others are kept in ``seen``)."""
    async with asyncio.timeout(timeout):
        while True:
            event = await stream.get()
            if seen is not None:
                seen.append(event)
            if match(event):
                return event


async def next_events(
    stream: ClusterEventStream, *matches: Callable[[ClusterEvent], bool], timeout: float = 10.0
) -> list[ClusterEvent]:
    """For each matcher, the first event it accepts, in whatever order they come."""
    found: dict[int, ClusterEvent] = {}
    async with asyncio.timeout(timeout):
        while len(found) < len(matches):
            event = await stream.get()
            for i, match in enumerate(matches):
                if i not in found and match(event):
                    found[i] = event
                    break
    return [found[i] for i in range(len(matches))]


class ScriptedStrategy(PollingStrategy):
    """A polling strategy whose answers the test sets: a set of nodes, or an exception."""

    name = "scripted"

    @dataclass(frozen=True, slots=True)
    class Options:
        polling_interval: int = 50

    answer: Set[str] | BaseException = frozenset()
    calls = 0

    async def discover(self) -> Set[str]:
        type(self).calls += 1
        answer = type(self).answer
        if isinstance(answer, BaseException):
            raise answer
        return answer


def scripted(**attrs: Any) -> type[ScriptedStrategy]:
    """A fresh ScriptedStrategy subclass (class attributes are per test)."""
    return type("Scripted", (ScriptedStrategy,), {"calls": 0, **attrs})


def failing_lookup() -> DiscoveryError:
    return DiscoveryError("the lookup service answered 403")


@dataclass
class Recorder:
    """A TopologySink that keeps what it is told."""

    elsewhere: set[str] = field(default_factory=set)
    events: list[ClusterEvent] = field(default_factory=list)
    claims: dict[str, tuple[str, str]] = field(default_factory=dict)
    pruned: set[str] = field(default_factory=set)

    def publish(self, event: ClusterEvent) -> None:
        self.events.append(event)

    def claim(self, node: str, topology: str, reason: str) -> None:
        self.claims[node] = (topology, reason)

    def unclaim(self, node: str, topology: str) -> None:
        self.claims.pop(node, None)

    def pruning(self, node: str) -> None:
        self.pruned.add(node)

    def listed_elsewhere(self, topology: str) -> Set[str]:
        return self.elsewhere


def make_run(node: ClusterNode, spec: Topology, sink: Recorder) -> TopologyRun:
    return TopologyRun(spec, node, sink, epmd_port=0, config=FAST, rng=random.Random(7))
