"""examples/seed001/app.py: "a" and "b" nodes, separate processes, call each other by
role, spread over the members, and keep being answered when a member is killed -9."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from conftest import NodeFactory

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "examples" / "seed001" / "app.py"


class App:
    """One running app.py and the lines it printed."""

    def __init__(self, proc: asyncio.subprocess.Process, name: str) -> None:
        self.proc, self.name = proc, name
        self.lines: list[str] = []

    async def wait_line(self, predicate: Callable[[str], bool], timeout: float = 20) -> str:
        """Read lines until one satisfies ``predicate``; return it."""
        assert self.proc.stdout is not None
        async with asyncio.timeout(timeout):
            while True:
                raw = await self.proc.stdout.readline()
                if not raw:
                    raise AssertionError(f"{self.name} exited: {self.lines[-5:]}")
                line = raw.decode().rstrip()
                self.lines.append(line)
                if predicate(line):
                    return line


@pytest.fixture
async def apps(
    make_node: NodeFactory, epmd_port: int, tmp_path: Path
) -> AsyncIterator[Callable[[str, str], Coroutine[Any, Any, App]]]:
    """Start app.py nodes on this test's EPMD; all stopped (SIGTERM, exit 0) after."""
    await make_node("epmd-owner")  # owns the embedded EPMD the apps register with
    started: list[App] = []

    async def start(kind: str, alive: str) -> App:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(APP),
            "--kind",
            kind,
            "--name",
            f"{alive}@127.0.0.1",
            "--cookie",
            "seed001",
            "--interval",
            "0.1",
            cwd=tmp_path,
            env={**os.environ, "ERL_EPMD_PORT": str(epmd_port), "HOME": str(tmp_path)},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        app = App(proc, f"{alive}@127.0.0.1")
        started.append(app)
        await app.wait_line(lambda line: "serving role" in line)
        return app

    yield start
    for app in started:
        if app.proc.returncode is None:
            app.proc.send_signal(signal.SIGTERM)
            _out, err = await asyncio.wait_for(app.proc.communicate(), 20)
            assert app.proc.returncode == 0, err.decode()[-2000:]


async def test_a_and_b_call_each_other_and_survive_a_kill(apps: Any) -> None:
    """a-0's calls reach both b's in turn, b's reach a-0; after b-1 is killed -9 every
    call of a-0 is still answered (by b-0), none fails."""
    a0, b0, b1 = await apps("a", "a-0"), await apps("b", "b-0"), await apps("b", "b-1")
    await a0.wait_line(lambda line: f"-> {b0.name}" in line)
    await a0.wait_line(lambda line: f"-> {b1.name}" in line)
    await b0.wait_line(lambda line: f"-> {a0.name}" in line)
    await b1.wait_line(lambda line: f"-> {a0.name}" in line)
    b1.proc.kill()
    await b1.proc.wait()
    seen = len(a0.lines)
    for _ in range(10):
        line = await a0.wait_line(lambda line: "call" in line or "failed" in line)
        assert "failed" not in line
    after = a0.lines[seen:]
    assert all(b0.name in line for line in after[-5:]), after
