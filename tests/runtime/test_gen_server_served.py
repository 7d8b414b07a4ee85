"""GenServers with plain-function callbacks are served as messages arrive (ServerMailbox):
order, self-sent messages, awaitables returned by plain functions, crashes and stops
behave as when the server's task handles every message."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from conftest import NodeFactory
from nodemesh import Atom, Caller, CallExitError, GenServer, NoProcError
from support.net import wait_for

LATER, SELF, SLOW, ECHO, AFTER, CRASH = (
    Atom(a) for a in ("later", "self", "slow", "echo", "after", "crash")
)


class Plain(GenServer):
    """Plain callbacks that record what they saw, in order."""

    def __init__(self) -> None:
        self.seen: list[Any] = []
        self.pending: asyncio.Future[Any] | None = None
        self.terminated: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    def handle_call(self, request: Any, caller: Caller) -> Any:
        self.seen.append(("call", request))
        if request == SELF:  # a cast and a message to ourselves, from inside the call
            self.node.cast(self.pid, "from inside")
            self.node.send_nowait(self.pid, "info from inside")
        if request == LATER:  # a plain function returning an awaitable: replied when done
            self.pending = asyncio.get_running_loop().create_future()
            return self.pending
        if request == CRASH:
            raise RuntimeError("plain crash")
        return (ECHO, request)

    def handle_cast(self, request: Any) -> None:
        self.seen.append(("cast", request))

    def handle_info(self, message: Any) -> None:
        self.seen.append(("info", message))

    def terminate(self, reason: Any) -> None:
        if not self.terminated.done():
            self.terminated.set_result(reason)


class Mixed(Plain):
    """A coroutine handle_call beside plain cast and info callbacks."""

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        self.seen.append(("call", request))
        if request == SLOW:
            self.pending = asyncio.get_running_loop().create_future()
            await self.pending
        return request


async def test_messages_sent_to_itself_wait_for_the_callback(make_node: NodeFactory) -> None:
    """A cast and a message a plain handle_call sends its own server are handled after
    the call returns, in the order sent, as in Erlang."""
    srv, cli = await make_node("srv"), await make_node("cli")
    server = Plain()
    await srv.start_server(server, name="plain")
    assert await cli.call(("plain", srv.name), SELF) == (ECHO, SELF)
    await wait_for(lambda: len(server.seen) == 3)
    assert server.seen == [("call", SELF), ("cast", "from inside"), ("info", "info from inside")]


async def test_plain_function_returning_an_awaitable(make_node: NodeFactory) -> None:
    """A plain handle_call that returns an awaitable is replied to once it completes;
    a call that arrives meanwhile waits for it."""
    srv, cli = await make_node("srv"), await make_node("cli")
    server = Plain()
    await srv.start_server(server, name="plain")
    call = asyncio.create_task(cli.call(("plain", srv.name), LATER))
    await wait_for(lambda: server.pending is not None)
    after = asyncio.create_task(cli.call(("plain", srv.name), AFTER))
    mailbox = srv._processes.whereis("plain")
    assert mailbox is not None
    await wait_for(lambda: len(mailbox) == 1, what="the second call queued behind the first")
    assert not call.done()
    assert server.pending is not None
    server.pending.set_result(LATER)
    assert await call == LATER
    assert await after == (ECHO, AFTER)
    assert server.seen == [("call", LATER), ("call", AFTER)]


async def test_coroutine_call_keeps_later_casts_behind_it(make_node: NodeFactory) -> None:
    """While a coroutine handle_call runs, plain-function casts that arrive wait for it."""
    srv, cli = await make_node("srv"), await make_node("cli")
    server = Mixed()
    await srv.start_server(server, name="mixed")
    call = asyncio.create_task(cli.call(("mixed", srv.name), SLOW))
    await wait_for(lambda: server.pending is not None)
    cli.cast(("mixed", srv.name), AFTER)
    mailbox = srv._processes.whereis("mixed")
    assert mailbox is not None
    await wait_for(lambda: len(mailbox) == 1, what="the cast queued behind the call")
    assert server.seen == [("call", SLOW)]
    assert server.pending is not None
    server.pending.set_result(None)
    assert await call == SLOW
    await wait_for(lambda: len(server.seen) == 2)
    assert server.seen == [("call", SLOW), ("cast", AFTER)]


async def test_plain_crash_on_arrival_stops_the_server(make_node: NodeFactory) -> None:
    """An exception from a plain handle_call served on arrival crashes the server as in
    its task: the caller exits with the reason, terminate runs, the name is freed."""
    srv, cli = await make_node("srv"), await make_node("cli")
    server = Plain()
    await srv.start_server(server, name="plain")
    with pytest.raises(CallExitError) as info:
        await cli.call(("plain", srv.name), CRASH)
    assert info.value.reason == (Atom("python_exception"), b"RuntimeError", b"plain crash")
    assert await server.terminated == (Atom("python_exception"), "RuntimeError", "plain crash")
    with pytest.raises(NoProcError):
        await cli.call(("plain", srv.name), 1)


async def test_local_calls_and_stop_in_order(make_node: NodeFactory) -> None:
    """Calls from the server's own node are served too; a stop comes after the calls
    made before it."""
    srv = await make_node("srv")
    server = Plain()
    pid = await srv.start_server(server, name="plain")
    assert await srv.call("plain", 1) == (ECHO, 1)
    srv.cast(pid, 2)
    await srv.stop_server(pid, "normal")
    assert server.seen == [("call", 1), ("cast", 2)]
    assert await server.terminated == Atom("normal")
