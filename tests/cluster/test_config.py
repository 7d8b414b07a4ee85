"""Topology configuration from dicts, TOML and the environment, checked before start."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest

from nodemesh.cluster import (
    ClusterConfig,
    Hooks,
    Topology,
    load_toml,
    resolve_strategy,
    topologies_from_dict,
    topologies_from_env,
)
from nodemesh.cluster._options import EnvText, build_options
from nodemesh.cluster.strategies.epmd import EpmdStrategy
from nodemesh.cluster.strategies.erlang_hosts import ErlangHostsStrategy
from nodemesh.cluster.strategies.local_epmd import LocalEpmdStrategy
from nodemesh.errors import ConfigError


async def connect_hook(node: str) -> bool:
    return True


def list_hook() -> list[str]:
    return []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"strategy": "nope"},
            "topology 't': unknown strategy 'nope'; known strategies: dns_poll, epmd",
        ),
        ({"strategy": "kubernetes"}, "topology 't': option 'kubernetes_node_basename' is required"),
        ({"config": {}}, "topology 't': 'strategy' is required"),
        ({"strategy": 5}, "topology 't': 'strategy' must be a string"),
        ({"strategy": "epmd", "confg": {}}, "topology 't': unknown key 'confg'"),
        ({"strategy": "epmd", "config": []}, "topology 't': 'config' must be a table"),
        (
            {"strategy": "epmd", "config": {"host": []}},
            "topology 't': unknown option 'host' (did you mean 'hosts'?); valid options: "
            "hosts, timeout",
        ),
        (
            {"strategy": "epmd", "config": {"hosts": "a@h.example"}},
            "topology 't': option 'hosts' must be a list of strings, got the string 'a@h.example'",
        ),
        (
            {"strategy": "epmd", "config": {"hosts": ["a@h.example", 7]}},
            "topology 't': option 'hosts' must be a list of strings",
        ),
        (
            {"strategy": "epmd", "config": {"hosts": ["nohost"]}},
            "topology 't': option 'hosts': node name 'nohost' has no '@'",
        ),
        (
            {"strategy": "epmd", "config": {"timeout": "soon"}},
            "topology 't': option 'timeout' must be an integer or 'infinity', got the string",
        ),
        (
            {"strategy": "epmd", "config": {"timeout": True}},
            "topology 't': option 'timeout' must be an integer or 'infinity', got the boolean",
        ),
        (
            {"strategy": "epmd", "config": {"timeout": 0}},
            "topology 't': option 'timeout' must be a positive number of ms",
        ),
        (
            {"strategy": "erlang_hosts", "config": {"timeout": 1.5}},
            "topology 't': option 'timeout' must be an integer or 'infinity', got the number 1.5",
        ),
        (
            {"strategy": "local_epmd", "config": {"polling_interval": -1}},
            "topology 't': option 'polling_interval' must be a positive number of ms",
        ),
        ({"strategy": "epmd", "prune": "yes"}, "topology 't': option 'prune' must be true or"),
        ({"strategy": "epmd", "connect": "no_such_module:f"}, "topology 't': hook 'connect'"),
        (
            {"strategy": "epmd", "connect": f"{__name__}:list_hook"},
            "topology 't': hook 'connect' must be an async function",
        ),
        (
            {"strategy": "epmd", "list_nodes": f"{__name__}:connect_hook"},
            "topology 't': hook 'list_nodes' must be a plain (not async) function",
        ),
        ({"strategy": "no.such.module:Strategy"}, "topology 't': strategy 'no.such.module"),
        ({"strategy": "pathlib:Path"}, "is not a subclass of nodemesh.cluster.strategy.Strategy"),
        ("epmd", "topology 't' must be a table with a 'strategy'"),
    ],
)
def test_bad_topologies_are_refused_naming_topology_and_option(body: Any, message: str) -> None:
    """Each configuration mistake is a ConfigError that names the topology and the option."""
    with pytest.raises(ConfigError) as info:
        topologies_from_dict({"t": body})
    assert message in str(info.value)


@pytest.mark.parametrize("name", ["", "has space", "a.b", "x" * 65, "ünï"])
def test_bad_topology_names_are_refused(name: str) -> None:
    """Topology names are 1-64 letters, digits, '_' or '-' (they appear in env variables)."""
    with pytest.raises(ConfigError, match="topology name"):
        topologies_from_dict({name: {"strategy": "epmd"}})


def test_a_topology_from_a_dict_has_typed_options_and_hooks() -> None:
    """Lists become tuples, defaults fill in, and "module:function" hooks are loaded."""
    [t] = topologies_from_dict(
        {
            "static": {
                "strategy": "Cluster.Strategy.Epmd",  # libcluster's module name works too
                "config": {"hosts": ["a@h1.example", "b@h2.example"], "timeout": 500},
                "prune": False,
                "connect": f"{__name__}:connect_hook",
                "list_nodes": f"{__name__}:list_hook",
            }
        }
    )
    assert t.name == "static" and t.strategy == "epmd" and t.prune is False
    assert t.options == EpmdStrategy.Options(hosts=("a@h1.example", "b@h2.example"), timeout=500)
    assert t.hooks == Hooks(connect=connect_hook, list_nodes=list_hook)
    assert topologies_from_dict({"e": {"strategy": "epmd"}})[0].options.timeout == "infinity"


def test_toml_mirrors_libcluster(tmp_path: Path) -> None:
    """A TOML file with [topologies.<name>] tables loads every built-in strategy."""
    path = tmp_path / "cluster.toml"
    path.write_text(
        """
[topologies.local]
strategy = "gossip"
[topologies.local.config]
multicast_if = "127.0.0.1"

[topologies.static]
strategy = "epmd"
config = { hosts = ["a@10.0.0.1", "b@10.0.0.2"], timeout = 30_000 }

[topologies.hosts]
strategy = "erlang_hosts"

[topologies.box]
strategy = "local_epmd"
prune = false
"""
    )
    local, static, hosts, box = load_toml(path)
    assert local.strategy == "gossip" and local.options.multicast_if == "127.0.0.1"
    assert static.options == EpmdStrategy.Options(("a@10.0.0.1", "b@10.0.0.2"), 30_000)
    assert hosts.options == ErlangHostsStrategy.Options()
    assert box.options == LocalEpmdStrategy.Options(5000) and not box.prune


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[topologies.x\nstrategy = 1", "is not valid TOML"),
        ("[topology.x]\nstrategy = 'epmd'", "unknown table 'topology'"),
        ("[topologies.x]\nstrategy = 'epmd'\nconfig = { timeout = '5s' }", "option 'timeout'"),
    ],
)
def test_bad_toml_files_are_refused(tmp_path: Path, text: str, message: str) -> None:
    """Syntax errors, unknown tables and bad values in a file are ConfigErrors."""
    path = tmp_path / "cluster.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_toml(path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_toml(tmp_path / "missing.toml")


def test_environment_shorthand_and_full_form() -> None:
    """NODEMESH_STRATEGY(_<OPTION>) and NODEMESH_TOPOLOGIES__<NAME>__... build topologies
    with values parsed from text."""
    env = {
        "NODEMESH_STRATEGY": "epmd",
        "NODEMESH_STRATEGY_HOSTS": "a@h1.example, b@h2.example",
        "NODEMESH_STRATEGY_TIMEOUT": "2500",
        "NODEMESH_TOPOLOGIES__BOX__STRATEGY": "local_epmd",
        "NODEMESH_TOPOLOGIES__BOX__PRUNE": "false",
        "NODEMESH_TOPOLOGIES__BOX__CONFIG__POLLING_INTERVAL": "1_000",
        "NODEMESH_COOKIE": "unrelated",
    }
    box, epmd = topologies_from_env(env)
    assert (box.name, box.options, box.prune) == ("box", LocalEpmdStrategy.Options(1000), False)
    assert epmd.name == "epmd"
    assert epmd.options == EpmdStrategy.Options(("a@h1.example", "b@h2.example"), 2500)
    assert topologies_from_env({}) == []


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    """NODEMESH_CLUSTER_CONFIG names a file; variables override its values."""
    path = tmp_path / "cluster.toml"
    path.write_text("[topologies.s]\nstrategy = 'epmd'\nconfig = { hosts = ['a@h.example'] }\n")
    env = {
        "NODEMESH_CLUSTER_CONFIG": str(path),
        "NODEMESH_TOPOLOGIES__S__CONFIG__TIMEOUT": "infinity",
        "NODEMESH_TOPOLOGIES__S__CONFIG__HOSTS": "b@h.example",
    }
    [s] = topologies_from_env(env)
    assert s.options == EpmdStrategy.Options(("b@h.example",), "infinity")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"NODEMESH_STRATEGY": "nope"}, "topology 'nope': unknown strategy 'nope'"),
        (
            {"NODEMESH_STRATEGY": "epmd", "NODEMESH_STRATEGY_TIMEOUT": "soon"},
            "topology 'epmd': option 'timeout' must be an integer or 'infinity', got 'soon' "
            "(from $NODEMESH_STRATEGY_TIMEOUT)",
        ),
        (
            {"NODEMESH_STRATEGY": "epmd", "NODEMESH_STRATEGY_HOST": "a@b.c"},
            "topology 'epmd': unknown option 'host' (did you mean 'hosts'?)",
        ),
        ({"NODEMESH_STRATEGY_HOSTS": "a@b.c"}, "$NODEMESH_STRATEGY_HOSTS is set but"),
        (
            {"NODEMESH_TOPOLOGIES__X__STRATEGY": "epmd", "NODEMESH_TOPOLOGIES__X__PRUNE": "maybe"},
            "topology 'x': option 'prune' must be true or false, got 'maybe'",
        ),
        ({"NODEMESH_TOPOLOGIES__X__HOSTS": "a@b.c"}, "expected NODEMESH_TOPOLOGIES__<NAME>"),
        ({"NODEMESH_TOPOLOGIES__X__CONFIG__HOSTS": "a@b.c"}, "topology 'x': 'strategy' is"),
        ({"NODEMESH_CLUSTER_CONFIG": "/nonexistent/cluster.toml"}, "cannot read cluster config"),
    ],
)
def test_bad_environment_is_refused(env: dict[str, str], message: str) -> None:
    """Environment mistakes name the topology, the option and the variable."""
    with pytest.raises(ConfigError) as info:
        topologies_from_env(env)
    assert message in str(info.value)


@dataclass(frozen=True, slots=True)
class Inner:
    depth: int = 1


@dataclass(frozen=True, slots=True)
class Everything:
    name: str
    ratio: float = 0.5
    flag: bool = False
    secret: str | None = None
    mode: Literal["ip", "dns"] = "ip"
    tags: frozenset[str] = frozenset()
    ports: list[int] | None = None
    inner: Inner = Inner()
    iface: str | int | None = None


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"name": "n"}, Everything("n")),
        ({"name": "n", "ratio": 2}, Everything("n", ratio=2.0)),
        ({"name": "n", "secret": None, "mode": "dns"}, Everything("n", mode="dns")),
        ({"name": "n", "tags": ["a", "b"]}, Everything("n", tags=frozenset({"a", "b"}))),
        ({"name": "n", "inner": {"depth": 3}}, Everything("n", inner=Inner(3))),
        (
            {
                "name": EnvText("n", "V"),
                "ratio": EnvText("1e-1", "V"),
                "flag": EnvText("YES", "V"),
                "secret": EnvText("s3", "V"),
                "ports": EnvText("1, 2,3", "V"),
            },
            Everything("n", ratio=0.1, flag=True, secret="s3", ports=[1, 2, 3]),
        ),
        ({"name": EnvText("n", "V"), "ports": EnvText("none", "V")}, Everything("n")),
        (
            {"name": "n", "secret": EnvText("none", "V"), "iface": EnvText("3", "V")},
            Everything("n", secret=None, iface=3),  # text tries str last
        ),
        ({"name": "n", "iface": EnvText("eth0", "V")}, Everything("n", iface="eth0")),
    ],
)
def test_converter_follows_the_annotations(values: dict[str, Any], expected: Everything) -> None:
    """The generic converter turns TOML, dict and environment values into the dataclass."""
    assert build_options(Everything, values, where="here") == expected


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({}, "here: option 'name' is required"),
        ({"name": 1}, "here: option 'name' must be a string, got the integer 1"),
        ({"name": "n", "ratio": "x"}, "option 'ratio' must be a number, got the string 'x'"),
        ({"name": "n", "flag": 1}, "option 'flag' must be true or false, got the integer 1"),
        ({"name": "n", "mode": "pod"}, "option 'mode' must be 'ip' or 'dns'"),
        ({"name": "n", "ports": [1, "2"]}, "option 'ports' must be a list of integers or none"),
        ({"name": "n", "inner": {"deep": 1}}, "unknown option 'deep'"),
        ({"name": "n", "flag": EnvText("maybe", "FLAG")}, "got 'maybe' (from $FLAG)"),
    ],
)
def test_converter_explains_mismatches(values: dict[str, Any], message: str) -> None:
    """A value that does not fit its annotation is a ConfigError saying what was expected."""
    with pytest.raises(ConfigError) as info:
        build_options(Everything, values, where="here")
    assert message in str(info.value)


def test_topology_objects_check_their_parts() -> None:
    """Building a Topology directly checks the options' type and the hooks."""
    options = EpmdStrategy.Options()
    assert Topology("ok", EpmdStrategy, options).strategy == "epmd"
    with pytest.raises(ConfigError, match=r"options must be a EpmdStrategy\.Options"):
        Topology("t", EpmdStrategy, LocalEpmdStrategy.Options())
    with pytest.raises(ConfigError, match="hooks must be a Hooks"):
        Topology("t", EpmdStrategy, options, hooks={})  # type: ignore[arg-type]
    assert resolve_strategy("Elixir.Cluster.Strategy.ErlangHosts") is ErlangHostsStrategy
    assert resolve_strategy("local-epmd") is LocalEpmdStrategy


@pytest.mark.parametrize(
    "bad",
    [
        {"polling_jitter": 1.0},
        {"retry_min_delay": 0},
        {"retry_max_delay": 0.1, "retry_min_delay": 1.0},
        {"max_parallel_connects": 0},
        {"connect_timeout": "10"},
    ],
)
def test_cluster_config_is_validated(bad: dict[str, Any]) -> None:
    """ClusterConfig refuses impossible timings on construction."""
    with pytest.raises(ConfigError):
        ClusterConfig(**bad)
