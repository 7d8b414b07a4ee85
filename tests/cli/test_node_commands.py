"""`nodemesh run` and `nodemesh ping` as users and scripts run them: real processes."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from conftest import COOKIE, NodeFactory


async def start_cli(*args: str, epmd_port: int) -> asyncio.subprocess.Process:
    env = {**os.environ, "ERL_EPMD_PORT": str(epmd_port)}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "nodemesh.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )


async def read_line(proc: asyncio.subprocess.Process, timeout: float = 10) -> str:
    assert proc.stdout is not None
    return (await asyncio.wait_for(proc.stdout.readline(), timeout)).decode().rstrip("\n")


async def test_run_prints_membership_and_exits_0_on_sigterm(
    make_node: NodeFactory, epmd_port: int
) -> None:
    """`nodemesh run` prints nodeup/nodedown lines and exits 0 on SIGTERM."""
    anchor = await make_node("anchor")  # owns the embedded EPMD for this test
    proc = await start_cli(
        "run", "--name", "cli@127.0.0.1", "--cookie", COOKIE, epmd_port=epmd_port
    )
    try:
        assert proc.stderr is not None
        started = await asyncio.wait_for(proc.stderr.readline(), 10)
        assert started.decode().strip() == "started cli@127.0.0.1"
        assert await anchor.connect("cli@127.0.0.1")
        assert await read_line(proc) == f"nodeup {anchor.name}"
        await anchor.disconnect("cli@127.0.0.1")
        assert await read_line(proc) == f"nodedown {anchor.name}"
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
        rest = (await proc.stderr.read()).decode().splitlines()
        assert [line for line in rest if "stopped" in line] == ["stopped cli@127.0.0.1 (SIGTERM)"]
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_run_says_why_a_connect_failed_at_the_default_level(
    make_node: NodeFactory, epmd_port: int
) -> None:
    """--connect to a node with another cookie: one line with the reason, no doubled prefix."""
    peer = await make_node("peer")
    proc = await start_cli(
        "run",
        "--name",
        "cli@127.0.0.1",
        "--cookie",
        "other",
        "--connect",
        peer.name,
        epmd_port=epmd_port,
    )
    try:
        assert proc.stderr is not None
        assert (await asyncio.wait_for(proc.stderr.readline(), 10)).startswith(b"started")
        line = (await asyncio.wait_for(proc.stderr.readline(), 10)).decode()
        assert line.startswith(f"nodemesh: cannot connect to {peer.name}: ")
        assert "cookies" in line and line.count("cannot connect") == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 10)


async def test_run_at_debug_prints_each_nodeup_once(make_node: NodeFactory, epmd_port: int) -> None:
    """`nodemesh run -vv`: the nodeup line appears once, not again as a log record."""
    anchor = await make_node("anchor")
    proc = await start_cli(
        "run", "--name", "cli@127.0.0.1", "--cookie", COOKIE, "-vv", epmd_port=epmd_port
    )
    assert proc.stderr is not None
    before = b""
    try:
        while not before.endswith(b"started cli@127.0.0.1\n"):  # after the debug lines
            before += await asyncio.wait_for(proc.stderr.readline(), 10)
        assert await anchor.connect("cli@127.0.0.1")
        assert await read_line(proc) == f"nodeup {anchor.name}"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), 10)
    logged = (before + out + err).decode()
    assert "nodeup" not in logged, logged  # the one line on stdout was read above
    assert "DEBUG nodemesh" in logged and "asyncio" not in logged


async def test_run_with_a_bad_name_fails_clearly(epmd_port: int) -> None:
    """A malformed node name is one clear error line and exit status 1."""
    proc = await start_cli("run", "--name", "bad name@host", "--cookie", "c", epmd_port=epmd_port)
    _out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 1
    assert "node name" in err.decode() and "Traceback" not in err.decode()


async def test_run_with_a_health_host_that_does_not_resolve_fails_clearly(
    epmd_port: int,
) -> None:
    """A health server that cannot start is one line and exit 1, the node stopped."""
    proc = await start_cli(
        "run",
        "--name",
        "cli@127.0.0.1",
        "--cookie",
        COOKIE,
        "--health-port",
        "0",
        "--health-host",
        "nowhere.invalid",
        epmd_port=epmd_port,
    )
    _out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 1
    lines = err.decode().splitlines()
    assert lines[0] == "started cli@127.0.0.1"
    assert lines[1].startswith("nodemesh: cannot serve health checks on nowhere.invalid")
    assert len(lines) == 2


async def test_ping_pong_and_pang(make_node: NodeFactory, epmd_port: int) -> None:
    """`nodemesh ping` prints pong and exits 0, or pang with a reason and exits 1."""
    target = await make_node("target")
    proc = await start_cli("ping", target.name, "--cookie", COOKIE, epmd_port=epmd_port)
    out, _ = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0
    assert out.decode() == "pong\n"
    proc = await start_cli(
        "ping", "ghost@127.0.0.1", "--cookie", COOKIE, "--timeout", "3", epmd_port=epmd_port
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 1
    lines = out.decode().splitlines()
    assert lines[0] == "pang" and "ghost" in lines[1]
    proc = await start_cli("ping", target.name, "--cookie", "wrong", epmd_port=epmd_port)
    out, _ = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 1
    assert out.decode().startswith("pang\n") and "cookie" in out.decode().lower()


async def test_run_in_json_writes_one_object_per_line(
    make_node: NodeFactory, epmd_port: int
) -> None:
    """--log-format json: started, nodeup and stopped are JSON objects naming the event."""
    import json

    anchor = await make_node("anchor")
    proc = await start_cli(
        "run",
        "--name",
        "cli@127.0.0.1",
        "--cookie",
        COOKIE,
        "--log-format",
        "json",
        epmd_port=epmd_port,
    )
    assert proc.stderr is not None
    try:
        started = json.loads(await asyncio.wait_for(proc.stderr.readline(), 10))
        assert (started["event"], started["node"], started["level"]) == (
            "started",
            "cli@127.0.0.1",
            "INFO",
        )
        assert await anchor.connect("cli@127.0.0.1")
        nodeup = json.loads(await read_line(proc))
        assert (nodeup["event"], nodeup["node"]) == ("nodeup", anchor.name)
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = await asyncio.wait_for(proc.communicate(), 10)
    records = [json.loads(line) for line in err.splitlines()]  # every line is an object
    assert [(r["event"], r["signal"]) for r in records if r.get("event") == "stopped"] == [
        ("stopped", "SIGTERM")
    ]
