"""Health and metrics over HTTP, for Kubernetes probes and Prometheus.

- :mod:`nodemesh.health.server`: :class:`HealthServer` serves ``/healthz``, ``/readyz`` and
  ``/metrics`` for a node and its cluster (aiohttp, imported when it starts);
- :mod:`nodemesh.health.metrics`: :func:`render_metrics`, the Prometheus text page;
- ``python -m nodemesh.health [URL]``: the probe a container HEALTHCHECK runs.

``nodemesh run --health-port 8080`` (or ``$NODEMESH_HEALTH_PORT``) starts a server; its
options live with the command line in :mod:`nodemesh.cli.health`.
"""

from nodemesh.health.metrics import CONTENT_TYPE, render_metrics
from nodemesh.health.server import HealthConfig, HealthServer

__all__ = ["CONTENT_TYPE", "HealthConfig", "HealthServer", "render_metrics"]
