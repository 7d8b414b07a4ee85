"""The health endpoint: real HTTP requests to a HealthServer in front of real nodes."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from argparse import Namespace
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from cluster.helpers import FAST
from conftest import COOKIE, NodeFactory
from nodemesh.cli.health import health_config_from
from nodemesh.cluster import Cluster
from nodemesh.errors import ConfigError, NetworkError
from nodemesh.health import CONTENT_TYPE, HealthConfig, HealthServer, render_metrics
from support.net import wait_for


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def get(http: aiohttp.ClientSession, server: HealthServer, path: str) -> tuple[int, Any]:
    async with http.get(f"http://127.0.0.1:{server.port}{path}") as response:
        text = await response.text()
        if response.content_type == "application/json":
            return response.status, json.loads(text)
        return response.status, (response.headers["Content-Type"], text)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a metrics page, parsed by prometheus_client: (name, labels) -> value."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def config(**kwargs: Any) -> HealthConfig:
    return HealthConfig(port=0, host="127.0.0.1", **kwargs)


async def test_healthz_follows_the_node(
    make_node: NodeFactory, http: aiohttp.ClientSession
) -> None:
    """/healthz answers 200 while the node runs and 503 once it stopped."""
    node = await make_node("live")
    async with HealthServer(node, None, config()) as server:
        assert await get(http, server, "/healthz") == (200, {"status": "ok", "node": node.name})
        await node.aclose()
        status, body = await get(http, server, "/healthz")
        assert (status, body["status"]) == (503, "stopped")


async def test_readyz_waits_for_enough_peers(
    make_node: NodeFactory, http: aiohttp.ClientSession
) -> None:
    """/readyz is 503 with the counts until ready_min_peers nodes are connected, then 200."""
    node = await make_node("ready")
    peer = await make_node("peer")
    async with HealthServer(node, None, config(ready_min_peers=1)) as server:
        status, body = await get(http, server, "/readyz")
        assert status == 503
        assert body == {
            "ready": False,
            "node": node.name,
            "connected": 0,
            "required": 1,
            "nodes": [],
        }
        assert await peer.connect(node.name)
        await wait_for(lambda: node.is_connected(peer.name), 10, "the connection")
        status, body = await get(http, server, "/readyz")
        assert status == 200
        assert (body["ready"], body["connected"], body["nodes"]) == (True, 1, [peer.name])


async def test_readyz_with_no_peers_required_is_ready_alone(
    make_node: NodeFactory, http: aiohttp.ClientSession
) -> None:
    """With ready_min_peers 0 a lone running node is ready."""
    node = await make_node("alone")
    async with HealthServer(node, None, config()) as server:
        assert (await get(http, server, "/readyz"))[0] == 200


async def test_metrics_are_valid_prometheus_text_with_cluster_counters(
    make_node: NodeFactory, http: aiohttp.ClientSession
) -> None:
    """/metrics parses with prometheus_client and counts nodes, connects and discovery."""
    node = await make_node("metered")
    peer = await make_node("target")
    topologies = {
        "seeds": {"strategy": "epmd", "config": {"hosts": [peer.name, "ghost@127.0.0.1"]}}
    }
    async with (
        Cluster(node, topologies, config=FAST) as cluster,
        HealthServer(node, cluster, config()) as server,
    ):
        await wait_for(lambda: node.is_connected(peer.name), 10, "the seed connected")
        await wait_for(
            lambda: (
                cluster.statistics().topologies["seeds"].connect_errors.get("unreachable", 0) > 0
            ),
            10,
            "a failed connect to the ghost",
        )
        await peer.aclose()
        await wait_for(lambda: not node.is_connected(peer.name), 10, "the peer gone")
        await wait_for(lambda: sum(server.node_downs.values()) == 1, 10, "the nodedown counted")
        status, (content_type, text) = await get(http, server, "/metrics")
    assert status == 200 and content_type == CONTENT_TYPE
    found = samples(text)
    seeds = (("strategy", "epmd"), ("topology", "seeds"))
    assert found[("nodemesh_node_info", (("node", node.name),))] == 1
    assert found[("nodemesh_connected_nodes", ())] == 0
    assert found[("nodemesh_node_up_total", ())] == 1
    assert sum(v for (n, _), v in found.items() if n == "nodemesh_node_down_total") == 1
    assert found[("nodemesh_connects_total", (("result", "ok"), *seeds))] == 1
    assert found[("nodemesh_connects_total", (("result", "unreachable"), *seeds))] >= 1
    assert found[("nodemesh_discovery_rounds_total", seeds)] >= 1
    assert found[("nodemesh_discovery_errors_total", seeds)] == 0
    assert found[("nodemesh_discovered_nodes", seeds)] == 2
    assert found[("nodemesh_topology_running", seeds)] == 1


def test_label_values_are_escaped() -> None:
    """Quotes, backslashes and newlines in label values keep the page parseable."""
    text = render_metrics(None, node='we"ird\\no\nde@h', nodes=[], node_downs={"a\nb": 2})
    found = samples(text)
    assert found[("nodemesh_node_info", (("node", 'we"ird\\no\nde@h'),))] == 1
    assert found[("nodemesh_node_down_total", (("reason", "a\nb"),))] == 2


async def test_a_taken_port_is_a_network_error(make_node: NodeFactory) -> None:
    """A health port that cannot be bound raises NetworkError naming it."""
    node = await make_node("busy")
    async with HealthServer(node, None, config()) as first:
        with pytest.raises(NetworkError, match=str(first.port)):
            await HealthServer(node, None, HealthConfig(first.port, "127.0.0.1")).start()


def test_options_and_environment() -> None:
    """--health-port beats $NODEMESH_HEALTH_PORT; no port, no server; bad values fail."""
    args = Namespace(health_port=None, health_host=None, ready_min_peers=None)
    assert health_config_from(args, {}) is None
    env = {"NODEMESH_HEALTH_PORT": "8080", "NODEMESH_READY_MIN_PEERS": "2"}
    assert health_config_from(args, env) == HealthConfig(8080, None, 2)
    args = Namespace(health_port=9000, health_host="::1", ready_min_peers=0)
    assert health_config_from(args, env) == HealthConfig(9000, "::1", 0)
    args = Namespace(health_port=None, health_host=None, ready_min_peers=None)
    with pytest.raises(ConfigError, match="NODEMESH_HEALTH_PORT"):
        health_config_from(args, {"NODEMESH_HEALTH_PORT": "http"})
    with pytest.raises(ConfigError):
        HealthConfig(port=70000)


async def test_run_serves_health_and_the_probe_command_uses_it(
    make_node: NodeFactory, epmd_port: int, http: aiohttp.ClientSession
) -> None:
    """`nodemesh run` serves health; `python -m nodemesh.health` exits 0, then 1 once gone."""
    from support.net import free_port

    await make_node("anchor")  # owns this test's EPMD
    port = free_port()
    env = {**os.environ, "ERL_EPMD_PORT": str(epmd_port), "NODEMESH_HEALTH_PORT": str(port)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "nodemesh.cli",
        "run",
        "--name",
        "hc@127.0.0.1",
        "--cookie",
        COOKIE,
        "--health-host",
        "127.0.0.1",
        stderr=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
        env=env,
    )
    assert proc.stderr is not None
    try:
        lines = [(await asyncio.wait_for(proc.stderr.readline(), 20)).decode() for _ in range(2)]
        assert lines[1].strip() == f"health on http://127.0.0.1:{port}/healthz"
        check = [sys.executable, "-m", "nodemesh.health"]
        probe = await asyncio.create_subprocess_exec(*check, env=env)
        assert await asyncio.wait_for(probe.wait(), 20) == 0
    finally:
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    probe = await asyncio.create_subprocess_exec(*check, env=env, stderr=asyncio.subprocess.DEVNULL)
    assert await asyncio.wait_for(probe.wait(), 20) == 1


def test_server_without_cluster_has_no_topology_metrics() -> None:
    """A page without a cluster still has the node's metrics and nothing per topology."""
    text = render_metrics(None, node="a@h", nodes=["b@h"], ready=False, ready_min_peers=1)
    found = samples(text)
    assert found[("nodemesh_connected_nodes", ())] == 1
    assert found[("nodemesh_ready", ())] == 0
    assert not [n for (n, _) in found if n.startswith("nodemesh_discovery")]
