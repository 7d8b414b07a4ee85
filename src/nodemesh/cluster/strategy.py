"""The strategy interface: how a topology discovers the nodes it should connect to.

A topology is a named strategy with its options and three hooks (connect, disconnect,
list-nodes), as in libcluster. Strategies come in two shapes:

- :class:`PollingStrategy` answers "who is there now?" (:meth:`PollingStrategy.discover`).
  The cluster runner calls it on an interval with jitter, connects what is new, reconnects
  listed nodes whose connection dropped, optionally disconnects what vanished, backs off on
  failure and keeps the last good answer when a lookup fails.
- :class:`Strategy` runs on its own (:meth:`Strategy.run`), like gossip, and reports
  what it hears through its :class:`StrategyContext`.

Third-party strategies are classes registered under the entry-point group
``nodemesh.strategies`` (``name = "package.module:Class"``) with a ``name`` class
attribute and an ``Options`` frozen dataclass whose fields are the TOML option names
(see ``docs/strategies.md``).
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Awaitable, Callable, MutableMapping, Set
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

__all__ = [
    "ClusterNode",
    "Hooks",
    "PollingStrategy",
    "Strategy",
    "StrategyContext",
    "TopologyLog",
]


class ClusterNode(Protocol):
    """What cluster formation needs from a node (a :class:`nodemesh.Node` fits)."""

    @property
    def name(self) -> str: ...

    async def connect(self, node: str) -> bool: ...

    async def disconnect(self, node: str) -> bool: ...

    def nodes(self) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class Hooks:
    """libcluster's connect / disconnect / list_nodes hooks for one topology.

    Defaults (None) are the node's own ``connect``, ``disconnect`` and ``nodes``.
    """

    connect: Callable[[str], Awaitable[bool | None]] | None = None
    disconnect: Callable[[str], Awaitable[bool | None]] | None = None
    list_nodes: Callable[[], list[str]] | None = None

    # The connect and disconnect hooks answer True (done), False (unreachable / already
    # disconnected) or None, libcluster's ``:ignored``: this node is not part of a
    # distributed network, reported as reason ``not_part_of_network``.


class TopologyLog(logging.LoggerAdapter[logging.Logger]):
    """Prefixes each line with ``[nodemesh:<topology>]``, as libcluster does: the
    ``log`` of a :class:`StrategyContext` (``TopologyLog(logger, {"topology": name})``)."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        topology = self.extra["topology"] if self.extra else "?"
        return f"[nodemesh:{topology}] {msg}", kwargs


class StrategyContext(Protocol):
    """What a running strategy may use; provided by the cluster runner."""

    @property
    def topology(self) -> str:
        """The topology's name (for logs and events)."""

    @property
    def node_name(self) -> str:
        """This node's full name, ``alive@host``."""

    @property
    def log(self) -> logging.LoggerAdapter[logging.Logger]:
        """A logger whose lines are prefixed with the topology name."""

    @property
    def epmd_port(self) -> int:
        """The EPMD port this node uses (its ``NodeConfig.epmd_port``, else
        ``$ERL_EPMD_PORT``, else 4369): strategies that ask EPMDs use it."""

    @property
    def dist_port(self) -> int | None:
        """The port this node's distribution listens on, for strategies that announce it
        (gossip heartbeats); None when the node does not say."""

    def hint_port(self, node: str, port: int) -> None:
        """``node`` announced that its distribution listens on ``port``: the node may
        connect there without asking EPMD (a wrong hint costs one failed attempt)."""

    def expect(self, node: str) -> None:
        """``node`` was discovered and is expected to connect to us (the strategy leaves
        the connecting to it): its arrival is this topology's, as if it had connected it."""

    def list_nodes(self) -> list[str]:
        """The nodes connected now, through the topology's list_nodes hook."""

    async def connect_nodes(self, nodes: Set[str]) -> None:
        """Connect to each of ``nodes`` not yet connected (self excluded), through the
        topology's connect hook, recording events and metrics."""

    async def disconnect_nodes(self, nodes: Set[str]) -> None:
        """Disconnect each of ``nodes`` that is connected, through the disconnect hook."""

    def request_round(self) -> None:
        """Run a discovery round of this (polling) topology now instead of at the next
        interval, e.g. because a watch saw a change. A request made while a round is in
        progress gives one more round right after it. No effect for push strategies."""


class Strategy(abc.ABC):
    """A strategy that runs by itself until cancelled (e.g. gossip).

    Subclasses set ``name`` and ``Options`` and implement :meth:`run`. ``__init__`` takes
    the validated options; nothing may block or touch the network there.
    """

    name: ClassVar[str]
    Options: ClassVar[type[Any]]

    def __init__(self, options: Any) -> None:
        self.options = options

    @abc.abstractmethod
    async def run(self, ctx: StrategyContext) -> None:
        """Discover and connect until cancelled. Raising ends this run: the runner logs
        it and restarts the strategy with backoff."""


class PollingStrategy(abc.ABC):
    """A strategy asked, once per round, which nodes should be in the cluster.

    ``Options`` has a ``polling_interval`` field in milliseconds (libcluster's unit), or
    the strategy overrides :meth:`interval`. Before the first :meth:`discover` the runner
    calls :meth:`bind`, so that ``self.ctx`` gives the node name, logger and EPMD port.
    """

    name: ClassVar[str]
    Options: ClassVar[type[Any]]
    _ctx: StrategyContext | None = None

    def __init__(self, options: Any) -> None:
        self.options = options

    def bind(self, ctx: StrategyContext) -> None:
        """Called by the runner before the first :meth:`discover`."""
        self._ctx = ctx

    @property
    def ctx(self) -> StrategyContext:
        """The context given to :meth:`bind` (RuntimeError before that)."""
        if self._ctx is None:
            raise RuntimeError(f"strategy {self.name!r} used before the runner bound it")
        return self._ctx

    def interval(self) -> float | None:
        """Seconds between discovery rounds, or None to discover once (listed nodes that
        are not connected are still retried). Default: ``options.polling_interval`` ms."""
        interval: int | float = self.options.polling_interval
        return interval / 1000

    @abc.abstractmethod
    async def discover(self) -> Set[str]:
        """The node names discovery finds now. Raise :class:`~nodemesh.DiscoveryError`
        when the lookup fails (the runner then keeps the last good answer)."""

    async def watch(self) -> None:  # noqa: B027 (optional hook)
        """Watch for changes beside the discovery rounds and call
        ``self.ctx.request_round()`` when one is seen (a Kubernetes watch, say). The
        runner starts it once a round has worked and cancels it when the strategy stops;
        raising restarts the strategy, as a bug in :meth:`discover` does. The default
        returns at once: no watch."""

    async def aclose(self) -> None:  # noqa: B027 (optional hook)
        """Release resources (HTTP sessions, sockets). The default does nothing."""
