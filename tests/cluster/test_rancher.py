"""Rancher: node names from a metadata service served locally, errors, and a live cluster.

No Rancher runs here: a local aiohttp server answers ``/latest/self/service`` with the JSON
shape of Rancher 1.6's metadata service, and the strategy's ``metadata_url`` points at it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from cluster.helpers import FAST, next_event
from conftest import COOKIE
from nodemesh.cluster import (
    Cluster,
    DisconnectNode,
    DiscoveryFailed,
    NodeJoined,
    NodeLeft,
    Topology,
    resolve_strategy,
)
from nodemesh.cluster.strategies.rancher import METADATA_URL, RancherStrategy, container_ips
from nodemesh.errors import ConfigError, DiscoveryError
from nodemesh.runtime.config import NodeConfig
from nodemesh.runtime.node import Node
from support.net import free_port, wait_for

PATH = "/latest/self/service"


def container(ip: str | None, state: str = "running", **extra: Any) -> dict[str, Any]:
    """One entry of ``containers`` as Rancher 1.6's metadata service gives it."""
    number = ip.rsplit(".", 1)[-1] if ip else "x"
    return {
        "create_index": 1,
        "dns": ["169.254.169.250"],
        "health_state": "healthy",
        "hostname": f"myapp-{number}",
        "ips": [ip] if ip else [],
        "name": f"stack-myapp-{number}",
        "primary_ip": ip,
        "service_name": "myapp",
        "stack_name": "stack",
        "state": state,
        **extra,
    }


def service(*containers: dict[str, Any]) -> dict[str, Any]:
    return {"containers": list(containers), "kind": "service", "name": "myapp", "scale": 3}


class Metadata:
    """A local stand-in for http://rancher-metadata: answers what the test sets."""

    def __init__(self) -> None:
        self.status = 200
        self.body: str = json.dumps(service())
        self.accept: list[str] = []
        self.hang = False
        self.released = asyncio.Event()
        self.url = ""

    def set(self, document: Any, status: int = 200) -> None:
        self.body, self.status = json.dumps(document), status

    async def handle(self, request: web.Request) -> web.Response:
        self.accept.append(request.headers.get("Accept", ""))
        if self.hang:
            await self.released.wait()
        return web.Response(status=self.status, text=self.body, content_type="application/json")


@pytest.fixture
async def metadata() -> AsyncIterator[Metadata]:
    """The metadata service on a free 127.0.0.1 port."""
    served = Metadata()
    app = web.Application()
    app.router.add_get(PATH, served.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    served.url = f"http://127.0.0.1:{port}{PATH}"
    yield served
    served.released.set()
    await runner.cleanup()


def rancher(url: str, **options: Any) -> RancherStrategy:
    topology = Topology.create(
        "r", "rancher", {"node_basename": "app", "metadata_url": url, **options}
    )
    strategy = RancherStrategy(topology.options)
    return strategy


async def discover(url: str, **options: Any) -> set[str]:
    strategy = rancher(url, **options)
    try:
        return set(await strategy.discover())
    finally:
        await strategy.aclose()


def test_options_and_names() -> None:
    """libcluster's name and option names; the metadata URL defaults to libcluster's."""
    assert resolve_strategy("Cluster.Strategy.Rancher") is RancherStrategy
    options = Topology.create("r", "rancher", {"node_basename": "app"}).options
    assert (options.polling_interval, options.metadata_url) == (5000, METADATA_URL)
    assert METADATA_URL == "http://rancher-metadata/latest/self/service"
    with pytest.raises(ConfigError, match="option 'node_basename' is required"):
        Topology.create("r", "rancher", {})
    with pytest.raises(ConfigError, match="'metadata_url' must be an http"):
        Topology.create("r", "rancher", {"node_basename": "a", "metadata_url": "rancher"})


async def test_first_ip_of_each_container(metadata: Metadata) -> None:
    """Each container's ips[0] becomes basename@ip, asked with Accept: application/json."""
    metadata.set(
        service(
            container("10.42.72.199"),
            container("10.42.96.65", ips=["10.42.96.65", "172.17.0.4"]),
            container("fd00:0::42"),
        )
    )
    assert await discover(metadata.url) == {"app@10.42.72.199", "app@10.42.96.65", "app@fd00::42"}
    assert metadata.accept == ["application/json"]


def test_containers_without_ip_or_not_running_are_skipped() -> None:
    """No IP (libcluster would crash) or a state other than running: not a node."""
    document = service(
        container("10.0.0.1"),
        container(None),
        container("10.0.0.2", state="stopped"),
        {"ips": ["10.0.0.3"]},  # no state given: taken, as libcluster takes it
        "garbage",
    )
    assert container_ips(document) == ["10.0.0.1", "10.0.0.3"]


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (503, "upstream down", r"answered 503 Service Unavailable for GET .*'upstream down'"),
        (200, "<html>", r"is not JSON \(Expecting value: .*\): '<html>'"),
        (200, '{"name": "myapp"}', "the Rancher metadata answer has no 'containers' list"),
        (200, "[]", "has no 'containers' list"),
    ],
)
async def test_bad_answers_are_discovery_errors(
    metadata: Metadata, status: int, body: str, message: str
) -> None:
    """Error statuses, bodies that are not JSON and JSON without containers say so."""
    metadata.body, metadata.status = body, status
    with pytest.raises(DiscoveryError, match=message):
        await discover(metadata.url)


async def test_unreachable_and_slow_services_are_discovery_errors(metadata: Metadata) -> None:
    """No server at the URL, or no answer within request_timeout: a DiscoveryError."""
    closed = f"http://127.0.0.1:{free_port()}{PATH}"
    with pytest.raises(DiscoveryError, match="cannot reach the Rancher metadata service at"):
        await discover(closed)
    metadata.hang = True
    with pytest.raises(DiscoveryError, match=r"timed out after 0\.2 s"):
        await discover(metadata.url, request_timeout=200)


async def test_containers_join_leave_and_failures_keep_the_cluster(metadata: Metadata) -> None:
    """Containers added and removed join and prune app@<ip>; while the metadata service
    fails, nothing is disconnected."""
    port = free_port()
    nodes = [
        Node(f"app@{ip}", COOKIE, config=NodeConfig(use_epmd=False, port=port, listen_address=ip))
        for ip in ("127.0.0.1", "127.0.0.2", "127.0.0.3")
    ]
    a, b, c = nodes
    for node in nodes:
        await node.start()
    try:
        metadata.set(service(container("127.0.0.1"), container("127.0.0.2")))
        topology = Topology.create(
            "r",
            "rancher",
            {"node_basename": "app", "metadata_url": metadata.url, "polling_interval": 50},
        )
        cluster = Cluster(a, [topology], config=FAST)
        events = cluster.events()
        seen: list[Any] = []
        async with cluster:
            assert await next_event(events, lambda e: isinstance(e, NodeJoined)) == NodeJoined(
                b.name, "r", "discovered"
            )
            metadata.set({"message": "internal error"}, status=500)
            for _ in range(2):
                await next_event(events, lambda e: isinstance(e, DiscoveryFailed), seen=seen)
            assert not [e for e in seen if isinstance(e, NodeLeft | DisconnectNode)]
            metadata.set(service(container("127.0.0.1"), container("127.0.0.3")))
            await wait_for(lambda: a.nodes() == [c.name])
    finally:
        for node in reversed(nodes):
            await node.aclose()
