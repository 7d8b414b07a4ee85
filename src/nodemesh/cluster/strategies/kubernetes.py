"""Kubernetes: the pods behind a label selector, from the Kubernetes API, listed then watched.

libcluster's ``Cluster.Strategy.Kubernetes`` with its option names, defaults and node
names, and what it lacks: EndpointSlices, a watch, ready/terminating filtering, IPv6,
``KUBERNETES_SERVICE_HOST``, a verified CA, and a 403 that names the missing Role.

Theory of operation
-------------------
This is a polling strategy (the runner keeps the last good list on failure, prunes,
reconnects and backs off) fed by a watch, the way client-go informers work:

- The first :meth:`discover` lists the resource (``GET .../endpointslices?labelSelector=``)
  and keeps a *view*: object key -> the addresses it contributes; the node names come
  from the view. Then :meth:`watch`, which the runner runs beside the rounds, watches
  from the list's ``resourceVersion`` (``watch=1&allowWatchBookmarks=true``), applying
  each ADDED / MODIFIED / DELETED object to the view and each BOOKMARK's version. When
  the names change, it asks the runner for a round at once, so a pod that becomes ready
  joins in milliseconds, not at the next poll.
- While the watch stream is open, :meth:`discover` answers from the view (no request).
  Whenever it is not (not started, reconnecting, forbidden, failing), :meth:`discover`
  lists, as libcluster does every ``polling_interval``: polling is the fallback.
- The watch resumes from the last version after the server ends it (``timeoutSeconds``)
  or the connection drops, with backoff; on ``410 Gone`` (the version is too old) it
  lists again and watches from the new version (a resync). A 403 on ``watch`` (a Role
  that grants only ``list``, as libcluster's docs show) is logged once with the Role
  that adds it; polling carries on and the watch is retried at the longest backoff.
- In ``endpointslices`` mode a 404 (an API server without ``discovery.k8s.io/v1``,
  Kubernetes < 1.21) switches this strategy to v1 Endpoints, logged once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from collections.abc import Set

from nodemesh.cluster.config import backoff
from nodemesh.cluster.kubernetes.access import api_base_url
from nodemesh.cluster.kubernetes.api import (
    ENDPOINTS,
    ENDPOINTSLICES,
    PODS,
    Member,
    Naming,
    Resource,
    WatchEvent,
    is_ipv6_host,
    merged,
    object_key,
    parse_list,
    parse_object,
    parse_status,
)
from nodemesh.cluster.kubernetes.client import KubernetesApiError, KubernetesClient, ServiceAccount
from nodemesh.cluster.kubernetes.options import KubernetesOptions
from nodemesh.cluster.strategy import PollingStrategy
from nodemesh.errors import DiscoveryError

__all__ = ["KubernetesOptions", "KubernetesStrategy"]

_RESOURCES = {"endpoints": ENDPOINTS, "endpointslices": ENDPOINTSLICES, "pods": PODS}
logger = logging.getLogger("nodemesh.cluster")


class _Gone(Exception):
    """The watch's resourceVersion is too old (410): list again."""


class KubernetesStrategy(PollingStrategy):
    """libcluster's ``Cluster.Strategy.Kubernetes`` (``strategy = "kubernetes"``)."""

    name = "kubernetes"
    Options = KubernetesOptions

    def __init__(self, options: KubernetesOptions) -> None:
        super().__init__(options)
        self.options: KubernetesOptions
        o = options
        self.resource: Resource = _RESOURCES[o.kubernetes_ip_lookup_mode]
        self.naming = Naming(
            o.mode, o.kubernetes_node_basename, o.kubernetes_cluster_name, o.kubernetes_service_name
        )
        self._client: KubernetesClient | None = None
        self._namespace: str | None = None
        self._view: dict[str, tuple[Member, ...]] = {}
        self._version: str | None = None
        self._names: frozenset[str] = frozenset()
        self._skipped_seen: set[str] = set()
        self._watching = False
        self._watch_failures = 0
        self._watch_degraded = False  # a watch failure was logged; say when it works again
        self._rng = random.Random()

    @property
    def watching(self) -> bool:
        """Whether a watch stream is open now (discovery then makes no requests)."""
        return self._watching

    @property
    def resource_version(self) -> str | None:
        """The API's resourceVersion the view is at (the last list, event or bookmark)."""
        return self._version

    async def discover(self) -> Set[str]:
        """The node names of the listed pods. Raises DiscoveryError (a KubernetesApiError
        saying what to fix) when the API cannot be asked or refuses."""
        if not self._watching:
            await self._relist()
        return self._names

    async def watch(self) -> None:
        """With ``kubernetes_watch``, watch the resource until cancelled (the runner runs
        this beside the rounds once a list worked); each change of names asks for a
        round. Failures are retried here with backoff; polling covers them meanwhile."""
        if self.options.kubernetes_watch:
            await self._watch_forever()

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    # -- listing -------------------------------------------------------------------------------
    async def _setup(self) -> tuple[KubernetesClient, str]:
        o = self.options
        if self._client is None:
            self._client = KubernetesClient(
                api_base_url(o.kubernetes_master, o.kubernetes_cluster_name, os.environ),
                ServiceAccount(o.kubernetes_service_account_path),
                request_timeout=o.kubernetes_request_timeout / 1000,
                log=self._log,
                rbac_verbs=("list", "watch") if o.kubernetes_watch else ("list",),
            )
        if self._namespace is None:
            namespace = o.kubernetes_namespace
            if namespace is None:
                namespace = await asyncio.to_thread(self._client.account.namespace)
            if not namespace:
                raise DiscoveryError(
                    "no namespace to look in: set kubernetes_namespace, or mount the service "
                    f"account (there is no {o.kubernetes_service_account_path}/namespace)"
                )
            self._namespace = namespace
        return self._client, self._namespace

    async def _relist(self) -> bool:
        """List the resource, replace the view; whether the names changed."""
        client, namespace = await self._setup()
        o = self.options
        try:
            doc = await client.list(
                self.resource,
                namespace,
                o.kubernetes_selector,
                cached=o.kubernetes_use_cached_resources,
            )
        except KubernetesApiError as exc:
            if exc.status != 404 or self.resource is not ENDPOINTSLICES:
                raise
            self._log.info(
                "the API has no discovery.k8s.io/v1 EndpointSlices (404): using v1 Endpoints"
            )
            self.resource = ENDPOINTS
            return await self._relist()
        result = parse_list(
            self.resource, doc, namespace=namespace, require_ready=o.kubernetes_require_ready
        )
        self._view = dict(result.view)
        self._version = result.resource_version
        return self._update_names()

    def _update_names(self) -> bool:
        prefer_ipv6 = self._ctx is not None and is_ipv6_host(self.ctx.node_name.partition("@")[2])
        names, skipped = self.naming.names(merged(self._view), prefer_ipv6=prefer_ipv6)
        for reason, count in skipped.items():
            if reason not in self._skipped_seen:
                self._skipped_seen.add(reason)
                self._log.warning("%d %s not joined: %s", count, self.resource.plural, _why(reason))
        changed = names != self._names
        self._names = names
        return changed

    # -- watching ------------------------------------------------------------------------------
    async def _watch_forever(self) -> None:
        o = self.options
        low, high = o.kubernetes_watch_retry_min / 1000, o.kubernetes_watch_retry_max / 1000
        loop = asyncio.get_running_loop()
        while True:
            delay: float | None = None
            started = loop.time()
            try:
                if self._version is None and await self._relist():
                    self._request_round()
            except DiscoveryError as exc:  # discover() reports list failures to the runner
                self._log.debug("listing %s for the watch failed: %s", self.resource.plural, exc)
                self._watch_failures += 1
                await asyncio.sleep(backoff(self._watch_failures, low, high, self._rng))
                continue
            if self._version is None:  # a list without metadata.resourceVersion
                self._log.debug("no resourceVersion to watch %s from", self.resource.plural)
                await asyncio.sleep(high)
                continue
            try:
                await self._watch_once()
            except _Gone as exc:
                plural = self.resource.plural
                self._log.debug("watch of %s expired (%s): listing again", plural, exc)
                self._version = None
                self._watch_failures += 1
                if self._watch_failures > 1:  # resync at once, back off if it keeps happening
                    delay = backoff(self._watch_failures, low, high, self._rng)
            except DiscoveryError as exc:
                self._watch_failures += 1
                self._watch_failed(exc)
                forbidden = isinstance(exc, KubernetesApiError) and exc.status == 403
                # Forbidden: polling covers us, and RBAC is seldom fixed within seconds.
                delay = high if forbidden else backoff(self._watch_failures, low, high, self._rng)
            else:
                # The server ended the watch (timeoutSeconds): resume from the last version.
                # One that ends at once, again and again, is backed off like a failure.
                if loop.time() - started >= low:
                    self._watch_failures = 0
                else:
                    self._watch_failures += 1
                    delay = backoff(self._watch_failures, low, high, self._rng)
            if delay is not None:
                await asyncio.sleep(delay)

    async def _watch_once(self) -> None:
        client, namespace = await self._setup()
        o = self.options
        if self._version is None:
            raise _Gone("no resourceVersion to watch from")
        opened = client.watch(
            self.resource,
            namespace,
            o.kubernetes_selector,
            self._version,
            timeout_seconds=o.kubernetes_watch_timeout // 1000,
        )
        try:
            async with opened as stream:
                if self._watch_degraded:
                    self._watch_degraded = False
                    self._log.info("watching %s again", self.resource.plural)
                self._watching = True
                async for batch in stream:
                    for event in batch:
                        self._apply(event, namespace)
                    self._watch_failures = 0  # events flow: the next failure is a first one
                    if self._update_names():
                        self._request_round()
        except KubernetesApiError as exc:
            if exc.status == 410:  # some servers answer the request itself with 410
                raise _Gone(str(exc)) from exc
            raise
        finally:
            self._watching = False

    def _apply(self, event: WatchEvent, namespace: str) -> None:
        if event.type == "ERROR":
            status = parse_status(event.object)
            if status is not None and status.code == 410:
                raise _Gone(status.message)
            code, text = (
                (status.code, f"{status.reason}: {status.message}") if status else (None, "")
            )
            raise KubernetesApiError(
                f"the watch of {self.resource.plural} ended with an error {code}: {text}",
                status=code,
            )
        if event.type in ("ADDED", "MODIFIED"):
            key, members = parse_object(
                self.resource,
                event.object,
                namespace=namespace,
                require_ready=self.options.kubernetes_require_ready,
            )
            if key is not None:
                self._view[key] = members
        elif event.type == "DELETED":
            self._view.pop(object_key(event.object, namespace) or "", None)
        version = event.resource_version  # BOOKMARK events carry only this
        if version is not None:
            self._version = version

    def _watch_failed(self, exc: DiscoveryError) -> None:
        every = f"{self.options.polling_interval / 1000:g} s"
        if self._watch_degraded:
            self._log.debug("the watch of %s failed again: %s", self.resource.plural, exc)
            return
        self._watch_degraded = True
        if isinstance(exc, KubernetesApiError) and exc.status == 403:
            self._log.warning("cannot watch, polling every %s instead: %s", every, exc)
        else:
            plural = self.resource.plural
            self._log.warning("the watch of %s failed, polling every %s: %s", plural, every, exc)

    def _request_round(self) -> None:
        """Ask the runner for a discovery round now (the watch saw the names change)."""
        if self._ctx is not None:
            self._ctx.request_round()

    @property
    def _log(self) -> logging.LoggerAdapter[logging.Logger] | logging.Logger:
        return self._ctx.log if self._ctx is not None else logger


def _why(reason: str) -> str:
    if reason == "no hostname":
        return (
            "they have no hostname, and mode 'hostname' names nodes <hostname>.<service>... "
            "(pods get one from spec.hostname and spec.subdomain, as a StatefulSet's do)"
        )
    return f"{reason} (check kubernetes_node_basename, mode and the addresses listed)"
