"""Cluster formation: topologies of strategies that find nodes and keep them connected.

``Cluster(node, topologies)`` runs the topologies (``await cluster.run()`` in a task
group you own, or ``async with``); :func:`load_toml`, :func:`topologies_from_dict` and
:func:`topologies_from_env` build them from configuration. See ``docs/cluster.md``.

Public modules: :mod:`.strategy` (the interface), :mod:`.topology`, :mod:`.config`,
:mod:`.events`, :mod:`.metrics`, :mod:`.registry`, :mod:`.dns`, and the subpackages
:mod:`.strategies` (one module per strategy), :mod:`.gossip` and :mod:`.kubernetes`. The
machinery is private: ``_cluster`` (Cluster), ``_membership`` (who joined through which
topology), ``_topology_run`` (one running topology and the sink it reports to),
``_polling`` (the discovery loop), ``_counters``, ``_options`` (option schemas), ``_hosts_file``.
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
