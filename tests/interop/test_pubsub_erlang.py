"""pg and Phoenix.PubSub between Python nodes and real Erlang/OTP nodes, both ways.

The Erlang side runs kernel's own ``pg`` and ``nm_phx`` (tests/support/nm_phx.erl),
which sends and receives exactly the messages of phoenix_pubsub's PG2 adapter.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import COOKIE, NodeFactory
from nodemesh import Atom, Node, PubSub
from nodemesh.services import PgScope
from support.erlang import ErlPeer, require_erlang
from support.net import wait_for

pytestmark = pytest.mark.interop

SUPPORT = Path(__file__).parent.parent / "support"
PHX = "'Elixir.MyApp.PubSub'"
ErlFactory = Callable[[str], Coroutine[Any, Any, ErlPeer]]


@pytest.fixture(scope="module")
def phx_beam() -> Iterator[str]:
    """nm_phx.erl compiled once for this module; yields the directory of its .beam."""
    require_erlang()
    with tempfile.TemporaryDirectory(prefix="nm_phx_") as out:
        subprocess.run(["erlc", "-o", out, str(SUPPORT / "nm_phx.erl")], check=True, timeout=60)
        yield out


@pytest.fixture
async def start_erl(epmd_port: int, phx_beam: str) -> AsyncIterator[ErlFactory]:
    """Start real Erlang nodes registered with this test's epmd; all stopped after."""
    peers: list[ErlPeer] = []

    async def factory(name: str) -> ErlPeer:
        env = {"ERL_EPMD_PORT": str(epmd_port)}
        peer = await ErlPeer.start(name, COOKIE, env=env, extra_args=("-pa", phx_beam))
        peers.append(peer)
        return peer

    yield factory
    for peer in peers:
        await peer.stop()


async def erl_members(erl: ErlPeer, scope: str, group: str) -> Any:
    return await erl.eval_term(f"pg:get_members({scope}, {group})")


async def wait_erl(erl: ErlPeer, expr: str, want: str, timeout: float = 10.0) -> None:
    """Evaluate ``expr`` on ``erl`` (inside erl, no sleeping here) until it prints ``want``."""
    loop = f"""
        (fun L(0) -> timeout;
             L(N) -> case ({expr}) =:= {want} of true -> ok;
                     false -> receive after 20 -> L(N - 1) end end end)({int(timeout * 50)})"""
    assert await erl.eval(loop, timeout=timeout + 5) == "ok", f"{expr} never became {want}"


async def test_pg_both_ways(make_node: NodeFactory, start_erl: ErlFactory) -> None:
    """Python sees Erlang's members of a pg group and pg:get_members/2 sees Python's."""
    erl = await start_erl("erl1@127.0.0.1")
    await erl.eval(
        "{ok, _} = pg:start(pg), P = spawn(fun() -> receive stop -> ok end end), "
        "put(p, P), pg:join(pg, grp, P)"
    )
    py = await make_node("py")
    async with PgScope(py) as scope:
        assert await py.connect(erl.name)
        members = await scope.wait_for_members(Atom("grp"), timeout=10)
        assert [pid.node for pid in members] == [erl.name]
        mine = py.mailbox()
        scope.join(Atom("grp"), mine.pid)
        await wait_erl(erl, "length(pg:get_members(pg, grp))", "2")
        assert mine.pid in await erl_members(erl, "pg", "grp")
        # Erlang's member exits, Python's leaves: each side sees the other's change.
        await erl.eval("get(p) ! stop")
        await scope.wait_for_members(Atom("grp"), lambda m: m == [mine.pid], timeout=10)
        scope.leave(Atom("grp"), mine.pid)
        await wait_erl(erl, "pg:get_members(pg, grp)", "[]")
        # A Python member whose mailbox closes leaves on the Erlang side too.
        other = py.mailbox()
        scope.join(Atom("g2"), [other.pid])
        await wait_erl(erl, "length(pg:get_members(pg, g2))", "1")
        other.close()
        await wait_erl(erl, "pg:get_members(pg, g2)", "[]")
    # Closing the Python scope drops its members on Erlang (its monitor of our scope).
    await wait_erl(erl, "is_process_alive(whereis(pg))", "true")


async def test_pg_erlang_connects_first_and_reconnects(
    make_node: NodeFactory, start_erl: ErlFactory
) -> None:
    """Erlang dialling Python also leads to discovery; after a reconnect both sides
    see each other's members again, and Erlang's scope never crashed."""
    erl = await start_erl("erl1@127.0.0.1")
    await erl.eval(
        "{ok, Pg} = pg:start(pg), put(pg, Pg), P = spawn(fun() -> receive "
        "stop -> ok end end), pg:join(pg, grp, P)"
    )
    py = await make_node("py")
    async with PgScope(py) as scope:
        mine = py.mailbox()
        scope.join(Atom("grp"), mine.pid)
        assert await erl.eval(f"net_kernel:connect_node('{py.name}')") == "true"
        await scope.wait_for_members(Atom("grp"), lambda m: len(m) == 2, timeout=10)
        await wait_erl(erl, "length(pg:get_members(pg, grp))", "2")
        await py.disconnect(erl.name)
        await scope.wait_for_members(Atom("grp"), lambda m: m == [mine.pid], timeout=10)
        await wait_erl(erl, "length(pg:get_members(pg, grp))", "1")
        assert await py.connect(erl.name)
        await scope.wait_for_members(Atom("grp"), lambda m: len(m) == 2, timeout=10)
        await wait_erl(erl, "length(pg:get_members(pg, grp))", "2")
    assert await erl.eval("whereis(pg) =:= get(pg)") == "true"


async def test_phoenix_broadcasts_both_ways(make_node: NodeFactory, start_erl: ErlFactory) -> None:
    """An Erlang Phoenix.PubSub broadcast reaches a Python subscriber and a Python
    broadcast reaches the Erlang subscriber; direct_broadcast reaches the Python worker."""
    erl = await start_erl("erl1@127.0.0.1")
    await erl.eval(f'nm_phx:start({PHX}, 1), nm_phx:subscribe({PHX}, <<"room:lobby">>)')
    py = await make_node("py")
    async with PubSub(py, "MyApp.PubSub") as ps:
        sub = ps.subscribe("room:lobby")
        assert await py.connect(erl.name)
        assert await ps.wait_for_remote(1, timeout=10) == [erl.name]
        await wait_erl(
            erl,
            "length(pg:get_members('Elixir.Phoenix.PubSub', 'Elixir.MyApp.PubSub.Adapter'))",
            "2",
        )
        sent = await erl.eval(f'nm_phx:broadcast({PHX}, <<"room:lobby">>, {{new_msg, <<"hi">>}})')
        assert sent == "1"
        assert await sub.get(timeout=10) == (Atom("new_msg"), b"hi")
        assert await erl.eval_term("nm_phx:drain(1, 5000)") == [(Atom("new_msg"), b"hi")]
        assert await ps.broadcast("room:lobby", {"from": "python"}) == 1
        got = await erl.eval_term("nm_phx:drain(1, 5000)")
        assert got == [{b"from": b"python"}]
        assert await sub.get(timeout=10) == {"from": "python"}  # delivered here directly
        await erl.eval(f"nm_phx:direct_broadcast({PHX}, '{py.name}', <<\"room:lobby\">>, direct)")
        assert await sub.get(timeout=10) == Atom("direct")


async def test_phoenix_pool_size_two(make_node: NodeFactory, start_erl: ErlFactory) -> None:
    """With pool_size 2 on both sides every broadcast arrives once whichever group the
    sender picks (Erlang picks by phash2 of its pid), in order per publisher."""
    erl = await start_erl("erl1@127.0.0.1")
    await erl.eval(f'nm_phx:start({PHX}, 2), nm_phx:subscribe({PHX}, <<"t">>)')
    py = await make_node("py")
    async with PubSub(py, "MyApp.PubSub", pool_size=2) as ps:
        sub = ps.subscribe("t")
        await py.connect(erl.name)
        for group in ps.groups:
            await ps.scope.wait_for_members(group, lambda m: len(m) == 2, timeout=10)
        for i in range(6):
            assert await ps.broadcast("t", i) == 1
        assert await erl.eval_term("nm_phx:drain(7, 300)") == list(range(6))
        assert [await sub.get(timeout=10) for _ in range(6)] == list(range(6))
        await erl.eval(
            f'[spawn(fun() -> nm_phx:broadcast({PHX}, <<"t">>, N) end) || N <- lists:seq(1, 20)]'
        )
        got = sorted([await sub.get(timeout=10) for _ in range(20)])
        assert got == list(range(1, 21))
        assert sub.statistics().queued == 0


async def test_nodes_come_and_go_mid_stream(make_node: NodeFactory, start_erl: ErlFactory) -> None:
    """A Python publisher streams to a Python and an Erlang subscriber while another
    Erlang node joins and the first one is killed: the nodes that stay get every
    message once and in order; the newcomer gets a gap-free tail."""
    py_pub, py_sub = await make_node("pub"), await make_node("sub")
    erl1 = await start_erl("erl1@127.0.0.1")
    await erl1.eval(f'nm_phx:start({PHX}, 1), nm_phx:subscribe({PHX}, <<"t">>)')
    async with PubSub(py_pub, "MyApp.PubSub") as pub, PubSub(py_sub, "MyApp.PubSub") as sub_ps:
        sub = sub_ps.subscribe("t")
        await py_pub.connect(py_sub.name)
        await py_pub.connect(erl1.name)
        await pub.wait_for_remote(2, timeout=10)
        erl2: ErlPeer | None = None
        for i in range(300):
            if i == 100:
                erl2 = await start_erl("erl2@127.0.0.1")
                await erl2.eval(f'nm_phx:start({PHX}, 1), nm_phx:subscribe({PHX}, <<"t">>)')
                assert await erl2.eval(f"net_kernel:connect_node('{py_pub.name}')") == "true"
                await pub.wait_for_remote(3, timeout=10)
            if i == 200:
                await erl1.stop()
                await wait_for(lambda: erl1.name not in pub.remote_nodes(), 10)
            await pub.broadcast("t", i)
        assert [await sub.get(timeout=10) for _ in range(300)] == list(range(300))
        assert erl2 is not None
        tail = await erl2.eval_term("nm_phx:drain(1000, 500)")
        assert tail == list(range(tail[0], 300)) and tail[0] <= 100
        assert pub.remote_nodes() == sorted([py_sub.name, erl2.name])


async def test_erlang_publisher_to_python_subscribers(
    make_node: NodeFactory, start_erl: ErlFactory
) -> None:
    """An Erlang publisher's burst reaches subscribers on two Python nodes, each message
    once and in order."""
    erl = await start_erl("erl1@127.0.0.1")
    await erl.eval(f"nm_phx:start({PHX}, 1)")
    nodes: list[Node] = [await make_node("py1"), await make_node("py2")]
    async with PubSub(nodes[0], "MyApp.PubSub") as ps1, PubSub(nodes[1], "MyApp.PubSub") as ps2:
        subs = [ps1.subscribe("t"), ps2.subscribe("t")]
        for node in nodes:
            await node.connect(erl.name)
        await wait_erl(
            erl,
            "length(pg:get_members('Elixir.Phoenix.PubSub', 'Elixir.MyApp.PubSub.Adapter'))",
            "3",
        )
        sent = await erl.eval(
            f'lists:sum([nm_phx:broadcast({PHX}, <<"t">>, N) || N <- lists:seq(1, 500)])'
        )
        assert sent == "1000"
        for sub in subs:
            assert [await sub.get(timeout=10) for _ in range(500)] == list(range(1, 501))


async def start_cli(*args: str, epmd_port: int) -> asyncio.subprocess.Process:
    env = {**os.environ, "ERL_EPMD_PORT": str(epmd_port)}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "nodemesh.cli", *args, "--cookie", COOKIE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip


async def test_cli_subscribe_and_publish_with_erlang(start_erl: ErlFactory, epmd_port: int) -> None:
    """`nodemesh subscribe room:lobby --pubsub MyApp.PubSub` prints what an Erlang
    Phoenix.PubSub node broadcasts; `nodemesh publish` reaches its subscriber."""
    erl = await start_erl("erl1@127.0.0.1")
    await erl.eval(f'nm_phx:start({PHX}, 1), nm_phx:subscribe({PHX}, <<"room:lobby">>)')
    proc = await start_cli(
        "subscribe", "room:lobby", "--pubsub", "MyApp.PubSub", "--name", "sub@127.0.0.1",
        "--connect", erl.name, epmd_port=epmd_port,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    try:
        assert (await asyncio.wait_for(proc.stderr.readline(), 10)).startswith(b"subscribed")
        await wait_erl(
            erl,
            "length(pg:get_members('Elixir.Phoenix.PubSub', 'Elixir.MyApp.PubSub.Adapter'))",
            "2",
        )
        await erl.eval(f'nm_phx:broadcast({PHX}, <<"room:lobby">>, <<"hello from erlang">>)')
        await erl.eval(f'nm_phx:broadcast({PHX}, <<"room:lobby">>, {{new_msg, 42}})')
        line = await asyncio.wait_for(proc.stdout.readline(), 10)
        assert line == b"hello from erlang\n"
        assert await asyncio.wait_for(proc.stdout.readline(), 10) == b"{new_msg,42}\n"
        pub = await start_cli(
            "publish", "room:lobby", "hello from the shell", "--pubsub", "MyApp.PubSub",
            "--connect", erl.name, epmd_port=epmd_port,
        )  # fmt: skip
        assert await asyncio.wait_for(pub.wait(), 20) == 0
        got = await erl.eval_term("nm_phx:drain(3, 5000)")  # its two broadcasts, then ours
        assert pub.stderr is not None
        assert got[2:] == [b"hello from the shell"], (await pub.stderr.read()).decode()
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 10)


async def test_pg_erlang_scope_restarted_while_connected(
    make_node: NodeFactory, start_erl: ErlFactory
) -> None:
    """An Erlang scope that restarts while the connection stays up is found again (it
    never discovers hidden nodes itself) and sees the Python members again."""
    erl = await start_erl("erl1@127.0.0.1")
    await erl.eval("{ok, _} = pg:start(pg)")
    py = await make_node("py")
    async with PgScope(py, rediscover_interval=0.1) as scope:
        mine = py.mailbox()
        scope.join(Atom("grp"), mine.pid)
        await py.connect(erl.name)
        await wait_erl(erl, "length(pg:get_members(pg, grp))", "1")
        await erl.eval(
            "Old = whereis(pg), Ref = monitor(process, Old), exit(Old, kill), "
            "receive {'DOWN', Ref, _, _, _} -> ok end, {ok, _} = pg:start(pg), "
            "P = spawn(fun() -> receive stop -> ok end end), pg:join(pg, grp, P)"
        )
        await scope.wait_for_members(Atom("grp"), lambda m: len(m) == 2, timeout=10)
        await wait_erl(erl, "length(pg:get_members(pg, grp))", "2")
        assert py.is_connected(erl.name)
