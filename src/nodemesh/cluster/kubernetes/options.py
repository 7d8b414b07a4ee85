"""The kubernetes strategy's options: libcluster's names and defaults, then nodemesh's."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from nodemesh.cluster.kubernetes.access import DEFAULT_MASTER
from nodemesh.dist.names import parse_node_name
from nodemesh.errors import ConfigError

__all__ = ["SERVICE_ACCOUNT_PATH", "KubernetesOptions"]

SERVICE_ACCOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")  # a namespace is a DNS label


@dataclass(frozen=True, slots=True)
class KubernetesOptions:
    """libcluster's options (names, defaults, milliseconds), then nodemesh's additions.

    ``kubernetes_ip_lookup_mode`` also takes ``"endpointslices"``; ``kubernetes_master``
    also takes an ``https://host:port`` URL. Additions: ``kubernetes_watch`` (watch for
    changes), ``kubernetes_require_ready`` (join only ready, non-terminating pods),
    ``kubernetes_request_timeout``, ``kubernetes_watch_timeout`` (how long the server
    keeps one watch open) and the watch's reconnect backoff
    ``kubernetes_watch_retry_min`` .. ``kubernetes_watch_retry_max``.
    """

    kubernetes_node_basename: str
    kubernetes_selector: str
    mode: Literal["ip", "dns", "hostname"] = "ip"
    kubernetes_ip_lookup_mode: Literal["endpoints", "endpointslices", "pods"] = "endpoints"
    kubernetes_namespace: str | None = None
    kubernetes_service_name: str | None = None
    kubernetes_master: str = DEFAULT_MASTER
    kubernetes_cluster_name: str = "cluster"
    kubernetes_service_account_path: str = SERVICE_ACCOUNT_PATH
    kubernetes_use_cached_resources: bool = False
    polling_interval: int = 5000
    kubernetes_watch: bool = True
    kubernetes_require_ready: bool = True
    kubernetes_request_timeout: int = 15000
    kubernetes_watch_timeout: int = 300_000
    kubernetes_watch_retry_min: int = 500
    kubernetes_watch_retry_max: int = 30_000

    def __post_init__(self) -> None:
        try:
            parse_node_name(f"{self.kubernetes_node_basename}@host.example")
        except ConfigError:
            raise ConfigError(
                "option 'kubernetes_node_basename' must be the part before '@' of the node "
                f"names (letters, digits, '_', '-'), got {self.kubernetes_node_basename!r}"
            ) from None
        if not self.kubernetes_selector.strip():
            raise ConfigError(
                "option 'kubernetes_selector' must be a label selector, e.g. 'app=myapp'"
            )
        if self.mode == "hostname" and not self.kubernetes_service_name:
            raise ConfigError(
                "mode 'hostname' needs option 'kubernetes_service_name' (the headless "
                "service of the StatefulSet): names are <hostname>.<service>.<ns>.svc..."
            )
        ns = self.kubernetes_namespace
        if ns is not None and not _LABEL.fullmatch(ns):
            raise ConfigError(f"option 'kubernetes_namespace' is not a namespace name: {ns!r}")
        master = self.kubernetes_master
        if ("://" in master and not master.startswith("https://")) or not master.strip():
            raise ConfigError(
                f"option 'kubernetes_master' must be a host or https:// URL: {master!r}"
            )
        _check_ms(self, "polling_interval", "kubernetes_request_timeout")
        _check_ms(self, "kubernetes_watch_retry_min", "kubernetes_watch_retry_max")
        if self.kubernetes_watch_timeout < 1000:
            raise ConfigError("option 'kubernetes_watch_timeout' must be at least 1000 ms")
        if self.kubernetes_watch_retry_max < self.kubernetes_watch_retry_min:
            raise ConfigError(
                "kubernetes_watch_retry_max must be at least kubernetes_watch_retry_min"
            )


def _check_ms(options: KubernetesOptions, *names: str) -> None:
    for name in names:
        value = getattr(options, name)
        if value <= 0:
            raise ConfigError(f"option {name!r} must be a positive number of ms, got {value}")
