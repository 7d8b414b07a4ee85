"""Finding a strategy class by name: built-ins, then plug-ins, then ``module:Class``.

Built-in strategies are imported only when a topology names them, so that a strategy
with optional dependencies costs nothing when unused. Plug-ins are distributions that
declare an entry point in the group ``nodemesh.strategies``::

    [project.entry-points."nodemesh.strategies"]
    consul = "nodemesh_consul:ConsulStrategy"

A topology may also name a class directly as ``"package.module:Class"``. libcluster's
module names (``Cluster.Strategy.Epmd``, ``Elixir.Cluster.Strategy.Gossip``...) are
accepted for the strategies nodemesh has, so configurations carry over.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
from importlib import metadata
from typing import Any

from nodemesh.cluster.strategy import PollingStrategy, Strategy
from nodemesh.errors import ConfigError

__all__ = [
    "BUILTIN_STRATEGIES",
    "ENTRY_POINT_GROUP",
    "StrategyClass",
    "available_strategies",
    "check_strategy_class",
    "resolve_strategy",
]

StrategyClass = type[Strategy] | type[PollingStrategy]

ENTRY_POINT_GROUP = "nodemesh.strategies"

#: name -> "module:Class", imported on first use.
BUILTIN_STRATEGIES: dict[str, str] = {
    "epmd": "nodemesh.cluster.strategies.epmd:EpmdStrategy",
    "local_epmd": "nodemesh.cluster.strategies.local_epmd:LocalEpmdStrategy",
    "erlang_hosts": "nodemesh.cluster.strategies.erlang_hosts:ErlangHostsStrategy",
    "gossip": "nodemesh.cluster.strategies.gossip:GossipStrategy",
    "kubernetes": "nodemesh.cluster.strategies.kubernetes:KubernetesStrategy",
    "kubernetes_dns": "nodemesh.cluster.strategies.kubernetes_dns:KubernetesDnsStrategy",
    "kubernetes_dnssrv": "nodemesh.cluster.strategies.kubernetes_dnssrv:KubernetesDnsSrvStrategy",
    "dns_poll": "nodemesh.cluster.strategies.dns_poll:DnsPollStrategy",
    "rancher": "nodemesh.cluster.strategies.rancher:RancherStrategy",
}

# libcluster strategies that nodemesh will have but does not have yet.
_PLANNED: tuple[str, ...] = ()

_LIBCLUSTER_MODULES = {
    "Cluster.Strategy.Epmd": "epmd",
    "Cluster.Strategy.LocalEpmd": "local_epmd",
    "Cluster.Strategy.ErlangHosts": "erlang_hosts",
    "Cluster.Strategy.Gossip": "gossip",
    "Cluster.Strategy.Kubernetes": "kubernetes",
    "Cluster.Strategy.Kubernetes.DNS": "kubernetes_dns",
    "Cluster.Strategy.Kubernetes.DNSSRV": "kubernetes_dnssrv",
    "Cluster.Strategy.DNSPoll": "dns_poll",
    "Cluster.Strategy.Rancher": "rancher",
}


def available_strategies() -> dict[str, str]:
    """Every strategy name a topology may use now, with its ``module:Class``."""
    found = {ep.name: ep.value for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}
    return {**found, **BUILTIN_STRATEGIES}  # a plug-in cannot shadow a built-in


def resolve_strategy(name: str, *, where: str = "") -> StrategyClass:
    """The strategy class for ``name``.

    ``where`` prefixes error messages (e.g. ``"topology 'local'"``). Raises
    :class:`ConfigError` when no strategy has that name, the plug-in cannot be imported,
    or what it names is not a strategy class.
    """
    prefix = f"{where}: " if where else ""
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{prefix}'strategy' must be a strategy name, got {name!r}")
    key = _LIBCLUSTER_MODULES.get(name.removeprefix("Elixir."), name)
    builtin = key.strip().lower().replace("-", "_")
    if builtin in BUILTIN_STRATEGIES:
        return _load(BUILTIN_STRATEGIES[builtin], f"{prefix}strategy {name!r}")
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP, name=key):
        return _load(ep.value, f"{prefix}strategy {name!r} (plug-in from {_dist(ep)})")
    if ":" in key:
        return _load(key, f"{prefix}strategy {name!r}")
    if builtin in _PLANNED:
        raise ConfigError(f"{prefix}strategy {name!r} is not implemented in this nodemesh yet")
    known = sorted(available_strategies())
    close = difflib.get_close_matches(builtin, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ConfigError(
        f"{prefix}unknown strategy {name!r}{hint}; known strategies: {', '.join(known)}"
    )


def _load(target: str, what: str) -> StrategyClass:
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
        obj: Any = module
        for part in attr.split(".") if attr else ():
            obj = getattr(obj, part)
    except ImportError as exc:
        raise ConfigError(f"{what}: cannot import {target!r}: {exc}") from exc
    except AttributeError as exc:
        raise ConfigError(f"{what}: {target!r} does not exist: {exc}") from exc
    return check_strategy_class(obj, what)


def check_strategy_class(obj: Any, what: str) -> StrategyClass:
    """``obj`` if it is a usable strategy class, else ConfigError saying what is missing."""
    if not isinstance(obj, type) or not issubclass(obj, Strategy | PollingStrategy):
        raise ConfigError(
            f"{what}: {obj!r} is not a subclass of nodemesh.cluster.strategy.Strategy "
            "or PollingStrategy"
        )
    if not isinstance(getattr(obj, "name", None), str):
        raise ConfigError(f"{what}: {obj.__qualname__} has no 'name' class attribute")
    options = getattr(obj, "Options", None)
    if not (isinstance(options, type) and dataclasses.is_dataclass(options)):
        raise ConfigError(f"{what}: {obj.__qualname__}.Options is not a dataclass")
    return obj


def _dist(ep: metadata.EntryPoint) -> str:
    dist = ep.dist
    return f"{dist.name} {dist.version}" if dist is not None else "an unknown distribution"
