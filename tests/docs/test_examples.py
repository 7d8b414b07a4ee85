"""examples/echo.py does what its docstring promises, for a node that talks to it."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from conftest import NodeFactory
from nodemesh import Atom

ROOT = Path(__file__).resolve().parents[2]


async def test_echo_example_answers_pings_messages_and_rpc(
    make_node: NodeFactory, epmd_port: int, tmp_path: Path
) -> None:
    """Ping, {Pid, hello} -> {echo, hello}, math:add(1, 2) -> 3; Ctrl-C exits 0."""
    caller = await make_node("e", cookie="secret")  # owns the EPMD echo.py registers with
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "examples" / "echo.py"),
        cwd=tmp_path,
        env={**os.environ, "ERL_EPMD_PORT": str(epmd_port), "HOME": str(tmp_path)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        ready = await asyncio.wait_for(proc.stdout.readline(), 20)
        assert ready.startswith(b"echo@127.0.0.1 ready")
        assert await caller.ping("echo@127.0.0.1")
        inbox = caller.mailbox()
        await caller.send(("echo", "echo@127.0.0.1"), (inbox.pid, Atom("hello")))
        assert await inbox.receive(timeout=10) == (Atom("echo"), Atom("hello"))
        assert await caller.rpc("echo@127.0.0.1", "math", "add", [1, 2]) == 3
    finally:
        proc.send_signal(signal.SIGINT)
        _out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0, err.decode()
