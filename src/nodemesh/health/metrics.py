"""The /metrics page in Prometheus text format 0.0.4, from plain values (no I/O).

Families: this node (name, running, ready), connected nodes, connections up and down (by
reason), and per topology (labels ``topology`` and ``strategy``) discovery rounds and
errors, connects and disconnects by result, listed nodes, restarts. Label values are
escaped as the format asks (backslash, double quote, newline).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nodemesh.cluster.metrics import ClusterStatistics

__all__ = ["CONTENT_TYPE", "render_metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


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
