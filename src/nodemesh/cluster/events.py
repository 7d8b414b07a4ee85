"""Cluster events: who joined and left, and the outcome of every connect and disconnect.

:class:`ConnectNode` and :class:`DisconnectNode` are libcluster's telemetry events
``[:libcluster, :connect_node, :ok | :error]`` and ``[:libcluster, :disconnect_node, ...]``
with the same metadata (node, topology) and error reasons (:data:`UNREACHABLE`,
:data:`NOT_PART_OF_NETWORK`, :data:`ALREADY_DISCONNECTED`), plus the duration.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

__all__ = [
    "ALREADY_DISCONNECTED",
    "NOT_PART_OF_NETWORK",
    "UNREACHABLE",
    "ClusterEvent",
    "ClusterEventStream",
    "ConnectNode",
    "DisconnectNode",
    "DiscoveryFailed",
    "NodeJoined",
    "NodeLeft",
    "StrategyCrashed",
]

UNREACHABLE = "unreachable"
NOT_PART_OF_NETWORK = "not_part_of_network"
ALREADY_DISCONNECTED = "already_disconnected"


@dataclass(frozen=True, slots=True)
class NodeJoined:
    """A connection to ``node`` came up.

    ``reason``: ``"discovered"`` (a topology connected it), ``"reconnected"`` (a topology
    reconnected it after its connection dropped) or ``"connected"`` (the peer or other
    code connected). ``topology`` is the topology that connected or lists the node, or
    None when no topology knows it.
    """

    node: str
    topology: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class NodeLeft:
    """The connection to ``node`` went down; ``reason`` is the node's reason
    (``connection_closed``, ``net_tick_timeout``, ...) or ``"pruned"`` when its topology
    disconnected it because discovery no longer lists it."""

    node: str
    topology: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class ConnectNode:
    """A topology tried to connect to ``node`` through its connect hook.

    ``reason`` is None when ``ok``, else :data:`UNREACHABLE` or :data:`NOT_PART_OF_NETWORK`;
    ``duration`` is in seconds.
    """

    node: str
    topology: str
    ok: bool
    reason: str | None
    duration: float


@dataclass(frozen=True, slots=True)
class DisconnectNode:
    """A topology disconnected ``node`` through its disconnect hook; ``reason`` is None
    when ``ok``, else :data:`ALREADY_DISCONNECTED` or :data:`NOT_PART_OF_NETWORK`."""

    node: str
    topology: str
    ok: bool
    reason: str | None
    duration: float


@dataclass(frozen=True, slots=True)
class DiscoveryFailed:
    """A polling topology's lookup failed; it keeps its last good list of nodes."""

    topology: str
    error: str


@dataclass(frozen=True, slots=True)
class StrategyCrashed:
    """A topology's strategy raised; it is restarted after ``restart_in`` seconds."""

    topology: str
    error: str
    restart_in: float


ClusterEvent = (
    NodeJoined | NodeLeft | ConnectNode | DisconnectNode | DiscoveryFailed | StrategyCrashed
)


class ClusterEventStream:
    """One subscriber's queue of cluster events, an async iterator.

    Holds every event published after it was opened until read; iteration ends when the
    stream or the cluster is closed.
    """

    def __init__(self, on_close: Callable[[ClusterEventStream], None]) -> None:
        self._queue: asyncio.Queue[ClusterEvent | None] = asyncio.Queue()
        self._on_close = on_close
        self._closed = False

    def put_nowait(self, event: ClusterEvent | None) -> None:
        self._queue.put_nowait(event)

    async def get(self, timeout: float | None = None) -> ClusterEvent:
        """The next event. Raises :class:`TimeoutError` after ``timeout`` seconds and
        :class:`EOFError` once the stream (or the cluster) is closed, as the node's
        event stream does."""
        event = await asyncio.wait_for(self._queue.get(), timeout)
        if event is None:
            self._queue.put_nowait(None)  # every later get() sees the end too
            raise EOFError("the cluster event stream is closed")
        return event

    def __aiter__(self) -> AsyncIterator[ClusterEvent]:
        return self

    async def __anext__(self) -> ClusterEvent:
        try:
            return await self.get()
        except EOFError:
            raise StopAsyncIteration from None

    def close(self) -> None:
        """Stop receiving events."""
        if not self._closed:
            self._closed = True
            self._on_close(self)
            self._queue.put_nowait(None)
