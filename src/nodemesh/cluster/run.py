"""One running topology: its strategy's supervisor and its :class:`StrategyContext`.

A :class:`TopologyRun` is what a strategy sees as ``ctx``: the node name, a logger that
prefixes ``[nodemesh:<topology>]``, and ``connect_nodes`` / ``disconnect_nodes``, which
go through the topology's hooks in parallel, each with a timeout, and report every
outcome as a :class:`~nodemesh.cluster.events.ConnectNode` or ``DisconnectNode`` event.
:meth:`TopologyRun.supervise` runs the strategy and restarts it with backoff when it
raises; the other topologies are separate tasks and carry on.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping, Set
from typing import TYPE_CHECKING, Any

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
from nodemesh.cluster.metrics import Counters
from nodemesh.cluster.polling import PollState, run_polling
from nodemesh.cluster.strategy import PollingStrategy, Strategy
from nodemesh.cluster.topology import Topology

if TYPE_CHECKING:
    from nodemesh.cluster.runner import Cluster

__all__ = ["TopologyLog", "TopologyRun"]

logger = logging.getLogger("nodemesh.cluster")
_MAX_FAILING = 4096


class TopologyLog(logging.LoggerAdapter[logging.Logger]):
    """Prefixes each line with ``[nodemesh:<topology>]``, as libcluster does."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        topology = self.extra["topology"] if self.extra else "?"
        return f"[nodemesh:{topology}] {msg}", kwargs


class TopologyRun:
    """A topology while the cluster runs; implements ``StrategyContext``."""

    def __init__(self, cluster: Cluster, spec: Topology) -> None:
        self.cluster = cluster
        self.spec = spec
        self.config: ClusterConfig = cluster.config
        self.rng: random.Random = cluster.rng
        self.counters = Counters(spec.strategy)
        self.poll = PollState()
        self.known: set[str] = set()  # nodes this topology connected (push strategies)
        self._log = TopologyLog(logger, {"topology": spec.name})
        self._inflight: set[str] = set()
        self._failing: set[str] = set()  # nodes whose last connect failed: log once
        self._semaphore = asyncio.Semaphore(self.config.max_parallel_connects)
        node = cluster.node
        hooks = spec.hooks
        self._connect: Callable[[str], Awaitable[bool | None]] = hooks.connect or node.connect
        self._disconnect: Callable[[str], Awaitable[bool | None]] = (
            hooks.disconnect or node.disconnect
        )
        self._list_nodes: Callable[[], list[str]] = hooks.list_nodes or node.nodes

    # -- StrategyContext ---------------------------------------------------------------
    @property
    def topology(self) -> str:
        return self.spec.name

    name = topology

    @property
    def node_name(self) -> str:
        return self.cluster.node.name

    @property
    def log(self) -> logging.LoggerAdapter[logging.Logger]:
        return self._log

    @property
    def epmd_port(self) -> int:
        return self.cluster.epmd_port

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
        targets = [n for n in nodes if n in connected]
        await asyncio.gather(*(self._disconnect_one(n) for n in targets))

    # -- connecting --------------------------------------------------------------------
    def publish(self, event: ClusterEvent) -> None:
        self.cluster.publish(event)

    async def connect_many(self, reasons: Mapping[str, str]) -> dict[str, bool]:
        """Connect to each node not connected yet (self excluded), in parallel; ``reasons``
        maps each node to the NodeJoined reason it gets. Returns node -> connected."""
        connected = set(self.list_nodes())
        todo = [
            n
            for n in reasons
            if n != self.node_name and n not in connected and n not in self._inflight
        ]
        results = await asyncio.gather(*(self._connect_one(n, reasons[n]) for n in todo))
        outcome = dict.fromkeys((n for n in reasons if n in connected), True)
        outcome.update(zip(todo, results, strict=True))
        return outcome

    async def _connect_one(self, node: str, reason: str) -> bool:
        loop = asyncio.get_running_loop()
        self._inflight.add(node)
        self.cluster.claim(node, self.name, reason)
        try:
            async with self._semaphore:
                started = loop.time()
                result, detail = await self._call(self._connect, node, "connect")
                duration = loop.time() - started
        finally:
            self._inflight.discard(node)
        ok = result is True
        if ok:
            self.known.add(node)
            self._failing.discard(node)
            self._log.info("connected to %s", node)
            error = None
        else:
            self.cluster.unclaim(node, self.name)
            error = NOT_PART_OF_NETWORK if result is None else UNREACHABLE
            level = logging.DEBUG if node in self._failing else logging.WARNING
            if len(self._failing) >= _MAX_FAILING:  # bogus names heard by gossip, say
                self._failing.clear()
            self._failing.add(node)
            what = "not part of network" if error == NOT_PART_OF_NETWORK else "unable to connect"
            self._log.log(level, "%s: %s%s", what, node, detail)
        self.publish(ConnectNode(node, self.name, ok, error, duration))
        return ok

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

    async def _call(
        self, hook: Callable[[str], Awaitable[bool | None]], node: str, what: str
    ) -> tuple[bool | None, str]:
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
        others = self.cluster.listed_elsewhere(self.name)
        targets = {n for n in vanished if n not in others}
        connected = set(self.list_nodes())
        for node in targets & connected:
            self.cluster.mark_pruned(node)
        await self.disconnect_nodes(targets & connected)

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
                self.counters.restarts += 1
                delay = backoff(
                    failures, self.config.restart_min_delay, self.config.restart_max_delay, self.rng
                )
                error = f"{type(exc).__name__}: {exc}"
                self._log.error(
                    "strategy %s crashed (%s); restarting in %.2f s",
                    self.spec.strategy,
                    error,
                    delay,
                )
                self._log.debug("strategy traceback", exc_info=exc)
                self.publish(StrategyCrashed(self.name, error, delay))
                await asyncio.sleep(delay)
            else:
                self._log.info("strategy %s finished", self.spec.strategy)
                return
            finally:
                self.counters.running = False

    async def _run_once(self) -> None:
        strategy = self.spec.strategy_class(self.spec.options)
        if isinstance(strategy, PollingStrategy):
            await run_polling(strategy, self)
        else:
            assert isinstance(strategy, Strategy)
            await strategy.run(self)
