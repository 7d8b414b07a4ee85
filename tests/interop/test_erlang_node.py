"""A Python node and real Erlang/OTP nodes: ping, messages, monitoring, rpc, failures.

Every test here talks to a real `erl` (Debian's erlang-base) registered with a real
`epmd` started for this module on a private port.
"""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from conftest import COOKIE, NodeFactory
from nodemesh import Atom, NodeDownError, ReceiveTimeoutError, RemoteCallError
from nodemesh.runtime.events import NodeDown, NodeUp
from support.erlang import ErlPeer
from support.net import wait_for

pytestmark = pytest.mark.interop

CHAT = (Atom("chat"), b"room:lobby", b"hello from a node", 12345)
CHAT_ERL = '{chat, <<"room:lobby">>, <<"hello from a node">>, 12345}'


async def start_erl(name: str, epmd_port: int, *extra: str) -> ErlPeer:
    return await ErlPeer.start(
        name, COOKIE, env={"ERL_EPMD_PORT": str(epmd_port)}, extra_args=extra
    )


async def test_python_pings_erlang(make_node: NodeFactory, erl: ErlPeer) -> None:
    """Node.ping to a real Erlang node answers pong."""
    py = await make_node("py")
    assert await py.ping(erl.name)
    assert await erl.eval("lists:member('py@127.0.0.1', nodes(hidden))") == "true"


async def test_erlang_pings_python(make_node: NodeFactory, erl: ErlPeer) -> None:
    """net_adm:ping from Erlang gets pong (the improper-list reply tag round-trips)."""
    py = await make_node("py")
    assert await erl.eval(f"net_adm:ping('{py.name}')") == "pong"
    assert py.is_connected(erl.name)


async def test_messages_both_ways_names_and_pids(make_node: NodeFactory, erl: ErlPeer) -> None:
    """Messages reach registered names and pids in both directions, intact."""
    py = await make_node("py")
    inbox = py.register("chat")
    await py.send(("nm_peer", erl.name), (inbox.pid, CHAT))
    got = await erl.eval(
        f"receive {{From, Msg}} -> put(from, From), Msg =:= {CHAT_ERL} after 5000 -> timeout end"
    )
    assert got == "true"
    await erl.eval(f"{{chat, '{py.name}'}} ! {{by_name, {CHAT_ERL}}}")
    assert await inbox.receive(timeout=5) == (Atom("by_name"), CHAT)
    await erl.eval("get(from) ! {by_pid, self()}")
    tag, erl_pid = await inbox.receive(timeout=5)
    assert tag == Atom("by_pid") and erl_pid.node == erl.name
    await py.send(erl_pid, "to a pid")
    got = await erl.eval('receive M -> M =:= <<"to a pid">> after 5000 -> timeout end')
    assert got == "true"


async def test_nodeup_nodedown_both_ways(make_node: NodeFactory, erl: ErlPeer) -> None:
    """Python sees nodeup/nodedown for Erlang and Erlang's monitor_node sees Python's."""
    py = await make_node("py")
    events = py.events()
    assert await erl.eval(f"net_kernel:connect_node('{py.name}')") == "true"
    assert await events.get(5) == NodeUp(erl.name)
    await erl.eval(f"monitor_node('{py.name}', true)")
    await erl.eval(f"erlang:disconnect_node('{py.name}')")
    down = await events.get(5)
    assert isinstance(down, NodeDown) and down.node == erl.name
    assert await py.connect(erl.name)
    assert await events.get(5) == NodeUp(erl.name)
    await erl.eval(f"monitor_node('{py.name}', true)")
    await py.disconnect(erl.name)
    got = await erl.eval("receive {nodedown, N} -> N after 5000 -> timeout end")
    assert got == f"'{py.name}'"


async def test_wrong_cookie_both_ways(make_node: NodeFactory, erl: ErlPeer) -> None:
    """A wrong cookie is pang on both sides, and Python says it is the cookie."""
    py = await make_node("py", cookie="not-the-cookie")
    reason = await py.ping_result(erl.name, timeout=5)
    assert reason is not None and "cookie" in reason.lower()
    assert await erl.eval(f"net_adm:ping('{py.name}')") == "pang"
    assert py.nodes() == []


async def test_kill_9_is_detected_within_a_second(make_node: NodeFactory, epmd_port: int) -> None:
    """A peer killed with SIGKILL is reported down well within one second."""
    py = await make_node("py")
    peer = await start_erl("victim@127.0.0.1", epmd_port)
    try:
        events = py.events()
        assert await py.connect(peer.name)
        assert await events.get(5) == NodeUp(peer.name)
        loop = asyncio.get_running_loop()
        started = loop.time()
        os.kill(peer.proc.pid, signal.SIGKILL)
        down = await events.get(5)
        assert isinstance(down, NodeDown) and down.node == peer.name
        assert loop.time() - started < 1.0
    finally:
        await peer.stop()


async def test_frozen_peer_is_detected_by_ticks(make_node: NodeFactory, epmd_port: int) -> None:
    """A peer stopped with SIGSTOP is reported down within the tick time."""
    ticktime = 2
    py = await make_node("py", net_ticktime=float(ticktime))
    peer = await start_erl("frozen@127.0.0.1", epmd_port, "-kernel", "net_ticktime", str(ticktime))
    try:
        events = py.events()
        assert await py.connect(peer.name)
        assert await events.get(5) == NodeUp(peer.name)
        loop = asyncio.get_running_loop()
        os.kill(peer.proc.pid, signal.SIGSTOP)
        started = loop.time()
        down = await events.get(ticktime * 3)
        assert down == NodeDown(peer.name, "net_tick_timeout")
        assert loop.time() - started <= ticktime * 1.5
    finally:
        os.kill(peer.proc.pid, signal.SIGCONT)
        await peer.stop()


async def test_idle_connection_survives_on_ticks(make_node: NodeFactory, epmd_port: int) -> None:
    """An idle connection stays up past several tick times: both sides tick."""
    ticktime = 1
    py = await make_node("py", net_ticktime=float(ticktime))
    peer = await start_erl("idle@127.0.0.1", epmd_port, "-kernel", "net_ticktime", str(ticktime))
    try:
        events = py.events()
        assert await py.connect(peer.name)
        assert await events.get(5) == NodeUp(peer.name)
        with pytest.raises(TimeoutError):
            await events.get(ticktime * 4)
        assert py.is_connected(peer.name)
        assert await peer.eval(f"lists:member('{py.name}', nodes(hidden))") == "true"
    finally:
        await peer.stop()


async def test_full_mesh_with_two_erlang_nodes(make_node: NodeFactory, epmd_port: int) -> None:
    """One Python node and two Erlang nodes end up each connected to the other two."""
    py = await make_node("py")
    e1 = await start_erl("e1@127.0.0.1", epmd_port)
    e2 = await start_erl("e2@127.0.0.1", epmd_port)
    try:
        assert await py.connect(e1.name)
        assert await e2.eval(f"net_adm:ping('{py.name}')") == "pong"
        assert await e1.eval(f"net_adm:ping('{e2.name}')") == "pong"
        assert sorted(py.nodes()) == sorted([e1.name, e2.name])
        for peer, other in ((e1, e2), (e2, e1)):
            connected = await peer.eval("lists:sort(nodes(connected))")
            assert connected == "[" + ",".join(sorted([f"'{other.name}'", f"'{py.name}'"])) + "]"
        assert await e1.eval("global:sync()", timeout=10) == "ok"
        assert await e2.eval("global:sync()", timeout=10) == "ok"
    finally:
        await e1.stop()
        await e2.stop()


async def test_global_sync_completes_while_python_is_connected(
    make_node: NodeFactory, erl: ErlPeer
) -> None:
    """global:sync() on the Erlang peer returns while the Python node is connected."""
    py = await make_node("py")
    assert await py.connect(erl.name)
    assert await erl.eval("global:sync()", timeout=10) == "ok"
    assert await erl.eval("global:registered_names()", timeout=10) == "[]"


async def test_rpc_call_from_erlang_into_python(make_node: NodeFactory, erl: ErlPeer) -> None:
    """rpc:call from Erlang runs an exposed Python function and returns its value."""
    py = await make_node("py")

    async def add(a: int, b: int) -> int:
        return a + b

    def fail(text: bytes) -> None:
        raise ValueError(text.decode())

    py.expose("math", "add", add)
    py.expose("math", "fail", fail)
    assert await erl.eval(f"rpc:call('{py.name}', math, add, [1, 2])") == "3"
    failed = await erl.eval(
        f"rpc:call('{py.name}', math, fail, [<<\"bad\">>]) =:= "
        '{badrpc, {\'EXIT\', {{python_exception, <<"ValueError">>, <<"bad">>}, []}}}'
    )
    assert failed == "true"
    assert await erl.eval(f"erpc:call('{py.name}', math, add, [40, 2])") == "42"
    undef = await erl.eval(f"rpc:call('{py.name}', math, nope, [1])")
    assert undef.startswith("{badrpc,{'EXIT',{undef,")


async def test_large_binaries_with_erlang(make_node: NodeFactory, erl: ErlPeer) -> None:
    """1 MB binaries cross between Python and Erlang in both directions."""
    py = await make_node("py")
    inbox = py.register("big")
    blob = bytes(range(256)) * 4096
    await py.send(("nm_peer", erl.name), blob)
    size = await erl.eval(
        "receive B -> {byte_size(B), erlang:md5(B) =:= erlang:md5("
        "binary:copy(list_to_binary(lists:seq(0, 255)), 4096))} "
        "after 5000 -> timeout end"
    )
    assert size == "{1048576,true}"
    await erl.eval(f"{{big, '{py.name}'}} ! binary:copy(<<7>>, 1048576), ok")
    assert await inbox.receive(timeout=10) == b"\x07" * 1048576


async def test_erlang_monitors_python_mailbox(make_node: NodeFactory, erl: ErlPeer) -> None:
    """erlang:monitor on a Python registered name sees DOWN when the mailbox closes."""
    py = await make_node("py")
    box = py.register("watched")
    ref = await erl.eval(f"R = erlang:monitor(process, {{watched, '{py.name}'}})")
    assert ref.startswith("#Ref<")
    await wait_for(lambda: bool(py._processes.signals._monitors), what="the monitor to arrive")
    box.close("done")
    down = await erl.eval("receive {'DOWN', R, process, _, Why} -> Why after 5000 -> timeout end")
    assert down == "done"
    missing = await erl.eval(
        f"R2 = erlang:monitor(process, {{ghost, '{py.name}'}}), "
        "receive {'DOWN', R2, process, _, W} -> W after 5000 -> t end"
    )
    assert missing == "noproc"


async def test_rpc_from_python_into_erlang(make_node: NodeFactory, erl: ErlPeer) -> None:
    """Node.rpc runs an Erlang function and returns its value; failures raise."""
    py = await make_node("py")
    assert await py.rpc(erl.name, "lists", "reverse", [[1, 2, 3]]) == [3, 2, 1]
    assert await py.rpc(erl.name, "erlang", "node") == Atom(erl.name)
    assert await py.rpc(erl.name, "io", "format", [b"printed by the callee~n"]) == Atom("ok")
    with pytest.raises(RemoteCallError) as raised:
        await py.rpc(erl.name, "erlang", "error", [Atom("boom")])
    assert raised.value.kind == "error" and raised.value.reason == Atom("boom")
    with pytest.raises(RemoteCallError) as raised:
        await py.rpc(erl.name, "erlang", "throw", [42])
    assert raised.value.kind == "throw" and raised.value.reason == 42
    with pytest.raises(ReceiveTimeoutError):
        await py.rpc(erl.name, "timer", "sleep", [5000], timeout=0.2)


async def test_rpc_when_the_node_dies_mid_call(make_node: NodeFactory, epmd_port: int) -> None:
    """A call in flight when the peer is killed raises NodeDownError."""
    py = await make_node("py")
    peer = await start_erl("dying@127.0.0.1", epmd_port)
    try:
        call = asyncio.create_task(py.rpc(peer.name, "timer", "sleep", [10000]))
        await wait_for(lambda: py.is_connected(peer.name), what="the call to connect")
        os.kill(peer.proc.pid, signal.SIGKILL)
        with pytest.raises(NodeDownError):
            await asyncio.wait_for(call, 5)
    finally:
        await peer.stop()


@pytest.mark.parametrize(("none_atom", "other"), [("undefined", "nil"), ("nil", "undefined")])
async def test_none_crosses_as_the_configured_atom(
    make_node: NodeFactory, erl: ErlPeer, none_atom: str, other: str
) -> None:
    """With NodeConfig(none_atom=...), Python's None arrives in Erlang as that atom, that
    atom comes back as None, and the other one stays an Atom, in messages and in rpc."""
    py = await make_node("py", none_atom=none_atom)
    inbox = py.register("inbox")
    await py.send(("nm_peer", erl.name), (inbox.pid, None))
    got = await erl.eval("receive {From, V} -> put(from, From), V after 5000 -> timeout end")
    assert got == none_atom
    await erl.eval(f"get(from) ! {{{none_atom}, {other}}}")
    assert await inbox.receive(timeout=5) == (None, Atom(other))
    py.expose("py", "echo", lambda value: (value, value is None))
    got = await erl.eval(f"rpc:call('{py.name}', py, echo, [{none_atom}])")
    assert got == f"{{{none_atom},true}}"
