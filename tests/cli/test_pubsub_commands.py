"""`nodemesh subscribe` and `nodemesh publish` as scripts run them: real processes."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from conftest import COOKIE, NodeFactory
from nodemesh import Atom, Pid, PubSub
from nodemesh.cli.pubsub import message_line


async def start_cli(*args: str, epmd_port: int) -> asyncio.subprocess.Process:
    env = {**os.environ, "ERL_EPMD_PORT": str(epmd_port)}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "nodemesh.cli",
        *args,
        "--cookie",
        COOKIE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )


async def line_of(stream: asyncio.StreamReader | None, timeout: float = 10) -> str:
    assert stream is not None
    return (await asyncio.wait_for(stream.readline(), timeout)).decode().rstrip("\n")


def test_message_lines() -> None:
    """A UTF-8 binary prints as its text; other terms (and non-UTF-8 binaries) in Erlang's form."""
    assert message_line(b"hi there") == "hi there"
    assert message_line("héllo".encode()) == "héllo"
    assert message_line(b"\xff\x00") == "<<255,0>>"
    pid = Pid(Atom("a@h"), 80, 0, 1)
    message = (Atom("new_msg"), {Atom("body"): b"hi", Atom("from"): pid}, [1, 2], "x")
    assert message_line(message) == '{new_msg,#{body => <<"hi">>,from => <a@h.80.0>},[1,2],<<"x">>}'
    assert message_line([104, 105]) == '"hi"'
    assert message_line(Atom("Elixir.Foo")) == "'Elixir.Foo'"


async def test_subscribe_prints_each_message(make_node: NodeFactory, epmd_port: int) -> None:
    """`nodemesh subscribe TOPIC --connect NODE` prints what NODE broadcasts, one a line,
    and exits 0 on SIGTERM."""
    node = await make_node("pub")
    async with PubSub(node) as ps:
        proc = await start_cli(
            "subscribe", "room:lobby", "--name", "sub@127.0.0.1", "--connect", node.name,
            epmd_port=epmd_port,
        )  # fmt: skip
        try:
            assert (await line_of(proc.stderr)).startswith("subscribed sub@127.0.0.1")
            await ps.wait_for_remote(1, timeout=10)
            await ps.broadcast("room:lobby", "hello, world")
            await ps.broadcast("room:other", "not this one")
            await ps.broadcast("room:lobby", (Atom("joined"), b"ann"))
            assert await line_of(proc.stdout) == "hello, world"
            assert await line_of(proc.stdout) == '{joined,<<"ann">>}'
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 10) == 0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


async def test_publish_reaches_subscribers(make_node: NodeFactory, epmd_port: int) -> None:
    """`nodemesh publish TOPIC MESSAGE --connect NODE` delivers MESSAGE as a binary, exit 0."""
    node = await make_node("sub")
    async with PubSub(node, "MyApp.PubSub") as ps:
        sub = ps.subscribe("room:lobby")
        proc = await start_cli(
            "publish", "room:lobby", "hi from the shell", "--pubsub", "MyApp.PubSub",
            "--connect", node.name, epmd_port=epmd_port,
        )  # fmt: skip
        assert await asyncio.wait_for(proc.wait(), 20) == 0
        assert await sub.get(timeout=5) == b"hi from the shell"


async def test_publish_with_no_subscriber_node_exits_1(
    make_node: NodeFactory, epmd_port: int
) -> None:
    """publish exits 1 and says why when no other node runs the PubSub."""
    node = await make_node("bare")  # connected, but runs no PubSub
    proc = await start_cli(
        "publish", "t", "m", "--connect", node.name, "--timeout", "0.5", epmd_port=epmd_port
    )
    assert await asyncio.wait_for(proc.wait(), 20) == 1
    assert proc.stderr is not None
    err = (await proc.stderr.read()).decode()
    assert "no subscriber was reached" in err and "'nodemesh'" in err
