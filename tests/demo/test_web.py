"""The page's HTTP side without a running node: files, the WebSocket's first word, and
sockets refused to other sites' pages."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from nodemesh.demo import ChatNode, DemoConfig
from nodemesh.demo.web import make_app


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:
    """The app of a node that was never started (its state: not running)."""
    chat = ChatNode(DemoConfig(), 4000)
    async with TestClient(TestServer(make_app(chat))) as http:
        yield http


async def test_the_page_and_its_files(client: TestClient) -> None:
    """/ is the page, which loads its CSS and script from /static/."""
    page = await client.get("/")
    assert page.status == 200 and page.content_type == "text/html"
    html = await page.text()
    for asset in ("/static/app.css", "/static/app.js"):
        assert asset in html
        assert (await client.get(asset)).status == 200


async def test_a_page_first_gets_hello(client: TestClient) -> None:
    """The socket's first event is hello: this node's name and state, and the history."""
    async with client.ws_connect("/ws") as ws:
        hello = await ws.receive_json(timeout=5)
    assert hello["type"] == "hello" and hello["history"] == []
    assert hello["state"]["self"] == "amber@127.0.0.1" and not hello["state"]["running"]


async def test_other_sites_pages_may_not_open_the_socket(client: TestClient) -> None:
    """A page from another origin gets 403 (it could chat and stop the node); the page's
    own origin is welcome."""
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/ws", origin="http://evil.example")
    assert refused.value.status == 403
    own = f"http://{client.host}:{client.port}"
    async with client.ws_connect("/ws", origin=own) as ws:
        assert (await ws.receive_json(timeout=5))["type"] == "hello"
