"""The container entrypoint's logic, run under /bin/sh with a fake nodemesh on PATH."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import aiohttp

from support.entrypoint import ENTRYPOINT, run_entrypoint
from support.net import free_port

COOKIE = {"NODEMESH_COOKIE": "c00kie"}


def test_pod_ip_names_the_node_and_the_node_is_execed(tmp_path: Path) -> None:
    """With POD_IP the node is <basename>@<POD_IP>, run in the foreground by exec."""
    env = {**COOKIE, "POD_IP": "10.1.2.3", "NODEMESH_BASENAME": "chat"}
    result = run_entrypoint(tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert result.argv is not None and result.argv[:3] == ["run", "--name", "chat@10.1.2.3"]
    assert result.execed
    assert result.env is not None and result.env["NODEMESH_NAME"] == "chat@10.1.2.3"


def test_basename_defaults_to_nodemesh(tmp_path: Path) -> None:
    """Without NODEMESH_BASENAME the node is nodemesh@<ip>."""
    result = run_entrypoint(tmp_path, env={**COOKIE, "POD_IP": "10.1.2.3"})
    assert result.option("--name") == "nodemesh@10.1.2.3"


def test_ipv6_pod_ip_is_used_plainly(tmp_path: Path) -> None:
    """An IPv6 pod IP goes into the name as Erlang writes it: app@fd00::5."""
    env = {**COOKIE, "POD_IP": "fd00::5", "NODEMESH_BASENAME": "app"}
    assert run_entrypoint(tmp_path, env=env).option("--name") == "app@fd00::5"


def test_nodemesh_host_wins_over_pod_ip(tmp_path: Path) -> None:
    """NODEMESH_HOST (a StatefulSet pod's DNS name) is used before POD_IP."""
    host = "worker-0.worker-hl.default.svc.cluster.local"
    env = {**COOKIE, "POD_IP": "10.1.2.3", "NODEMESH_HOST": host, "NODEMESH_BASENAME": "worker"}
    assert run_entrypoint(tmp_path, env=env).option("--name") == f"worker@{host}"


def test_nodemesh_name_is_taken_as_is(tmp_path: Path) -> None:
    """A full NODEMESH_NAME is passed unchanged."""
    env = {**COOKIE, "NODEMESH_NAME": "a@b.example", "POD_IP": "10.1.2.3"}
    assert run_entrypoint(tmp_path, env=env).option("--name") == "a@b.example"


def test_hostname_i_gives_the_first_non_loopback_address(tmp_path: Path) -> None:
    """Without POD_IP the first non-loopback, non-link-local address of `hostname -i` is used."""
    result = run_entrypoint(
        tmp_path, env=COOKIE, hostname_i="127.0.1.1 fe80::42:acff:fe11:2 172.17.0.5 10.0.0.9"
    )
    assert result.option("--name") == "nodemesh@172.17.0.5"


def test_no_address_at_all_is_a_clear_error(tmp_path: Path) -> None:
    """Only loopback addresses: exit 78 (EX_CONFIG) saying to set POD_IP, nodemesh not run."""
    result = run_entrypoint(tmp_path, env=COOKIE, hostname_i="127.0.0.1 ::1")
    assert result.returncode == 78
    assert result.argv is None
    assert "POD_IP" in result.stderr and "NODEMESH_HOST" in result.stderr


def test_host_url_is_read_for_the_address(tmp_path: Path) -> None:
    """NODEMESH_HOST_URL (Rancher's metadata service) gives the address; a file URL here."""
    answer = tmp_path / "primary_ip"
    answer.write_text("10.42.96.65\n")
    env = {**COOKIE, "NODEMESH_HOST_URL": answer.as_uri(), "NODEMESH_BASENAME": "hello"}
    assert run_entrypoint(tmp_path, env=env).option("--name") == "hello@10.42.96.65"


def test_unreadable_host_url_fails(tmp_path: Path) -> None:
    """A host URL that cannot be read stops the start with a message naming it."""
    missing = (tmp_path / "nothing-here").as_uri()
    result = run_entrypoint(tmp_path, env={**COOKIE, "NODEMESH_HOST_URL": missing})
    assert result.returncode == 78 and result.argv is None
    assert missing in result.stderr


def test_cookie_file_becomes_the_environment_not_an_argument(tmp_path: Path) -> None:
    """A cookie file's content reaches nodemesh as NODEMESH_COOKIE, never as an argument."""
    secret = tmp_path / "cookie"
    secret.write_text("from-a-secret\n")
    env = {"NODEMESH_COOKIE_FILE": str(secret), "POD_IP": "10.1.2.3"}
    result = run_entrypoint(tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert result.env is not None and result.env["NODEMESH_COOKIE"] == "from-a-secret"
    assert result.argv is not None and "from-a-secret" not in result.argv


def test_missing_cookie_file_is_named(tmp_path: Path) -> None:
    """An explicit cookie file that does not exist is an error naming it."""
    env = {"NODEMESH_COOKIE_FILE": str(tmp_path / "absent"), "POD_IP": "10.1.2.3"}
    result = run_entrypoint(tmp_path, env=env)
    assert result.returncode == 78 and result.argv is None
    assert "absent" in result.stderr


def test_no_cookie_at_all_refuses_to_start(tmp_path: Path) -> None:
    """No cookie: refuse instead of letting the node invent one no peer shares."""
    result = run_entrypoint(tmp_path, env={"POD_IP": "10.1.2.3"})
    assert result.returncode == 78 and result.argv is None
    assert "NODEMESH_COOKIE" in result.stderr


def test_dist_port_and_options_are_passed_on(tmp_path: Path) -> None:
    """NODEMESH_DIST_PORT becomes --port, and options given to the container follow."""
    env = {**COOKIE, "POD_IP": "10.1.2.3", "NODEMESH_DIST_PORT": "9100"}
    result = run_entrypoint(tmp_path, "--strategy", "gossip", env=env)
    assert result.argv == [
        "run",
        "--name",
        "nodemesh@10.1.2.3",
        "--port",
        "9100",
        "--strategy",
        "gossip",
    ]


def test_run_is_accepted_explicitly(tmp_path: Path) -> None:
    """`run --config x` is the same as `--config x`."""
    env = {**COOKIE, "POD_IP": "10.1.2.3"}
    result = run_entrypoint(tmp_path, "run", "--config", "/etc/c.toml", env=env)
    assert result.argv == ["run", "--name", "nodemesh@10.1.2.3", "--config", "/etc/c.toml"]


def test_doctor_gets_the_node_name_and_needs_no_cookie(tmp_path: Path) -> None:
    """`doctor ...` runs nodemesh doctor with the computed name, even without a cookie."""
    result = run_entrypoint(tmp_path, "doctor", "--peer", "b@10.0.0.2", env={"POD_IP": "10.1.2.3"})
    assert result.returncode == 0, result.stderr
    assert result.argv == ["doctor", "--name", "nodemesh@10.1.2.3", "--peer", "b@10.0.0.2"]
    assert result.execed


def test_other_nodemesh_commands_run_as_given(tmp_path: Path) -> None:
    """`discover ...` is passed to nodemesh unchanged (no --name)."""
    result = run_entrypoint(tmp_path, "discover", "--format", "json", env={})
    assert result.argv == ["discover", "--format", "json"]


def test_any_other_command_is_executed(tmp_path: Path) -> None:
    """`sh -c ...` runs as is, for debugging in the container."""
    result = run_entrypoint(tmp_path, "sh", "-c", "echo hello from a shell", env={})
    assert result.returncode == 0
    assert result.stdout == "hello from a shell\n"
    assert result.argv is None


def test_bad_basename_is_refused(tmp_path: Path) -> None:
    """A basename Erlang would refuse is an error before anything starts."""
    env = {**COOKIE, "POD_IP": "10.1.2.3", "NODEMESH_BASENAME": "my app"}
    result = run_entrypoint(tmp_path, env=env)
    assert result.returncode == 78 and "NODEMESH_BASENAME" in result.stderr


async def test_the_real_node_runs_in_the_foreground_and_stops_on_sigterm(
    tmp_path: Path, epmd_port: int
) -> None:
    """The real node the script execs serves /healthz and exits 0 on SIGTERM to the script."""
    health = free_port()
    env = {
        "PATH": os.pathsep.join([os.path.dirname(sys.executable), "/usr/bin", "/bin"]),
        "HOME": str(tmp_path),
        "NODEMESH_COOKIE": "c00kie",
        "POD_IP": "127.0.0.1",
        "NODEMESH_BASENAME": "entry",
        "NODEMESH_DIST_PORT": str(free_port()),
        "NODEMESH_HEALTH_PORT": str(health),
        "ERL_EPMD_PORT": str(epmd_port),
    }
    proc = await asyncio.create_subprocess_exec(
        "/bin/sh", str(ENTRYPOINT), env=env, stderr=asyncio.subprocess.PIPE
    )
    assert proc.stderr is not None
    try:
        started = await asyncio.wait_for(proc.stderr.readline(), 30)
        assert started.decode().strip() == "started entry@127.0.0.1"
        await asyncio.wait_for(proc.stderr.readline(), 10)  # "health on ..."
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{health}/healthz") as answer,
        ):
            assert answer.status == 200
            assert (await answer.json())["node"] == "entry@127.0.0.1"
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
