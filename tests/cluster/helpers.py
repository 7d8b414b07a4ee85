"""Helpers for cluster tests: a fast runner configuration and waiting for events."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Set
from dataclasses import dataclass
from typing import Any

from nodemesh.cluster import ClusterConfig, ClusterEvent, ClusterEventStream
from nodemesh.cluster.strategy import PollingStrategy
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
