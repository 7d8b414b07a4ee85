"""What ``nodemesh demo`` runs: how many nodes, on which ports, named how.

Every value has a default that works on a laptop with nothing else installed: nodes on
loopback with an embedded EPMD, found by gossip multicast on the loopback interface, so
the demo neither needs Erlang nor reaches the network. Tests pass their own ports.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from nodemesh.errors import ConfigError

__all__ = ["TOPIC", "DemoConfig", "node_alive"]

#: The PubSub topic every chat page talks on.
TOPIC = "room:lobby"

#: Node names a person can tell apart at a glance; the HTTP port picks one.
NAMES = (
    "amber", "birch", "cedar", "dune", "ember", "fjord", "grove", "heath", "iris", "juniper",
    "kelp", "lark", "moss", "nova", "opal", "pine", "quartz", "reed", "sage", "tide",
)  # fmt: skip


def node_alive(http_port: int) -> str:
    """The alive part of the node serving ``http_port``: ``amber`` for 4000, ``birch`` for
    4001... so a node started later on port 4003 (``dune``) takes no name already used.
    Other ports add the port: ``quartz-5000``."""
    if 0 <= http_port - 4000 < len(NAMES):
        return NAMES[http_port - 4000]
    return f"{NAMES[http_port % len(NAMES)]}-{http_port}"


@dataclass(frozen=True, slots=True)
class DemoConfig:
    """The demo's settings, checked on construction (raises :class:`ConfigError`).

    ``port`` is the first node's HTTP port; node *i* serves ``port + i``. ``host`` is
    where pages are served and nodes listen, and the host part of node names.
    ``gossip_port`` and ``cookie`` keep separate demos on one machine apart;
    ``heartbeat_ms`` is the longest gossip interval (libcluster's is 5 s: a restarted node
    would take that long to be seen again).
    """

    nodes: int = 3
    port: int = 4000
    host: str = "127.0.0.1"
    cookie: str = "nodemesh-demo"
    gossip_port: int = 45892
    heartbeat_ms: int = 1000
    history: int = 100

    def __post_init__(self) -> None:
        if not 1 <= self.nodes <= 20:
            raise ConfigError(f"the demo runs 1 to 20 nodes, not {self.nodes}")
        if not 1 <= self.port <= 65535 - self.nodes + 1:
            raise ConfigError(f"HTTP ports {self.port}..{self.port + self.nodes - 1} are not valid")
        if not 1 <= self.gossip_port <= 65535:
            raise ConfigError(f"gossip port {self.gossip_port} is not a UDP port number")
        if not self.cookie:
            raise ConfigError("the demo's cookie must not be empty")
        if not _one_ipv4_address(self.host):
            raise ConfigError(
                f"--host {self.host!r}: give one IPv4 address of this machine, e.g. 127.0.0.1 "
                "(it names the nodes and carries the gossip multicast)"
            )
        if self.heartbeat_ms < 50 or self.history < 0:
            raise ConfigError("heartbeat_ms must be at least 50 and history 0 or more")

    @property
    def http_ports(self) -> list[int]:
        """The HTTP port of each node, in order."""
        return [self.port + i for i in range(self.nodes)]

    def node_name(self, http_port: int) -> str:
        """The full node name of the node serving ``http_port``."""
        return f"{node_alive(http_port)}@{self.host}"

    def topologies(self) -> dict[str, object]:
        """One gossip topology on the host's interface (libcluster's other defaults)."""
        config = {
            "port": self.gossip_port,
            "multicast_if": self.host,
            "heartbeat_interval_max": self.heartbeat_ms,
        }
        return {"demo": {"strategy": "gossip", "config": config}}


def _one_ipv4_address(text: str) -> bool:
    try:
        address = ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return not (address.is_unspecified or address.is_multicast)
