"""Rancher: the containers of this service, from Rancher's metadata service.

As libcluster's ``Cluster.Strategy.Rancher`` (Rancher 1.x / Cattle): each round sends
``GET http://rancher-metadata/latest/self/service`` with ``Accept: application/json``
and connects ``<node_basename>@<ip>`` for the first IP (``ips[0]``) of each entry of
``containers``. Nodes are expected to be named from the container's IP at start
(``app@$(hostname -I | cut -d' ' -f1)``).

Better than libcluster: a failed request, an error status, a body that is not JSON or
has no ``containers`` list is a :class:`~nodemesh.errors.DiscoveryError` that keeps the
last list (libcluster crashes on bad JSON and disconnects everything otherwise);
containers without an IP, or whose ``state`` is given and is not ``running``, are
skipped; ``metadata_url`` and ``request_timeout`` (ms) are options.
"""

from __future__ import annotations

import json
from collections.abc import Set
from dataclasses import dataclass
from typing import Any

import aiohttp

from nodemesh.cluster.dns import erlang_ntoa
from nodemesh.cluster.strategies.dns_base import check_basename, node_names
from nodemesh.cluster.strategy import PollingStrategy
from nodemesh.errors import ConfigError, DiscoveryError

__all__ = ["METADATA_URL", "RancherStrategy", "container_ips"]

METADATA_URL = "http://rancher-metadata/latest/self/service"
_EXCERPT = 200  # characters of an error body quoted in messages


def container_ips(document: Any) -> list[str]:
    """The first IP of each running container in a ``/self/service`` answer.

    Raises :class:`DiscoveryError` when the document has no ``containers`` list.
    """
    containers = document.get("containers") if isinstance(document, dict) else None
    if not isinstance(containers, list):
        raise DiscoveryError("the Rancher metadata answer has no 'containers' list")
    found: list[str] = []
    for container in containers:
        if not isinstance(container, dict):
            continue
        state = container.get("state")
        if isinstance(state, str) and state.lower() != "running":
            continue
        ips = container.get("ips")
        if not (isinstance(ips, list) and ips and isinstance(ips[0], str)):
            continue
        try:
            found.append(erlang_ntoa(ips[0]))
        except ValueError:
            found.append(ips[0])  # not an IP literal: libcluster uses it as the host
    return found


class RancherStrategy(PollingStrategy):
    """Connect ``node_basename@<ip>`` for each container of this Rancher service."""

    name = "rancher"

    @dataclass(frozen=True, slots=True)
    class Options:
        """libcluster's ``node_basename`` and ``polling_interval`` (ms); nodemesh's
        ``metadata_url`` and ``request_timeout`` (ms)."""

        node_basename: str
        polling_interval: int = 5000
        metadata_url: str = METADATA_URL
        request_timeout: int = 5000

        def __post_init__(self) -> None:
            check_basename("node_basename", self.node_basename)
            for option in ("polling_interval", "request_timeout"):
                value = getattr(self, option)
                if value <= 0:
                    raise ConfigError(f"option {option!r} must be a positive number of ms")
            if not self.metadata_url.startswith(("http://", "https://")):
                raise ConfigError(
                    f"option 'metadata_url' must be an http:// or https:// URL, "
                    f"got {self.metadata_url!r}"
                )

    options: Options
    _session: aiohttp.ClientSession | None = None

    async def discover(self) -> Set[str]:
        document = await self._fetch()
        return node_names(self.options.node_basename, container_ips(document))

    async def _fetch(self) -> Any:
        url = self.options.metadata_url
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=self.options.request_timeout / 1000)
            self._session = aiohttp.ClientSession(timeout=timeout)
        try:
            async with self._session.get(url, headers={"Accept": "application/json"}) as resp:
                body = await resp.read()
                status, reason = resp.status, resp.reason or ""
        except TimeoutError as exc:
            seconds = self.options.request_timeout / 1000
            raise DiscoveryError(f"GET {url} timed out after {seconds:g} s") from exc
        except aiohttp.ClientError as exc:
            raise DiscoveryError(
                f"cannot reach the Rancher metadata service at {url}: {exc}"
            ) from exc
        text = body.decode("utf-8", errors="replace")
        if status != 200:
            raise DiscoveryError(
                f"the Rancher metadata service answered {status} {reason} for GET {url}: "
                f"{text[:_EXCERPT]!r}"
            )
        try:
            return json.loads(text)
        except ValueError as exc:
            raise DiscoveryError(
                f"the Rancher metadata answer from {url} is not JSON ({exc}): {text[:_EXCERPT]!r}"
            ) from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
