"""Python GenServers called from Python nodes: replies, casts, deferred replies, crashes,
noproc, timeouts, nodedown mid-call, multi_call and stopping (real loopback sockets)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from conftest import NodeFactory
from nodemesh import (
    NO_REPLY,
    Atom,
    Caller,
    CallError,
    CallExitError,
    CallTimeoutError,
    GenServer,
    NameTakenError,
    Node,
    NodeDownError,
    NoProcError,
)
from support.net import wait_for

GET, PUT, HOLD, CRASH, SLEEP = (Atom(a) for a in ("get", "put", "hold", "crash", "sleep"))


class KV(GenServer):
    """A key-value server with the shapes the tests need."""

    def __init__(self) -> None:
        self.data: dict[Any, Any] = {}
        self.held: list[Caller] = []
        self.casts: list[Any] = []
        self.infos: list[Any] = []
        self.terminated: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    def init(self) -> None:
        self.data[b"ready"] = True

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        op = request[0]
        if op == GET:
            return self.data.get(request[1])
        if op == PUT:
            self.data[request[1]] = request[2]
            return Atom("ok")
        if op == HOLD:  # answered by the next cast
            self.held.append(caller)
            return NO_REPLY
        if op == SLEEP:
            await asyncio.sleep(request[1])
            return Atom("slept")
        raise ValueError("asked to crash")

    def handle_cast(self, request: Any) -> None:
        self.casts.append(request)
        for caller in self.held:
            caller.reply(request)
        self.held.clear()

    def handle_info(self, message: Any) -> None:
        self.infos.append(message)

    def terminate(self, reason: Any) -> None:
        if not self.terminated.done():
            self.terminated.set_result(reason)


async def two(make_node: NodeFactory) -> tuple[Node, Node, KV]:
    server_node = await make_node("srv")
    client = await make_node("cli")
    kv = KV()
    await server_node.start_server(kv, name="kv")
    return server_node, client, kv


async def test_call_local_and_remote(make_node: NodeFactory) -> None:
    """node.call reaches a server by local name, by (name, node) and by pid; init ran."""
    srv, cli, kv = await two(make_node)
    assert await srv.call("kv", (PUT, b"k", [1, 2])) == "ok"
    assert await cli.call(("kv", srv.name), (GET, b"k")) == [1, 2]
    pid = srv.whereis("kv")
    assert pid is not None and kv.pid == pid and kv.node is srv
    assert await cli.call(pid, (GET, b"ready")) is True


async def test_deferred_reply_and_cast(make_node: NodeFactory) -> None:
    """NO_REPLY defers the answer; Caller.reply from a later cast delivers it."""
    srv, cli, kv = await two(make_node)
    pending = asyncio.create_task(cli.call(("kv", srv.name), (HOLD,)))
    await wait_for(lambda: len(kv.held) == 1, what="the held call")
    cli.cast(("kv", srv.name), b"released")
    assert await pending == b"released"
    assert kv.casts == [b"released"]


async def test_other_messages_go_to_handle_info(make_node: NodeFactory) -> None:
    """A plain message to the server's name arrives in handle_info."""
    srv, cli, kv = await two(make_node)
    await cli.send(("kv", srv.name), (Atom("tick"), 1))
    await wait_for(lambda: kv.infos == [(Atom("tick"), 1)], what="handle_info")


async def test_cast_never_raises_for_missing_targets(make_node: NodeFactory) -> None:
    """cast to a missing name, a missing node or a dead pid returns quietly."""
    srv, cli, _kv = await two(make_node)
    cli.cast(("nobody", srv.name), 1)
    cli.cast(("kv", "absent@127.0.0.1"), 1)
    cli.cast("nobody", 1)
    assert await cli.call(("kv", srv.name), (GET, b"ready")) is True


async def test_crash_exits_the_caller_and_terminates(make_node: NodeFactory) -> None:
    """An exception in handle_call: the caller gets CallExitError with the exit reason,
    terminate runs with it, the name is freed, and the next call is noproc."""
    srv, cli, kv = await two(make_node)
    with pytest.raises(CallExitError) as info:
        await cli.call(("kv", srv.name), (CRASH,))
    reason = (Atom("python_exception"), b"ValueError", b"asked to crash")  # as it crossed
    assert info.value.reason == reason
    assert await kv.terminated == (Atom("python_exception"), "ValueError", "asked to crash")
    assert srv.whereis("kv") is None
    with pytest.raises(NoProcError):
        await cli.call(("kv", srv.name), (GET, "k"))


async def test_noproc_local_and_remote(make_node: NodeFactory) -> None:
    """A call to a name nobody holds raises NoProcError (a CallError) with noproc."""
    srv, cli, _ = await two(make_node)
    for node, dest in ((cli, ("nobody", srv.name)), (srv, "nobody")):
        with pytest.raises(NoProcError) as info:
            await node.call(dest, 1)
        assert info.value.reason == "noproc" and isinstance(info.value, CallError)


async def test_timeout_then_late_reply_is_dropped(make_node: NodeFactory) -> None:
    """A call past its timeout raises CallTimeoutError (also a TimeoutError); the late
    reply does not disturb the next call, and no monitor is left behind."""
    srv, cli, _kv = await two(make_node)
    with pytest.raises(TimeoutError) as info:
        await cli.call(("kv", srv.name), (HOLD,), timeout=0.2)
    assert isinstance(info.value, CallTimeoutError) and info.value.reason == "timeout"
    cli.cast(("kv", srv.name), "late")  # answers the held call after its caller gave up
    assert await cli.call(("kv", srv.name), (PUT, b"x", 1)) == "ok"
    assert await cli.call(("kv", srv.name), (GET, b"x")) == 1
    await wait_for(lambda: not srv._processes.signals._monitors, what="monitors released")
    assert not cli._processes.signals._monitors


async def test_a_calls_demonitor_rides_on_the_next_call_or_follows_alone(
    make_node: NodeFactory,
) -> None:
    """Calls in a row leave at most the last call's monitor on the server (each call's
    DEMONITOR_P goes with the next request), and that one is released soon after with no
    further call."""
    srv, cli, _kv = await two(make_node)
    for i in range(20):
        assert await cli.call(("kv", srv.name), (PUT, b"k", i)) == "ok"
        assert len(srv._processes.signals._monitors) <= 1
    await wait_for(lambda: not srv._processes.signals._monitors, what="monitor released")


async def test_timeouts_share_timers_and_expire_only_their_calls(make_node: NodeFactory) -> None:
    """Calls with one timeout value share a timer: a held call still times out while
    later calls with its timeout are answered, and a call with a longer timeout outlives
    the short ones and gets its reply."""
    srv, cli, _kv = await two(make_node)
    dest = ("kv", srv.name)
    long_call = asyncio.create_task(cli.call(dest, (HOLD,), timeout=60))
    short_calls = [asyncio.create_task(cli.call(dest, (HOLD,), timeout=0.2)) for _ in range(2)]
    answered = [await cli.call(dest, (GET, b"ready"), timeout=0.2) for _ in range(3)]
    assert answered == [True] * 3
    for short in short_calls:
        with pytest.raises(CallTimeoutError):
            await short
    assert not long_call.done()
    cli.cast(dest, "released")  # replies to every held call: only the long one still waits
    assert await long_call == b"released"
    assert cli._gen is not None and not cli._gen._router.pending


async def test_node_down_mid_call(make_node: NodeFactory) -> None:
    """The connection to the server's node dropping during a call raises NodeDownError;
    an unreachable node does too."""
    srv, cli, kv = await two(make_node)
    pending = asyncio.create_task(cli.call(("kv", srv.name), (HOLD,), timeout=None))
    await wait_for(lambda: len(kv.held) == 1, what="the held call")
    await srv.disconnect(cli.name)
    with pytest.raises(NodeDownError):
        await pending
    with pytest.raises(NodeDownError):
        await cli.call(("kv", "absent@127.0.0.1"), 1)


async def test_server_node_closing_mid_call_is_a_shutdown_exit(make_node: NodeFactory) -> None:
    """A server node that closes cleanly stops its servers first: the caller sees the
    exit reason shutdown, as a caller of an Erlang node running init:stop() does."""
    srv, cli, kv = await two(make_node)
    pending = asyncio.create_task(cli.call(("kv", srv.name), (HOLD,), timeout=None))
    await wait_for(lambda: len(kv.held) == 1, what="the held call")
    await srv.aclose()
    with pytest.raises(CallExitError) as info:
        await pending
    assert info.value.reason == "shutdown"
    assert await kv.terminated == "shutdown"


async def test_own_node_stopping_mid_call(make_node: NodeFactory) -> None:
    """Closing the calling node ends its waiting calls with NodeDownError."""
    srv, cli, kv = await two(make_node)
    pending = asyncio.create_task(cli.call(("kv", srv.name), (HOLD,), timeout=None))
    await wait_for(lambda: len(kv.held) == 1, what="the held call")
    await cli.aclose()
    with pytest.raises(NodeDownError):
        await pending


async def test_calls_from_a_node_not_running_raise_node_down_when_awaited(
    make_node: NodeFactory,
) -> None:
    """Before start and after aclose, Node.call's coroutine raises NodeDownError when
    awaited (not when made), as an ``async def`` would."""
    srv, cli, _ = await two(make_node)
    idle = Node("idle@127.0.0.1", "cookie")
    pending = idle.call(("kv", srv.name), (GET, b"k"))
    with pytest.raises(NodeDownError):
        await pending
    await cli.aclose()
    pending = cli.call(("kv", srv.name), (GET, b"k"))
    with pytest.raises(NodeDownError):
        await pending


async def test_multi_call_replies_and_bad_nodes(make_node: NodeFactory) -> None:
    """multi_call returns the replies by node and the nodes that had no such server or
    could not be reached, like gen_server:multi_call."""
    srv, cli, _ = await two(make_node)
    third = await make_node("third")
    await third.start_server(KV(), name="kv")
    nodes = [srv.name, third.name, cli.name, "absent@127.0.0.1"]
    replies, bad = await cli.multi_call(nodes, "kv", (GET, b"ready"), timeout=5)
    assert replies == {srv.name: True, third.name: True}
    assert bad == [cli.name, "absent@127.0.0.1"]


async def test_stop_server_runs_terminate_and_signals_monitors(make_node: NodeFactory) -> None:
    """stop_server runs terminate with the reason; a monitor of the server sees it."""
    srv, cli, kv = await two(make_node)
    assert await cli.call(("kv", srv.name), (GET, b"ready")) is True  # connects
    watcher = cli.mailbox()
    ref = watcher.monitor(("kv", srv.name))
    assert await cli.call(("kv", srv.name), (GET, b"ready")) is True  # the monitor is set
    await srv.stop_server("kv", reason=Atom("going"))
    assert kv.terminated.result() == "going"
    down = await watcher.receive(timeout=5)
    assert down[:2] == (Atom("DOWN"), ref) and down[4] == "going"
    with pytest.raises(NoProcError):
        await srv.stop_server("kv")


async def test_queued_calls_are_served_before_a_stop(make_node: NodeFactory) -> None:
    """Calls queued before stop_server are answered before the server stops."""
    srv, _cli, _kv = await two(make_node)
    slow = asyncio.create_task(srv.call("kv", (SLEEP, 0.05)))
    queued = asyncio.create_task(srv.call("kv", (GET, b"ready")))
    mailbox = srv._processes.names["kv"]
    await wait_for(lambda: len(mailbox) == 1, what="one call handled, one queued")
    await srv.stop_server("kv")
    assert await slow == "slept" and await queued is True


async def test_init_failure_and_name_taken(make_node: NodeFactory) -> None:
    """start_server raises what init raised (the name stays free) and NameTakenError."""

    class Broken(GenServer):
        def init(self) -> None:
            raise RuntimeError("no config")

    node = await make_node("solo")
    with pytest.raises(RuntimeError, match="no config"):
        await node.start_server(Broken(), name="svc")
    assert node.whereis("svc") is None
    await node.start_server(KV(), name="svc")
    with pytest.raises(NameTakenError):
        await node.start_server(KV(), name="svc")


async def test_async_and_sync_callbacks_serialise(make_node: NodeFactory) -> None:
    """Calls are handled one at a time, in order, even when handlers await."""
    srv, cli, _ = await two(make_node)
    calls = [cli.call(("kv", srv.name), (SLEEP, 0.01)) for _ in range(5)]
    calls.append(cli.call(("kv", srv.name), (PUT, "last", 1)))
    results = await asyncio.gather(*calls)
    assert results == ["slept"] * 5 + ["ok"]


async def test_malformed_requests_do_not_stop_the_server(make_node: NodeFactory) -> None:
    """A '$gen_call' without a {Pid, Tag} goes to handle_info, a malformed system message
    is ignored; the server keeps serving."""
    srv, cli, kv = await two(make_node)
    await cli.send(("kv", srv.name), (Atom("$gen_call"), Atom("oops"), 1))
    await cli.send(("kv", srv.name), (Atom("system"), 7, (Atom("terminate"), 1)))
    assert await cli.call(("kv", srv.name), (GET, b"ready")) is True
    assert kv.infos == [(Atom("$gen_call"), Atom("oops"), 1)]


async def test_unencodable_reply_crashes_the_server(make_node: NodeFactory) -> None:
    """A reply with no term form raises EncodeError in the server: it crashes, and the
    remote caller sees the exit instead of waiting for its timeout."""

    class Bad(GenServer):
        def handle_call(self, request: Any, caller: Caller) -> Any:
            return object()

    srv = await make_node("srv")
    cli = await make_node("cli")
    await srv.start_server(Bad(), name="bad")
    with pytest.raises(CallExitError) as info:
        await cli.call(("bad", srv.name), 1)
    assert info.value.reason[:2] == (Atom("python_exception"), b"EncodeError")
