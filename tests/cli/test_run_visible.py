"""`nodemesh run --visible`: a visible node that takes part in global."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from conftest import COOKIE, NodeFactory


async def start_cli(*args: str, epmd_port: int) -> asyncio.subprocess.Process:
    env = {**os.environ, "ERL_EPMD_PORT": str(epmd_port)}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "nodemesh.cli", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip


async def read_line(proc: asyncio.subprocess.Process, timeout: float = 10) -> str:
    assert proc.stdout is not None
    return (await asyncio.wait_for(proc.stdout.readline(), timeout)).decode().rstrip("\n")


async def test_run_visible_takes_part_in_global(make_node: NodeFactory, epmd_port: int) -> None:
    """A visible peer's global_sync() completes with a `run --visible` node, which it
    could not with a node that ignores global."""
    anchor = await make_node("vanchor", hidden=False)
    proc = await start_cli(
        "run", "--visible", "--name", "vcli@127.0.0.1", "--cookie", COOKIE, epmd_port=epmd_port
    )
    try:
        assert proc.stderr is not None
        await asyncio.wait_for(proc.stderr.readline(), 10)  # started
        assert await anchor.connect("vcli@127.0.0.1")
        assert await read_line(proc) == f"nodeup {anchor.name}"
        await anchor.global_sync(timeout=10)
        assert "vcli@127.0.0.1" in anchor._global.state.synced  # type: ignore[union-attr]
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
