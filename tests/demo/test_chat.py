"""Two demo nodes in this process, without HTTP: chat, who is online, stop and start."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from conftest import COOKIE
from nodemesh.demo import ChatNode, DemoConfig
from nodemesh.epmd.server import EpmdServer
from nodemesh.errors import NodeDownError
from support.gossip_node import free_udp_port
from support.net import free_port


class Page:
    """What a page would receive from one ChatNode."""

    def __init__(self, chat: ChatNode) -> None:
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        chat.listen(self.events.put_nowait)

    async def until(self, check: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        """The first event from now on for which ``check`` holds (10 s at most)."""
        try:
            async with asyncio.timeout(10):
                while not check(event := await self.events.get()):
                    pass
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what}") from None
        return event


def nodes_are(*names: str) -> Callable[[dict[str, Any]], bool]:
    """A state listing ``names``, all of them in the room (their PubSub known)."""
    return lambda e: (
        e["type"] == "state" and [n["name"] for n in e["nodes"] if n["room"]] == list(names)
    )


def in_room(chat: ChatNode) -> bool:
    return len(chat.state()["nodes"]) == 2 and all(n["room"] for n in chat.state()["nodes"])


@pytest.fixture
async def chats(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[ChatNode, ChatNode]]:
    """amber-like and birch-like nodes (private EPMD, gossip port, cookie), running."""
    epmd_port = free_port()
    monkeypatch.setenv("ERL_EPMD_PORT", str(epmd_port))
    config = DemoConfig(nodes=2, port=free_port(), cookie=COOKIE, gossip_port=free_udp_port(),
                        heartbeat_ms=100)  # fmt: skip
    first, second = ChatNode(config, config.port), ChatNode(config, config.port + 1)
    # As run_demo does: one EPMD for the test, not one raced for by two starting nodes.
    epmd = EpmdServer()
    await epmd.start(epmd_port, "127.0.0.1")
    # Plain tasks, not a TaskGroup: the fixture's teardown may run in another task.
    running = [asyncio.create_task(chat.run()) for chat in (first, second)]
    try:
        async with asyncio.timeout(10):
            await first.wait_running()
            await second.wait_running()
        yield first, second
    finally:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        await epmd.aclose()


async def test_a_message_said_on_one_node_reaches_both(chats: tuple[ChatNode, ChatNode]) -> None:
    """Said on the first node, the message reaches the second node's pages and the
    first's own, once each, with its author and node."""
    first, second = chats
    pages = Page(first), Page(second)
    if not in_room(first):
        await pages[0].until(nodes_are(first.name, second.name), "the room")
    await first.say("Ada", "hello")
    for page in pages:
        got = await page.until(lambda e: e["type"] == "message", "the message")
        assert (got["author"], got["text"], got["node"]) == ("Ada", "hello", first.name)
    assert [e["text"] for e in second.history if e["type"] == "message"] == ["hello"]


async def test_people_on_one_node_are_seen_on_the_other(chats: tuple[ChatNode, ChatNode]) -> None:
    """A page opened on the first node shows among the second node's people; closing it
    removes it there too."""
    first, second = chats
    page = Page(second)
    first.page_named(1, "Grace")
    await page.until(
        lambda e: e["type"] == "state" and {"name": "Grace", "node": first.name} in e["people"],
        "Grace on the second node",
    )
    first.page_closed(1)
    await page.until(lambda e: e["type"] == "state" and e["people"] == [], "nobody")


async def test_stop_and_start_again(chats: tuple[ChatNode, ChatNode]) -> None:
    """Stopped, a node leaves the other's list, refuses to chat and keeps its history;
    started again, gossip brings it back."""
    first, second = chats
    watcher, own = Page(first), Page(second)
    if not in_room(first):
        await watcher.until(nodes_are(first.name, second.name), "the room")
    second.stop()
    await watcher.until(nodes_are(first.name), "the second node gone")
    await own.until(lambda e: e["type"] == "state" and not e["running"], "stopped")
    with pytest.raises(NodeDownError, match="is stopped"):
        await second.say("Ada", "anyone?")
    second.start()
    await watcher.until(nodes_are(first.name, second.name), "the second node back")
    notices = [e["text"] for e in second.history if e["type"] == "notice"]
    assert f"{second.name} started again" in notices
