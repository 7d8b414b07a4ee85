"""Roles between Python nodes: members with metadata, calls spread over live members,
members that left are skipped, and one retry elsewhere when a member's node goes down."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest

from conftest import NodeFactory
from nodemesh import NO_REPLY, Atom, Caller, GenServer, Node, NodeDownError, NoMembersError
from nodemesh.services import Roles
from support.net import wait_for

RolesFactory = Callable[[str], Coroutine[Any, Any, tuple[Node, Roles]]]


class Who(GenServer):
    """Answers every call with its node's name (an atom); with ``hold`` it never answers."""

    def __init__(self, *, hold: bool = False) -> None:
        self.hold = hold
        self.seen: list[Any] = []

    def handle_call(self, request: Any, caller: Caller) -> Any:
        self.seen.append(request)
        if self.hold:
            return NO_REPLY
        assert self.node is not None
        return Atom(self.node.name)


@pytest.fixture
async def roles(make_node: NodeFactory) -> AsyncIterator[RolesFactory]:
    """Nodes each running Roles, all connected to each other; Roles closed first."""
    made: list[tuple[Node, Roles]] = []

    async def factory(alive: str) -> tuple[Node, Roles]:
        node = await make_node(alive)
        for other, _ in made:
            assert await node.connect(other.name)
        r = Roles(node)
        await r.start()
        made.append((node, r))
        return node, r

    yield factory
    for _, r in made:
        await r.aclose()


async def test_members_with_metadata_seen_everywhere(roles: RolesFactory) -> None:
    """advertise() on one node is seen by members() on another, metadata included."""
    _a, roles_a = await roles("a")
    b, roles_b = await roles("b")
    pid = await roles_b.serve("b", Who(), metadata={"zone": "eu-1", "slots": 4})
    (member,) = await roles_a.wait_for_members("b", timeout=5)
    assert (member.pid, member.node) == (pid, b.name)
    assert member.metadata == {"zone": "eu-1", "slots": 4}
    assert roles_a.withdraw("b", pid) is False  # not a member on a
    assert roles_b.withdraw("b", pid) is True
    await wait_for(lambda: roles_a.members("b") == [], timeout=5)


async def test_bad_metadata_is_refused(roles: RolesFactory) -> None:
    """Metadata must be a flat str -> scalar mapping."""
    a, roles_a = await roles("a")
    with pytest.raises(TypeError):
        roles_a.advertise("x", a.mailbox().pid, {"nested": {"no": 1}})  # type: ignore[dict-item]


async def test_call_any_spreads_over_members(roles: RolesFactory) -> None:
    """Calls go round the members in turn: every member of three nodes gets some."""
    _a, roles_a = await roles("a")
    names = []
    for alive in ("b1", "b2", "b3"):
        node, r = await roles(alive)
        await r.serve("b", Who())
        names.append(node.name)
    await roles_a.wait_for_members("b", 3, timeout=5)
    replies = Counter([await roles_a.call_any("b", "hi") for _ in range(9)])
    assert replies == {name: 3 for name in names}


async def test_call_any_with_no_members_raises(roles: RolesFactory) -> None:
    """No live member: NoMembersError (a NoProcError), counted as a failure."""
    _a, roles_a = await roles("a")
    with pytest.raises(NoMembersError):
        await roles_a.call_any("nobody", "hi")
    assert roles_a.statistics().failures == 1


async def test_member_that_left_is_skipped(roles: RolesFactory) -> None:
    """A member whose node closed is skipped: every call reaches the one left."""
    _a, roles_a = await roles("a")
    b1, roles_b1 = await roles("b1")
    b2, roles_b2 = await roles("b2")
    await roles_b1.serve("b", Who())
    await roles_b2.serve("b", Who())
    await roles_a.wait_for_members("b", 2, timeout=5)
    await roles_b1.aclose()
    await b1.aclose()
    assert {await roles_a.call_any("b", i) for i in range(4)} == {b2.name}


async def test_node_down_mid_call_is_retried_once_elsewhere(roles: RolesFactory) -> None:
    """A member's node goes down while calls wait on it (two of three calls, taken in
    turn): each is answered by the other node after one retry; none is lost."""
    a, roles_a = await roles("a")
    b1, roles_b1 = await roles("b1")
    b2, roles_b2 = await roles("b2")
    slow, fast = Who(hold=True), Who()
    await roles_b1.serve("b", slow)
    await roles_b2.serve("b", fast)
    await roles_a.wait_for_members("b", 2, timeout=5)
    calls = [asyncio.create_task(roles_a.call_any("b", "slow")) for _ in range(3)]
    await wait_for(lambda: len(slow.seen) == 2, timeout=5)
    await b1.disconnect(a.name)  # the connection drops mid-call, as when b1 is killed
    assert [await c for c in calls] == [b2.name] * 3
    stats = roles_a.statistics()
    assert (stats.calls, stats.retries, stats.failures) == (3, 2, 0)


async def test_second_failure_is_raised(roles: RolesFactory) -> None:
    """When the retry fails too, the caller gets the error: at most one retry."""
    a, roles_a = await roles("a")
    servers = []
    for alive in ("b1", "b2", "b3"):
        node, r = await roles(alive)
        server = Who(hold=True)
        await r.serve("b", server)
        servers.append((node, server))
    await roles_a.wait_for_members("b", 3, timeout=5)
    call = asyncio.create_task(roles_a.call_any("b", "slow"))
    first = await _serving(servers)
    await first.disconnect(a.name)
    second = await _serving([s for s in servers if s[0] is not first])
    await second.disconnect(a.name)
    with pytest.raises(NodeDownError):
        await call
    stats = roles_a.statistics()
    assert (stats.retries, stats.failures) == (1, 1)
    third = next(s for n, s in servers if n not in (first, second))
    assert third.seen == []


async def _serving(servers: list[tuple[Node, Who]]) -> Node:
    """The node whose server got the slow call."""
    await wait_for(lambda: any(s.seen for _, s in servers), timeout=5)
    return next(n for n, s in servers if s.seen)
