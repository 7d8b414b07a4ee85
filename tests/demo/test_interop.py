"""The demo and a real Erlang node running Phoenix.PubSub's PG2 adapter (``nm_phx``, the
stand-in for an Elixir app): what the Erlang node broadcasts on room:lobby shows on the
page, and what is typed on the page reaches the Erlang subscriber as a map."""

from __future__ import annotations

import asyncio
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from conftest import COOKIE
from nodemesh.demo import DemoConfig, run_demo
from support.erlang import ErlPeer, require_erlang
from support.gossip_node import free_udp_port
from support.net import free_port

pytestmark = pytest.mark.interop

SUPPORT = Path(__file__).parent.parent / "support"
PHX = "'Elixir.nodemesh'"  # the demo's PubSub is named nodemesh


@pytest.fixture(scope="module")
def phx_beam() -> Iterator[str]:
    """nm_phx.erl compiled once for this module; yields the directory of its .beam."""
    require_erlang()
    with tempfile.TemporaryDirectory(prefix="nm_phx_") as out:
        subprocess.run(["erlc", "-o", out, str(SUPPORT / "nm_phx.erl")], check=True, timeout=60)
        yield out


@pytest.fixture
async def demo(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[str, str, int]]:
    """A one-node demo in this process; yields its page URL, node name and EPMD port."""
    epmd = free_port()
    monkeypatch.setenv("ERL_EPMD_PORT", str(epmd))
    config = DemoConfig(nodes=1, port=free_port(), cookie=COOKIE, gossip_port=free_udp_port())
    ready: asyncio.Future[list[tuple[str, str]]] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(run_demo(config, on_ready=ready.set_result))
    try:
        await asyncio.wait([ready, task], timeout=20, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()  # raises what stopped the demo
        [(name, url)] = ready.result()
        yield url, name, epmd
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def next_event(ws: aiohttp.ClientWebSocketResponse, kind: str, **fields: Any) -> Any:
    """The next event of ``kind`` whose ``fields`` match, within 10 s."""
    async with asyncio.timeout(10):
        while True:
            event = await ws.receive_json()
            if event["type"] == kind and all(event.get(k) == v for k, v in fields.items()):
                return event


async def test_an_erlang_phoenix_node_chats_with_the_page(
    demo: tuple[str, str, int], phx_beam: str
) -> None:
    """An Erlang node with Phoenix's PubSub connects; the page lists it, shows its
    broadcasts (a bare binary and a chat map), and what the page says reaches it."""
    url, name, epmd = demo
    env = {"ERL_EPMD_PORT": str(epmd)}
    erl = await ErlPeer.start("phx@127.0.0.1", COOKIE, env=env, extra_args=("-pa", phx_beam))
    try:
        await erl.eval(f'nm_phx:start({PHX}, 1), nm_phx:subscribe({PHX}, <<"room:lobby">>)')
        async with aiohttp.ClientSession() as http, http.ws_connect(url + "ws") as ws:
            await next_event(ws, "hello")
            assert await erl.eval(f"net_adm:ping('{name}')") == "pong"
            state = await next_event(ws, "state")
            assert [n["name"] for n in state["nodes"]] == [name, erl.name]
            # The demo's scope discovers the Erlang scope (Erlang's never discovers a
            # hidden node); broadcast once the Erlang side sees the demo's worker.
            members = f"length(pg:get_members('Elixir.Phoenix.PubSub', {PHX[:-1]}.Adapter'))"
            await erl.eval(
                f"(fun L() -> case {members} of 2 -> ok; _ -> receive after 20 -> L() end end"
                " end)()"
            )
            await erl.eval(f'nm_phx:broadcast({PHX}, <<"room:lobby">>, <<"hello from erl">>)')
            assert (await next_event(ws, "message", text="hello from erl"))["author"] == ""
            chat = (  # é and á as UTF-8, whatever encoding erl reads this source in
                '#{<<"id">> => <<"e1">>, <<"author">> => <<"Jos", 233/utf8>>,'
                ' <<"text">> => <<"ol", 225/utf8>>, <<"node">> => atom_to_binary(node()),'
                ' <<"at">> => 1700000000000}'
            )
            await erl.eval(f'nm_phx:broadcast({PHX}, <<"room:lobby">>, {chat})')
            got = await next_event(ws, "message", id="e1")
            assert (got["author"], got["text"], got["node"]) == ("José", "olá", erl.name)
            await erl.eval("nm_phx:drain(2, 5000)")  # its own two broadcasts
            await ws.send_json({"type": "say", "author": "Ada", "text": "hi erl"})
            [heard] = await erl.eval_term("nm_phx:drain(1, 5000)")
            assert (heard[b"author"], heard[b"text"], heard[b"node"]) == (
                b"Ada",
                b"hi erl",
                name.encode(),
            )
    finally:
        await erl.stop()
