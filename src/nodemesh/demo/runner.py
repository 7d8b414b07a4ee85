"""Run the whole demo: every node and its page, until cancelled."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AsyncExitStack

from nodemesh.demo.chat import ChatNode
from nodemesh.demo.config import DemoConfig
from nodemesh.demo.web import serving
from nodemesh.epmd.server import ensure_epmd

__all__ = ["run_demo"]


async def run_demo(
    config: DemoConfig, on_ready: Callable[[list[tuple[str, str]]], None] | None = None
) -> None:
    """Serve every page, start every node, then call ``on_ready`` with each node's
    ``(name, url)``; run until cancelled. Every port is bound before any node starts, so
    a port in use fails at once. Raises :class:`~nodemesh.errors.NodemeshError` (a port
    in use, a node name taken) from the start; a failure later is shown on the pages."""
    chats = [ChatNode(config, port) for port in config.http_ports]
    async with AsyncExitStack() as stack:
        urls = [await stack.enter_async_context(serving(chat, config.host)) for chat in chats]
        # The demo's own EPMD (unless one runs): a node stopped from its page must not
        # take the port mapper of the others with it, as the node that started it would.
        epmd = await ensure_epmd(host=config.host)
        if epmd is not None:
            stack.push_async_callback(epmd.aclose)
        async with asyncio.TaskGroup() as tasks:
            for chat in chats:
                tasks.create_task(chat.run())
            for chat in chats:
                await chat.wait_running()
            if on_ready is not None:
                on_ready([(chat.name, url) for chat, url in zip(chats, urls, strict=True)])
