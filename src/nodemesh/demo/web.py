"""The chat page of one node over HTTP: static files and one WebSocket per open page.

``GET /`` is the page (``static/index.html``, with ``app.css`` and ``app.js``: no build
step). ``GET /ws`` is a WebSocket speaking JSON objects. The server sends ``hello``
(state and recent history) once, then every ``state``, ``message`` and ``notice`` of
the :class:`~nodemesh.demo.chat.ChatNode`. The page sends ``{"type": "say", "author",
"text"}``, ``{"type": "name", "author"}`` (on opening and on renaming: who is online),
``{"type": "stop"}`` and ``{"type": "start"}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web
from yarl import URL

from nodemesh.demo.chat import ChatNode
from nodemesh.errors import NetworkError, NodemeshError

__all__ = ["make_app", "serving"]

log = logging.getLogger("nodemesh.demo")

STATIC = Path(__file__).parent / "static"
MAX_QUEUED = 1000  # events waiting for one page; a page this far behind is disconnected
CHAT_KEY = web.AppKey("chat", ChatNode)
SOCKETS_KEY = web.AppKey("sockets", set[web.WebSocketResponse])
CLOSE_TIMEOUT = 1.0  # seconds a page gets to answer the close handshake on Ctrl-C


def make_app(chat: ChatNode) -> web.Application:
    """The aiohttp application serving ``chat``'s page."""
    app = web.Application()
    app[CHAT_KEY] = chat
    app[SOCKETS_KEY] = set()
    app.on_shutdown.append(_close_sockets)
    app.router.add_get("/", _index)
    app.router.add_get("/ws", _socket)
    app.router.add_static("/static/", STATIC)
    return app


@contextlib.asynccontextmanager
async def serving(chat: ChatNode, host: str) -> AsyncIterator[str]:
    """Serve ``chat``'s page on its port for the block; yields the page's URL. Raises
    :class:`NetworkError` in one sentence when the port cannot be bound."""
    runner = web.AppRunner(
        make_app(chat), access_log=None, handle_signals=False, shutdown_timeout=1.0
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, chat.http_port)
        try:
            await site.start()
        except OSError as exc:
            raise NetworkError(_bind_problem(host, chat.http_port, exc)) from exc
        yield f"http://{host}:{chat.http_port}/"
    finally:
        await runner.cleanup()


def _bind_problem(host: str, port: int, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return (
            f"port {port} on {host} is in use (another demo?): stop what uses it or "
            f"start on other ports, e.g. nodemesh demo --port {port + 100}"
        )
    if exc.errno == errno.EACCES:
        return f"no permission to serve on port {port}: use a port above 1023 (--port)"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"{host} is not an address of this machine: pass one of its addresses (--host)"
    return f"cannot serve on {host}:{port}: {exc.strerror or exc}"


async def _index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


async def _socket(request: web.Request) -> web.WebSocketResponse:
    _same_origin(request)
    chat = request.app[CHAT_KEY]
    ws = web.WebSocketResponse(heartbeat=20.0, timeout=CLOSE_TIMEOUT)
    await ws.prepare(request)
    request.app[SOCKETS_KEY].add(ws)
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    def listener(event: dict[str, Any]) -> None:
        if queue.qsize() < MAX_QUEUED:
            queue.put_nowait(event)
        else:  # never block the node for a slow page; the page reconnects and catches up
            queue.put_nowait({"type": "overflow"})

    unsubscribe = chat.listen(listener)
    page = id(ws)
    try:
        await ws.send_json({"type": "hello", "state": chat.state(), "history": list(chat.history)})
        async with asyncio.TaskGroup() as tasks:
            writer = tasks.create_task(_write(ws, queue))
            await _read(ws, chat, page)
            writer.cancel()
    finally:
        request.app[SOCKETS_KEY].discard(ws)
        unsubscribe()
        chat.page_closed(page)
    return ws


def _same_origin(request: web.Request) -> None:
    """Refuse a WebSocket opened by a page of another site: browsers let any page connect
    to 127.0.0.1, and this socket can chat and stop the node. Raises HTTPForbidden."""
    origin = request.headers.get("Origin")
    if origin is not None and URL(origin).host_port_subcomponent != request.host:
        raise web.HTTPForbidden(text=f"pages of {origin} may not use this chat\n")


async def _close_sockets(app: web.Application) -> None:
    """On shutdown, tell every page its server is going (it shows so and reconnects)."""
    sockets = app[SOCKETS_KEY]
    for ws in list(sockets):
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"the demo is stopping")


async def _write(ws: web.WebSocketResponse, queue: asyncio.Queue[dict[str, Any]]) -> None:
    while True:
        event = await queue.get()
        if event["type"] == "overflow":
            await ws.close(message=b"too far behind")
            return
        try:
            await ws.send_json(event)
        except ConnectionResetError:  # the page went away; the reader sees it too
            return


async def _read(ws: web.WebSocketResponse, chat: ChatNode, page: int) -> None:
    async for frame in ws:
        if frame.type != WSMsgType.TEXT:
            continue
        try:
            request = json.loads(frame.data)
        except ValueError:
            continue
        if isinstance(request, dict):
            await _act(ws, chat, page, request)


async def _act(
    ws: web.WebSocketResponse, chat: ChatNode, page: int, request: dict[str, Any]
) -> None:
    kind = request.get("type")
    if kind == "say":
        author, text = request.get("author"), request.get("text")
        if isinstance(author, str) and isinstance(text, str) and text.strip():
            try:
                await chat.say(author, text)
            except NodemeshError as exc:  # stopped, or a message with no Erlang form
                await ws.send_json({"type": "problem", "text": str(exc)})
    elif kind == "name" and isinstance(request.get("author"), str):
        chat.page_named(page, request["author"])
    elif kind == "stop":
        chat.stop()
    elif kind == "start":
        chat.start()
