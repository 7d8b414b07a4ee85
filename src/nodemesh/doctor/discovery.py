"""Running a topology's discovery once, without connecting: what ``nodemesh discover``
prints and what ``nodemesh doctor`` checks.

- A polling strategy is bound to a :class:`RecordingContext` and asked once
  (:meth:`~nodemesh.cluster.PollingStrategy.discover`), with a timeout.
- Gossip is only listened to for ``wait`` seconds: heartbeats heard are decoded with the
  topology's codec (plain, ``secret`` or authenticated). Nothing is sent, so no node
  hears of us and tries to connect back to a node that does not exist.
- Any other push strategy runs for ``wait`` seconds with a :class:`RecordingContext`,
  whose ``connect_nodes`` records the names instead of connecting.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Set
from dataclasses import dataclass
from typing import Any

from nodemesh.cluster.strategy import PollingStrategy, Strategy, TopologyLog
from nodemesh.cluster.topology import Topology
from nodemesh.errors import DiscoveryError, NodemeshError

__all__ = ["DiscoveryResult", "RecordingContext", "default_wait", "discover_once"]

logger = logging.getLogger("nodemesh.discover")


class RecordingContext:
    """A StrategyContext that records the nodes a strategy would connect to."""

    def __init__(self, topology: str, node_name: str, epmd_port: int) -> None:
        self._topology = topology
        self._node_name = node_name
        self._epmd_port = epmd_port
        self._log = TopologyLog(logger, {"topology": topology})
        self.heard: set[str] = set()

    @property
    def topology(self) -> str:
        return self._topology

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
        return None  # no node runs: heartbeats name this node only

    def hint_port(self, node: str, port: int) -> None:
        """Nothing connects: a port hint is of no use."""

    def expect(self, node: str) -> None:
        if node != self._node_name:
            self.heard.add(node)

    def list_nodes(self) -> list[str]:
        """The nodes recorded so far, as if connected (so a strategy does not repeat)."""
        return sorted(self.heard)

    async def connect_nodes(self, nodes: Set[str]) -> None:
        self.heard.update(n for n in nodes if n != self._node_name)

    def request_round(self) -> None:
        """One round is all discover runs: nothing to bring forward."""

    async def disconnect_nodes(self, nodes: Set[str]) -> None:
        self.heard.difference_update(nodes)


@dataclass(frozen=True, slots=True)
class DiscoveryResult:
    """What one topology found: ``nodes``, or ``error`` saying why the lookup failed.
    ``listened`` is the window in seconds for push strategies, None for polling ones."""

    topology: str
    strategy: str
    nodes: frozenset[str]
    error: str | None = None
    listened: float | None = None


def default_wait(topology: Topology) -> float:
    """How long to listen to a push strategy: gossip's longest heartbeat interval plus a
    second (every live node speaks in that window), else 6 s."""
    interval = getattr(topology.options, "heartbeat_interval_max", None)
    if topology.strategy == "gossip" and isinstance(interval, int):
        return interval / 1000 + 1.0
    return 6.0


async def discover_once(
    topology: Topology,
    *,
    node_name: str,
    epmd_port: int,
    wait: float | None = None,
    timeout: float = 10.0,
) -> DiscoveryResult:
    """Run ``topology``'s discovery once. Never raises for a failed lookup: the result's
    ``error`` says what went wrong (a strategy's bug is reported the same way)."""
    ctx = RecordingContext(topology.name, node_name, epmd_port)
    name, strategy = topology.name, topology.strategy
    try:
        if topology.polling:
            nodes = await _poll(topology, ctx, timeout)
            return DiscoveryResult(name, strategy, frozenset(nodes))
        window = default_wait(topology) if wait is None else wait
        if strategy == "gossip":
            heard = await listen_gossip(topology.options, window)
        else:
            heard = await _run_push(topology, ctx, window)
        return DiscoveryResult(name, strategy, frozenset(heard), listened=window)
    except DiscoveryError as exc:
        return DiscoveryResult(name, strategy, frozenset(), str(exc))
    except TimeoutError:
        return DiscoveryResult(name, strategy, frozenset(), f"no answer within {timeout:g} s")
    except NodemeshError as exc:
        return DiscoveryResult(name, strategy, frozenset(), str(exc))
    except Exception as exc:  # a strategy's bug: still one line, not a traceback
        logger.debug("discovery of %s raised", name, exc_info=exc)
        return DiscoveryResult(name, strategy, frozenset(), f"{type(exc).__name__}: {exc}")


async def _poll(topology: Topology, ctx: RecordingContext, timeout: float) -> set[str]:
    strategy = topology.strategy_class(topology.options)
    assert isinstance(strategy, PollingStrategy)
    try:
        strategy.bind(ctx)
        async with asyncio.timeout(timeout):
            return {str(n) for n in await strategy.discover()}
    finally:
        await strategy.aclose()


async def _run_push(topology: Topology, ctx: RecordingContext, wait: float) -> set[str]:
    strategy = topology.strategy_class(topology.options)
    assert isinstance(strategy, Strategy)
    # Runs for the window, or less if it raises (that error is the result) or returns.
    try:
        async with asyncio.timeout(wait) as window:
            await strategy.run(ctx)
    except TimeoutError:
        if not window.expired():  # the strategy's own TimeoutError
            raise
    return set(ctx.heard)


class _Listener(asyncio.DatagramProtocol):
    def __init__(self, codec: Any) -> None:
        self.codec = codec
        self.heard: set[str] = set()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        try:
            self.heard.add(self.codec.decode(data, time.time()))
        except Exception as exc:  # not a heartbeat of this cluster: dropped
            logger.debug("dropped a datagram from %s: %s", addr[0], exc)


async def listen_gossip(options: Any, wait: float) -> set[str]:
    """The node names heard in gossip heartbeats within ``wait`` seconds (nothing is
    sent). Raises NetworkError when the socket cannot be opened."""
    from nodemesh.cluster.gossip.options import make_codec
    from nodemesh.cluster.gossip.sockets import open_gossip_socket

    opened = open_gossip_socket(
        port=options.port,
        if_addr=options.if_addr,
        multicast_addr=options.multicast_addr,
        multicast_ttl=options.multicast_ttl,
        multicast_if=options.multicast_if,
        broadcast_only=options.broadcast_only,
    )
    listener = _Listener(make_codec(options))
    loop = asyncio.get_running_loop()
    try:
        transport, _ = await loop.create_datagram_endpoint(lambda: listener, sock=opened.sock)
    except BaseException:
        opened.sock.close()
        raise
    try:
        await asyncio.sleep(wait)  # the listening window itself
    finally:
        transport.close()
    return listener.heard
