"""Python node to Python node over real loopback sockets and an embedded EPMD."""

from __future__ import annotations

import asyncio
import socket

import pytest

from conftest import NodeFactory
from nodemesh import Atom, NameTakenError, NodeDownError, Pid, ReceiveTimeoutError
from nodemesh.runtime.events import NodeDown, NodeUp
from support.net import wait_for

CHAT = (Atom("chat"), b"room:lobby", b"hello from a node", 12345)


async def test_message_to_registered_name_and_reply_to_pid(make_node: NodeFactory) -> None:
    """A message sent to (name, node) arrives, and the reply to the sender's pid too."""
    a = await make_node("a")
    b = await make_node("b")
    inbox = b.register("chat")
    asker = a.mailbox()
    await asker.send(("chat", b.name), (asker.pid, CHAT))
    sender, message = await inbox.receive(timeout=5)
    assert message == CHAT
    assert sender == asker.pid
    await inbox.send(sender, (Atom("ok"), message[3]))
    assert await asker.receive(timeout=5) == (Atom("ok"), 12345)


async def test_messages_keep_their_order(make_node: NodeFactory) -> None:
    """Many messages from one sender arrive in the order they were sent."""
    a = await make_node("a")
    b = await make_node("b")
    inbox = b.register("seq")
    for i in range(2000):
        await a.send(("seq", b.name), i)
    received = [await inbox.receive(timeout=5) for _ in range(2000)]
    assert received == list(range(2000))


async def test_messages_to_pids_reach_their_mailbox_and_none_after_it_closed(
    make_node: NodeFactory,
) -> None:
    """Messages to two pids, in runs and in turn, each reach their own mailbox (the
    dispatcher keeps the last pid it found); once a mailbox closes, a message to it is
    dropped even right after others to it, and the next, to another pid, arrives."""
    a = await make_node("a")
    b = await make_node("b")
    one, two = b.mailbox(), b.mailbox()
    for dest, value in [(one, 1), (one, 2), (two, 3), (one, 4), (two, 5), (two, 6)]:
        await a.send(dest.pid, value)
    assert [await one.receive(timeout=5) for _ in range(3)] == [1, 2, 4]
    assert [await two.receive(timeout=5) for _ in range(3)] == [3, 5, 6]
    await a.send(one.pid, 7)
    assert await one.receive(timeout=5) == 7
    one.close()
    await a.send(one.pid, 8)  # one was the last pid found: dropped all the same
    await a.send(two.pid, 9)
    assert await two.receive(timeout=5) == 9  # so 8 was handled before it
    assert one.statistics().delivered == 4


async def test_both_ends_of_a_connection_send_without_nagle_delay(make_node: NodeFactory) -> None:
    """Dialed and accepted distribution sockets both have TCP_NODELAY, as Erlang's
    inet_tcp_dist sets it (asyncio alone leaves it off on accepted sockets)."""
    a = await make_node("a")
    b = await make_node("b")
    assert await a.connect(b.name)
    for node in (a, b):
        for conn in node._connections.connections.values():
            sock = conn._transport.get_extra_info("socket")
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0, node.name


async def test_receive_times_out(make_node: NodeFactory) -> None:
    """receive() with a timeout raises ReceiveTimeoutError when nothing arrives."""
    a = await make_node("a")
    with pytest.raises(ReceiveTimeoutError):
        await a.mailbox().receive(timeout=0.05)


async def test_local_send_by_name_and_pid(make_node: NodeFactory) -> None:
    """Sending to a local name or pid delivers without any connection."""
    a = await make_node("a")
    box = a.register("here")
    await a.send("here", 1)
    await a.send(box.pid, 2)
    await a.send(("here", a.name), 3)
    assert [box.receive_nowait() for _ in range(3)] == [1, 2, 3]
    assert a.nodes() == []


async def test_register_of_a_taken_name_raises_name_taken_error(make_node: NodeFactory) -> None:
    """register() of a name in use (or a service name) raises NameTakenError, a ValueError."""
    a = await make_node("a")
    a.register("here")
    for name in ("here", "rex"):
        with pytest.raises(NameTakenError, match=name):
            a.register(name)
    assert issubclass(NameTakenError, ValueError)


async def test_nodeup_and_nodedown_on_both_sides(make_node: NodeFactory) -> None:
    """Connecting gives nodeup on both nodes; disconnecting gives nodedown on both."""
    a = await make_node("a")
    b = await make_node("b")
    a_events, b_events = a.events(), b.events()
    assert await a.connect(b.name)
    assert await a_events.get(5) == NodeUp(b.name)
    assert await b_events.get(5) == NodeUp(a.name)
    assert await a.disconnect(b.name)
    assert await a_events.get(5) == NodeDown(b.name, "disconnect")
    down = await b_events.get(5)
    assert isinstance(down, NodeDown) and down.node == a.name
    assert a.nodes() == [] and b.nodes() == []


async def test_ping_between_python_nodes(make_node: NodeFactory) -> None:
    """ping answers pong through net_kernel's is_auth call."""
    a = await make_node("a")
    b = await make_node("b")
    assert await a.ping(b.name)
    assert b.name in a.nodes()


async def test_ping_unknown_node_is_pang_with_reason(make_node: NodeFactory) -> None:
    """Pinging a name EPMD does not know is pang, and the reason says so."""
    a = await make_node("a")
    reason = await a.ping_result("ghost@127.0.0.1", timeout=3)
    assert reason is not None and "ghost" in reason


async def test_wrong_cookie_is_refused_on_both_sides(make_node: NodeFactory) -> None:
    """Nodes with different cookies do not connect, and the error names the cookie."""
    a = await make_node("a")
    b = await make_node("b", cookie="other")
    reason = await a.ping_result(b.name, timeout=3)
    assert reason is not None and "cookie" in reason.lower()
    reason = await b.ping_result(a.name, timeout=3)
    assert reason is not None and "cookie" in reason.lower()
    assert a.nodes() == [] and b.nodes() == []


async def test_send_to_unreachable_node_raises(make_node: NodeFactory) -> None:
    """send() to a node that is not running raises NodeDownError; send_nowait too."""
    a = await make_node("a")
    with pytest.raises(NodeDownError):
        await a.send(("x", "ghost@127.0.0.1"), 1)
    with pytest.raises(NodeDownError):
        a.send_nowait(("x", "ghost@127.0.0.1"), 1)


async def test_reconnects_on_next_send_after_a_drop(make_node: NodeFactory) -> None:
    """After a connection is dropped, the next send connects again and is delivered."""
    a = await make_node("a")
    b = await make_node("b")
    inbox = b.register("in")
    await a.send(("in", b.name), 1)
    assert await inbox.receive(timeout=5) == 1
    await b.disconnect(a.name)
    await wait_for(lambda: not a.is_connected(b.name), what="a to see the drop")
    await a.send(("in", b.name), 2)
    assert await inbox.receive(timeout=5) == 2


async def test_simultaneous_connects_end_with_one_connection(make_node: NodeFactory) -> None:
    """Two nodes dialing each other at once both end up connected, once."""
    for round_ in range(5):
        a = await make_node(f"a{round_}")
        b = await make_node(f"b{round_}")
        ok_a, ok_b = await asyncio.gather(a.connect(b.name), b.connect(a.name))
        assert ok_a and ok_b
        assert a.nodes() == [b.name] and b.nodes() == [a.name]
        box = b.register("x")
        await a.send(("x", b.name), "hi")
        assert await box.receive(timeout=5) == b"hi"


async def test_monitor_fires_when_remote_mailbox_closes(make_node: NodeFactory) -> None:
    """A monitor on a remote mailbox delivers DOWN with the close reason."""
    a = await make_node("a")
    b = await make_node("b")
    target = b.register("target")
    watcher = a.mailbox()
    await a.connect(b.name)
    ref = watcher.monitor(target.pid)
    await a.ping(b.name)  # the MONITOR_P frame is ahead of the ping on the same link
    target.close("finished")
    down = await watcher.receive(timeout=5)
    assert down == (Atom("DOWN"), ref, Atom("process"), target.pid, Atom("finished"))


async def test_monitor_of_missing_process_is_noproc(make_node: NodeFactory) -> None:
    """Monitoring a name that is not registered gives DOWN noproc at once."""
    a = await make_node("a")
    b = await make_node("b")
    watcher = a.mailbox()
    await a.connect(b.name)
    ref = watcher.monitor(("nobody", b.name))
    down = await watcher.receive(timeout=5)
    expected_target = (Atom("nobody"), Atom(b.name))
    assert down == (Atom("DOWN"), ref, Atom("process"), expected_target, Atom("noproc"))


async def test_link_exit_and_noconnection(make_node: NodeFactory) -> None:
    """A link delivers EXIT when the partner closes, and noconnection when the node goes."""
    a = await make_node("a")
    b = await make_node("b")
    await a.connect(b.name)
    mine = a.mailbox()
    first, second = b.mailbox(), b.mailbox()
    mine.link(first.pid)
    mine.link(second.pid)
    await a.ping(b.name)
    first.close("bye")
    assert await mine.receive(timeout=5) == (Atom("EXIT"), first.pid, Atom("bye"))
    await a.disconnect(b.name)
    assert await mine.receive(timeout=5) == (Atom("EXIT"), second.pid, Atom("noconnection"))


async def test_large_binaries_both_ways(make_node: NodeFactory) -> None:
    """1 MB binaries cross in both directions intact."""
    a = await make_node("a")
    b = await make_node("b")
    box_a, box_b = a.register("big"), b.register("big")
    blob = bytes(range(256)) * 4096
    await a.send(("big", b.name), blob)
    await b.send(("big", a.name), blob[::-1])
    assert await box_b.receive(timeout=10) == blob
    assert await box_a.receive(timeout=10) == blob[::-1]


async def test_peer_stopping_gives_nodedown(make_node: NodeFactory) -> None:
    """When a peer node stops, the other sees nodedown at once."""
    a = await make_node("a")
    b = await make_node("b")
    events = a.events()
    await a.connect(b.name)
    assert await events.get(5) == NodeUp(b.name)
    await b.aclose()
    down = await events.get(5)
    assert isinstance(down, NodeDown) and down.node == b.name


async def test_pids_carry_node_and_creation(make_node: NodeFactory) -> None:
    """Mailbox pids name their node and carry the nonzero creation from EPMD."""
    a = await make_node("a")
    pid = a.mailbox().pid
    assert isinstance(pid, Pid)
    assert pid.node == a.name and pid.creation == a.creation != 0


async def test_event_stream_ends_when_closed(make_node: NodeFactory) -> None:
    """A closed event stream ends iteration, and get() raises EOFError."""
    a = await make_node("a")
    events = a.events()
    events.close()
    assert [e async for e in events] == []
    with pytest.raises(EOFError):
        await events.get(1)


async def test_aclose_delivers_what_was_already_sent(make_node: NodeFactory) -> None:
    """Messages sent before aclose() arrive: closing flushes the socket, it does not abort."""
    a = await make_node("a")
    b = await make_node("b")
    inbox = b.register("tail")
    blob = b"x" * (512 * 1024)
    for i in range(12):
        await a.send(("tail", b.name), (i, blob))
    await a.aclose()
    received = [(await inbox.receive(timeout=10))[0] for _ in range(12)]
    assert received == list(range(12))
