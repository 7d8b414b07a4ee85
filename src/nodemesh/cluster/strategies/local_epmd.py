"""LocalEpmd: connect to every node registered with this host's EPMD.

libcluster's ``Cluster.Strategy.LocalEpmd`` asks once, at start, and has no options;
nodes that start later then find us themselves. Here it asks again every
``polling_interval`` ms (one local request), so that the cluster also heals when the
other side does not run the strategy.
"""

from __future__ import annotations

from collections.abc import Iterable, Set
from dataclasses import dataclass

from nodemesh.cluster.strategy import PollingStrategy
from nodemesh.dist.names import parse_node_name
from nodemesh.epmd.client import names
from nodemesh.errors import (
    ConfigError,
    DiscoveryError,
    NetworkError,
    NodeNameError,
    RemoteProtocolError,
)

__all__ = ["LocalEpmdStrategy", "node_names"]


class LocalEpmdStrategy(PollingStrategy):
    """Connect ``name@<our host>`` for every name the local EPMD knows."""

    name = "local_epmd"

    @dataclass(frozen=True, slots=True)
    class Options:
        """``polling_interval``: ms between asking EPMD (nodemesh addition)."""

        polling_interval: int = 5000

        def __post_init__(self) -> None:
            if self.polling_interval <= 0:
                raise ConfigError(
                    f"option 'polling_interval' must be a positive number of ms, "
                    f"got {self.polling_interval}"
                )

    options: Options

    async def discover(self) -> Set[str]:
        host = self.ctx.node_name.partition("@")[2]
        try:
            # The EPMD on this host, where the node registered itself (127.0.0.1).
            registered = await names("127.0.0.1", epmd_port=self.ctx.epmd_port)
        except (NetworkError, RemoteProtocolError) as exc:
            raise DiscoveryError(f"cannot list the local EPMD's nodes: {exc}") from exc
        return node_names(registered, host)


def node_names(registered: Iterable[tuple[str, int]], host: str) -> frozenset[str]:
    """``name@host`` for each name an EPMD listed, skipping what is no node name."""
    found: set[str] = set()
    for name, _port in registered:
        try:
            found.add(str(parse_node_name(f"{name}@{host}")))
        except NodeNameError:
            continue
    return frozenset(found)
