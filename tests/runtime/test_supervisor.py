"""The one-for-one supervisor: restarts per child policy, gives up past its restart
intensity, and takes its children down when it ends."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import NodeFactory
from nodemesh import Atom, ConfigError, Mailbox, Pid, ProcessExit
from nodemesh.runtime.supervisor import ChildSpec, Supervisor
from support.net import wait_for

DOWN = Atom("DOWN")


async def child(mailbox: Mailbox) -> None:
    """Waits; ``crash`` raises, ``{exit, R}`` exits with R."""
    async for message in mailbox:
        if message == "crash":
            raise RuntimeError("child crashed")
        if type(message) is tuple and message[0] == "exit":
            raise ProcessExit(message[1])


def only(sup: Supervisor) -> Pid:
    (pid,) = sup.children
    return pid


async def test_crashed_child_is_restarted(make_node: NodeFactory) -> None:
    """A permanent child that crashes gets a new process; the supervisor stays."""
    node = await make_node("a")
    sup = Supervisor([ChildSpec(child)])
    sup_pid = sup.start(node)
    await wait_for(lambda: len(sup.children) == 1, timeout=5)
    first = only(sup)
    await node.send(first, "crash")
    await wait_for(lambda: sup.children and only(sup) != first, timeout=5)
    assert sup.restarts == 1 and sup_pid in node._processes.mailboxes


@pytest.mark.parametrize(
    ("restart", "reason", "restarted"),
    [
        ("transient", "normal", False),
        ("transient", (Atom("shutdown"), 1), False),
        ("transient", "boom", True),
        ("temporary", "boom", False),
        ("permanent", "normal", True),
    ],
)
async def test_restart_policies(
    make_node: NodeFactory, restart: Any, reason: Any, restarted: bool
) -> None:
    """transient restarts only abnormal exits, temporary never, permanent always."""
    node = await make_node("a")
    sup = Supervisor([ChildSpec(child, restart=restart)])
    sup.start(node)
    await wait_for(lambda: len(sup.children) == 1, timeout=5)
    watcher = node.mailbox()
    first = only(sup)
    ref = watcher.monitor(first)
    await node.send(first, ("exit", reason))
    assert (await watcher.receive(timeout=5))[:2] == (DOWN, ref)
    if restarted:
        await wait_for(lambda: len(sup.children) == 1, timeout=5)
    assert (len(sup.children), sup.restarts) == (int(restarted), int(restarted))


async def test_intensity_reached_ends_supervisor_and_children(make_node: NodeFactory) -> None:
    """A third crash within the period (max_restarts=2) ends the supervisor with shutdown;
    its other child ends with it."""
    node = await make_node("a")
    sup = Supervisor([ChildSpec(child), ChildSpec(child)], max_restarts=2, max_seconds=60)
    watcher = node.mailbox()
    sup_pid, sup_ref = node.spawn_monitor(sup._run, node, watcher=watcher.pid, trap_exit=True)
    await wait_for(lambda: len(sup.children) == 2, timeout=5)
    others = [next(iter(sup.children))]
    other_refs = [watcher.monitor(pid) for pid in others]
    for crash in range(3):
        crashing = next(p for p in sup.children if p not in others)
        await node.send(crashing, "crash")
        await wait_for(lambda c=crashing: c not in sup.children, timeout=5)
        if crash < 2:  # restarted: two children again
            await wait_for(lambda: len(sup.children) == 2, timeout=5)
    downs = {(await watcher.receive(timeout=5))[1]: None for _ in range(2)}
    assert set(downs) == {sup_ref, *other_refs}
    assert sup_pid not in node._processes.mailboxes


async def test_exit_signal_to_supervisor_ends_children(make_node: NodeFactory) -> None:
    """node.exit(sup, shutdown) ends the supervisor and its children with shutdown."""
    node = await make_node("a")
    sup = Supervisor([ChildSpec(child)])
    sup_pid = sup.start(node)
    await wait_for(lambda: len(sup.children) == 1, timeout=5)
    watcher = node.mailbox()
    ref = watcher.monitor(only(sup))
    node.exit(sup_pid, "shutdown")
    message = await watcher.receive(timeout=5)
    assert message[:2] == (DOWN, ref) and message[4] == Atom("shutdown")


def test_bad_settings_are_refused() -> None:
    """A restart policy or intensity out of range is a ConfigError."""
    with pytest.raises(ConfigError):
        ChildSpec(child, restart="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        Supervisor([], max_restarts=-1)
