"""Health and metrics over HTTP, for Kubernetes probes and Prometheus (aiohttp).

``HealthServer(node, cluster, HealthConfig(port=8080, ready_min_peers=1))`` serves:

- ``GET /healthz`` — liveness: 200 while the node runs, 503 once it stopped;
- ``GET /readyz`` — readiness: 200 when the node runs and is connected to at least
  ``ready_min_peers`` nodes, else 503; the JSON body says how many it has and needs;
- ``GET /metrics`` — Prometheus text format 0.0.4: connected nodes, connections up and
  down (by reason), and per topology (labels ``topology`` and ``strategy``) discovery
  rounds and errors, connects and disconnects by result, listed nodes, restarts.

``nodemesh run --health-port 8080`` (or ``$NODEMESH_HEALTH_PORT``) starts one.
``python -m nodemesh.health [URL]`` asks ``/healthz`` and exits 0 or 1: a container
HEALTHCHECK without curl.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import sys
from collections import Counter
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from nodemesh.errors import ConfigError, NetworkError
from nodemesh.runtime.events import NodeDown, NodeUp

if TYPE_CHECKING:
    from aiohttp import web

    from nodemesh.cluster import Cluster
    from nodemesh.cluster.metrics import ClusterStatistics
    from nodemesh.runtime.node import Node

__all__ = [
    "CONTENT_TYPE",
    "HealthConfig",
    "HealthServer",
    "add_health_options",
    "health_config_from",
    "render_metrics",
    "serve_health",
]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
ENV_PORT = "NODEMESH_HEALTH_PORT"
ENV_HOST = "NODEMESH_HEALTH_HOST"
ENV_MIN_PEERS = "NODEMESH_READY_MIN_PEERS"


@dataclass(frozen=True, slots=True)
class HealthConfig:
    """``port`` (0: any free one), ``host`` (None: every IPv4 and IPv6 address, which is
    what probes from the kubelet need), ``ready_min_peers`` (connected nodes needed for
    /readyz). Raises ConfigError for values out of range."""

    port: int
    host: str | None = None
    ready_min_peers: int = 0

    def __post_init__(self) -> None:
        if type(self.port) is not int or not 0 <= self.port <= 65535:
            raise ConfigError(f"health port must be 0..65535, got {self.port!r}")
        if type(self.ready_min_peers) is not int or self.ready_min_peers < 0:
            raise ConfigError(
                f"ready_min_peers must be a non-negative integer, got {self.ready_min_peers!r}"
            )


class HealthServer:
    """The health and metrics endpoints of one node (and its cluster, if any)."""

    def __init__(self, node: Node, cluster: Cluster | None, config: HealthConfig) -> None:
        self.node = node
        self.cluster = cluster
        self.config = config
        self.node_ups = 0
        self.node_downs: Counter[str] = Counter()
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._watcher: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        """The port it listens on (the one picked when configured with 0)."""
        return self._port

    async def start(self) -> None:
        """Listen and serve. Raises NetworkError when the port cannot be bound."""
        from aiohttp import web

        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        sock = _listen(self.config.host, self.config.port)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        try:
            await runner.setup()
            await web.SockSite(runner, sock).start()
        except BaseException:
            sock.close()
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = sock.getsockname()[1]
        events = self.node.events()
        self._watcher = asyncio.create_task(self._count(events))

    async def aclose(self) -> None:
        """Stop serving."""
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> HealthServer:
        await self.start()
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def _count(self, events: Any) -> None:
        try:
            async for event in events:
                if isinstance(event, NodeUp):
                    self.node_ups += 1
                elif isinstance(event, NodeDown):
                    self.node_downs[event.reason] += 1
        finally:
            events.close()

    # -- what the endpoints say --------------------------------------------------------
    def running(self) -> bool:
        """Whether the node is started and not stopping."""
        node = self.node
        return node.running

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """(ready, the JSON body of /readyz)."""
        nodes = sorted(self.node.nodes())
        required = self.config.ready_min_peers
        ready = self.running() and len(nodes) >= required
        body = {
            "ready": ready,
            "node": self.node.name,
            "connected": len(nodes),
            "required": required,
            "nodes": nodes,
        }
        return ready, body

    def metrics_text(self) -> str:
        """The /metrics page."""
        ready, _ = self.readiness()
        return render_metrics(
            self.cluster.statistics() if self.cluster is not None else None,
            node=self.node.name,
            nodes=self.node.nodes(),
            running=self.running(),
            ready=ready,
            ready_min_peers=self.config.ready_min_peers,
            node_ups=self.node_ups,
            node_downs=self.node_downs,
        )

    async def _healthz(self, request: web.Request) -> web.Response:
        from aiohttp import web

        running = self.running()
        body = {"status": "ok" if running else "stopped", "node": self.node.name}
        return web.json_response(body, status=200 if running else 503)

    async def _readyz(self, request: web.Request) -> web.Response:
        from aiohttp import web

        ready, body = self.readiness()
        return web.json_response(body, status=200 if ready else 503)

    async def _metrics(self, request: web.Request) -> web.Response:
        from aiohttp import web

        text = self.metrics_text()
        return web.Response(body=text.encode(), headers={"Content-Type": CONTENT_TYPE})


def _listen(host: str | None, port: int) -> socket.socket:
    """A listening socket: ``host``, or ``::`` dual-stack (IPv4 too), else 0.0.0.0."""
    address = host if host is not None else "::"
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError:
        if host is not None:
            raise NetworkError(f"cannot open a socket for {host}") from None
        family, address = socket.AF_INET, "0.0.0.0"
        sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6 and host is None:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((address, port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise NetworkError(
            f"cannot serve health checks on {address} port {port}: {exc.strerror}"
        ) from exc
    return sock


# -- Prometheus text format 0.0.4 ----------------------------------------------------------
def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _sample(name: str, labels: Mapping[str, str], value: float) -> str:
    inner = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
    shown = repr(value) if isinstance(value, float) else str(value)
    return f"{name}{{{inner}}} {shown}" if inner else f"{name} {shown}"


class _Page:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(
        self, name: str, kind: str, help_text: str, samples: list[tuple[dict[str, str], float]]
    ) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")
        self.lines += [_sample(name, labels, value) for labels, value in samples]

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


_CONNECT_RESULTS = ("ok", "unreachable", "not_part_of_network")
_DISCONNECT_RESULTS = ("ok", "already_disconnected", "not_part_of_network")


def render_metrics(
    stats: ClusterStatistics | None,
    *,
    node: str,
    nodes: Sequence[str],
    running: bool = True,
    ready: bool = True,
    ready_min_peers: int = 0,
    node_ups: int = 0,
    node_downs: Mapping[str, int] | None = None,
) -> str:
    """The metrics page in Prometheus text format 0.0.4."""
    page = _Page()
    page.family("nodemesh_node_info", "gauge", "This node's name.", [({"node": node}, 1)])
    page.family("nodemesh_node_running", "gauge", "1 while the node runs.", [({}, int(running))])
    page.family("nodemesh_ready", "gauge", "1 when /readyz answers 200.", [({}, int(ready))])
    page.family(
        "nodemesh_ready_min_peers",
        "gauge",
        "Connected nodes /readyz needs.",
        [({}, ready_min_peers)],
    )
    page.family("nodemesh_connected_nodes", "gauge", "Nodes connected now.", [({}, len(nodes))])
    page.family("nodemesh_node_up_total", "counter", "Connections that came up.", [({}, node_ups)])
    downs = dict(node_downs or {})
    page.family(
        "nodemesh_node_down_total",
        "counter",
        "Connections that went down, by reason.",
        [({"reason": reason}, count) for reason, count in sorted(downs.items())],
    )
    if stats is not None:
        _topology_metrics(page, stats)
    return page.text()


#: Per-topology families: (name, type, help, TopologyStatistics field; a set counts).
_PER_TOPOLOGY = (
    ("nodemesh_topology_running", "gauge", "1 while the strategy runs.", "running"),
    ("nodemesh_topology_restarts_total", "counter", "Strategy restarts.", "restarts"),
    ("nodemesh_discovery_rounds_total", "counter", "Successful lookups.", "discovery_rounds"),
    ("nodemesh_discovery_errors_total", "counter", "Failed lookups.", "discovery_errors"),
    ("nodemesh_discovered_nodes", "gauge", "Nodes the last good lookup listed.", "listed"),
    ("nodemesh_nodes_joined_total", "counter", "Nodes joined.", "nodes_joined"),
    ("nodemesh_nodes_left_total", "counter", "Nodes left.", "nodes_left"),
    ("nodemesh_reconnects_total", "counter", "Nodes reconnected after a drop.", "reconnects"),
)


def _number(value: Any) -> int:
    return len(value) if isinstance(value, frozenset) else int(value)


def _topology_metrics(page: _Page, stats: ClusterStatistics) -> None:
    tops = [
        ({"topology": n, "strategy": t.strategy}, t) for n, t in sorted(stats.topologies.items())
    ]
    for name, kind, text, field in _PER_TOPOLOGY:
        page.family(name, kind, text, [(labels, _number(getattr(t, field))) for labels, t in tops])
    connects: list[tuple[dict[str, str], float]] = []
    disconnects: list[tuple[dict[str, str], float]] = []
    for labels, t in tops:
        by_result = {"ok": t.connects_ok, **t.connect_errors}
        for result in sorted(set(_CONNECT_RESULTS) | set(by_result)):
            connects.append(({**labels, "result": result}, by_result.get(result, 0)))
        by_result = {"ok": t.disconnects_ok, **t.disconnect_errors}
        for result in sorted(set(_DISCONNECT_RESULTS) | set(by_result)):
            disconnects.append(({**labels, "result": result}, by_result.get(result, 0)))
    page.family("nodemesh_connects_total", "counter", "Connect attempts by result.", connects)
    page.family("nodemesh_disconnects_total", "counter", "Disconnects by result.", disconnects)


# -- the command line ----------------------------------------------------------------------
def add_health_options(parser: argparse.ArgumentParser) -> None:
    """``--health-port``, ``--health-host`` and ``--ready-min-peers`` (defaults from the
    environment, checked when the node starts)."""
    parser.add_argument(
        "--health-port",
        type=int,
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
        type=int,
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
        print(f"health on http://{where}:{server.port}/healthz", file=sys.stderr, flush=True)
        yield server


def probe(url: str, timeout: float = 3.0) -> int:
    """GET ``url``: 0 for a 2xx answer, else 1 (for a container HEALTHCHECK)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 0 if 200 <= response.status < 300 else 1
    except (urllib.error.URLError, OSError, ValueError) as exc:
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m nodemesh.health [URL]``; URL defaults to this host's /healthz."""
    args = list(sys.argv[1:] if argv is None else argv)
    port = os.environ.get(ENV_PORT, "").strip() or "8080"
    url = args[0] if args else f"http://127.0.0.1:{port}/healthz"
    return probe(url)


if __name__ == "__main__":
    sys.exit(main())
