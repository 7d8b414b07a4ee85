"""Cluster formation: topologies of strategies that find nodes and keep them connected.

``Cluster(node, topologies)`` runs the topologies; :func:`load_toml`,
:func:`topologies_from_dict` and :func:`topologies_from_env` build them from
configuration. See ``docs/cluster.md``.
"""

from nodemesh.cluster._cluster import Cluster
from nodemesh.cluster.config import ClusterConfig
from nodemesh.cluster.events import (
    ClusterEvent,
    ClusterEventStream,
    ConnectNode,
    DisconnectNode,
    DiscoveryFailed,
    NodeJoined,
    NodeLeft,
    StrategyCrashed,
)
from nodemesh.cluster.metrics import ClusterStatistics, TopologyStatistics
from nodemesh.cluster.registry import ENTRY_POINT_GROUP, available_strategies, resolve_strategy
from nodemesh.cluster.strategy import Hooks, PollingStrategy, Strategy, StrategyContext
from nodemesh.cluster.topology import (
    Topology,
    load_toml,
    topologies_from_dict,
    topologies_from_env,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "Cluster",
    "ClusterConfig",
    "ClusterEvent",
    "ClusterEventStream",
    "ClusterStatistics",
    "ConnectNode",
    "DisconnectNode",
    "DiscoveryFailed",
    "Hooks",
    "NodeJoined",
    "NodeLeft",
    "PollingStrategy",
    "Strategy",
    "StrategyContext",
    "StrategyCrashed",
    "Topology",
    "TopologyStatistics",
    "available_strategies",
    "load_toml",
    "resolve_strategy",
    "topologies_from_dict",
    "topologies_from_env",
]
