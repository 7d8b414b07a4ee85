"""Topologies: a named strategy, its options and hooks, checked before anything starts.

The shape mirrors libcluster's ``config :libcluster, topologies: [...]``; in TOML::

    [topologies.local]
    strategy = "gossip"
    prune = true                 # nodemesh: disconnect nodes that vanish from discovery
    [topologies.local.config]
    multicast_if = "127.0.0.1"   # libcluster's option names

:func:`topologies_from_dict` takes the same shape as a Python dict, :func:`load_toml` a
file, and :func:`topologies_from_env` the environment (see ``docs/cluster.md``). Every
problem is a :class:`~nodemesh.errors.ConfigError` naming the topology and the option.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nodemesh.cluster._options import EnvText, build_options, convert
from nodemesh.cluster.registry import StrategyClass, check_strategy_class, resolve_strategy
from nodemesh.cluster.strategy import Hooks, PollingStrategy
from nodemesh.errors import ConfigError

__all__ = [
    "Topology",
    "load_toml",
    "topologies_from_dict",
    "topologies_from_env",
]

_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_KEYS = ("strategy", "config", "prune", "connect", "disconnect", "list_nodes")
_HOOKS = ("connect", "disconnect", "list_nodes")


@dataclass(frozen=True, slots=True)
class Topology:
    """One topology: ``strategy_class`` run with ``options``, connecting through ``hooks``.

    ``prune`` (polling strategies only): disconnect nodes that vanish from discovery, as
    libcluster does. Build one from names and plain values with :meth:`create`.
    """

    name: str
    strategy_class: StrategyClass
    options: Any
    hooks: Hooks = field(default_factory=Hooks)
    prune: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise ConfigError(
                f"topology name {self.name!r} must be 1-64 letters, digits, '_' or '-'"
            )
        where = f"topology {self.name!r}"
        check_strategy_class(self.strategy_class, where)
        if not isinstance(self.options, self.strategy_class.Options):
            raise ConfigError(
                f"{where}: options must be a {self.strategy_class.__qualname__}.Options, "
                f"got {type(self.options).__name__}"
            )
        if not isinstance(self.hooks, Hooks):
            raise ConfigError(f"{where}: hooks must be a Hooks, got {type(self.hooks).__name__}")
        if type(self.prune) is not bool:
            raise ConfigError(f"{where}: option 'prune' must be true or false")

    @property
    def strategy(self) -> str:
        """The strategy's name (``"gossip"``)."""
        return self.strategy_class.name

    @property
    def polling(self) -> bool:
        """Whether the strategy is polled by the runner (a :class:`PollingStrategy`)."""
        return issubclass(self.strategy_class, PollingStrategy)

    @classmethod
    def create(
        cls,
        name: str,
        strategy: str | StrategyClass,
        options: Mapping[str, Any] | None = None,
        *,
        hooks: Hooks | None = None,
        prune: bool = True,
    ) -> Topology:
        """A topology from a strategy name (or class) and a mapping of option values.

        Raises :class:`ConfigError` for an unknown strategy or option or a bad value.
        """
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ConfigError(f"topology name {name!r} must be 1-64 letters, digits, '_' or '-'")
        where = f"topology {name!r}"
        if isinstance(strategy, str):
            strategy_class = resolve_strategy(strategy, where=where)
        else:
            strategy_class = check_strategy_class(strategy, where)
        values = build_options(strategy_class.Options, options or {}, where=where)
        return cls(name, strategy_class, values, hooks or Hooks(), prune)


def topologies_from_dict(spec: Mapping[str, Any]) -> list[Topology]:
    """Topologies from ``{name: {"strategy": ..., "config": {...}, ...}}``.

    Per topology: ``strategy`` (required), ``config`` (a table of the strategy's options),
    ``prune`` (bool), and the hooks ``connect``, ``disconnect``, ``list_nodes`` as
    callables or ``"module:function"`` strings. Raises :class:`ConfigError`.
    """
    if not isinstance(spec, Mapping):
        raise ConfigError(f"topologies must be a table of named topologies, got {spec!r:.60}")
    return [_topology(str(name), body) for name, body in spec.items()]


def _topology(name: str, body: Any) -> Topology:
    where = f"topology {name!r}"
    if not isinstance(body, Mapping):
        raise ConfigError(f"{where} must be a table with a 'strategy', got {body!r:.60}")
    for key in body:
        if key not in _KEYS:
            raise ConfigError(f"{where}: unknown key {key!r}; valid keys: {', '.join(_KEYS)}")
    if "strategy" not in body:
        raise ConfigError(f"{where}: 'strategy' is required (e.g. strategy = \"gossip\")")
    strategy = body["strategy"]
    if not isinstance(strategy, str):
        raise ConfigError(f"{where}: 'strategy' must be a string, got {strategy!r:.60}")
    config = body.get("config", {})
    if not isinstance(config, Mapping):
        raise ConfigError(f"{where}: 'config' must be a table of options, got {config!r:.60}")
    prune = convert(body.get("prune", True), bool, f"{where}: option 'prune'")
    hooks = Hooks(**{hook: _hook(body[hook], where, hook) for hook in _HOOKS if hook in body})
    return Topology.create(name, strategy, config, hooks=hooks, prune=prune)


def _hook(value: Any, where: str, hook: str) -> Any:
    """A hook given as a callable or as ``"module:function"``."""
    if isinstance(value, str):
        module_name, _, attr = value.partition(":")
        try:
            value = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError, ValueError) as exc:
            raise ConfigError(f"{where}: hook {hook!r}: cannot load {value!r}: {exc}") from exc
    if not callable(value):
        raise ConfigError(f"{where}: hook {hook!r} must be callable, got {value!r:.60}")
    wants_async = hook != "list_nodes"
    if inspect.iscoroutinefunction(value) != wants_async:
        kind = "an async function" if wants_async else "a plain (not async) function"
        raise ConfigError(f"{where}: hook {hook!r} must be {kind}")
    hook_fn: Callable[..., Any] = value
    return hook_fn


def load_toml(path: str | os.PathLike[str]) -> list[Topology]:
    """Topologies from a TOML file with a ``[topologies.<name>]`` table per topology.

    Raises :class:`ConfigError` when the file cannot be read, is not TOML, or describes
    a bad topology.
    """
    return topologies_from_dict(_read_toml(Path(path)).get("topologies", {}))


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read cluster config {str(path)!r}: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cluster config {str(path)!r} is not valid TOML: {exc}") from exc
    for key in document:
        if key != "topologies":
            raise ConfigError(
                f"cluster config {str(path)!r}: unknown table {key!r}; topologies go in "
                "[topologies.<name>]"
            )
    return document


# -- environment -------------------------------------------------------------------------
ENV_FILE = "NODEMESH_CLUSTER_CONFIG"
ENV_STRATEGY = "NODEMESH_STRATEGY"
ENV_TOPOLOGIES = "NODEMESH_TOPOLOGIES__"


def topologies_from_env(environ: Mapping[str, str] | None = None) -> list[Topology]:
    """Topologies described by environment variables (``os.environ`` by default).

    - ``NODEMESH_CLUSTER_CONFIG=/etc/cluster.toml``: read that TOML file first;
    - ``NODEMESH_TOPOLOGIES__<NAME>__STRATEGY=gossip``, ``..__<NAME>__PRUNE=false`` and
      ``..__<NAME>__CONFIG__<OPTION>=value``: the TOML key path, upper-cased, with ``__``
      for each dot; these override the file;
    - ``NODEMESH_STRATEGY=gossip`` with ``NODEMESH_STRATEGY_<OPTION>=value``: shorthand for
      one topology named after the strategy.

    Names are case-insensitive (topologies and options are lower-cased). Lists are
    comma-separated, booleans ``true``/``false``. No variables: no topologies. Raises
    :class:`ConfigError` naming the topology, the option and the variable.
    """
    env = os.environ if environ is None else environ
    spec: dict[str, Any] = {}
    path = env.get(ENV_FILE, "").strip()
    if path:
        spec = _read_toml(Path(path)).get("topologies", {})
        if not isinstance(spec, dict):
            raise ConfigError(f"{ENV_FILE}={path!r}: 'topologies' must be a table")
    _merge(spec, _env_topologies(env))
    _merge(spec, _env_shorthand(env))
    return topologies_from_dict(spec)


def _env_topologies(env: Mapping[str, str]) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    for var, value in sorted(env.items()):
        if not var.startswith(ENV_TOPOLOGIES):
            continue
        path = var[len(ENV_TOPOLOGIES) :].lower().split("__")
        if len(path) == 2 and path[1] in _KEYS and path[1] != "config":
            name, key = path
            spec.setdefault(name, {})[key] = _text_value(key, value, var)
        elif len(path) == 3 and path[1] == "config" and path[2]:
            name, _, option = path
            spec.setdefault(name, {}).setdefault("config", {})[option] = EnvText(value, var)
        else:
            raise ConfigError(
                f"${var}: expected {ENV_TOPOLOGIES}<NAME>__STRATEGY, __PRUNE or "
                f"__CONFIG__<OPTION> (valid keys: {', '.join(_KEYS)})"
            )
    return spec


def _env_shorthand(env: Mapping[str, str]) -> dict[str, Any]:
    strategy = env.get(ENV_STRATEGY, "").strip()
    prefix = ENV_STRATEGY + "_"
    options = {
        var[len(prefix) :].lower(): EnvText(value, var)
        for var, value in env.items()
        if var.startswith(prefix) and not var.startswith(ENV_TOPOLOGIES)
    }
    if not strategy:
        if options:
            first = min(o.source for o in options.values())
            raise ConfigError(f"${first} is set but ${ENV_STRATEGY} is not")
        return {}
    name = strategy.lower().replace("-", "_")
    name = name if _NAME.fullmatch(name) else "default"
    return {name: {"strategy": strategy, "config": options}}


def _text_value(key: str, value: str, var: str) -> Any:
    return value.strip() if key in ("strategy", *_HOOKS) else EnvText(value, var)


def _merge(into: dict[str, Any], extra: Mapping[str, Any]) -> None:
    """Deep-merge ``extra`` into ``into``: later sources override single values."""
    for key, value in extra.items():
        current = into.get(key)
        if isinstance(current, dict) and isinstance(value, Mapping):
            _merge(current, value)
        else:
            into[key] = dict(value) if isinstance(value, Mapping) else value


def collect(topologies: Iterable[Topology] | Mapping[str, Any]) -> tuple[Topology, ...]:
    """Topologies given as Topology objects or as a libcluster-shaped mapping, with unique
    names. Raises :class:`ConfigError`."""
    if isinstance(topologies, Mapping):
        result = tuple(topologies_from_dict(topologies))
    else:
        result = tuple(topologies)
    seen: set[str] = set()
    for topology in result:
        if not isinstance(topology, Topology):
            raise ConfigError(f"not a Topology: {topology!r:.60}")
        if topology.name in seen:
            raise ConfigError(f"two topologies are named {topology.name!r}")
        seen.add(topology.name)
    return result
