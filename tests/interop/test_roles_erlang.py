"""Roles with real Erlang nodes: Erlang sees Python members with pg:get_members/2,
Python calls Erlang members, and a stream of role calls survives an Erlang member's
node killed (SIGKILL) mid-stream: every call answered, at most one retry each."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from conftest import COOKIE, NodeFactory
from nodemesh import Atom, Caller, GenServer, Pid
from nodemesh.services import Roles
from support.erlang import ErlPeer

pytestmark = pytest.mark.interop

# A gen_server-shaped loop: answers {'$gen_call', From, Req} after 20 ms with {node(), Req}.
SERVE = (
    "put(srv, spawn(fun() -> (fun L() -> receive {'$gen_call', From, Req} -> "
    "timer:sleep(20), gen:reply(From, {node(), Req}), L() end end)() end)), "
    '{ok, _} = pg:start(nodemesh_roles), ok = pg:join(nodemesh_roles, <<"b">>, get(srv))'
)


class Echo(GenServer):
    """Answers ``{node, request}`` like the Erlang members."""

    def handle_call(self, request: Any, caller: Caller) -> Any:
        assert self.node is not None
        return (Atom(self.node.name), request)


async def test_erlang_sees_python_members_and_metadata(
    make_node: NodeFactory, erl: ErlPeer
) -> None:
    """pg:get_members(nodemesh_roles, <<"b">>) on Erlang lists the Python member; its
    metadata group is there too; Python sees the Erlang member."""
    await erl.eval(SERVE)
    py = await make_node("py")
    async with Roles(py) as roles:
        pid = await roles.serve("b", Echo(), metadata={"zone": "eu-1"})
        assert await py.connect(erl.name)
        await roles.wait_for_members("b", 2, timeout=10)
        members = await erl.eval_term(
            '(fun W(0) -> timeout; W(N) -> case pg:get_members(nodemesh_roles, <<"b">>) of '
            "[_, _] = M -> M; _ -> timer:sleep(20), W(N - 1) end end)(250)"
        )
        assert pid in members
        groups = await erl.eval_term("pg:which_groups(nodemesh_roles)")
        meta = (Atom("$role_meta"), b"b", {b"zone": b"eu-1"})
        assert any(g == meta for g in groups)
        erl_member = next(m for m in roles.members("b") if m.node == erl.name)
        assert erl_member.metadata == {}
        assert await py.call(erl_member.pid, "direct") == (Atom(erl.name), b"direct")


async def test_role_calls_survive_member_node_killed(
    make_node: NodeFactory, erl: ErlPeer, epmd_port: int
) -> None:
    """120 calls, 8 at a time, over a Python and two Erlang members; one Erlang node is
    killed mid-stream. Every call returns a reply; only calls caught on the killed node
    are retried, once each."""
    erl2 = await ErlPeer.start("erl2@127.0.0.1", COOKIE, env={"ERL_EPMD_PORT": str(epmd_port)})
    try:
        await erl.eval(SERVE)
        await erl2.eval(SERVE)
        py = await make_node("py")
        async with Roles(py) as roles:
            await roles.serve("b", Echo())
            assert await py.connect(erl.name) and await py.connect(erl2.name)
            await roles.wait_for_members("b", 3, timeout=10)
            replies: list[Any] = []
            killed = asyncio.Event()

            async def client(numbers: range) -> None:
                for n in numbers:
                    replies.append(await roles.call_any("b", n))
                    if len(replies) == 40:
                        killed.set()

            async with asyncio.TaskGroup() as group:
                for start in range(0, 120, 15):
                    group.create_task(client(range(start, start + 15)))
                await killed.wait()
                await erl2.stop()  # SIGKILL: the connection drops with calls in flight
            assert sorted(r[1] for r in replies) == list(range(120))
            stats = roles.statistics()
            assert stats.failures == 0 and stats.calls == 120
            assert 1 <= stats.retries <= 8  # at most the calls in flight when it died
            assert all(type(r[0]) is Atom for r in replies)
            late = [r for r in replies[60:] if r[0] == erl2.name]
            assert late == []
    finally:
        await erl2.stop()


async def test_no_member_left_on_dead_node(make_node: NodeFactory, erl: ErlPeer) -> None:
    """After the only Erlang member's node dies, members() drops it and call_any goes to
    the Python member without an error."""
    await erl.eval(SERVE)
    py = await make_node("py")
    async with Roles(py) as roles:
        mine = await roles.serve("b", Echo())
        assert await py.connect(erl.name)
        await roles.wait_for_members("b", 2, timeout=10)
        await erl.stop()
        await roles.scope.wait_for_members("b", lambda pids: pids == [mine], timeout=10)
        assert (await roles.call_any("b", 1))[0] == py.name
        assert [m.pid for m in roles.members("b")] == [mine]
        assert isinstance(mine, Pid)
