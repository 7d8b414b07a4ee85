"""Gossip options: libcluster's names and defaults, our additions, and clear errors."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import pytest

from nodemesh.cluster import topologies_from_dict
from nodemesh.cluster.gossip.wire import AuthenticatedCodec, PlainCodec, SecretCodec
from nodemesh.cluster.strategies.gossip import GossipOptions, GossipStrategy, make_codec
from nodemesh.errors import ConfigError


def test_libcluster_options_and_defaults() -> None:
    """The first seven options are libcluster 3.5's, with its defaults."""
    o = GossipOptions()
    libcluster = {
        "port": 45892,
        "if_addr": "0.0.0.0",
        "multicast_addr": "233.252.1.32",
        "multicast_ttl": 1,
        "multicast_if": None,
        "broadcast_only": False,
        "secret": None,
    }
    assert [f.name for f in fields(GossipOptions)][:7] == list(libcluster)
    assert {name: getattr(o, name) for name in libcluster} == libcluster
    assert (o.heartbeat_interval_min, o.heartbeat_interval_max) == (1, 5000)  # :rand.uniform


def test_strategy_name_and_codec_choice() -> None:
    """``gossip`` is the name; no secret: plain; secret: libcluster's; keys: authenticated."""
    assert GossipStrategy.name == "gossip" and GossipStrategy.Options is GossipOptions
    assert isinstance(make_codec(GossipOptions()), PlainCodec)
    assert isinstance(make_codec(GossipOptions(secret="s")), SecretCodec)
    keys = GossipOptions(auth_keys=("k" * 16,), cluster_label="prod")
    assert isinstance(make_codec(keys), AuthenticatedCodec)


def test_ipv6_group_reads_the_default_if_addr_as_any() -> None:
    """With an IPv6 group, the default if_addr 0.0.0.0 means ``::``."""
    assert GossipOptions(multicast_addr="ff12::1").if_addr == "::"
    assert GossipOptions(multicast_addr="ff12::1").ipv6


BAD: dict[str, tuple[dict[str, Any], str]] = {
    "port 0": ({"port": 0}, "port"),
    "port text": ({"port": "45892"}, "port"),
    "ttl 256": ({"multicast_ttl": 256}, "multicast_ttl"),
    "bool as int": ({"multicast_ttl": True}, "multicast_ttl"),
    "not an address": ({"multicast_addr": "example.com"}, "multicast_addr"),
    "unicast group": ({"multicast_addr": "10.0.0.1"}, "multicast_addr"),
    "bad if_addr": ({"if_addr": "eth0"}, "if_addr"),
    "mixed families": ({"multicast_addr": "ff12::1", "if_addr": "127.0.0.1"}, "if_addr"),
    "v4 interface for v6": (
        {"multicast_addr": "ff12::1", "multicast_if": "10.0.0.1"},
        "multicast_if",
    ),
    "v6 interface for v4": ({"multicast_if": "fd00::1"}, "multicast_if"),
    "ipv6 broadcast": ({"multicast_addr": "ff02::1", "broadcast_only": True}, "broadcast_only"),
    "secret and keys": ({"secret": "s", "auth_keys": ("k" * 16,)}, "auth_keys"),
    "label without keys": ({"cluster_label": "prod"}, "cluster_label"),
    "empty secret": ({"secret": ""}, "secret"),
    "keys not strings": ({"auth_keys": (1,)}, "auth_keys"),
    "interval range": (
        {"heartbeat_interval_min": 10, "heartbeat_interval_max": 5},
        "heartbeat_interval_max",
    ),
    "zero reply interval": ({"reply_interval": 0}, "reply_interval"),
    "tiny packets": ({"max_packet_size": 10}, "max_packet_size"),
}


@pytest.mark.parametrize(("values", "option"), BAD.values(), ids=BAD.keys())
def test_bad_values_name_the_option(values: dict[str, Any], option: str) -> None:
    """Each wrong type or value is a ConfigError that names the option."""
    with pytest.raises(ConfigError, match=option):
        GossipOptions(**values)


def test_short_key_is_refused_with_the_options() -> None:
    """Keys under 16 bytes are refused when the topology is built, before anything runs."""
    with pytest.raises(ConfigError, match=r"auth_keys.*16"):
        GossipOptions(auth_keys=("k" * 16, "short"))


def test_topology_from_toml_shaped_config() -> None:
    """The runner builds our options from libcluster-shaped config (TOML lists -> tuples)
    and reports a bad one naming the topology and the option."""
    [topology] = topologies_from_dict(
        {
            "local": {
                "strategy": "gossip",
                "config": {"multicast_if": "127.0.0.1", "auth_keys": ["k" * 16, "j" * 16]},
            }
        }
    )
    assert topology.strategy_class is GossipStrategy
    assert topology.options.multicast_if == "127.0.0.1"
    assert topology.options.auth_keys == ("k" * 16, "j" * 16)
    with pytest.raises(ConfigError, match=r"topology 'local'.*multicast_ttl"):
        topologies_from_dict({"local": {"strategy": "gossip", "config": {"multicast_ttl": 999}}})
    with pytest.raises(ConfigError, match=r"topology 'local'.*'multicast_addres'"):
        topologies_from_dict(
            {"local": {"strategy": "gossip", "config": {"multicast_addres": "233.252.1.32"}}}
        )


def test_libcluster_module_name_resolves_to_gossip() -> None:
    """``Cluster.Strategy.Gossip`` (libcluster's module) names this strategy too."""
    [topology] = topologies_from_dict({"t": {"strategy": "Cluster.Strategy.Gossip"}})
    assert topology.strategy_class is GossipStrategy
