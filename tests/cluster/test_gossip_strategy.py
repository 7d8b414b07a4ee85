"""The gossip strategy on loopback: meshes, fast answers to newcomers, hostile datagrams.

Each test uses its own UDP port and multicast on 127.0.0.1 (packets stay on ``lo``), with
the strategy run over a bare :class:`NodeContext` (see the runner tests for the Cluster).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Set
from typing import Any

import pytest

from conftest import NodeFactory
from nodemesh.cluster.gossip.wire import (
    AuthenticatedCodec,
    SecretCodec,
    encode_heartbeat,
    read_heartbeat,
)
from nodemesh.cluster.strategies.gossip import GossipOptions, GossipStrategy
from nodemesh.runtime.node import Node
from support.gossip_node import NodeContext, free_udp_port, running
from support.net import wait_for

GROUP = "233.252.1.32"
KEY = "test-key-0123456789abcdef0123456789"


@pytest.fixture
def port() -> int:
    return free_udp_port()


def fast(port: int, **extra: Any) -> GossipOptions:
    """Loopback multicast on a private port, heartbeats every 50-200 ms."""
    base: dict[str, Any] = {
        "port": port,
        "multicast_if": "127.0.0.1",
        "heartbeat_interval_min": 50,
        "heartbeat_interval_max": 200,
        "reply_interval": 10,
    }
    return GossipOptions(**{**base, **extra})


def total_drops(strategy: GossipStrategy) -> int:
    return sum(strategy.statistics().dropped.values())


def accepted(strategy: GossipStrategy) -> int:
    return strategy.statistics().heartbeats_accepted


def meshed(nodes: list[Node]) -> bool:
    return all(set(n.nodes()) >= {m.name for m in nodes if m is not n} for n in nodes)


class Sender:
    """A raw UDP socket that sends datagrams to the strategy's port, and can listen to
    the group like a node (SO_REUSEPORT), to capture real heartbeats."""

    def __init__(self, port: int, listen: bool = False) -> None:
        self.port = port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if listen:
            self.sock.bind(("0.0.0.0", port))
            mreq = socket.inet_aton(GROUP) + socket.inet_aton("127.0.0.1")
            self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
        self.sock.setsockopt(
            socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1")
        )
        self.sock.setblocking(False)

    def send(self, *packets: bytes) -> None:
        """To the group, like a node: every socket joined to it gets a copy (unicast to a
        port shared with SO_REUSEPORT would reach only one of them)."""
        for packet in packets:
            self.sock.sendto(packet, (GROUP, self.port))

    async def capture(self, match: Any, timeout: float = 5.0) -> bytes:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(timeout):
            while True:
                data = await loop.sock_recv(self.sock, 65536)
                if match(data):
                    return data

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def sender(port: int) -> Any:
    made: list[Sender] = []

    def make(listen: bool = False) -> Sender:
        made.append(Sender(port, listen))
        return made[-1]

    yield make
    for s in made:
        s.close()


async def test_three_nodes_form_a_full_mesh(make_node: NodeFactory, port: int) -> None:
    """Three nodes gossiping on one group all connect to each other."""
    nodes = [await make_node(f"g{i}") for i in range(3)]
    strategies = [GossipStrategy(fast(port)) for _ in nodes]
    async with (
        running(strategies[0], NodeContext(nodes[0])),
        running(strategies[1], NodeContext(nodes[1])),
        running(strategies[2], NodeContext(nodes[2])),
    ):
        await wait_for(lambda: meshed(nodes), 10, "a full mesh")
        await wait_for(lambda: all(len(s.alive()) == 2 for s in strategies), 5, "liveness")
        ages = strategies[0].peers()
        assert set(ages) == {nodes[1].name, nodes[2].name}
        assert all(0 <= age < 5 for age in ages.values())


async def test_newcomer_is_answered_at_once(make_node: NodeFactory, port: int) -> None:
    """With periodic heartbeats a minute apart, a newcomer still hears everyone at once:
    whoever hears a new sender answers immediately."""
    slow = fast(port, heartbeat_interval_min=60_000, heartbeat_interval_max=60_000)
    a, b, c = [await make_node(n) for n in "abc"]
    sa, sb, sc = GossipStrategy(slow), GossipStrategy(slow), GossipStrategy(slow)
    async with running(sa, NodeContext(a)), running(sb, NodeContext(b)):
        await wait_for(lambda: meshed([a, b]), 5, "a and b")
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with running(sc, NodeContext(c)):
            await wait_for(lambda: sc.alive() == {a.name, b.name}, 5, "c hearing a and b")
            heard_after = loop.time() - started
            await wait_for(lambda: meshed([a, b, c]), 5, "the mesh with c")
    assert heard_after < 1.0
    assert sa.statistics().replies_sent >= 1 and sb.statistics().replies_sent >= 1


async def test_own_heartbeats_are_ignored(make_node: NodeFactory, port: int) -> None:
    """A node hears its own multicast heartbeats (loop on) and ignores them."""
    node = await make_node("alone")
    ctx = NodeContext(node)
    strategy = GossipStrategy(fast(port))
    async with running(strategy, ctx):
        await wait_for(lambda: strategy.statistics().datagrams_received >= 3, 5, "own heartbeats")
    stats = strategy.statistics()
    assert stats.heartbeats_accepted == 0 and stats.replies_sent == 0
    assert ctx.connect_attempts == [] and strategy.peers() == {}


BAD = {
    "malformed": [
        b"",
        b"garbage",
        b"heartbeat::",
        encode_heartbeat("x@127.0.0.1")[:-3],
        b"heartbeat::\x83d\x00\x04node",
        b"heartbeat::\x83t\x00\x00\x00\x01d\x00\x04noded\x00\x06nonode",
        b"heartbeat::\x83t\xff\xff\xff\xff",
    ],
    "oversized": [encode_heartbeat("x@127.0.0.1") + bytes(9000)],
}


async def test_bad_datagrams_are_dropped_and_logged_rate_limited(
    make_node: NodeFactory, port: int, sender: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Garbage, truncated and oversized datagrams: counted, one log line per kind, no
    state per sender; a good heartbeat afterwards still connects."""
    a, b = await make_node("victim"), await make_node("good")
    strategy = GossipStrategy(
        fast(port, heartbeat_interval_min=60_000, heartbeat_interval_max=60_000)
    )
    raw = sender()
    caplog.set_level(logging.WARNING, "nodemesh.cluster")
    async with running(strategy, NodeContext(a)) as task:
        per_round = len(BAD["malformed"]) + 1
        for round_ in range(1, 21):  # in rounds, so that no burst overflows the socket buffer
            raw.send(*BAD["malformed"], *BAD["oversized"])
            want = round_ * per_round
            await wait_for(lambda n=want: total_drops(strategy) >= n, 5, "drops")
        assert strategy.statistics().dropped == {"malformed": 140, "oversized": 20}
        assert strategy.statistics().tracked_nodes == 0
        lines = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
        assert len(lines) == 2, lines
        raw.send(encode_heartbeat(b.name))
        await wait_for(lambda: b.name in a.nodes(), 5, "the good heartbeat's node")
        assert not task.done()


async def test_flood_of_names_keeps_state_bounded(
    make_node: NodeFactory, port: int, sender: Any
) -> None:
    """Thousands of (plain, so unauthenticated) names: liveness keeps max_tracked_nodes,
    at most max_concurrent_connects attempts run at once, answers stay rate-limited."""
    node = await make_node("flooded")
    active: set[str] = set()
    peak = 0

    class SlowContext(NodeContext):
        async def connect_nodes(self, nodes: Set[str]) -> None:
            nonlocal peak
            active.update(nodes)
            peak = max(peak, len(active))
            try:
                await asyncio.sleep(0.5)
            finally:
                active.difference_update(nodes)

    options = fast(
        port,
        max_tracked_nodes=50,
        max_concurrent_connects=4,
        reply_interval=1000,
        heartbeat_interval_min=60_000,
        heartbeat_interval_max=60_000,
    )
    strategy = GossipStrategy(options)
    raw = sender()
    async with running(strategy, SlowContext(node)):
        for i in range(2000):
            raw.send(encode_heartbeat(f"fake{i}@10.9.{i // 250}.{i % 250}"))
            if i % 100 == 99:  # in batches, so that no burst overflows the socket buffer
                await wait_for(lambda n=i: accepted(strategy) > n, 5, "a batch")
    stats = strategy.statistics()
    assert stats.tracked_nodes == 50
    assert peak <= 4
    assert stats.replies_sent <= 3


async def test_authenticated_mode_meshes_and_refuses_intruders(
    make_node: NodeFactory,
    port: int,
    sender: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """AEAD heartbeats mesh; wrong label, unknown key, replayed, forged and plain
    datagrams are each dropped with their reason, and a late right-keyed node joins."""
    auth = fast(port, auth_keys=(KEY,), cluster_label="blue")
    a, b, c, evil = [await make_node(n) for n in ("a", "b", "c", "evil")]
    sa, sb = GossipStrategy(auth), GossipStrategy(auth)
    sniffer = sender(listen=True)
    raw = sender()
    caplog.set_level(logging.WARNING, "nodemesh.cluster")
    async with running(sa, NodeContext(a)), running(sb, NodeContext(b)):
        await wait_for(lambda: meshed([a, b]), 5, "a and b")
        # b's real heartbeat, which a has (or, FIFO, will have) accepted before our copy
        captured = await sniffer.capture(lambda data: from_b(data, b.name))
        now = time.time()
        raw.send(
            AuthenticatedCodec([KEY], "red").encode(evil.name, now),
            AuthenticatedCodec(["another-key-0123456789abcdef"], "blue").encode(evil.name, now),
            captured,
            captured[:-1] + bytes([captured[-1] ^ 1]),
            encode_heartbeat(evil.name),
            SecretCodec("s").encode(evil.name, now),
        )
        want = {"wrong_cluster", "unknown_key", "replayed", "forged", "malformed"}
        await wait_for(lambda: want <= set(sa.statistics().dropped), 5, "every reason")
        assert evil.name not in a.nodes() and evil.name not in sa.peers()
        async with running(GossipStrategy(auth), NodeContext(c)):
            await wait_for(lambda: meshed([a, b, c]), 5, "c joining")


def from_b(data: bytes, name: str) -> bool:
    return AuthenticatedCodec([KEY], "blue").decode(data, time.time()) == name


async def test_secret_mode_meshes_and_ignores_plain_nodes(
    make_node: NodeFactory, port: int
) -> None:
    """libcluster's secret: nodes sharing it mesh; a plain node on the port never joins."""
    a, b, plain = [await make_node(n) for n in ("sa", "sb", "plain")]
    secret = fast(port, secret="somepassword")
    sa, sp = GossipStrategy(secret), GossipStrategy(fast(port))
    async with (
        running(sa, NodeContext(a)),
        running(GossipStrategy(secret), NodeContext(b)),
        running(sp, NodeContext(plain)),
    ):
        await wait_for(lambda: meshed([a, b]), 5, "the secret mesh")
        await wait_for(lambda: sa.statistics().dropped.get("undecryptable", 0) >= 2, 5, "drops")
        await wait_for(lambda: sp.statistics().dropped.get("malformed", 0) >= 2, 5, "drops")
        assert plain.name not in a.nodes() and plain.nodes() == []


async def test_strategy_runs_again_after_cancel(make_node: NodeFactory, port: int) -> None:
    """A cancelled run closes its socket; running again (a restart) binds again."""
    a, b = await make_node("r1"), await make_node("r2")
    strategy = GossipStrategy(fast(port))
    async with running(strategy, NodeContext(a)):
        pass
    async with (
        running(strategy, NodeContext(a)),
        running(GossipStrategy(fast(port)), NodeContext(b)),
    ):
        await wait_for(lambda: meshed([a, b]), 5, "the mesh after a restart")


async def test_failing_connect_hook_does_not_stop_gossip(
    make_node: NodeFactory, port: int, caplog: pytest.LogCaptureFixture
) -> None:
    """A connect hook that raises is logged (rate-limited); heartbeats go on."""
    a, b = await make_node("h1"), await make_node("h2")

    class Broken(NodeContext):
        async def connect_nodes(self, nodes: Set[str]) -> None:
            raise RuntimeError("hook exploded")

    strategy = GossipStrategy(fast(port))
    caplog.set_level(logging.WARNING, "nodemesh.cluster")
    async with (
        running(strategy, Broken(a)) as task,
        running(GossipStrategy(fast(port)), Broken(b)),
    ):
        await wait_for(lambda: strategy.statistics().errors.get("connect", 0) >= 3, 5, "attempts")
        assert not task.done()
        assert any("hook exploded" in r.getMessage() for r in caplog.records)


async def test_socket_that_cannot_open_raises_network_error(
    port: int, make_node: NodeFactory
) -> None:
    """An unknown multicast interface is a NetworkError from run (the runner restarts)."""
    from nodemesh.errors import NetworkError

    node = await make_node("noif")
    strategy = GossipStrategy(fast(port, multicast_if="no-such-if0"))
    with pytest.raises(NetworkError, match="no-such-if0"):
        await strategy.run(NodeContext(node))


async def test_multicast_if_by_interface_name_and_index(make_node: NodeFactory, port: int) -> None:
    """multicast_if may name the interface ("lo") or give its index (Linux ip_mreqn)."""
    a, b = await make_node("i1"), await make_node("i2")
    by_name = fast(port, multicast_if="lo")
    by_index = fast(port, multicast_if=socket.if_nametoindex("lo"))
    async with (
        running(GossipStrategy(by_name), NodeContext(a)),
        running(GossipStrategy(by_index), NodeContext(b)),
    ):
        await wait_for(lambda: meshed([a, b]), 5, "the mesh")


class InertContext(NodeContext):
    """Records nothing, connects nothing: for heartbeats naming nodes that do not exist."""

    async def connect_nodes(self, nodes: Set[str]) -> None:
        return None


async def test_answers_are_coalesced_within_reply_interval(
    make_node: NodeFactory, port: int, sender: Any
) -> None:
    """Two newcomers close together: one answer at once, the next only at the end of
    reply_interval (one multicast answer serves every newcomer heard meanwhile)."""
    node = await make_node("answerer")
    options = fast(
        port, reply_interval=300, heartbeat_interval_min=60_000, heartbeat_interval_max=60_000
    )
    strategy = GossipStrategy(options)
    raw = sender()
    loop = asyncio.get_running_loop()
    async with running(strategy, InertContext(node)):
        raw.send(encode_heartbeat("new1@10.9.0.1"))
        await wait_for(lambda: strategy.statistics().replies_sent == 1, 2, "the first answer")
        first = loop.time()
        raw.send(encode_heartbeat("new2@10.9.0.2"))
        await wait_for(lambda: accepted(strategy) == 2, 2, "the second newcomer")
        assert strategy.statistics().replies_sent == 1
        await wait_for(lambda: strategy.statistics().replies_sent == 2, 2, "the deferred answer")
        assert loop.time() - first >= 0.25


async def test_a_pair_of_nodemesh_nodes_makes_one_connection(
    make_node: NodeFactory, port: int
) -> None:
    """Both heartbeats carry a port, so only the greater name connects; the smaller one
    expects it (its topology gets the NodeJoined) and does not dial."""
    a, b = await make_node("a"), await make_node("b")
    ca, cb = NodeContext(a), NodeContext(b)
    options = fast(port, connect_defer=60_000)
    async with running(GossipStrategy(options), ca), running(GossipStrategy(options), cb):
        await wait_for(lambda: meshed([a, b]), 5, "a and b")
    assert ca.connect_attempts == [] and b.name in ca.expected
    assert cb.connect_attempts == [a.name] and cb.expected == []


async def test_a_greater_node_that_does_not_connect_is_connected_after_connect_defer(
    make_node: NodeFactory, port: int, sender: Any
) -> None:
    """A heartbeat with a port from a greater name whose node never dials (it runs no
    gossip here): after connect_defer the smaller node connects itself, with the hint."""
    a, z = await make_node("a"), await make_node("z")
    ctx = NodeContext(a)
    slow = dict(heartbeat_interval_min=60_000, heartbeat_interval_max=60_000)
    async with running(GossipStrategy(fast(port, connect_defer=100, **slow)), ctx):
        sender().send(encode_heartbeat(z.name, z.port))
        await wait_for(lambda: z.name in a.nodes(), 5, "a connecting to z itself")
    assert ctx.expected == [z.name] and ctx.connect_attempts == [z.name]


async def test_connects_beyond_the_limit_wait_their_turn(
    make_node: NodeFactory, port: int, sender: Any
) -> None:
    """Three heartbeats at once with max_concurrent_connects = 1: all three nodes are
    connected (the ones over the limit used to be dropped until their next heartbeat)."""
    node = await make_node("hub")
    peers = [await make_node(f"p{i}") for i in range(3)]
    slow = dict(heartbeat_interval_min=60_000, heartbeat_interval_max=60_000)
    options = fast(port, max_concurrent_connects=1, **slow)
    async with running(GossipStrategy(options), NodeContext(node)):
        sender().send(*(encode_heartbeat(p.name) for p in peers))
        await wait_for(lambda: set(node.nodes()) == {p.name for p in peers}, 5, "all three")


def group_listener(port: int, group: str) -> socket.socket:
    """A socket on the gossip port that hears ``group`` only (IP_MULTICAST_ALL off, as
    the strategy's own socket), to see where datagrams go."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.setsockopt(socket.IPPROTO_IP, 49, 0)  # IP_MULTICAST_ALL (Linux)
    sock.bind(("0.0.0.0", port))
    mreq = socket.inet_aton(group) + socket.inet_aton("127.0.0.1")
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
    sock.setblocking(False)
    return sock


async def test_answers_to_nodemesh_newcomers_go_to_the_answer_group(
    make_node: NodeFactory, port: int, sender: Any
) -> None:
    """A node answers a nodemesh newcomer (port in its heartbeat) on the answer group
    (233.252.1.33), which only nodes in their first moments join, and a libcluster
    newcomer (no port) on the gossip group, the only one libcluster hears."""
    node = await make_node("a")
    slow = dict(heartbeat_interval_min=60_000, heartbeat_interval_max=60_000)
    loop = asyncio.get_running_loop()
    raw = sender()

    async def senders_until(sock: socket.socket, wanted: str) -> list[str]:
        """The senders heard on ``sock`` before ``wanted``'s heartbeat."""
        before: list[str] = []
        async with asyncio.timeout(5):
            while (sender := read_heartbeat(await loop.sock_recv(sock, 65536)).node) != wanted:
                before.append(sender)
        return before

    async with running(GossipStrategy(fast(port, **slow)), NodeContext(node)):
        # opened after a's first heartbeat (sent when running() returns): none queued
        main, answers = group_listener(port, GROUP), group_listener(port, "233.252.1.33")
        try:
            raw.send(encode_heartbeat("z@127.0.0.1", 40000))  # greater: a answers it
            await senders_until(answers, node.name)
            raw.send(encode_heartbeat("marker@127.0.0.1"))
            assert node.name not in await senders_until(main, "marker@127.0.0.1")
            raw.send(encode_heartbeat("libcluster@127.0.0.1"))
            await senders_until(main, node.name)
        finally:
            main.close()
            answers.close()
