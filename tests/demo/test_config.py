"""The demo's settings: names a person tells apart, ports in order, clear errors."""

from __future__ import annotations

from typing import Any

import pytest

from nodemesh.demo.config import DemoConfig, node_alive
from nodemesh.errors import ConfigError


def test_default_pages_and_names() -> None:
    """Three nodes on 4000-4002, named amber, birch and cedar on loopback."""
    config = DemoConfig()
    assert config.http_ports == [4000, 4001, 4002]
    assert [config.node_name(p) for p in config.http_ports] == [
        "amber@127.0.0.1",
        "birch@127.0.0.1",
        "cedar@127.0.0.1",
    ]


def test_a_node_started_later_on_the_next_port_takes_a_new_name() -> None:
    """Names follow the port, so a second demo on 4003 is dune, and ports elsewhere add
    the port (no two ports share a name)."""
    assert node_alive(4003) == "dune"
    names = {node_alive(port) for port in range(3990, 4100)}
    assert len(names) == 110


def test_gossip_runs_on_the_demo_host() -> None:
    """One gossip topology, multicast on the host's interface, on the chosen port."""
    topology = DemoConfig(gossip_port=50000, heartbeat_ms=200).topologies()["demo"]
    assert topology == {
        "strategy": "gossip",
        "config": {"port": 50000, "multicast_if": "127.0.0.1", "heartbeat_interval_max": 200},
    }


@pytest.mark.parametrize(
    ("values", "says"),
    [
        ({"nodes": 0}, "1 to 20 nodes"),
        ({"port": 65535, "nodes": 2}, "are not valid"),
        ({"gossip_port": 70000}, "not a UDP port"),
        ({"cookie": ""}, "cookie"),
        ({"heartbeat_ms": 10}, "heartbeat_ms"),
        ({"host": "0.0.0.0"}, "one IPv4 address of this machine"),
        ({"host": "::1"}, "one IPv4 address"),
        ({"host": "myhost.example"}, "one IPv4 address"),
    ],
)
def test_bad_settings_are_one_clear_error(values: dict[str, Any], says: str) -> None:
    """Each bad value raises ConfigError saying which."""
    with pytest.raises(ConfigError, match=says):
        DemoConfig(**values)
