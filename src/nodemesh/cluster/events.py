"""Cluster events: who joined and left, and the outcome of every connect and disconnect.

:class:`ConnectNode` and :class:`DisconnectNode` are libcluster's telemetry events
``[:libcluster, :connect_node, :ok | :error]`` and ``[:libcluster, :disconnect_node, ...]``
with the same metadata (node, topology) and error reasons (:data:`UNREACHABLE`,
:data:`NOT_PART_OF_NETWORK`, :data:`ALREADY_DISCONNECTED`), plus the duration.
"""

from __future__ import annotations

from dataclasses import dataclass

from nodemesh.runtime.streams import Stream

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


ClusterEventStream = Stream[ClusterEvent]
"""What :meth:`Cluster.events` returns: a :class:`~nodemesh.runtime.streams.Stream` of
cluster events (the same class as the node's event stream)."""
