"""The handshake against a real Erlang/OTP node, over real TCP, in both directions."""

from __future__ import annotations

import asyncio
import os
import socket
import struct
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from nodemesh.dist.flags import DEFAULT_FLAGS, MANDATORY_OTP25
from nodemesh.dist.handshake import (
    NEED_DATA,
    Acceptor,
    AliveQuery,
    Established,
    Event,
    Initiator,
    NameReceived,
)
from nodemesh.errors import CookieMismatchError
from support.erlang import ErlPeer
from support.net import free_port

pytestmark = [pytest.mark.interop, pytest.mark.asyncio(loop_scope="module")]

COOKIE = "nodemesh-handshake-cookie"
TAG = os.getpid()
TIMEOUT = 15.0


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def erl() -> AsyncIterator[tuple[ErlPeer, int]]:
    """One erl node for the module, its distribution port fixed so we can dial it."""
    port = free_port()
    args = ("-kernel", "inet_dist_listen_min", str(port), "inet_dist_listen_max", str(port))
    peer = await ErlPeer.start(f"nmhs{TAG}@127.0.0.1", COOKIE, extra_args=args)
    yield peer, port
    await peer.stop()


async def drive(
    hs: Initiator | Acceptor, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> Event:
    """A minimal runtime: pump the machine over the socket until a final event."""
    while True:
        event = hs.next_event()
        writer.write(hs.data_to_send())  # after every call: it may have queued a reply
        await writer.drain()
        if event is NEED_DATA:
            data = await asyncio.wait_for(reader.read(4096), TIMEOUT)
            if not data:
                hs.connection_lost()
                raise AssertionError("connection_lost() should have raised")
            hs.receive_data(data)
        elif isinstance(event, NameReceived):
            assert isinstance(hs, Acceptor)
            hs.accept_name("ok")
        elif isinstance(event, AliveQuery):
            raise AssertionError("erl has no other connection from us")
        else:
            writer.write(hs.data_to_send())
            return event


async def epmd_register(alive: str, port: int) -> tuple[asyncio.StreamWriter, int]:
    """ALIVE2_REQ as a hidden node; keep the returned socket open to stay registered."""
    reader, writer = await asyncio.open_connection("127.0.0.1", 4369)
    name = alive.encode()
    body = struct.pack(">BHBBHHH", 120, port, 72, 0, 6, 5, len(name)) + name + b"\x00\x00"
    writer.write(struct.pack(">H", len(body)) + body)
    tag, result = await asyncio.wait_for(reader.readexactly(2), TIMEOUT)
    assert result == 0, f"EPMD refused to register {alive}"
    size = 4 if tag == ord("v") else 2  # ALIVE2_X_RESP has a 32-bit creation
    creation = int.from_bytes(await reader.readexactly(size), "big")
    return writer, creation


async def test_initiator_connects_to_erlang(erl: tuple[ErlPeer, int]) -> None:
    """Our Initiator completes the handshake with erl, which lists us in nodes(hidden)."""
    peer, port = erl
    own = f"nmpy{TAG}@127.0.0.1"
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        hs = Initiator(own, COOKIE, DEFAULT_FLAGS, 7, expected_peer=peer.name)
        event = await drive(hs, reader, writer)
        assert isinstance(event, Established)
        assert event.peer_name == peer.name
        assert event.peer_flags & MANDATORY_OTP25 == MANDATORY_OTP25
        assert event.peer_creation != 0
        assert f"'{own}'" in await peer.eval("nodes(hidden)")
        assert own not in await peer.eval("nodes()")  # hidden: no PUBLISHED flag
    finally:
        writer.close()


async def test_initiator_with_a_wrong_cookie_gets_cookie_mismatch(
    erl: tuple[ErlPeer, int],
) -> None:
    """erl closes on our wrong digest; the Initiator reports the cookie, not a bare EOF."""
    _, port = erl
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        hs = Initiator(f"nmbad{TAG}@127.0.0.1", "not-the-cookie", DEFAULT_FLAGS, 7)
        with pytest.raises(CookieMismatchError, match="cookies most likely differ"):
            await drive(hs, reader, writer)
    finally:
        writer.close()


class OneAcceptor:
    """Listens on loopback and drives an Acceptor on the first connection."""

    def __init__(self, own: str) -> None:
        self.own = own
        self.result: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        self.release = asyncio.Event()  # set it to close the connection
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            hs = Acceptor(self.own, COOKIE, DEFAULT_FLAGS, 1)
            self.result.set_result(await drive(hs, reader, writer))
            await self.release.wait()  # keep the connection until the test has looked
        except Exception as exc:
            self.result.set_exception(exc)
        finally:
            writer.close()

    async def aclose(self) -> None:
        self.release.set()
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


async def test_erlang_connects_to_our_acceptor(erl: tuple[ErlPeer, int]) -> None:
    """erl's net_kernel:connect_node reaches our Acceptor through EPMD and succeeds."""
    peer, _ = erl
    alive = f"nmacc{TAG}"
    own = f"{alive}@127.0.0.1"
    acceptor = OneAcceptor(own)
    epmd, creation = await epmd_register(alive, await acceptor.start())
    try:
        assert creation > 0
        assert await peer.eval(f"net_kernel:connect_node('{own}')") == "true"
        event = await asyncio.wait_for(acceptor.result, TIMEOUT)
        assert isinstance(event, Established)
        assert event.peer_name == peer.name
        assert event.peer_flags & MANDATORY_OTP25 == MANDATORY_OTP25
        assert f"'{own}'" in await peer.eval("nodes(hidden)")
    finally:
        epmd.close()
        await acceptor.aclose()


async def test_erlang_with_a_wrong_cookie_is_caught_by_our_acceptor(
    erl: tuple[ErlPeer, int],
) -> None:
    """erl using another cookie for us: our Acceptor raises CookieMismatchError, erl fails."""
    peer, _ = erl
    alive = f"nmaccbad{TAG}"
    own = f"{alive}@127.0.0.1"
    acceptor = OneAcceptor(own)
    epmd, _ = await epmd_register(alive, await acceptor.start())
    try:
        await peer.eval(f"erlang:set_cookie('{own}', 'not-the-cookie')")
        assert await peer.eval(f"net_kernel:connect_node('{own}')") == "false"
        with pytest.raises(CookieMismatchError, match="cookie for us differs"):
            await asyncio.wait_for(acceptor.result, TIMEOUT)
    finally:
        epmd.close()
        await acceptor.aclose()
