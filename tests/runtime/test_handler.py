"""Names served by a function (Node.register_handler): called on arrival, no queue."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from conftest import NodeFactory
from nodemesh import Atom, NameTakenError
from support.net import wait_for


async def test_a_remote_message_calls_the_handler_in_order(make_node: NodeFactory) -> None:
    """Messages from another node reach the handler in the order sent, nothing queued."""
    a, b = await make_node("a"), await make_node("b")
    seen: list[Any] = []
    box = b.register_handler("echo", seen.append)
    for n in range(100):
        await a.send(("echo", b.name), n)
    await wait_for(lambda: len(seen) == 100)
    assert seen == list(range(100))
    assert len(box) == 0
    assert box.statistics().delivered == 100


async def test_a_failing_handler_is_logged_and_the_node_carries_on(
    make_node: NodeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """An exception in the handler is one log line; later messages still arrive."""
    a, b = await make_node("a"), await make_node("b")
    seen: list[Any] = []

    def handle(message: Any) -> None:
        if message == Atom("boom"):
            raise ValueError("boom")
        seen.append(message)

    b.register_handler("h", handle)
    with caplog.at_level(logging.ERROR, logger="nodemesh.node"):
        await a.send(("h", b.name), Atom("boom"))
        await a.send(("h", b.name), 1)
        await wait_for(lambda: seen == [1])
    assert any("handler" in record.getMessage() for record in caplog.records)


async def test_closing_unregisters_and_the_name_is_taken_meanwhile(
    make_node: NodeFactory,
) -> None:
    """The name is taken while registered; closing frees it and stops the calls."""
    node = await make_node("a")
    seen: list[Any] = []
    box = node.register_handler("h", seen.append)
    with pytest.raises(NameTakenError):
        node.register("h")
    await node.send("h", 1)
    box.close()
    await node.send("h", 2)
    assert seen == [1]
    assert node.whereis("h") is None
