"""Epmd: connect to a static list of node names (libcluster's ``Cluster.Strategy.Epmd``).

libcluster connects once at start (``timeout: :infinity``, the default) or every
``timeout`` milliseconds. Here the runner also retries, with backoff, every listed node
that is not connected yet or whose connection dropped, so a node that starts later joins
without a ``timeout``.
"""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass
from typing import Literal

from nodemesh.cluster.strategy import PollingStrategy
from nodemesh.dist.names import parse_node_name
from nodemesh.errors import ConfigError

__all__ = ["EpmdStrategy", "check_timeout"]


def check_timeout(value: int | str) -> None:
    """libcluster's ``timeout``: milliseconds, or ``"infinity"`` (connect once)."""
    if value != "infinity" and (type(value) is not int or value <= 0):
        raise ConfigError(
            f"option 'timeout' must be a positive number of ms or 'infinity', got {value!r}"
        )


class EpmdStrategy(PollingStrategy):
    """Connect to the nodes named in ``hosts``."""

    name = "epmd"

    @dataclass(frozen=True, slots=True)
    class Options:
        """``hosts``: node names (``app@host``); ``timeout``: ms between rounds."""

        hosts: tuple[str, ...] = ()
        timeout: int | Literal["infinity"] = "infinity"

        def __post_init__(self) -> None:
            for host in self.hosts:
                try:
                    parse_node_name(host)
                except ConfigError as exc:
                    raise ConfigError(f"option 'hosts': {exc}") from None
            check_timeout(self.timeout)

    options: Options

    def interval(self) -> float | None:
        timeout = self.options.timeout
        return None if timeout == "infinity" else timeout / 1000

    async def discover(self) -> Set[str]:
        return frozenset(self.options.hosts)
