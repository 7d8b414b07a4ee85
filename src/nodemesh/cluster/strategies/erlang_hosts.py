"""ErlangHosts: the hosts in ``.hosts.erlang``, and every node their EPMDs know.

As libcluster's ``Cluster.Strategy.ErlangHosts``: the file is looked for in the working
directory, then the home directory; each host's EPMD is asked for its names, and
``name@host`` is connected. ``timeout`` (ms) repeats this; ``"infinity"`` (the default)
asks once, and the runner still retries nodes that are not up yet. The file is read
again every round, so edits take effect without a restart.
"""

from __future__ import annotations

import asyncio
from collections.abc import Set
from dataclasses import dataclass
from typing import Literal

from nodemesh.cluster._hosts_file import find_hosts_file, read_hosts_file
from nodemesh.cluster.strategies.epmd import check_timeout
from nodemesh.cluster.strategies.local_epmd import node_names
from nodemesh.cluster.strategy import PollingStrategy
from nodemesh.epmd.client import names
from nodemesh.errors import DiscoveryError, NetworkError, RemoteProtocolError

__all__ = ["ErlangHostsStrategy"]


class ErlangHostsStrategy(PollingStrategy):
    """Connect to every node on the hosts listed in ``.hosts.erlang``."""

    name = "erlang_hosts"

    @dataclass(frozen=True, slots=True)
    class Options:
        """``timeout``: ms between rounds, or ``"infinity"`` for one round."""

        timeout: int | Literal["infinity"] = "infinity"

        def __post_init__(self) -> None:
            check_timeout(self.timeout)

    options: Options

    def interval(self) -> float | None:
        timeout = self.options.timeout
        return None if timeout == "infinity" else timeout / 1000

    async def discover(self) -> Set[str]:
        path = await asyncio.to_thread(find_hosts_file)
        if path is None:
            raise DiscoveryError("no .hosts.erlang in the working directory or the home directory")
        hosts = await asyncio.to_thread(read_hosts_file, path)
        async with asyncio.TaskGroup() as tg:  # _names answers None rather than raise
            asks = [tg.create_task(self._names(host)) for host in hosts]
        answers = [ask.result() for ask in asks]
        if hosts and all(answer is None for answer in answers):
            raise DiscoveryError(f"no EPMD answered on any host of {path}")
        found: set[str] = set()
        for host, answer in zip(hosts, answers, strict=True):
            found |= node_names(answer or [], host)
        return found

    async def _names(self, host: str) -> list[tuple[str, int]] | None:
        try:
            return await names(host, epmd_port=self.ctx.epmd_port)
        except (NetworkError, RemoteProtocolError) as exc:
            self.ctx.log.debug("no names from the EPMD on %s: %s", host, exc)
            return None
