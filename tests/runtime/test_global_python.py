"""Visible Python nodes among themselves: global's protocol with no Erlang node."""

from __future__ import annotations

import logging

import pytest

from conftest import NodeFactory
from nodemesh.errors import NodemeshError
from nodemesh.term.types import Atom


async def test_two_python_nodes_sync_and_share_names(make_node: NodeFactory) -> None:
    """Two visible Python nodes lock, exchange names and sync; a name registered on
    one is found on the other and goes when its mailbox closes."""
    a = await make_node("ga", hidden=False)
    b = await make_node("gb", hidden=False)
    before = a.mailbox()
    assert await a.global_register("early", before.pid)
    assert await b.connect(a.name)
    await a.global_sync(timeout=10)
    await b.global_sync(timeout=10)
    assert b.global_whereis("early") == before.pid
    box = b.mailbox()
    assert await b.global_register(Atom("kv"), box.pid)
    assert a.global_whereis("kv") == box.pid
    assert sorted(a.global_names()) == ["early", "kv"]
    await a.global_unregister("kv")
    assert b.global_whereis("kv") is None


async def test_clash_between_python_nodes(make_node: NodeFactory) -> None:
    """Both sides hold a name when they meet: the pid on the node with the smaller name
    keeps it everywhere, the other mailbox receives ('EXIT', _, kill)."""
    a = await make_node("ca", hidden=False)
    b = await make_node("cb", hidden=False)
    mine, theirs = a.mailbox(), b.mailbox()
    assert await a.global_register("same", mine.pid)
    assert await b.global_register("same", theirs.pid)
    assert await a.connect(b.name)
    await a.global_sync(timeout=10)
    await b.global_sync(timeout=10)
    assert a.global_whereis("same") == mine.pid == b.global_whereis("same")
    signal = await theirs.receive(5)
    assert signal[0] == "EXIT" and signal[2] == "kill"


async def test_hidden_node_has_no_global_names(make_node: NodeFactory) -> None:
    """The global names API on a hidden node raises NodemeshError naming the setting."""
    node = await make_node("hid")
    with pytest.raises(NodemeshError, match="hidden=False"):
        node.global_whereis("x")


async def test_bad_messages_to_global_are_logged_and_ignored(
    make_node: NodeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Malformed messages to global_name_server each give a log line; the server keeps
    serving (a registration afterwards still reaches the other node)."""
    caplog.set_level(logging.INFO, logger="nodemesh.global")
    a = await make_node("ba", hidden=False)
    b = await make_node("bb", hidden=False)
    assert await b.connect(a.name)
    await b.global_sync(timeout=10)
    gns = ("global_name_server", a.name)
    for junk in [
        "junk",
        (Atom("$gen_cast"), (Atom("lost_connection"), [1], 2, "x", 3)),
        (Atom("$gen_cast"), (Atom("init_connect"), "vsn", Atom("zz@h"), 1)),
        (Atom("lost_connection"), [1], 2, "x", 3),
        (Atom("$gen_call"), (b.mailbox().pid, 1), (Atom("set_lock"), "not a lock")),
        (Atom("$gen_cast"), (Atom("new_nodes"), 1, 2, 3, "nodes", 5)),
    ]:
        await b.send(gns, junk)
    box = b.mailbox()
    assert await b.global_register("after_junk", box.pid)
    assert a.global_whereis("after_junk") == box.pid
    assert "ignoring b'junk'" in caplog.text
    assert "ignoring malformed" in caplog.text
    assert "Traceback" not in caplog.text
