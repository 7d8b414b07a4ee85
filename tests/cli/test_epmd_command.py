"""`nodemesh epmd` as a newcomer runs it next to a node that already started one."""

from __future__ import annotations

import asyncio
import os
import sys

from conftest import NodeFactory


async def test_epmd_on_a_port_an_epmd_holds_says_so(make_node: NodeFactory, epmd_port: int) -> None:
    """The port is a node's embedded EPMD: exit 1, and the line says nothing needs starting."""
    await make_node("holder")  # starts the embedded EPMD on epmd_port
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "nodemesh.cli",
        "epmd",
        env={**os.environ, "ERL_EPMD_PORT": str(epmd_port)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 1
    assert f"an EPMD already answers on port {epmd_port}" in err.decode()
    assert "`nodemesh names`" in err.decode()
