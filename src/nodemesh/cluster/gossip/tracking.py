"""Bookkeeping for the gossip strategy: heartbeat liveness, counters, rate-limited logs.

Everything here is bounded: liveness holds at most ``max_nodes`` names (the least recently
heard is forgotten first), and the log limiter keys on the few fixed drop reasons, never on
a sender. Times are passed in (monotonic seconds).
"""

from __future__ import annotations

import logging
from collections import Counter, OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["GossipStatistics", "Liveness", "RateLimitedLog"]


class Liveness:
    """When each node's last heartbeat arrived (monotonic seconds), for ``max_nodes``, and
    when we last answered a heartbeat of it."""

    def __init__(self, max_nodes: int, timeout: float) -> None:
        self.max_nodes = max_nodes
        self.timeout = timeout
        self._heard: OrderedDict[str, float] = OrderedDict()
        self._answered: dict[str, float] = {}  # keys: a subset of _heard's

    def heard(self, node: str, now: float) -> bool:
        """Record a heartbeat from ``node``; True when it is new to us: never heard, or
        silent for longer than ``timeout`` (it left, or was cut off, and is back)."""
        last = self._heard.pop(node, None)
        self._heard[node] = now
        if len(self._heard) > self.max_nodes:
            gone, _ = self._heard.popitem(last=False)
            self._answered.pop(gone, None)
        return last is None or now - last > self.timeout

    def answer_due(self, node: str, now: float, interval: float, *, new: bool) -> bool:
        """Whether to answer ``node``'s heartbeat now (and record that we do): always
        when it is ``new``, else when we have not answered it within ``interval``."""
        last = self._answered.get(node)
        if not new and last is not None and now - last < interval:
            return False
        if node in self._heard:
            self._answered[node] = now
        return True

    def ages(self, now: float) -> dict[str, float]:
        """Seconds since each tracked node's last heartbeat."""
        return {node: now - at for node, at in self._heard.items()}

    def alive(self, now: float) -> set[str]:
        """The nodes heard within ``timeout``."""
        return {node for node, at in self._heard.items() if now - at <= self.timeout}

    def __len__(self) -> int:
        return len(self._heard)


class RateLimitedLog:
    """At most one warning per kind per ``interval`` seconds; the next one says how many
    were suppressed meanwhile. Kinds are a small fixed set (drop reasons)."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._next: dict[str, float] = {}
        self._suppressed: Counter[str] = Counter()

    def warning(
        self, log: logging.LoggerAdapter[Any], kind: str, now: float, msg: str, *args: object
    ) -> bool:
        """Log ``msg % args`` unless ``kind`` was logged less than ``interval`` ago.
        Returns whether it was logged."""
        if now < self._next.get(kind, float("-inf")):
            self._suppressed[kind] += 1
            return False
        self._next[kind] = now + self.interval
        suppressed = self._suppressed.pop(kind, 0)
        if suppressed:
            msg += f" ({suppressed} more like it in the last {self.interval:g} s)"
        log.warning(msg, *args)
        return True


@dataclass(frozen=True, slots=True)
class GossipStatistics:
    """Counters since the strategy was created (see :meth:`GossipStrategy.statistics`)."""

    heartbeats_sent: int = 0
    replies_sent: int = 0  # of heartbeats_sent: answers to newcomers
    bytes_sent: int = 0
    datagrams_received: int = 0
    bytes_received: int = 0
    heartbeats_accepted: int = 0  # from other nodes, decoded and authenticated
    dropped: Mapping[str, int] = field(default_factory=dict)  # datagrams, by GossipError.kind
    errors: Mapping[str, int] = field(default_factory=dict)  # socket, connect hook... by kind
    tracked_nodes: int = 0
