"""Python processes on one node and between two Python nodes: exit reasons, links,
monitors, exit signals, and spawn requests for exposed and unexposed entry points."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from conftest import NodeFactory
from nodemesh import Atom, Mailbox, Pid, ProcessExit
from nodemesh.runtime._signals import Monitor
from nodemesh.term.types import Reference

DOWN, EXIT = Atom("DOWN"), Atom("EXIT")
LINK, MONITOR = Atom("link"), Atom("monitor")


async def until_stopped(mailbox: Mailbox) -> None:
    """A process body that waits for ``stop`` (and echoes anything else to its sender)."""
    async for message in mailbox:
        if message == "stop":
            return
        if type(message) is tuple and len(message) == 2 and type(message[0]) is Pid:
            await mailbox.send(message[0], message[1])


async def crash(mailbox: Mailbox) -> None:
    """A process body that raises."""
    raise ValueError("boom")


async def exit_with(mailbox: Mailbox, reason: Any) -> None:
    """A process body that exits with ``reason``."""
    raise ProcessExit(reason)


async def down_reason(watcher: Mailbox, ref: Reference) -> Any:
    message = await watcher.receive(timeout=5)
    assert message[:2] == (DOWN, ref)
    return message[4]


@pytest.mark.parametrize(
    ("body", "args", "reason"),
    [
        (until_stopped, (), Atom("normal")),
        (crash, (), (Atom("python_exception"), "ValueError", "boom")),
        (exit_with, ("bye",), Atom("bye")),
        (exit_with, ((Atom("shutdown"), 1),), (Atom("shutdown"), 1)),
    ],
)
async def test_exit_reasons_reach_monitors(
    make_node: NodeFactory, body: Any, args: tuple[Any, ...], reason: Any
) -> None:
    """Return is normal, ProcessExit gives its reason, an exception gives python_exception."""
    node = await make_node("a")
    watcher = node.mailbox()
    pid, ref = node.spawn_monitor(body, *args, watcher=watcher.pid)
    await node.send(pid, "stop")
    assert await down_reason(watcher, ref) == reason
    assert pid not in node._processes.mailboxes


async def test_process_answers_messages(make_node: NodeFactory) -> None:
    """A process has a pid others send to; its mailbox is the first argument."""
    node = await make_node("a")
    me = node.mailbox()
    pid = node.spawn(until_stopped)
    await node.send(pid, (me.pid, "hello"))
    assert await me.receive(timeout=5) == "hello"


async def test_link_crash_kills_partner_normal_does_not(make_node: NodeFactory) -> None:
    """A crash kills a linked process (same reason); a normal exit leaves it running."""
    node = await make_node("a")
    watcher = node.mailbox()
    survivor, survivor_ref = node.spawn_monitor(until_stopped, watcher=watcher.pid)
    node.spawn(exit_with, "normal", link=survivor)
    victim, victim_ref = node.spawn_monitor(until_stopped, watcher=watcher.pid)
    node.spawn(exit_with, "boom", link=victim)
    assert await down_reason(watcher, victim_ref) == Atom("boom")
    assert survivor in node._processes.mailboxes
    await node.send(survivor, "stop")
    assert await down_reason(watcher, survivor_ref) == Atom("normal")


async def test_trap_exit_turns_signals_into_messages(make_node: NodeFactory) -> None:
    """With trap_exit a linked crash arrives as ('EXIT', Pid, Reason); kill still kills."""
    node = await make_node("a")
    got: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    async def trapper(mailbox: Mailbox) -> None:
        got.set_result(await mailbox.receive())
        await mailbox.receive()  # until killed

    watcher = node.mailbox()
    pid, ref = node.spawn_monitor(trapper, watcher=watcher.pid, trap_exit=True)
    crasher = node.spawn(exit_with, "oops", link=pid)
    assert await asyncio.wait_for(got, 5) == (EXIT, crasher, Atom("oops"))
    node.exit(pid, "kill")
    assert await down_reason(watcher, ref) == Atom("killed")


async def test_exit_signal_normal_is_ignored_other_kills(make_node: NodeFactory) -> None:
    """node.exit(pid, normal) does nothing to a process; another reason ends it."""
    node = await make_node("a")
    watcher = node.mailbox()
    pid, ref = node.spawn_monitor(until_stopped, watcher=watcher.pid)
    node.exit(pid, "normal")
    node.exit(pid, "shutdown")
    assert await down_reason(watcher, ref) == Atom("shutdown")


async def test_link_to_missing_pid_kills_with_noproc(make_node: NodeFactory) -> None:
    """spawn(link=) to a pid that does not exist ends the process with noproc, as
    spawn_link does in Erlang when the parent is gone."""
    node = await make_node("a")
    gone = node.mailbox()
    gone.close()
    watcher = node.mailbox()
    pid, ref = node.spawn_monitor(until_stopped, watcher=watcher.pid)
    node.link(pid, gone.pid)
    assert await down_reason(watcher, ref) == Atom("noproc")


async def test_node_stop_ends_processes_with_shutdown(make_node: NodeFactory) -> None:
    """aclose() ends every process; a remote monitor sees shutdown."""
    a, b = await make_node("a"), await make_node("b")
    pid = a.spawn(until_stopped)
    watcher = b.mailbox()
    assert await b.connect(a.name)
    ref = watcher.monitor(pid)
    await a.aclose()
    assert (await watcher.receive(timeout=5))[:2] == (DOWN, ref)


async def test_remote_link_and_noconnection(make_node: NodeFactory) -> None:
    """A process linked to a process on a node that goes away dies with noconnection."""
    a, b = await make_node("a"), await make_node("b")
    assert await a.connect(b.name)
    remote = b.spawn(until_stopped)
    watcher = a.mailbox()
    pid, ref = a.spawn_monitor(until_stopped, watcher=watcher.pid)
    a.link(pid, remote)
    await b.aclose()
    assert await down_reason(watcher, ref) == Atom("noconnection")


async def test_spawn_before_start_raises(make_node: NodeFactory) -> None:
    """spawn() on a node that is not running raises NodeDownError."""
    from nodemesh import Node, NodeDownError

    node = Node("idle@127.0.0.1", "c")
    with pytest.raises(NodeDownError):
        node.spawn(until_stopped)


async def test_node_stop_is_not_logged_as_a_crash(
    make_node: NodeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """A process blocked in receive() when the node stops ends quietly (no crash log)."""
    node = await make_node("a")

    async def waiting(mailbox: Mailbox) -> None:
        await mailbox.receive()

    node.spawn(waiting)
    await asyncio.sleep(0)  # let it reach receive(): one turn of the loop, not a delay
    await node.aclose()
    assert not [r for r in caplog.records if "crashed" in r.getMessage()]


@pytest.mark.parametrize(
    ("mfa", "args"),
    [
        ((Atom("workers"), Atom("run"), 2), [1]),  # arity does not match the arguments
        ((b"workers", Atom("run"), 0), []),  # module is not an atom
        ((Atom("workers"), Atom("run")), []),  # not {M, F, Arity}
    ],
)
async def test_malformed_spawn_request_gets_notsup(
    make_node: NodeFactory, mfa: Any, args: Any
) -> None:
    """A malformed SPAWN_REQUEST is answered notsup; the connection and node carry on."""
    from nodemesh.dist import control

    a, b = await make_node("a"), await make_node("b")
    b.expose_spawn("workers", "run", until_stopped)
    me = a.mailbox()
    conn = await a._connection(b.name)
    req = a.make_ref()
    conn.write(control.spawn_request(req, me.pid, me.pid, mfa, [], args))
    assert await me.receive(timeout=5) == (Atom("spawn_reply"), req, Atom("error"), "notsup")
    assert await a.ping(b.name)


async def test_python_node_spawns_exposed_entry_with_link_and_monitor(
    make_node: NodeFactory,
) -> None:
    """A SPAWN_REQUEST between Python nodes with [link, monitor]: the reply carries both
    flags, the process runs, and its exit reaches the requester as DOWN and EXIT."""
    from nodemesh.dist import control

    a, b = await make_node("a"), await make_node("b")
    b.expose_spawn("workers", "run", exit_with)
    me = a.mailbox()
    conn = await a._connection(b.name)
    req = a.make_ref()
    a._processes.signals.add_monitor(Monitor(req, me.pid, Atom("workers"), b.name))
    mfa = (Atom("workers"), Atom("run"), 1)
    conn.write(control.spawn_request(req, me.pid, me.pid, mfa, [LINK, MONITOR], ["done"]))
    exits = {(await me.receive(timeout=5))[0] for _ in range(2)}
    assert exits == {DOWN, EXIT}
