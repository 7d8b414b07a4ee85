"""The health options of ``nodemesh run``: ``--health-port``, ``--health-host``,
``--ready-min-peers`` and their environment variables, and serving while a node runs."""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING

from nodemesh.cli.logs import say
from nodemesh.cli.types import count, port
from nodemesh.errors import ConfigError
from nodemesh.health import HealthConfig, HealthServer

if TYPE_CHECKING:
    from nodemesh.cluster import Cluster
    from nodemesh.runtime.node import Node

__all__ = ["add_health_options", "health_config_from", "serve_health"]

ENV_PORT = "NODEMESH_HEALTH_PORT"
ENV_HOST = "NODEMESH_HEALTH_HOST"
ENV_MIN_PEERS = "NODEMESH_READY_MIN_PEERS"


def add_health_options(parser: argparse.ArgumentParser) -> None:
    """``--health-port``, ``--health-host`` and ``--ready-min-peers`` (defaults from the
    environment, checked when the node starts)."""
    parser.add_argument(
        "--health-port",
        type=port,
        default=None,
        metavar="PORT",
        help=f"serve /healthz, /readyz and /metrics on PORT [${ENV_PORT}; off]",
    )
    parser.add_argument(
        "--health-host",
        default=None,
        metavar="ADDRESS",
        help=f"address for the health port [${ENV_HOST}, else every address]",
    )
    parser.add_argument(
        "--ready-min-peers",
        type=count,
        default=None,
        metavar="N",
        help=f"/readyz answers 200 once N nodes are connected [${ENV_MIN_PEERS}, else 0]",
    )


def health_config_from(
    args: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> HealthConfig | None:
    """The HealthConfig the options and environment ask for, None when no port is given.
    Raises ConfigError naming the variable for a malformed value."""
    env = os.environ if environ is None else environ
    port = args.health_port
    if port is None:
        port = _env_int(env, ENV_PORT)
    if port is None:
        return None
    min_peers = args.ready_min_peers
    if min_peers is None:
        min_peers = _env_int(env, ENV_MIN_PEERS) or 0
    host = args.health_host or env.get(ENV_HOST, "").strip() or None
    return HealthConfig(port=port, host=host, ready_min_peers=min_peers)


def _env_int(env: Mapping[str, str], var: str) -> int | None:
    text = env.get(var, "").strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"${var}={text!r} is not an integer") from None


@contextlib.asynccontextmanager
async def serve_health(
    args: argparse.Namespace, node: Node, cluster: Cluster | None
) -> AsyncIterator[HealthServer | None]:
    """Serve health checks while the block runs, if the options or environment ask."""
    config = health_config_from(args)
    if config is None:
        yield None
        return
    async with HealthServer(node, cluster, config) as server:
        where = config.host or "*"
        url = f"http://{where}:{server.port}/healthz"
        say(f"health on {url}", event="health", url=url)
        yield server
