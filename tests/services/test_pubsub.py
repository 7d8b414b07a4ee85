"""PubSub between Python nodes: local and remote delivery, bounds, nodes coming and going."""

from __future__ import annotations

import asyncio

import pytest

from conftest import NodeFactory
from nodemesh import Atom, EncodeError, Node, Pid, PubSub, StreamOverflowError
from nodemesh.services import PgScope, adapter_groups
from nodemesh.services.pubsub import PHOENIX_SCOPE
from support.net import wait_for


async def pubsub_on(make_node: NodeFactory, alive: str) -> tuple[Node, PubSub]:
    node = await make_node(alive)
    ps = PubSub(node)
    await ps.start()
    return node, ps


def test_adapter_groups_follow_phoenix_naming() -> None:
    """Group names are Module.concat(Name, "Adapter") plus _2.._N, as pg2.ex makes them."""
    assert adapter_groups("MyApp.PubSub") == ["Elixir.MyApp.PubSub.Adapter"]
    assert adapter_groups("Elixir.MyApp.PubSub", 3) == [
        "Elixir.MyApp.PubSub.Adapter",
        "Elixir.MyApp.PubSub.Adapter_2",
        "Elixir.MyApp.PubSub.Adapter_3",
    ]


async def test_local_subscribers_get_messages_without_peers(make_node: NodeFactory) -> None:
    """A lone node delivers to its own subscribers and reports 0 remote nodes."""
    node = await make_node("solo")
    async with PubSub(node) as ps:
        sub = ps.subscribe("room:lobby")
        other = ps.subscribe("room:other")
        assert await ps.broadcast("room:lobby", {"text": "hi"}) == 0
        assert await sub.get(timeout=5) == {"text": "hi"}
        assert other.statistics().queued == 0
        sub.close()
        assert ps.subscribers("room:lobby") == 0


async def test_broadcast_reaches_every_node_once(make_node: NodeFactory) -> None:
    """Three nodes, two subscribers each: a broadcast from one reaches all six, once."""
    nodes = [await pubsub_on(make_node, name) for name in ("a", "b", "c")]
    (a, ps_a), (b, _), (c, _) = nodes
    await a.connect(b.name)
    await a.connect(c.name)
    await b.connect(c.name)
    subs = [ps.subscribe("t") for _, ps in nodes for _ in range(2)]
    for _, ps in nodes:
        assert sorted(await ps.wait_for_remote(2, timeout=5)) == sorted(
            n.name for n, _ in nodes if n is not ps.node
        )
    for i in range(50):
        assert await ps_a.broadcast("t", (Atom("n"), i)) == 2
    for sub in subs:
        got = [await sub.get(timeout=5) for _ in range(50)]
        assert got == [(Atom("n"), i) for i in range(50)]
        assert sub.statistics().queued == 0
    for _, ps in nodes:
        await ps.aclose()


async def test_nodes_joining_and_leaving_mid_stream(make_node: NodeFactory) -> None:
    """A node that leaves mid-stream does not disturb the others; one that joins gets
    what follows its subscription; no loss, no duplicates among nodes that stay."""
    a, ps_a = await pubsub_on(make_node, "a")
    b, ps_b = await pubsub_on(make_node, "b")
    c, ps_c = await pubsub_on(make_node, "c")
    await a.connect(b.name)
    await a.connect(c.name)
    sub_b, sub_c = ps_b.subscribe("t"), ps_c.subscribe("t")
    await ps_a.wait_for_remote(2, timeout=5)
    for i in range(100):
        if i == 40:
            assert [await sub_c.get(timeout=5) for _ in range(40)] == list(range(40))
            await ps_c.aclose()
            await c.aclose()
        if i == 60:
            d, ps_d = await pubsub_on(make_node, "d")
            sub_d = ps_d.subscribe("t")
            await a.connect(d.name)
            want = {a.name, b.name, d.name}
            await ps_a.scope.wait_for_members(
                ps_a.groups[0], lambda m, want=want: {p.node for p in m} == want, 5
            )
        await ps_a.broadcast("t", i)
    assert [await sub_b.get(timeout=5) for _ in range(100)] == list(range(100))
    assert [message async for message in sub_c] == []  # ended when c's PubSub closed
    assert [await sub_d.get(timeout=5) for _ in range(40)] == list(range(60, 100))
    assert sub_b.statistics().queued == 0 and sub_d.statistics().queued == 0
    assert ps_a.remote_nodes() == sorted([b.name, d.name])


async def test_slow_subscriber_is_bounded(make_node: NodeFactory) -> None:
    """A subscriber that falls max_queued behind ends with StreamOverflowError after what
    it had queued; other subscribers are not affected."""
    node = await make_node("solo")
    async with PubSub(node) as ps:
        slow = ps.subscribe("t", max_queued=10)
        fast = ps.subscribe("t")
        for i in range(25):
            await ps.broadcast("t", i)
        assert [await slow.get(timeout=5) for _ in range(10)] == list(range(10))
        with pytest.raises(StreamOverflowError):
            await slow.get(timeout=5)
        assert [await fast.get(timeout=5) for _ in range(25)] == list(range(25))
        assert ps.subscribers("t") == 1


async def test_wait_for_remote_times_out(make_node: NodeFactory) -> None:
    """wait_for_remote raises TimeoutError when no other node runs the PubSub."""
    node = await make_node("solo")
    async with PubSub(node) as ps:
        with pytest.raises(TimeoutError):
            await ps.wait_for_remote(1, timeout=0.2)


async def test_two_pubsubs_share_one_scope(make_node: NodeFactory) -> None:
    """Two PubSub servers of a node on one 'Elixir.Phoenix.PubSub' scope keep their
    topics apart: each reaches only its own server on the other node."""
    a, b = await make_node("a"), await make_node("b")
    async with PgScope(a, PHOENIX_SCOPE) as scope_a, PgScope(b, PHOENIX_SCOPE) as scope_b:
        ps = {
            (node.name, name): PubSub(node, name, scope=scope)
            for node, scope in ((a, scope_a), (b, scope_b))
            for name in ("One.PubSub", "Two.PubSub")
        }
        for server in ps.values():
            await server.start()
        one, two = ps[b.name, "One.PubSub"].subscribe("t"), ps[b.name, "Two.PubSub"].subscribe("t")
        await a.connect(b.name)
        await ps[a.name, "One.PubSub"].wait_for_remote(1, timeout=5)
        await ps[a.name, "Two.PubSub"].wait_for_remote(1, timeout=5)
        assert await ps[a.name, "One.PubSub"].broadcast("t", "for one") == 1
        assert await ps[a.name, "Two.PubSub"].broadcast("t", "for two") == 1
        assert await one.get(timeout=5) == b"for one"
        assert await two.get(timeout=5) == b"for two"
        assert one.statistics().queued == 0 and two.statistics().queued == 0
        for server in ps.values():
            await server.aclose()


async def test_broadcast_writes_none_as_the_nodes_none_atom(make_node: NodeFactory) -> None:
    """A node configured for Elixir (none_atom="nil") broadcasts None as nil, to one
    node or several: a peer on Erlang's convention reads the atom nil, one on Elixir's
    reads None."""
    elixir = await make_node("ex", none_atom="nil")
    erlang, other_elixir = await make_node("erl"), await make_node("ex2", none_atom="nil")
    async with PubSub(elixir) as ps, PubSub(erlang) as ps_erl, PubSub(other_elixir) as ps_ex:
        subs = ps_erl.subscribe("t"), ps_ex.subscribe("t")
        await elixir.connect(erlang.name)
        await ps.wait_for_remote(1, timeout=5)
        assert await ps.broadcast("t", (None, 0)) == 1  # one node: the tuple as it is
        assert await subs[0].get(timeout=5) == (Atom("nil"), 0)
        await elixir.connect(other_elixir.name)
        await ps.wait_for_remote(2, timeout=5)
        assert await ps.broadcast("t", (None, 1)) == 2
        assert await subs[0].get(timeout=5) == (Atom("nil"), 1)
        assert await subs[1].get(timeout=5) == (None, 1)


async def test_broadcast_waits_for_room_on_a_paused_connection(make_node: NodeFactory) -> None:
    """When the socket to a subscriber node is full (that node stopped reading), the
    broadcast waits for room as node.send does; nothing is lost or reordered."""
    a, ps_a = await pubsub_on(make_node, "a")
    b, ps_b = await pubsub_on(make_node, "b")
    await a.connect(b.name)
    await ps_a.wait_for_remote(1, timeout=5)
    sub = ps_b.subscribe("t", max_queued=0)
    inbox = b.register("inbox", max_queued=1)  # full at once: b stops reading from a
    await a.send(("inbox", b.name), "first")
    await a.send(("inbox", b.name), "second")
    await wait_for(lambda: b.statistics().paused_connections == 1, what="b pauses reading")
    payload, count = b"x" * 20_000, 500

    async def publish() -> None:
        for i in range(count):
            await ps_a.broadcast("t", (i, payload))

    publisher = asyncio.create_task(publish())
    await wait_for(lambda: a.statistics().write_paused_connections == 1, what="a's socket fills")
    assert not publisher.done()
    assert [await inbox.receive(timeout=5) for _ in range(2)] == [b"first", b"second"]
    await publisher
    assert [(await sub.get(timeout=5))[0] for _ in range(count)] == list(range(count))
    await ps_a.aclose()
    await ps_b.aclose()


async def test_broadcast_dials_a_member_whose_node_is_not_connected(
    make_node: NodeFactory,
) -> None:
    """A member listed on a node with no connection (its scope's DOWN not yet handled)
    gets the broadcast through a new connection, as node.send dials."""
    a, ps_a = await pubsub_on(make_node, "a")
    b, ps_b = await pubsub_on(make_node, "b")
    sub = ps_b.subscribe("t")
    worker = b.whereis(str(ps_b.groups[0]))
    assert worker is not None and b.name not in a.nodes()
    # What a's table would hold had b's scope reported the worker before a dropped out.
    table, scope_b = ps_a.scope._table, Pid(Atom(b.name), 1, 0, b.creation)
    table.add_peer(scope_b)
    table.join_remote(scope_b, ps_a.groups[0], [worker])
    assert await ps_a.broadcast("t", "dialed") == 1
    assert await sub.get(timeout=5) == b"dialed"
    assert b.name in a.nodes()
    await ps_a.aclose()
    await ps_b.aclose()


async def test_broadcast_of_a_term_with_no_erlang_form_raises(make_node: NodeFactory) -> None:
    """EncodeError reaches the caller whether one or two other nodes run the PubSub,
    and nothing is sent: the other nodes' subscribers get only the next broadcast."""
    a, ps_a = await pubsub_on(make_node, "a")
    subs = []
    for alive in ("b", "c"):
        node, ps = await pubsub_on(make_node, alive)
        subs.append(ps.subscribe("t"))
        await a.connect(node.name)
        await ps_a.wait_for_remote(len(subs), timeout=5)
        with pytest.raises(EncodeError):
            await ps_a.broadcast("t", ("bad", object()))
    assert await ps_a.broadcast("t", "good") == 2
    for sub in subs:
        assert await sub.get(timeout=5) == b"good"


async def test_a_worker_ignores_what_is_not_forward_to_local(make_node: NodeFactory) -> None:
    """A worker drops anything but {forward_to_local, Topic, Message, Dispatcher}; what
    follows it is still delivered."""
    a, pa = await pubsub_on(make_node, "a")
    b, pb = await pubsub_on(make_node, "b")
    await a.connect(b.name)
    sub = pb.subscribe("t")
    worker = (str(pb.groups[0]), b.name)
    for junk in (Atom("hello"), (Atom("forward_to_local"), "t", 1), (1, 2, 3, 4)):
        await a.send(worker, junk)
    await a.send(worker, (Atom("forward_to_local"), b"t", "ok", Atom(PHOENIX_SCOPE)))
    assert await sub.get(timeout=5) == b"ok"  # a str is sent as a binary
    assert sub.statistics().queued == 0
    await pa.aclose()
    await pb.aclose()
