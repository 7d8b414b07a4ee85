"""The health and metrics HTTP server, for Kubernetes probes and Prometheus (aiohttp).

``HealthServer(node, cluster, HealthConfig(port=8080, ready_min_peers=1))`` serves:

- ``GET /healthz`` — liveness: 200 while the node runs, 503 once it stopped;
- ``GET /readyz`` — readiness: 200 when the node runs and is connected to at least
  ``ready_min_peers`` nodes, else 503; the JSON body says how many it has and needs;
- ``GET /metrics`` — the page :func:`nodemesh.health.metrics.render_metrics` writes.

aiohttp is imported when a server starts, so importing this module costs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections import Counter
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from nodemesh.errors import ConfigError, NetworkError
from nodemesh.health.metrics import CONTENT_TYPE, render_metrics
from nodemesh.runtime.events import NodeDown, NodeUp

if TYPE_CHECKING:
    from aiohttp import web

    from nodemesh.cluster import Cluster
    from nodemesh.runtime.node import Node

__all__ = ["HealthConfig", "HealthServer"]


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
        events = self.node.events(max_queued=0)  # read at once: never bounded
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
