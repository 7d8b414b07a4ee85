"""One running topology: its strategy's supervisor and its :class:`StrategyContext`.

A :class:`TopologyRun` is what a strategy sees as ``ctx``: the node name, a logger that
prefixes ``[nodemesh:<topology>]``, and ``connect_nodes`` / ``disconnect_nodes``, which
go through the topology's hooks in parallel, each with a timeout, and report every
outcome as a :class:`~nodemesh.cluster.events.ConnectNode` or ``DisconnectNode`` event.
:meth:`TopologyRun.supervise` runs the strategy and restarts it with backoff when it
raises; the other topologies are separate tasks and carry on.

A run knows nothing of the cluster around it: it reports to a :class:`TopologySink`
(the cluster's :class:`~nodemesh.cluster._membership.Membership` in production, a
recorder in tests), the way OTP's ``dist_util`` talks to ``net_kernel`` through a record
of callbacks.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping, Set
from typing import Protocol

from nodemesh.cluster._counters import Counters
from nodemesh.cluster._polling import PollState, run_polling
from nodemesh.cluster.config import ClusterConfig, backoff
from nodemesh.cluster.events import (
    ALREADY_DISCONNECTED,
    NOT_PART_OF_NETWORK,
    UNREACHABLE,
    ClusterEvent,
    ConnectNode,
    DisconnectNode,
    StrategyCrashed,
)
from nodemesh.cluster.strategy import ClusterNode, PollingStrategy, Strategy, TopologyLog
from nodemesh.cluster.topology import Topology

__all__ = ["TopologyRun", "TopologySink"]

logger = logging.getLogger("nodemesh.cluster")
_MAX_FAILING = 4096

Hook = Callable[[str], Awaitable[bool | None]]


class TopologySink(Protocol):
    """Where a running topology reports, and the one thing it asks of the others."""

    def publish(self, event: ClusterEvent) -> None:
        """Hand on an event of this topology (already counted in its counters)."""

    def claim(self, node: str, topology: str, reason: str) -> None:
        """``topology`` is connecting to ``node``: attribute its NodeUp to it."""

    def unclaim(self, node: str, topology: str) -> None:
        """The connect of ``topology`` to ``node`` failed: drop its claim."""

    def pruning(self, node: str) -> None:
        """``node`` is being disconnected because discovery stopped listing it."""

    def listed_elsewhere(self, topology: str) -> Set[str]:
        """Nodes that topologies other than ``topology`` list or connected."""


class TopologyRun:
    """A topology while the cluster runs; implements ``StrategyContext``."""

    def __init__(
        self,
        spec: Topology,
        node: ClusterNode,
        sink: TopologySink,
        *,
        epmd_port: int,
        config: ClusterConfig,
        rng: random.Random,
    ) -> None:
        self.spec = spec
        self.sink = sink
        self.config = config
        self.rng = rng
        self.counters = Counters(spec.strategy)
        self.poll = PollState(config, rng)
        self.prunes = spec.prune
        self.known: set[str] = set()  # nodes this topology connected (push strategies)
        self._node_name = node.name
        self._node = node
        self._epmd_port = epmd_port
        self._log = TopologyLog(logger, {"topology": spec.name})
        self._inflight: set[str] = set()
        self._failing: set[str] = set()  # nodes whose last connect failed: log once
        self._semaphore = asyncio.Semaphore(config.max_parallel_connects)
        hooks = spec.hooks
        self._connect: Hook = hooks.connect or node.connect
        self._disconnect: Hook = hooks.disconnect or node.disconnect
        self._list_nodes: Callable[[], list[str]] = hooks.list_nodes or node.nodes

    # -- StrategyContext ---------------------------------------------------------------
    @property
    def topology(self) -> str:
        return self.spec.name

    name = topology

    @property
    def node_name(self) -> str:
        return self._node_name

    @property
    def log(self) -> logging.LoggerAdapter[logging.Logger]:
        return self._log

    @property
    def epmd_port(self) -> int:
        return self._epmd_port

    @property
    def dist_port(self) -> int | None:
        # Optional parts of a ClusterNode: a nodemesh Node has them, other nodes need not.
        port = getattr(self._node, "port", None)
        return port if type(port) is int and port > 0 else None

    def hint_port(self, node: str, port: int) -> None:
        hint = getattr(self._node, "hint_port", None)
        if hint is not None:
            hint(node, port)

    def expect(self, node: str) -> None:
        if node != self._node_name:
            self.sink.claim(node, self.name, "discovered")

    def list_nodes(self) -> list[str]:
        return list(self._list_nodes())

    def request_round(self) -> None:
        self.poll.request_round(asyncio.get_running_loop().time())

    async def connect_nodes(self, nodes: Set[str]) -> None:
        connected = set(self.list_nodes())
        self.known.update(n for n in nodes if n in connected)
        await self.connect_many(dict.fromkeys(nodes, "discovered"))

    async def disconnect_nodes(self, nodes: Set[str]) -> None:
        connected = set(self.list_nodes())
        async with asyncio.TaskGroup() as tg:
            for node in nodes:
                if node in connected:
                    tg.create_task(self._disconnect_one(node))

    # -- what the cluster tells and asks -----------------------------------------------
    def lists(self, node: str) -> bool:
        """Whether discovery lists ``node`` or this topology connected it."""
        return node in self.poll.listed or node in self.known

    def nodes(self) -> set[str]:
        """The nodes discovery lists and the nodes this topology connected."""
        return set(self.poll.listed | self.known)

    def node_up(self, node: str, now: float) -> None:
        self.poll.node_up(node, now)

    def node_down(self, node: str, now: float) -> None:
        self.known.discard(node)
        self.poll.node_down(node, now)

    def publish(self, event: ClusterEvent) -> None:
        """Count ``event`` and hand it to the sink."""
        self.counters.count(event)
        self.sink.publish(event)

    # -- connecting --------------------------------------------------------------------
    async def connect_many(self, reasons: Mapping[str, str]) -> dict[str, bool]:
        """Connect to each node not connected yet (self excluded), in parallel; ``reasons``
        maps each node to the NodeJoined reason it gets. Returns node -> connected."""
        connected = set(self.list_nodes())
        outcome = dict.fromkeys((n for n in reasons if n in connected), True)
        skip = connected | self._inflight | {self.node_name}
        async with asyncio.TaskGroup() as tg:
            tasks = {
                n: tg.create_task(self._connect_one(n, why))
                for n, why in reasons.items()
                if n not in skip
            }
        outcome.update((n, task.result()) for n, task in tasks.items())
        return outcome

    async def _connect_one(self, node: str, reason: str) -> bool:
        loop = asyncio.get_running_loop()
        self._inflight.add(node)
        self.sink.claim(node, self.name, reason)
        try:
            async with self._semaphore:
                started = loop.time()
                result, detail = await self._call(self._connect, node, "connect")
                duration = loop.time() - started
        finally:
            self._inflight.discard(node)
        ok = result is True
        error = None
        if ok:
            self.known.add(node)
            self._failing.discard(node)
            self._log.info("connected to %s", node)
        else:
            self.sink.unclaim(node, self.name)
            error = NOT_PART_OF_NETWORK if result is None else UNREACHABLE
            self._connect_failed(node, error, detail)
        self.publish(ConnectNode(node, self.name, ok, error, duration))
        return ok

    def _connect_failed(self, node: str, error: str, detail: str) -> None:
        """One warning per node until it connects; later failures at debug level."""
        level = logging.DEBUG if node in self._failing else logging.WARNING
        if len(self._failing) >= _MAX_FAILING:  # bogus names heard by gossip, say
            self._failing.clear()
        self._failing.add(node)
        what = "not part of network" if error == NOT_PART_OF_NETWORK else "unable to connect"
        self._log.log(level, "%s: %s%s", what, node, detail)

    async def _disconnect_one(self, node: str) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        result, detail = await self._call(self._disconnect, node, "disconnect")
        duration = loop.time() - started
        if result is True:
            self._log.info("disconnected from %s", node)
            self.publish(DisconnectNode(node, self.name, True, None, duration))
            return
        error = NOT_PART_OF_NETWORK if result is None else ALREADY_DISCONNECTED
        self._log.warning("disconnect from %s failed: %s%s", node, error, detail)
        self.publish(DisconnectNode(node, self.name, False, error, duration))

    async def _call(self, hook: Hook, node: str, what: str) -> tuple[bool | None, str]:
        """Run a hook with the timeout; a hook that raises or times out is a failure."""
        try:
            async with asyncio.timeout(self.config.connect_timeout):
                return await hook(node), ""
        except TimeoutError:
            return False, f" (timed out after {self.config.connect_timeout} s)"
        except Exception as exc:  # a user's hook: report it, do not crash the topology
            self._log.debug("%s hook raised for %s", what, node, exc_info=exc)
            return False, f" ({what} hook raised {type(exc).__name__}: {exc})"

    async def prune(self, vanished: Iterable[str]) -> None:
        """Disconnect nodes that discovery no longer lists, unless another topology does."""
        others = self.sink.listed_elsewhere(self.name)
        connected = set(self.list_nodes())
        targets = {n for n in vanished if n not in others and n in connected}
        for node in targets:
            self.sink.pruning(node)
        await self.disconnect_nodes(targets)

    # -- supervision -------------------------------------------------------------------
    async def supervise(self) -> None:
        """Run the strategy; when it raises, log one line and restart it with backoff."""
        loop = asyncio.get_running_loop()
        failures = 0
        while True:
            started = loop.time()
            self.counters.running = True
            try:
                await self._run_once()
            except Exception as exc:
                self.counters.running = False
                if loop.time() - started > self.config.restart_max_delay:
                    failures = 0
                failures += 1
                await self._crashed(exc, failures)
            else:
                self._log.info("strategy %s finished", self.spec.strategy)
                return
            finally:
                self.counters.running = False

    async def _crashed(self, exc: Exception, failures: int) -> None:
        """Report a crash in one line, then wait out the backoff before the restart."""
        config = self.config
        self.counters.restarts += 1
        delay = backoff(failures, config.restart_min_delay, config.restart_max_delay, self.rng)
        error = f"{type(exc).__name__}: {exc}"
        self._log.error(
            "strategy %s crashed (%s); restarting in %.2f s", self.spec.strategy, error, delay
        )
        self._log.debug("strategy traceback", exc_info=exc)
        self.publish(StrategyCrashed(self.name, error, delay))
        await asyncio.sleep(delay)

    async def _run_once(self) -> None:
        strategy = self.spec.strategy_class(self.spec.options)
        if isinstance(strategy, PollingStrategy):
            await run_polling(strategy, self)
        else:
            assert isinstance(strategy, Strategy)
            await strategy.run(self)
