"""pg scopes between Python nodes: discovery, joins, leaves, exits, reconnects, bad input."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest

from conftest import NodeFactory
from nodemesh import Atom, Node
from nodemesh.services import Joined, Left, PgScope
from nodemesh.term.types import Pid
from support.net import wait_for

ScopeFactory = Callable[[str], Coroutine[Any, Any, tuple[Node, PgScope]]]


@pytest.fixture
async def scoped(make_node: NodeFactory) -> AsyncIterator[ScopeFactory]:
    """Nodes that each run a started ``pg`` scope; scopes closed before the nodes."""
    scopes: list[PgScope] = []

    async def factory(alive: str) -> tuple[Node, PgScope]:
        node = await make_node(alive)
        scope = PgScope(node)
        await scope.start()
        scopes.append(scope)
        return node, scope

    yield factory
    for scope in scopes:
        await scope.aclose()


async def test_members_seen_from_both_nodes(scoped: ScopeFactory) -> None:
    """A join on one node shows up in the other's members once the nodes connect."""
    a, pg_a = await scoped("a")
    b, pg_b = await scoped("b")
    mine = a.mailbox()
    pg_a.join("room", mine.pid)
    assert await a.connect(b.name)
    assert await pg_b.wait_for_members("room", timeout=5) == [mine.pid]
    theirs = b.mailbox()
    pg_b.join(Atom("grp"), [theirs.pid])
    assert await pg_a.wait_for_members(Atom("grp"), timeout=5) == [theirs.pid]
    assert pg_a.local_members("room") == [mine.pid]
    assert pg_a.remote_members(Atom("grp")) == [theirs.pid]
    assert set(pg_a.which_groups()) == {b"room", Atom("grp")}


async def test_leave_and_exit_reach_peers(scoped: ScopeFactory) -> None:
    """leave() and a member's mailbox closing both remove it on the peer."""
    a, pg_a = await scoped("a")
    b, pg_b = await scoped("b")
    await a.connect(b.name)
    one, two = a.mailbox(), a.mailbox()
    pg_a.join("g", [one.pid, two.pid])
    await pg_b.wait_for_members("g", lambda m: len(m) == 2, timeout=5)
    assert pg_a.leave("g", one.pid)
    assert not pg_a.leave("g", one.pid)
    await pg_b.wait_for_members("g", lambda m: m == [two.pid], timeout=5)
    two.close()
    await pg_b.wait_for_members("g", lambda m: m == [], timeout=5)
    assert pg_a.members("g") == []


async def test_changes_stream(scoped: ScopeFactory) -> None:
    """The changes stream reports remote joins and the leave when the peer node goes."""
    a, pg_a = await scoped("a")
    b, pg_b = await scoped("b")
    changes = pg_a.changes()
    member = b.mailbox()
    pg_b.join("g", member.pid)
    await a.connect(b.name)
    assert await changes.get(timeout=5) == Joined(b"g", (member.pid,))
    await a.disconnect(b.name)
    assert await changes.get(timeout=5) == Left(b"g", (member.pid,))


async def test_rediscovered_after_reconnect(scoped: ScopeFactory) -> None:
    """After a disconnect and a reconnect the peer's members come back."""
    a, pg_a = await scoped("a")
    b, pg_b = await scoped("b")
    member = b.mailbox()
    pg_b.join("g", member.pid)
    await a.connect(b.name)
    await pg_a.wait_for_members("g", timeout=5)
    await a.disconnect(b.name)
    await pg_a.wait_for_members("g", lambda m: m == [], timeout=5)
    await a.connect(b.name)
    assert await pg_a.wait_for_members("g", timeout=5) == [member.pid]


async def test_scope_stopping_drops_its_members(scoped: ScopeFactory) -> None:
    """When a peer scope closes, its members leave everywhere (its DOWN, as in pg)."""
    a, pg_a = await scoped("a")
    b, pg_b = await scoped("b")
    pg_b.join("g", b.mailbox().pid)
    await a.connect(b.name)
    await pg_a.wait_for_members("g", timeout=5)
    await pg_b.aclose()
    await pg_a.wait_for_members("g", lambda m: m == [], timeout=5)
    assert pg_a.peers() == []


async def test_join_refuses_foreign_pids(scoped: ScopeFactory) -> None:
    """Only this node's pids may join, as pg's ensure_local insists."""
    _, pg_a = await scoped("a")
    with pytest.raises(ValueError, match="only pids of"):
        pg_a.join("g", Pid(Atom("x@h"), 1, 0, 1))


async def test_malformed_messages_are_dropped_and_logged_once(
    scoped: ScopeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Junk sent to the scope is dropped with few log lines; the scope keeps working."""
    a, pg_a = await scoped("a")
    b, pg_b = await scoped("b")
    await a.connect(b.name)
    await wait_for(lambda: len(pg_a.peers()) == 1 and len(pg_b.peers()) == 1, 5)
    sender = b.mailbox()
    bad: list[Any] = [
        "hello",
        (Atom("join"), sender.pid, "g", ["not a pid"]),
        (Atom("join"), sender.pid, [1, 2], 7),
        (Atom("leave"), sender.pid, sender.pid, "not a list"),
        (Atom("$gen_cast"), (Atom("sync"), sender.pid, [(b"g", "x")])),
        (Atom("$gen_cast"), (Atom("sync"), sender.pid, [1])),
        [Atom("discover"), sender.pid],
        (Atom("discover"), a.mailbox().pid),  # a pid of a's own node posing as a peer
    ]
    with caplog.at_level(logging.WARNING, logger="nodemesh.pg"):
        for _ in range(20):
            for message in bad:
                await sender.send(("pg", a.name), message)
        member = b.mailbox()
        pg_b.join("after", member.pid)
        assert await pg_a.wait_for_members("after", timeout=5) == [member.pid]
    assert pg_a.peers() == [pg_b.pid]
    lines = [r for r in caplog.records if r.name == "nodemesh.pg"]
    assert 1 <= len(lines) <= 2
