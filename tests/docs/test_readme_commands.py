"""The README's "Use it" commands, run as written: two nodes form a cluster, then ping,
discover, doctor and names answer about it.

The command lines are read from README.md itself. What the test changes around them, so
that it cannot meet another run on this host: a private ``$ERL_EPMD_PORT`` and ``$HOME``,
and a private gossip port (``$NODEMESH_STRATEGY_PORT`` for ``--strategy gossip``, and
``port = ...`` added to a copy of ``examples/cluster.toml``). ``pip install -e .`` is
skipped: the suite already runs from the installed package.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import shutil
import signal
import sys
from pathlib import Path

import pytest

from support.gossip_node import free_udp_port
from support.net import free_port

ROOT = Path(__file__).resolve().parents[2]

#: What each command prints about the two running nodes.
EXPECTED = {
    "ping": ["pong\n"],
    "discover": [
        f"{topology} {node}\n"
        for topology in ("lan", "this_host")
        for node in ("a@127.0.0.1", "b@127.0.0.1")
    ],
    "doctor": ["PASS  cookie with a@127.0.0.1", "\nverdict: OK"],
    "names": ["name a at port", "name b at port"],
}


def use_it_commands() -> list[list[str]]:
    """The ``nodemesh ...`` lines of the sh blocks under "## Use it", without comments."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Use it", 1)[1].split("\n## ", 1)[0]
    commands = []
    for block in re.findall(r"^```sh\n(.*?)^```", section, re.M | re.S):
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            if words[:1] == ["nodemesh"]:
                commands.append(words[1:])
    return commands


async def run(args: list[str], cwd: Path, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "nodemesh.cli",
        *args,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def wait_line(proc: asyncio.subprocess.Process, wanted: str, timeout: float = 20) -> None:
    assert proc.stdout is not None
    async with asyncio.timeout(timeout):
        while (line := await proc.stdout.readline()) and line.decode().strip() != wanted:
            pass
    assert line, f"the process ended before printing {wanted!r}"


@pytest.fixture
def workdir(tmp_path: Path) -> tuple[Path, dict[str, str], int]:
    """A copy of examples/ on a private gossip port, and an environment of its own."""
    gossip_port = free_udp_port()
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    toml = tmp_path / "examples" / "cluster.toml"
    text = toml.read_text().replace(
        "[topologies.lan.config]\n", f"[topologies.lan.config]\nport = {gossip_port}\n"
    )
    toml.write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NODEMESH_")}
    env.update(ERL_EPMD_PORT=str(free_port()), HOME=str(tmp_path))
    return tmp_path, env, gossip_port


async def test_use_it_commands_work_as_written(workdir: tuple[Path, dict[str, str], int]) -> None:
    """Both `run`s see each other; ping, discover, doctor and names exit 0 about them."""
    cwd, env, gossip_port = workdir
    commands = use_it_commands()
    runs = [c for c in commands if c[0] == "run"]
    others = [c for c in commands if c[0] != "run"]
    assert [c[0] for c in others] == ["ping", "discover", "doctor", "names"]
    assert [c[c.index("--name") + 1] for c in runs] == ["a@127.0.0.1", "b@127.0.0.1"]
    first = await run(runs[0], cwd, {**env, "NODEMESH_STRATEGY_PORT": str(gossip_port)})
    second = None
    try:
        assert first.stderr is not None
        assert await asyncio.wait_for(first.stderr.readline(), 20) == b"started a@127.0.0.1\n"
        second = await run(runs[1], cwd, env)
        await wait_line(first, "nodeup b@127.0.0.1")
        await wait_line(second, "nodeup a@127.0.0.1")
        for args in others:
            proc = await run(args, cwd, env)
            out, err = await asyncio.wait_for(proc.communicate(), 60)
            assert proc.returncode == 0, (args, out.decode(), err.decode())
            for wanted in EXPECTED[args[0]]:
                assert wanted in out.decode(), (args, out.decode())
    finally:
        for proc in (first, second):
            if proc is not None and proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        for proc in (first, second):
            if proc is not None:
                assert await asyncio.wait_for(proc.wait(), 20) == 0
