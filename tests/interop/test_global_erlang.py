"""A visible Python node in a mixed cluster with real `erl`: global's protocol (issue 12).

Two Erlang nodes and two Python nodes (``hidden=False``). Each test starts from two
connected ``erl`` nodes; Python nodes join by connecting to one of them and global's
connect_all does the rest.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator

import pytest

from conftest import COOKIE, NodeFactory
from nodemesh import Node
from nodemesh.services.pg import PgScope
from nodemesh.term.types import Atom, Pid
from support.erlang import ErlPeer, run_elixir

pytestmark = pytest.mark.interop

SYNC_BOUND = 10.0  # seconds global:sync() may take on any node of the cluster


async def _erl(name: str, epmd_port: int) -> ErlPeer:
    return await ErlPeer.start(f"{name}@127.0.0.1", COOKIE, env={"ERL_EPMD_PORT": str(epmd_port)})


@pytest.fixture
async def erls(epmd_port: int) -> AsyncIterator[list[ErlPeer]]:
    """Two connected Erlang nodes, e1 and e2, synced."""
    e1, e2 = await _erl("e1", epmd_port), await _erl("e2", epmd_port)
    try:
        assert await e1.eval("net_kernel:connect_node('e2@127.0.0.1')") == "true"
        assert await e1.eval("global:sync()") == "ok"
        yield [e1, e2]
    finally:
        await e1.stop()
        await e2.stop()


async def _visible(make_node: NodeFactory, alive: str) -> Node:
    return await make_node(alive, hidden=False)


async def _sync_everywhere(erls: list[ErlPeer], pys: list[Node]) -> None:
    """global:sync() returns on every node, each within SYNC_BOUND seconds."""
    for erl in erls:
        start = time.monotonic()
        assert await erl.eval("global:sync()", timeout=SYNC_BOUND) == "ok"
        assert time.monotonic() - start < SYNC_BOUND
    for py in pys:
        await py.global_sync(timeout=SYNC_BOUND)


async def _wait(predicate: object, what: str, timeout: float = SYNC_BOUND) -> None:
    """Poll a cheap condition (each check is an await on a peer or the loop)."""
    assert callable(predicate)
    async with asyncio.timeout(timeout):
        while True:
            value = predicate()
            if asyncio.iscoroutine(value):
                value = await value
            if value:
                return
            await asyncio.sleep(0.05)


async def _cluster(make_node: NodeFactory, erls: list[ErlPeer]) -> list[Node]:
    """py1 joins through e1, py2 through e2; connect_all links everyone."""
    py1, py2 = await _visible(make_node, "py1"), await _visible(make_node, "py2")
    assert await py1.connect("e1@127.0.0.1")
    await _sync_everywhere(erls, [py1])
    assert await py2.connect("e2@127.0.0.1")
    await _sync_everywhere(erls, [py1, py2])
    return [py1, py2]


async def test_connect_all_and_sync(make_node: NodeFactory, erls: list[ErlPeer]) -> None:
    """Joining through one node connects a Python node to all (through an Erlang or a
    Python node); Erlang's nodes() lists the Python nodes; global:sync() returns
    everywhere."""
    py1, py2 = await _cluster(make_node, erls)
    everyone = {"e1@127.0.0.1", "e2@127.0.0.1", py1.name, py2.name}
    for erl in erls:
        others = everyone - {erl.name}
        await _wait(lambda erl=erl, others=others: _lists(erl, others), f"{erl.name} nodes()")
    await _wait(lambda: set(py1.nodes()) == everyone - {py1.name}, "py1 meshed")
    await _wait(lambda: set(py2.nodes()) == everyone - {py2.name}, "py2 meshed")
    py3 = await _visible(make_node, "py3")  # joining through a Python node works alike
    assert await py3.connect(py1.name)
    everyone.add(py3.name)
    for node in (py1, py2, py3):
        await _wait(lambda node=node: set(node.nodes()) == everyone - {node.name}, "meshed")
    for erl in erls:
        await _wait(lambda erl=erl: _lists(erl, everyone - {erl.name}), f"{erl.name} nodes()")
    await _sync_everywhere(erls, [py1, py2, py3])


async def _lists(erl: ErlPeer, names: set[str]) -> bool:
    listed = await erl.eval("nodes()")
    return all(f"'{n}'" in listed for n in names)


async def test_names_both_ways(make_node: NodeFactory, erls: list[ErlPeer]) -> None:
    """A name registered from Python is found and used from Erlang, and the other way;
    unregistering and process exits remove names everywhere."""
    e1, e2 = erls
    py1, py2 = await _cluster(make_node, erls)
    box = py1.mailbox()
    assert await py1.global_register("py_kv", box.pid)
    assert not await py2.global_register("py_kv", py2.mailbox().pid)  # taken
    assert await e2.eval("node(global:whereis_name(py_kv))") == f"'{py1.name}'"
    await e2.eval("global:send(py_kv, {hello, from_erlang})")
    assert await box.receive(5) == (Atom("hello"), Atom("from_erlang"))

    await e1.eval("P = spawn(fun() -> receive stop -> ok end end), register(e_kv_local, P)")
    assert await e1.eval("global:register_name(e_kv, P)") == "yes"
    await _wait(lambda: py2.global_whereis("e_kv") is not None, "e_kv on py2")
    pid = py2.global_whereis("e_kv")
    assert isinstance(pid, Pid) and pid.node == "e1@127.0.0.1"
    assert "e_kv" in py1.global_names()

    await py2.global_unregister("py_kv")
    assert await e1.eval("global:whereis_name(py_kv)") == "undefined"
    await e1.eval("e_kv_local ! stop")
    await _wait(lambda: py1.global_whereis("e_kv") is None, "e_kv gone on py1")
    assert await py1.global_register("py_kv2", box.pid)
    box.close()
    await _wait(lambda: _undefined(e2, "py_kv2"), "py_kv2 gone on e2")


async def _undefined(erl: ErlPeer, name: str) -> bool:
    return await erl.eval(f"global:whereis_name({name})") == "undefined"


async def test_clash_kills_one_as_erlang_does(
    make_node: NodeFactory, erls: list[ErlPeer], epmd_port: int
) -> None:
    """Two partitions holding one name merge: random_exit_name keeps the pid on the
    node with the smaller name and kills the other: an Erlang process dies, a Python
    mailbox (it traps exits) receives ``('EXIT', _, kill)``; the winner's name holds."""
    e1, _ = erls
    py = await _visible(make_node, "py1")  # 'e1@…' < 'py1@…': Erlang's pid wins
    box = py.mailbox()
    assert await py.global_register("dup", box.pid)
    await e1.eval(
        "P1 = spawn(fun() -> receive _ -> ok end end), yes = global:register_name(dup, P1)"
    )
    z = await _erl("zz", epmd_port)  # 'py1@…' < 'zz@…': Python's pid wins
    try:
        await z.eval(
            "P2 = spawn(fun() -> receive _ -> ok end end), yes = global:register_name(dup2, P2)"
        )
        box2 = py.mailbox()
        assert await py.global_register("dup2", box2.pid)
        assert await py.connect("e1@127.0.0.1")
        assert await py.connect("zz@127.0.0.1")
        await _sync_everywhere([e1, z], [py])
        exit_signal = await box.receive(5)  # exit(Pid, kill): mailboxes trap exits
        assert exit_signal[0] == "EXIT" and exit_signal[2] == "kill"
        winner = py.global_whereis("dup")
        assert winner is not None and winner.node == "e1@127.0.0.1"
        assert await z.eval("is_process_alive(P2)") == "false"
        assert py.global_whereis("dup2") == box2.pid
        assert await z.eval("node(global:whereis_name(dup2))") == f"'{py.name}'"
        assert await e1.eval("global:whereis_name(dup) =:= P1") == "true"
    finally:
        await z.stop()


async def test_node_killed_and_restarted(
    make_node: NodeFactory, erls: list[ErlPeer], epmd_port: int
) -> None:
    """An Erlang node killed takes its names with it on the Python nodes; restarted and
    reconnected, it rejoins everyone and global:sync() returns again. A Python node
    stopped and restarted rejoins the same way."""
    e1, e2 = erls
    py1, py2 = await _cluster(make_node, erls)
    await e2.eval(
        "P = spawn(fun() -> receive _ -> ok end end), yes = global:register_name(on_e2, P)"
    )
    await _wait(lambda: py1.global_whereis("on_e2") is not None, "on_e2 seen")
    await e2.stop()
    await _wait(lambda: py1.global_whereis("on_e2") is None, "on_e2 gone")
    await _wait(lambda: "e2@127.0.0.1" not in py2.nodes(), "e2 down on py2")
    e2 = await _erl("e2", epmd_port)
    try:
        assert await e2.eval("net_kernel:connect_node('e1@127.0.0.1')") == "true"
        await _wait(lambda: _lists(e2, {py1.name, py2.name}), "e2 meets the Python nodes")
        await _sync_everywhere([e1, e2], [py1, py2])

        assert await py2.global_register("py2_name", py2.mailbox().pid)
        await py2.aclose()
        await _wait(lambda: _undefined(e2, "py2_name"), "py2_name gone")
        py2 = await _visible(make_node, "py2")
        assert await py2.connect("e2@127.0.0.1")
        await _sync_everywhere([e1, e2], [py1, py2])
        await _wait(lambda: py1.name in py2.nodes(), "py2 meets py1 again")
    finally:
        await e2.stop()


async def test_pg_discovery_from_erlang(make_node: NodeFactory, erls: list[ErlPeer]) -> None:
    """With visible Python nodes Erlang's pg discovers them itself ({nodeup} then
    {discover, Pid}); members join both ways through a Python PgScope."""
    e1, _ = erls
    await e1.eval("{ok, _} = pg:start(gscope)")
    py = await _visible(make_node, "py1")
    async with PgScope(py, "gscope") as scope:
        box = py.mailbox()
        scope.join(Atom("grp"), box.pid)
        assert await py.connect("e1@127.0.0.1")
        await e1.eval("Q = spawn(fun() -> receive _ -> ok end end), ok = pg:join(gscope, grp, Q)")
        await scope.wait_for_members(Atom("grp"), lambda m: len(m) == 2, timeout=SYNC_BOUND)
        await _wait(lambda: _pg_count(e1, 2), "e1 sees both members")


async def _pg_count(erl: ErlPeer, n: int) -> bool:
    return await erl.eval("length(pg:get_members(gscope, grp))") == str(n)


async def test_elixir_node_list_includes_python(make_node: NodeFactory, epmd_port: int) -> None:
    """Elixir's Node.list() includes a visible Python node, :global.sync() returns and
    a name registered from Python is found with :global.whereis_name/1."""
    py = await _visible(make_node, "py1")
    assert await py.global_register("from_python", py.mailbox().pid)
    script = (
        f'true = Node.connect(:"{py.name}"); :ok = :global.sync(); '
        "IO.puts(inspect(Node.list())); IO.puts(node(:global.whereis_name(:from_python)))"
    )
    status, output = await run_elixir(script, cookie=COOKIE, epmd_port=epmd_port)
    lines = output.splitlines()
    assert status == 0, lines
    assert lines[-2:] == [f'[:"{py.name}"]', py.name]


async def test_resolve_funs_travel_through_python(
    make_node: NodeFactory, erls: list[ErlPeer], epmd_port: int
) -> None:
    """A name registered with a closure as its resolve method reaches a Python node and
    goes on from there, unchanged, to an Erlang node that meets the cluster through it
    (fun terms in global's name lists)."""
    e1, _ = erls
    py = await _visible(make_node, "py1")
    assert await py.connect(e1.name)
    await _sync_everywhere(erls, [py])
    await e1.eval("C = spawn(fun() -> receive _ -> ok end end)")
    assert await e1.eval("global:register_name(cl, C, fun(_, A, _) -> A end)") == "yes"
    await _wait(lambda: py.global_whereis("cl") is not None, "cl on py")
    z = await _erl("zz", epmd_port)
    try:
        assert await z.eval(f"net_kernel:connect_node('{py.name}')") == "true"
        await _wait(lambda: _lists(z, {e1.name, "e2@127.0.0.1", py.name}), "z meshed")
        assert await z.eval("global:sync()", timeout=SYNC_BOUND) == "ok"
        found = "[{cl, P, M, _}] = ets:lookup(global_names, cl), {node(P), is_function(M, 3)}"
        assert await z.eval(found) == f"{{'{e1.name}',true}}"
    finally:
        await z.stop()


async def _run_visible(name: str, connect: str, epmd_port: int) -> asyncio.subprocess.Process:
    """`nodemesh run --visible` in its own process (so it can be killed with SIGKILL)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "nodemesh.cli", "run", "--visible", "--name", name,
        "--cookie", COOKIE, "--connect", connect,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "ERL_EPMD_PORT": str(epmd_port)},
    )  # fmt: skip
    return proc


async def test_python_node_killed_and_restarted(erls: list[ErlPeer], epmd_port: int) -> None:
    """A visible Python node killed with SIGKILL leaves Erlang's nodes() and does not
    block global:sync(); restarted under the same name it rejoins every node."""
    e1, e2 = erls
    name = "pyk@127.0.0.1"
    proc = await _run_visible(name, e1.name, epmd_port)
    try:
        for erl in erls:
            await _wait(lambda erl=erl: _lists(erl, {name}), f"{erl.name} lists {name}")
        await _sync_everywhere(erls, [])
        proc.kill()
        await proc.wait()
        for erl in erls:
            await _wait(lambda erl=erl: _gone(erl, name), f"{name} gone from {erl.name}")
        await _sync_everywhere(erls, [])
        proc = await _run_visible(name, e2.name, epmd_port)
        for erl in erls:
            await _wait(lambda erl=erl: _lists(erl, {name}), f"{erl.name} lists {name} again")
        await _sync_everywhere(erls, [])
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def _gone(erl: ErlPeer, name: str) -> bool:
    return f"'{name}'" not in await erl.eval("nodes()")
