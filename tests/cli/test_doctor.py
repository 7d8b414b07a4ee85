"""`nodemesh doctor` as a user runs it: a line per check, a fix per problem, a verdict."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from conftest import COOKIE, NodeFactory


async def doctor(*args: str, env: dict[str, str]) -> tuple[int, list[str]]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("NODEMESH_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "nodemesh.cli",
        "doctor",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**environment, **env},
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert "Traceback" not in err.decode(), err.decode()
    assert proc.returncode is not None
    return proc.returncode, out.decode().splitlines()


async def test_wrong_cookie_is_a_fail_line_a_fix_and_a_broken_verdict(
    make_node: NodeFactory, epmd_port: int, tmp_path: Path
) -> None:
    """Against a real node with another cookie: "cookies differ", the fix, exit 1."""
    peer = await make_node("peer")
    env = {"ERL_EPMD_PORT": str(epmd_port), "HOME": str(tmp_path), "NODEMESH_COOKIE": "other"}
    code, lines = await doctor("--name", "me@127.0.0.1", "--peer", peer.name, env=env)
    assert code == 1
    fail = lines.index(next(line for line in lines if line.startswith("FAIL  cookie with")))
    assert "cookies differ" in lines[fail]
    assert lines[fail + 1].startswith("      fix: give both nodes the same cookie")
    assert lines[-1].startswith("verdict: BROKEN - 1 problem stops nodes from connecting")


async def test_a_healthy_setup_passes(
    make_node: NodeFactory, epmd_port: int, tmp_path: Path
) -> None:
    """Cookie, EPMD, port and handshake fine: every line PASS or WARN, exit 0."""
    peer = await make_node("peer")
    env = {"ERL_EPMD_PORT": str(epmd_port), "HOME": str(tmp_path), "NODEMESH_COOKIE": COOKIE}
    code, lines = await doctor("--name", "me@127.0.0.1", "--peer", peer.name, env=env)
    assert code == 0, lines
    assert all(line.startswith(("PASS", "WARN", "      fix:")) for line in lines[:-1])
    assert lines[-1].startswith("verdict: OK")


async def test_strategy_config_needing_missing_files(tmp_path: Path) -> None:
    """The kubernetes strategy without a service-account token: FAILs with the fix."""
    env = {
        "HOME": str(tmp_path),
        "NODEMESH_COOKIE": COOKIE,
        "NODEMESH_STRATEGY": "kubernetes",
        "NODEMESH_STRATEGY_KUBERNETES_NODE_BASENAME": "sample",
        "NODEMESH_STRATEGY_KUBERNETES_SELECTOR": "app=sample",
        "NODEMESH_STRATEGY_KUBERNETES_SERVICE_ACCOUNT_PATH": str(tmp_path / "sa"),
        "ERL_EPMD_PORT": "1",
    }
    code, lines = await doctor("--name", "sample@127.0.0.1", env=env)
    assert code == 1
    token = next(line for line in lines if line.startswith("FAIL  service account files"))
    assert str(tmp_path / "sa" / "token") in token
    assert any("automountServiceAccountToken" in line for line in lines)
    assert any(line.startswith("FAIL  discovery of topology 'kubernetes'") for line in lines)


async def test_unresolvable_name_and_bad_config(tmp_path: Path) -> None:
    """A host that does not resolve and an unknown option: two FAILs, one verdict."""
    env = {
        "HOME": str(tmp_path),
        "NODEMESH_COOKIE": COOKIE,
        "NODEMESH_STRATEGY": "epmd",
        "NODEMESH_STRATEGY_HOSTZ": "a@b.example",
        "ERL_EPMD_PORT": "1",
    }
    code, lines = await doctor("--name", "app@nowhere.invalid", env=env)
    assert code == 1
    fails = [line for line in lines if line.startswith("FAIL")]
    assert fails[0].startswith("FAIL  node name: app@nowhere.invalid: the host nowhere.invalid")
    assert fails[1].startswith("FAIL  cluster config: topology 'epmd': unknown option 'hostz'")
    assert lines[-1].startswith("verdict: BROKEN - 2 problems stop")


async def test_foreign_multicast_if_given_by_option_fails_with_the_fix(tmp_path: Path) -> None:
    """--strategy gossip --option multicast_if=<not this host's>: a FAIL line and its fix."""
    from support.gossip_node import free_udp_port

    env = {"HOME": str(tmp_path), "NODEMESH_COOKIE": COOKIE, "ERL_EPMD_PORT": "1"}
    code, lines = await doctor(
        "--name",
        "me@127.0.0.1",
        "--strategy",
        "gossip",
        "--option",
        "multicast_if=203.0.113.254",
        "--option",
        f"port={free_udp_port()}",
        "--wait",
        "0.2",
        env=env,
    )
    assert code == 1
    fail = lines.index(
        "FAIL  gossip multicast_if 203.0.113.254: '203.0.113.254' is not an address "
        "of this host: heartbeats cannot be sent from it"
    )
    assert lines[fail + 1].startswith("      fix: set multicast_if to this host's address")
