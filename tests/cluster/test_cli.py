"""`nodemesh run --strategy` / `--config` form the cluster, as real processes."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from conftest import COOKIE, NodeFactory


async def start_cli(*args: str, epmd_port: int, **env: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "nodemesh.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "ERL_EPMD_PORT": str(epmd_port), **env},
    )


async def read_line(proc: asyncio.subprocess.Process, timeout: float = 15) -> str:
    assert proc.stdout is not None
    return (await asyncio.wait_for(proc.stdout.readline(), timeout)).decode().rstrip("\n")


async def stop(proc: asyncio.subprocess.Process) -> int:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
    return await asyncio.wait_for(proc.wait(), 15)


async def test_run_with_a_strategy_joins_the_cluster(
    make_node: NodeFactory, epmd_port: int
) -> None:
    """`nodemesh run --strategy local_epmd` connects to the node already on this host."""
    anchor = await make_node("anchor")
    proc = await start_cli(
        "run", "--name", "cli@127.0.0.1", "--cookie", COOKIE, "--strategy", "local_epmd",
        epmd_port=epmd_port,
    )  # fmt: skip
    try:
        assert await read_line(proc) == f"nodeup {anchor.name}"
        assert anchor.is_connected("cli@127.0.0.1")
        assert await stop(proc) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_run_with_a_config_file_and_from_the_environment(
    make_node: NodeFactory, epmd_port: int, tmp_path: Path
) -> None:
    """`--config cluster.toml` and $NODEMESH_STRATEGY both start the topologies."""
    anchor = await make_node("anchor")
    config = tmp_path / "cluster.toml"
    config.write_text(f'[topologies.s]\nstrategy = "epmd"\nconfig.hosts = ["{anchor.name}"]\n')
    by_file = await start_cli(
        "run", "--name", "f@127.0.0.1", "--cookie", COOKIE, "--config", str(config),
        epmd_port=epmd_port,
    )  # fmt: skip
    by_env = await start_cli(
        "run", "--name", "e@127.0.0.1", "--cookie", COOKIE,
        epmd_port=epmd_port, NODEMESH_STRATEGY="epmd", NODEMESH_STRATEGY_HOSTS=anchor.name,
    )  # fmt: skip
    try:
        assert await read_line(by_file) == f"nodeup {anchor.name}"
        assert await read_line(by_env) == f"nodeup {anchor.name}"
        assert await stop(by_file) == 0 and await stop(by_env) == 0
    finally:
        for proc in (by_file, by_env):
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


async def test_run_with_a_bad_config_fails_before_starting(epmd_port: int, tmp_path: Path) -> None:
    """A bad topology is one error line naming topology and option, and exit status 1."""
    config = tmp_path / "cluster.toml"
    config.write_text('[topologies.lan]\nstrategy = "epmd"\nconfig = { hostz = [] }\n')
    proc = await start_cli(
        "run", "--name", "x@127.0.0.1", "--cookie", "c", "--config", str(config),
        epmd_port=epmd_port,
    )  # fmt: skip
    _out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 1
    text = err.decode()
    assert "topology 'lan': unknown option 'hostz'" in text and "started" not in text
    proc = await start_cli(
        "run", "--name", "x@127.0.0.1", "--cookie", "c", "--strategy", "carrier_pigeon",
        epmd_port=epmd_port,
    )  # fmt: skip
    _out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 1 and "unknown strategy 'carrier_pigeon'" in err.decode()
