"""Where ``nodemesh run``, ``discover`` and ``doctor`` get their topologies.

``--config FILE`` reads the ``[topologies.*]`` of a TOML file; ``--strategy NAME`` adds
one topology of that strategy, whose options come from ``$NODEMESH_STRATEGY_<OPTION>``
(as with ``$NODEMESH_STRATEGY``) and then from repeatable ``--option KEY=VALUE``, which
win. Values are text, parsed for the option's type as environment values are (lists
comma-separated, booleans ``true``/``false``). With neither ``--config`` nor
``--strategy``, the environment describes the topologies (``docs/cluster.md``).
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Mapping

from nodemesh.cluster import Topology, load_toml, resolve_strategy, topologies_from_env
from nodemesh.cluster._options import EnvText
from nodemesh.errors import ConfigError

__all__ = ["add_topology_options", "topologies_of"]

log = logging.getLogger("nodemesh.cli")

ENV_STRATEGY = "NODEMESH_STRATEGY"


def add_topology_options(parser: argparse.ArgumentParser) -> None:
    """``--config``, ``--strategy`` and ``--option``."""
    parser.add_argument(
        "--config",
        metavar="TOML",
        help="form the cluster with the [topologies.*] of this file (examples/cluster.toml, "
        "docs/cluster.md)",
    )
    parser.add_argument(
        "--strategy",
        metavar="NAME",
        help="one topology of this strategy (gossip, epmd, local_epmd, erlang_hosts, dns_poll, "
        "kubernetes, ...), with options from $NODEMESH_STRATEGY_<OPTION> and --option. "
        "Without --config or --strategy: $NODEMESH_CLUSTER_CONFIG, $NODEMESH_STRATEGY and "
        "$NODEMESH_TOPOLOGIES__*",
    )
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an option of the --strategy topology, e.g. --option multicast_if=127.0.0.1 "
        "(repeatable; lists comma-separated)",
    )


def topologies_of(
    args: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> list[Topology]:
    """The topologies of ``--config`` and ``--strategy``/``--option``, else those of the
    environment. Raises ConfigError for a bad file, strategy, option or value."""
    env = os.environ if environ is None else environ
    if args.option and not args.strategy:
        raise ConfigError("--option sets options of the --strategy topology; give --strategy too")
    if args.config is None and args.strategy is None:
        return topologies_from_env(env)
    topologies: list[Topology] = []
    if args.config:
        topologies += load_toml(args.config)
    if args.strategy:
        topologies.append(_strategy_topology(args.strategy, args.option, env))
    return topologies


def _strategy_topology(strategy: str, pairs: list[str], env: Mapping[str, str]) -> Topology:
    strategy_class = resolve_strategy(strategy, where="--strategy")
    options: dict[str, EnvText] = dict(_env_options(strategy_class.name, env))
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip().lower().replace("-", "_")
        if not sep or not key:
            raise ConfigError(f"--option {pair!r}: expected KEY=VALUE, e.g. port=45892")
        options[key] = EnvText(value, f"--option {pair}")
    return Topology.create(strategy_class.name, strategy_class, options)


def _env_options(strategy: str, env: Mapping[str, str]) -> dict[str, EnvText]:
    """``$NODEMESH_STRATEGY_<OPTION>`` values, unless ``$NODEMESH_STRATEGY`` names another
    strategy (then they are meant for that one: say so and leave them out)."""
    prefix = ENV_STRATEGY + "_"
    found = {
        var[len(prefix) :].lower(): EnvText(value, var)
        for var, value in sorted(env.items())
        if var.startswith(prefix)
    }
    named = env.get(ENV_STRATEGY, "").strip()
    if found and named and resolve_strategy(named, where=f"${ENV_STRATEGY}").name != strategy:
        log.warning(
            "--strategy %s: leaving out %s, meant for $%s=%s",
            strategy,
            ", ".join(f"${v.source}" for v in found.values()),
            ENV_STRATEGY,
            named,
        )
        return {}
    return found
