"""The Compose example: its configuration loads, and the name a container takes at start
is the one dns_poll dials (no Docker engine here: the entrypoint runs with a fake
`hostname -i` giving a container's address)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from nodemesh.cluster import topologies_from_env
from nodemesh.dist.names import parse_node_name
from nodemesh.doctor.result import Status
from nodemesh.doctor.strategies import check_naming
from support.entrypoint import ROOT, run_entrypoint

COMPOSE = ROOT / "deploy" / "docker" / "compose.yaml"


def service_env() -> dict[str, str]:
    service = yaml.safe_load(COMPOSE.read_text())["services"]["chat"]
    env = {k: str(v) for k, v in service["environment"].items()}
    # ${VAR:?message}: Compose refuses to start without it; here a sample value.
    return {k: re.sub(r"\$\{[^}]*\}", "sample-cookie", v) for k, v in env.items()}


def test_the_query_is_the_service_name() -> None:
    """dns_poll asks for the Compose service's own name, which lists every replica."""
    document = yaml.safe_load(COMPOSE.read_text())
    (name,) = document["services"]
    assert service_env()["NODEMESH_STRATEGY_QUERY"] == name
    assert document["services"][name]["build"]["context"] == "../.."


def test_a_container_takes_the_name_peers_dial(tmp_path: Path) -> None:
    """A container at 172.18.0.3 runs as chat@172.18.0.3, the name dns_poll dials."""
    env = service_env()
    (topology,) = topologies_from_env(env)
    assert topology.strategy == "dns_poll"
    result = run_entrypoint(tmp_path, env=env, hostname_i="172.18.0.3")
    assert result.returncode == 0, result.stderr
    name = result.option("--name")
    assert name == "chat@172.18.0.3"
    statuses = [r.status for r in check_naming(topology, parse_node_name(name))]
    assert statuses == [Status.PASS]


def test_cookie_is_required_not_defaulted() -> None:
    """The cookie comes from the user's environment; Compose stops if it is unset."""
    raw = yaml.safe_load(COMPOSE.read_text())["services"]["chat"]["environment"]
    assert raw["NODEMESH_COOKIE"].startswith("${NODEMESH_COOKIE:?")
