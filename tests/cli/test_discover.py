"""`nodemesh discover` as a user runs it: real processes, names on stdout, errors on stderr."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from conftest import NodeFactory
from support.dns import Dnsmasq, require_dnsmasq
from support.kube_api import endpoint_slice, running_api, slice_endpoint


async def discover(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("NODEMESH_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "nodemesh.cli",
        "discover",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**environment, **(env or {})},
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_prints_names_one_per_line_from_the_environment() -> None:
    """With $NODEMESH_STRATEGY (as `run` takes it): the names, sorted, nothing else."""
    env = {"NODEMESH_STRATEGY": "epmd", "NODEMESH_STRATEGY_HOSTS": "b@10.0.0.2,a@10.0.0.1"}
    code, out, err = await discover(env=env)
    assert (code, out, err) == (0, "a@10.0.0.1\nb@10.0.0.2\n", "")


async def test_several_topologies_are_prefixed(
    tmp_path: Path, make_node: NodeFactory, epmd_port: int
) -> None:
    """Two topologies print `topology name` lines; local_epmd lists without connecting."""
    registered = await make_node("listed")
    config = tmp_path / "cluster.toml"
    config.write_text(
        '[topologies.seeds]\nstrategy = "epmd"\nconfig = { hosts = ["x@10.0.0.9"] }\n'
        '[topologies.here]\nstrategy = "local_epmd"\n'
    )
    env = {"ERL_EPMD_PORT": str(epmd_port)}
    code, out, _ = await discover("--config", str(config), "--name", "d@127.0.0.1", env=env)
    assert code == 0
    assert out.splitlines() == ["seeds x@10.0.0.9", f"here {registered.name}"]
    assert registered.nodes() == []  # discovered, not connected


async def test_json_format(tmp_path: Path) -> None:
    """--format json: per topology its strategy, nodes and error."""
    env = {"NODEMESH_STRATEGY": "epmd", "NODEMESH_STRATEGY_HOSTS": "a@10.0.0.1"}
    code, out, _ = await discover("--format", "json", env=env)
    assert code == 0
    assert json.loads(out) == {"epmd": {"strategy": "epmd", "nodes": ["a@10.0.0.1"], "error": None}}


async def test_failed_discovery_exits_1_with_the_reason(tmp_path: Path) -> None:
    """A lookup that fails: exit 1 and one line naming the topology, strategy and cause."""
    hosts = tmp_path / ".hosts.erlang"
    hosts.write_text("{not, a, host}.\n")
    code, out, err = await discover(
        "--strategy", "erlang_hosts", env={"HOME": str(tmp_path), "PWD": str(tmp_path)}
    )
    assert code == 1 and out == ""
    assert err.startswith("nodemesh discover: topology 'erlang_hosts' (erlang_hosts): discovery")
    assert "Traceback" not in err


async def test_no_topology_is_a_usage_error() -> None:
    """Nothing configured: exit 1 saying how to configure."""
    code, _, err = await discover()
    assert code == 1 and "--config or --strategy" in err


async def test_bad_config_is_one_line() -> None:
    """An unknown option is the loader's message, exit 1."""
    env = {"NODEMESH_STRATEGY": "epmd", "NODEMESH_STRATEGY_HOSTZ": "a@b.c"}
    code, _, err = await discover(env=env)
    assert code == 1 and "unknown option 'hostz'" in err


async def test_nothing_found_says_so_on_stderr() -> None:
    """An empty answer prints no names and says so on stderr, exit 0."""
    code, out, err = await discover(env={"NODEMESH_STRATEGY": "epmd"})
    assert (code, out) == (0, "")
    assert "found no nodes" in err


async def test_kubernetes_names_from_the_served_api(tmp_path: Path) -> None:
    """Against the served API only ready pods are printed, and a 403 exits 1 saying why."""
    async with running_api(tmp_path) as api:
        entries = [
            slice_endpoint("10.1.0.1", "sample-a", "default"),
            slice_endpoint("10.1.0.2", "sample-b", "default"),
            slice_endpoint("10.1.0.3", "sample-c", "default", ready=False),
            slice_endpoint("10.1.0.4", "sample-d", "default", terminating=True, ready=False),
        ]
        api.put("endpointslices", endpoint_slice("sample-x1", "default", "sample", entries))
        sa = api.service_account()
        env = {
            "KUBERNETES_SERVICE_HOST": "127.0.0.1",
            "KUBERNETES_SERVICE_PORT": str(api.port),
            "NODEMESH_STRATEGY": "kubernetes",
            "NODEMESH_STRATEGY_KUBERNETES_NODE_BASENAME": "sample",
            "NODEMESH_STRATEGY_KUBERNETES_SELECTOR": "app=sample",
            "NODEMESH_STRATEGY_KUBERNETES_IP_LOOKUP_MODE": "endpointslices",
            "NODEMESH_STRATEGY_KUBERNETES_SERVICE_ACCOUNT_PATH": str(sa),
        }
        code, out, err = await discover(env=env)
        api.forbidden.add(("list", "endpointslices"))
        denied = await discover(env=env)
    assert (code, out, err) == (0, "sample@10.1.0.1\nsample@10.1.0.2\n", "")
    code, out, err = denied
    assert (code, out) == (1, "")
    assert "403 Forbidden" in err and 'lacks verb "list"' in err


async def test_statefulset_names_from_a_real_dns_server(tmp_path: Path) -> None:
    """kubernetes_dnssrv against dnsmasq serving a StatefulSet's SRV records."""
    srv = "worker-hl.default.svc.cluster.local"
    async with Dnsmasq(tmp_path, executable=require_dnsmasq()) as server:
        await server.set_srv({srv: [f"worker-{i}.{srv}" for i in range(3)]})
        env = {
            "CLUSTER_DOMAIN": "cluster.local.",
            "NODEMESH_STRATEGY": "kubernetes_dnssrv",
            "NODEMESH_STRATEGY_SERVICE": "worker-hl",
            "NODEMESH_STRATEGY_NAMESPACE": "default",
            "NODEMESH_STRATEGY_APPLICATION_NAME": "worker",
            "NODEMESH_STRATEGY_NAMESERVERS": server.nameserver,
        }
        code, out, err = await discover(env=env)
    assert code == 0, err
    assert out.splitlines() == [f"worker@worker-{i}.{srv}" for i in range(3)]
