"""Running a :class:`~nodemesh.cluster.strategy.PollingStrategy`: the discovery loop.

Theory of operation
-------------------
The loop keeps one :class:`PollState` per topology, which outlives strategy restarts:

- ``listed``, the last good discovery answer. A lookup that raises DiscoveryError leaves
  it alone (libcluster drops every node on a failed Kubernetes or DNS lookup) and the
  next lookup is backed off exponentially from the polling interval.
- ``retries``, one entry per listed node that is not connected, with the time of its
  next connect attempt. Failed attempts back off per node; a discovery round brings
  every entry forward to "now", like libcluster's connect on every poll.
- A node that drops while still listed gets an entry due at once (libcluster #148 left
  it alone until discovery changed); if it keeps dropping soon after each reconnect,
  the entry backs off instead.

Each turn of the loop discovers if a round is due, connects the due entries in parallel,
then sleeps until the next round or entry is due, or until a node event wakes it. From
the first round that works, the strategy's :meth:`~PollingStrategy.watch` runs beside the
loop in the same task group (a Kubernetes watch, say, that asks for rounds).

The loop reaches its topology only through :class:`PolledTopology` (a
:class:`~nodemesh.cluster._topology_run.TopologyRun` fits); this module imports none of
the modules above it.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from nodemesh.cluster._counters import Counters
from nodemesh.cluster.config import ClusterConfig, backoff, jittered
from nodemesh.cluster.events import ClusterEvent, DiscoveryFailed
from nodemesh.cluster.strategy import PollingStrategy, StrategyContext
from nodemesh.errors import DiscoveryError

__all__ = ["PollState", "PolledTopology", "run_polling"]


@dataclass(slots=True)
class _Retry:
    failures: int
    due: float
    dropped: bool = False  # the node was connected and dropped: a reconnect


class PollState:
    """What a polling topology knows, kept across strategy restarts; ``config`` and
    ``rng`` give the retry backoff."""

    def __init__(self, config: ClusterConfig, rng: random.Random) -> None:
        self.config = config
        self.rng = rng
        self.listed: frozenset[str] = frozenset()
        self.retries: dict[str, _Retry] = {}
        self.up_since: dict[str, float] = {}
        self.flaps: dict[str, int] = {}
        self.discovery_failures = 0
        self.next_poll: float | None = 0.0
        self.round_requested = False
        self.wake = asyncio.Event()

    def request_round(self, now: float) -> None:
        """Bring the next discovery round forward to now (see StrategyContext)."""
        self.round_requested = True
        self.next_poll = now
        self.wake.set()

    def node_up(self, node: str, now: float) -> None:
        if node in self.listed:
            self.up_since[node] = now
            self.retries.pop(node, None)

    def node_down(self, node: str, now: float) -> None:
        """A listed node's connection dropped: reconnect now, or later if it flaps."""
        up = self.up_since.pop(node, None)
        if node not in self.listed:
            return
        config = self.config
        short = up is not None and now - up < config.retry_max_delay
        flaps = self.flaps.get(node, 0) + 1 if short else 0
        self.flaps[node] = flaps
        due = now + backoff(flaps, config.retry_min_delay, config.retry_max_delay, self.rng)
        self.retries[node] = _Retry(flaps, now if flaps == 0 else due, dropped=True)
        self.wake.set()


class PolledTopology(StrategyContext, Protocol):
    """What the discovery loop needs from the topology it runs for: the context the
    strategy is bound to, plus the topology's state, counters and connecting."""

    poll: PollState
    counters: Counters
    prunes: bool  # disconnect the nodes that discovery stops listing

    def publish(self, event: ClusterEvent) -> None: ...

    async def connect_many(self, reasons: Mapping[str, str]) -> dict[str, bool]: ...

    async def prune(self, vanished: Iterable[str]) -> None: ...


async def run_polling(strategy: PollingStrategy, run: PolledTopology) -> None:
    """Poll ``strategy`` and keep the listed nodes connected, until cancelled."""
    state = run.poll
    strategy.bind(run)
    interval = strategy.interval()
    if interval is not None and not interval > 0:
        raise ValueError(f"strategy {strategy.name!r} has a non-positive interval {interval!r}")
    loop = asyncio.get_running_loop()
    state.next_poll = loop.time()
    try:
        async with asyncio.TaskGroup() as tg:  # the strategy's watch, once a round worked
            watch: asyncio.Task[None] | None = None
            while True:
                due = state.next_poll is not None and loop.time() >= state.next_poll
                if due and await _discover(strategy, run, interval) and watch is None:
                    watch = tg.create_task(strategy.watch(), name=f"{run.topology}-watch")
                await _connect_due(run)
                await _sleep(state)
    except ExceptionGroup as group:
        # One error (the loop's or the watch's): raise it as itself, so that the
        # supervisor logs "strategy crashed (KeyError: ...)" and not the group.
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise
    finally:
        await strategy.aclose()


async def _discover(strategy: PollingStrategy, run: PolledTopology, interval: float | None) -> bool:
    """One discovery round; whether the lookup worked."""
    state = run.poll
    config, rng = state.config, state.rng
    loop = asyncio.get_running_loop()
    state.round_requested = False  # this round serves requests made until now
    try:
        found = await strategy.discover()
    except DiscoveryError as exc:
        state.discovery_failures += 1
        run.counters.discovery_errors += 1
        base = interval or config.retry_min_delay
        failures = min(state.discovery_failures - 1, 62)
        delay = min(base * 2**failures, max(base, config.discovery_max_delay))
        state.next_poll = loop.time() + jittered(delay, config.polling_jitter, rng)
        level = run.log.warning if state.discovery_failures == 1 else run.log.debug
        level("discovery failed, keeping %d known nodes: %s", len(state.listed), exc)
        run.publish(DiscoveryFailed(run.topology, str(exc)))
        return False
    if state.discovery_failures:
        run.log.info("discovery works again after %d failures", state.discovery_failures)
    state.discovery_failures = 0
    run.counters.discovery_rounds += 1
    listed = frozenset(str(n) for n in found) - {run.node_name}
    vanished = state.listed - listed
    state.listed = run.counters.listed = listed
    for node in vanished:
        state.retries.pop(node, None)
        state.flaps.pop(node, None)
        state.up_since.pop(node, None)
    connected = set(run.list_nodes())
    for node in list(state.up_since):
        if node not in connected:  # a hook said "connected" but list_nodes disagrees
            del state.up_since[node]
    now = loop.time()
    for retry in state.retries.values():
        retry.due = min(retry.due, now)
    state.next_poll = (
        None if interval is None else now + jittered(interval, config.polling_jitter, rng)
    )
    if state.round_requested:  # asked for while this round ran: one more, at once
        state.next_poll = now
    if vanished and run.prunes:
        await run.prune(vanished)
    return True


async def _connect_due(run: PolledTopology) -> None:
    state = run.poll
    config, rng = state.config, state.rng
    loop = asyncio.get_running_loop()
    now = loop.time()
    connected = set(run.list_nodes())
    for node in list(state.retries):
        if node in connected or node not in state.listed:
            del state.retries[node]
    # up_since: connected by the hook just now (a list_nodes hook may lag behind).
    for node in state.listed - connected - state.retries.keys() - state.up_since.keys():
        state.retries[node] = _Retry(0, now)
    due = {n: r.dropped for n, r in state.retries.items() if r.due <= now}
    if not due:
        return
    reasons = {n: "reconnected" if dropped else "discovered" for n, dropped in due.items()}
    results = await run.connect_many(reasons)
    now = loop.time()
    for node in due:
        retry = state.retries.get(node)
        if retry is None:
            continue
        if results.get(node, False):  # absent: another attempt was in flight
            del state.retries[node]
            state.up_since.setdefault(node, now)
        else:
            retry.failures += 1
            retry.due = now + backoff(
                retry.failures, config.retry_min_delay, config.retry_max_delay, rng
            )


async def _sleep(state: PollState) -> None:
    """Until the next round or retry is due, or a node event sets ``wake``."""
    if state.wake.is_set():
        state.wake.clear()
        return
    times = [r.due for r in state.retries.values()]
    if state.next_poll is not None:
        times.append(state.next_poll)
    deadline = min(times) if times else None
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout_at(deadline):
            await state.wake.wait()
    state.wake.clear()
