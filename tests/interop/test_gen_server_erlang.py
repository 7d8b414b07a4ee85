"""GenServer calls between Python and real OTP 25 / Elixir 1.14 nodes, both ways.

Erlang and Elixir call a Python :class:`GenServer` with ``gen_server:call/cast/multi_call``
and ``GenServer.call/cast``; Python calls an Erlang gen_server (``nm_kv.erl``) with
``node.call/cast/multi_call`` and meets noproc, timeouts, exit reasons and nodedown.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import COOKIE, NodeFactory
from nodemesh import (
    NO_REPLY,
    Atom,
    Caller,
    CallExitError,
    CallTimeoutError,
    GenServer,
    ImproperList,
    Node,
    NodeDownError,
    NoProcError,
    Pid,
    Reference,
)
from support.erlang import ErlPeer, beam_dir, require_erlang, run_elixir
from support.net import wait_for

pytestmark = pytest.mark.interop

HERE = Path(__file__).parent.parent / "support"
GET, PUT, HOLD, CRASH = Atom("get"), Atom("put"), Atom("hold"), Atom("crash")


class KV(GenServer):
    """A Python key-value server that records the reply tags callers sent."""

    def __init__(self) -> None:
        self.data: dict[Any, Any] = {}
        self.tags: list[Any] = []
        self.held: list[Caller] = []
        self.stopped: list[Any] = []

    def terminate(self, reason: Any) -> None:
        self.stopped.append(reason)

    def handle_call(self, request: Any, caller: Caller) -> Any:
        self.tags.append(caller.tag)
        if request == HOLD:
            self.held.append(caller)
            return NO_REPLY
        if request == CRASH:
            raise ValueError("boom")
        if request[0] == PUT:
            self.data[request[1]] = request[2]
            return Atom("ok")
        return self.data.get(request[1])

    def handle_cast(self, request: Any) -> None:
        if request == b"release":
            for caller in self.held:
                caller.reply(Atom("released"))
            self.held.clear()
        elif request[0] == PUT:
            self.data[request[1]] = request[2]


async def py_server(make_node: NodeFactory) -> tuple[Node, KV]:
    node = await make_node("py")
    kv = KV()
    await node.start_server(kv, name="kv")
    return node, kv


# -- Erlang and Elixir call Python ---------------------------------------------------------
async def test_erlang_call_reaches_python_with_an_alias_tag(
    make_node: NodeFactory, erl: ErlPeer
) -> None:
    """gen_server:call from OTP 25 works; its tag arrives as [alias | Ref]."""
    py, kv = await py_server(make_node)
    dest = f"{{kv, '{py.name}'}}"
    assert await erl.eval(f'gen_server:call({dest}, {{put, <<"k">>, 42}})') == "ok"
    assert await erl.eval(f'gen_server:call({dest}, {{get, <<"k">>}}, infinity)') == "42"
    for tag in kv.tags:
        assert type(tag) is ImproperList and tag.elements == (Atom("alias"),)
        assert type(tag.tail) is Reference


async def test_erlang_multi_call_and_cast(make_node: NodeFactory, erl: ErlPeer) -> None:
    """gen_server:cast is handled; multi_call gets the Python reply (tag {Ref, Node})
    and lists the nodes without a server as bad."""
    py, kv = await py_server(make_node)
    await erl.eval(f"gen_server:cast({{kv, '{py.name}'}}, {{put, <<\"m\">>, 7}})")
    got = await erl.eval_term(
        f"gen_server:multi_call(['{py.name}', node(), 'absent@127.0.0.1'], kv,"
        ' {get, <<"m">>}, 5000)'
    )
    replies, bad = got
    assert replies == [(Atom(py.name), 7)]
    assert sorted(bad) == sorted([Atom(erl.name), Atom("absent@127.0.0.1")])
    tag = kv.tags[-1]
    assert type(tag) is tuple and type(tag[0]) is Reference and tag[1] == py.name


async def test_erlang_gets_a_deferred_reply(make_node: NodeFactory, erl: ErlPeer) -> None:
    """NO_REPLY then Caller.reply answers an Erlang caller that is still waiting."""
    py, kv = await py_server(make_node)
    await erl.eval(
        f"Self = self(), spawn(fun() -> Self ! {{held, gen_server:call({{kv, '{py.name}'}},"
        " hold, 5000)} end)"
    )
    await wait_for(lambda: len(kv.held) == 1, what="the held call")
    await erl.eval(f"gen_server:cast({{kv, '{py.name}'}}, <<\"release\">>)")
    assert await erl.eval("receive {held, R} -> R after 5000 -> timeout end") == "released"


async def test_erlang_caller_sees_the_crash_exit(make_node: NodeFactory, erl: ErlPeer) -> None:
    """An exception in handle_call exits the Erlang caller with the server's reason,
    {python_exception, <<"ValueError">>, <<"boom">>}, wrapped by gen_server:call."""
    py, _ = await py_server(make_node)
    got = await erl.eval_term(f"catch gen_server:call({{kv, '{py.name}'}}, crash)")
    call = (Atom("gen_server"), Atom("call"), [(Atom("kv"), Atom(py.name)), CRASH])
    assert got == (Atom("EXIT"), ((Atom("python_exception"), b"ValueError", b"boom"), call))
    got = await erl.eval(f"catch gen_server:call({{kv, '{py.name}'}}, {{get, x}})")
    assert got.startswith("{'EXIT',{noproc,")


async def test_reply_after_an_erlang_timeout_is_dropped(
    make_node: NodeFactory, erl: ErlPeer
) -> None:
    """A reply sent after the Erlang caller timed out goes to its alias (ALIAS_SEND) and
    is dropped there, so no stray message lands in the caller's mailbox."""
    py, kv = await py_server(make_node)
    dest = f"{{kv, '{py.name}'}}"
    got = await erl.eval(f"catch gen_server:call({dest}, hold, 100)")
    assert got.startswith("{'EXIT',{timeout,")
    # The cast and the call go in order from one process: the late reply is sent first.
    await erl.eval(f'gen_server:cast({dest}, <<"release">>)')
    assert await erl.eval(f'gen_server:call({dest}, {{get, <<"none">>}})') == "undefined"
    assert not kv.held
    assert await erl.eval("receive M -> {stray, M} after 0 -> none end") == "none"


async def test_erlang_stops_a_python_server(make_node: NodeFactory, erl: ErlPeer) -> None:
    """gen_server:stop/3 from Erlang (sys:terminate) returns ok once terminate ran with
    the reason; other sys requests get {error, {unknown_system_msg, Request}}."""
    py, kv = await py_server(make_node)
    dest = f"{{kv, '{py.name}'}}"
    got = await erl.eval_term(f"catch sys:get_state({dest})")  # sys raises error(Reason)
    assert got[0] == "EXIT" and got[1][0] == (Atom("unknown_system_msg"), Atom("get_state"))
    assert await erl.eval(f"gen_server:stop({dest}, {{shutdown, bye}}, 5000)") == "ok"
    assert kv.stopped == [(Atom("shutdown"), Atom("bye"))]
    assert py.whereis("kv") is None


async def test_elixir_genserver_call_and_cast(make_node: NodeFactory, epmd_port: int) -> None:
    """Elixir's GenServer.call/cast reach a Python server as any Elixir server."""
    py, _ = await py_server(make_node)
    script = f"""
        py = :"{py.name}"
        IO.inspect(GenServer.call({{:kv, py}}, {{:put, "k", %{{"a" => 1}}}}))
        IO.inspect(GenServer.call({{:kv, py}}, {{:get, "k"}}, 5000))
        GenServer.cast({{:kv, py}}, {{:put, "c", [1, 2]}})
        IO.inspect(GenServer.call({{:kv, py}}, {{:get, "c"}}))
        try do
          GenServer.call({{:nokv, py}}, :x)
        catch
          :exit, reason -> IO.inspect(reason)
        end
    """
    _status, output = await run_elixir(script, cookie=COOKIE, epmd_port=epmd_port)
    assert output.split("\n")[:4] == [
        ":ok",
        '%{"a" => 1}',
        "[1, 2]",
        f'{{:noproc, {{GenServer, :call, [{{:nokv, :"{py.name}"}}, :x, 5000]}}}}',
    ], output


# -- Python calls Erlang ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def nm_kv_dir() -> Iterator[Path]:
    """nm_kv.erl compiled once for this module."""
    require_erlang()
    out = Path(tempfile.mkdtemp(prefix="nm_kv_"))
    subprocess.run(["erlc", "-o", str(out), str(HERE / "nm_kv.erl")], check=True, timeout=60)
    yield out
    shutil.rmtree(out, ignore_errors=True)


@pytest.fixture
async def erl_kv(epmd_port: int, nm_kv_dir: Path) -> AsyncIterator[ErlPeer]:
    """A real Erlang node running nm_kv registered as kv."""
    peer = await ErlPeer.start(
        "erlkv@127.0.0.1",
        COOKIE,
        env={"ERL_EPMD_PORT": str(epmd_port)},
        extra_args=("-pa", str(nm_kv_dir), "-pa", str(beam_dir())),
    )
    await peer.eval("{ok, _} = gen_server:start({local, kv}, nm_kv, #{}, [])")
    yield peer
    await peer.stop()


async def test_python_calls_and_casts_erlang(make_node: NodeFactory, erl_kv: ErlPeer) -> None:
    """node.call by (name, node) and by pid, node.cast; Erlang sees a plain-ref tag."""
    py = await make_node("py")
    dest = ("kv", erl_kv.name)
    assert await py.call(dest, (PUT, "k", [1, 2])) == "ok"
    assert await py.call(dest, (GET, "k")) == [1, 2]
    py.cast(dest, (PUT, "c", 3))
    assert await py.call(dest, (GET, "c")) == 3
    pid = await erl_kv.eval_term("whereis(kv)")
    assert isinstance(pid, Pid)
    caller, tag = await py.call(pid, Atom("from"))
    assert caller.node == py.name and type(tag) is Reference


async def test_python_call_errors_from_erlang(make_node: NodeFactory, erl_kv: ErlPeer) -> None:
    """noproc, a timeout (the late reply then dropped) and exit reasons are distinct."""
    py = await make_node("py")
    with pytest.raises(NoProcError):
        await py.call(("nokv", erl_kv.name), 1)
    with pytest.raises(CallTimeoutError):
        await py.call(("kv", erl_kv.name), (Atom("sleep"), 300), timeout=0.05)
    assert await py.call(("kv", erl_kv.name), (GET, "nothing")) is None
    with pytest.raises(CallExitError) as info:
        await py.call(("kv", erl_kv.name), CRASH)
    assert info.value.reason[0] == "boom" and isinstance(info.value.reason[1], list)
    await erl_kv.eval("{ok, _} = gen_server:start({local, kv}, nm_kv, #{}, [])")
    stop = (Atom("stop"), (Atom("shutdown"), Atom("bye")))
    with pytest.raises(CallExitError) as info:
        await py.call(("kv", erl_kv.name), stop)
    assert info.value.reason == (Atom("shutdown"), Atom("bye"))
    await wait_for(lambda: not py._processes.signals._monitors, what="no monitors left")


async def test_python_call_erlang_node_killed_mid_call(
    make_node: NodeFactory, erl_kv: ErlPeer
) -> None:
    """The Erlang node killed (-9) during a call raises NodeDownError."""
    py = await make_node("py")
    pending = asyncio.create_task(py.call(("kv", erl_kv.name), HOLD, timeout=None))
    for _ in range(200):
        if await erl_kv.eval("maps:is_key(held, sys:get_state(kv))") == "true":
            break
    else:
        pytest.fail("the call never reached the Erlang server")
    await erl_kv.stop()
    with pytest.raises(NodeDownError):
        await asyncio.wait_for(pending, 30)


async def test_python_multi_call_mixed(make_node: NodeFactory, erl_kv: ErlPeer) -> None:
    """multi_call over an Erlang server, a Python server and an absent node."""
    py, kv = await py_server(make_node)
    kv.data["k"] = Atom("from_python")
    await erl_kv.eval('gen_server:call(kv, {put, <<"k">>, from_erlang})')
    nodes = [erl_kv.name, py.name, "absent@127.0.0.1"]
    replies, bad = await py.multi_call(nodes, "kv", (GET, "k"))
    assert replies == {erl_kv.name: "from_erlang", py.name: "from_python"}
    assert bad == ["absent@127.0.0.1"]
