"""Two ConnectionTables joined by a socket pair: handshake, messages, ticks and nodedown,
with no Node, no EPMD and no listening socket."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from nodemesh.dist import control
from nodemesh.dist import events as ev
from nodemesh.errors import HandshakeError, NodeDownError
from nodemesh.runtime._connection import Connection
from nodemesh.runtime._connections import ConnectionTable
from nodemesh.runtime.config import NodeConfig
from nodemesh.term.types import Atom, Pid
from support.net import wait_for

COOKIE = "connections-test"


@dataclass
class Side:
    """One end: its table and what the table told it."""

    table: ConnectionTable
    received: list[Any] = field(default_factory=list)
    ups: list[str] = field(default_factory=list)
    downs: list[tuple[str, str]] = field(default_factory=list)


def side(name: str, config: NodeConfig) -> Side:
    s = Side(
        ConnectionTable(name, COOKIE, config, receive=lambda c, i: None, on_up=print, on_down=print)
    )
    s.table.receive = lambda conn, item: s.received.append(item)
    s.table._on_up = s.ups.append
    s.table._on_down = lambda peer, reason: s.downs.append((peer, reason))
    s.table.creation = 1
    return s


async def join(a: Side, b: Side) -> tuple[Connection, Connection]:
    """Dial from ``a`` to ``b`` over a socket pair; return both established connections."""
    loop = asyncio.get_running_loop()
    sock_a, sock_b = socket.socketpair()
    _, accepted = await loop.connect_accepted_socket(lambda: Connection(b.table, None), sock_b)
    _, dialed = await loop.create_connection(lambda: Connection(a.table, b.table.name), sock=sock_a)
    async with asyncio.timeout(5):
        await dialed.established
        await accepted.established
    return dialed, accepted


@pytest.fixture
async def pair() -> AsyncIterator[tuple[Side, Side]]:
    config = NodeConfig(net_ticktime=60.0)
    a, b = side("a@127.0.0.1", config), side("b@127.0.0.1", config)
    yield a, b
    for s in (a, b):
        await s.table.aclose(1.0)


async def test_handshake_brings_both_tables_up(pair: tuple[Side, Side]) -> None:
    """After the handshake each table lists the other, once, and reported nodeup."""
    a, b = pair
    await join(a, b)
    assert a.ups == [b.table.name] and b.ups == [a.table.name]
    assert a.table.is_connected(b.table.name) and b.table.is_connected(a.table.name)
    assert a.table.handshaking == set() == b.table.handshaking
    assert b.table.name_status(a.table.name) == "alive"


async def test_messages_reach_the_receive_callable_in_order(pair: tuple[Side, Side]) -> None:
    """SEND frames arrive as (to, message, sender) tuples, other control as events."""
    a, b = pair
    dialed, _ = await join(a, b)
    me, you = Pid(Atom(a.table.name), 1, 0, 1), Pid(Atom(b.table.name), 2, 0, 1)
    for i in range(100):
        dialed.write(control.send(you, i, me))
    dialed.write(control.link(me, you))
    await wait_for(lambda: len(b.received) == 101, what="101 items")
    assert b.received[:100] == [(you, i, me) for i in range(100)]
    assert b.received[100] == ev.Link(me, you)


async def test_gathered_writes_arrive_whole_and_in_order_after_a_flushing_close(
    pair: tuple[Side, Side],
) -> None:
    """Frames written in one loop iteration are gathered into few socket writes: 5,000 of
    them (far past the gathering limit) arrive complete and in order, and close(flush=True)
    straight after sends what was still gathered before closing."""
    a, b = pair
    dialed, _ = await join(a, b)
    me, you = Pid(Atom(a.table.name), 1, 0, 1), Pid(Atom(b.table.name), 2, 0, 1)
    padding = b"x" * 200
    for i in range(5000):
        dialed.write(control.send(you, (i, padding), me))
    dialed.close("disconnect", flush=True)
    await wait_for(lambda: bool(b.downs), what="the flushing close")
    assert [item[1][0] for item in b.received] == list(range(5000))


class SpyTransport:
    """A transport that records each write before passing it on."""

    def __init__(self, transport: Any) -> None:
        self._transport = transport
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


async def test_a_write_after_a_read_goes_at_once_and_a_burst_is_gathered(
    pair: tuple[Side, Side],
) -> None:
    """Request and reply traffic: a frame written after one was read from the peer goes
    to the socket at once; frames written after it with no read between are gathered
    into one socket write when the loop comes round, in order, and the next write after
    that goes at once again."""
    a, b = pair
    dialed, accepted = await join(a, b)
    me, you = Pid(Atom(a.table.name), 1, 0, 1), Pid(Atom(b.table.name), 2, 0, 1)
    accepted.write(control.send(me, "hello", you))
    await wait_for(lambda: len(a.received) == 1, what="a read on the dialing side")
    spy = SpyTransport(dialed._transport)
    dialed._transport = spy
    frames = [control.send(you, i, me) for i in range(4)]
    dialed.write(frames[0])
    assert spy.writes == [frames[0]]  # at once, before any turn of the loop
    dialed.write(frames[1])
    dialed.write(frames[2])
    assert spy.writes == [frames[0]]
    await wait_for(lambda: len(spy.writes) == 2, what="the gathered frames")
    assert spy.writes[1] == frames[1] + frames[2]
    dialed.write(frames[3])
    assert spy.writes[2:] == [frames[3]]
    await wait_for(lambda: len(b.received) == 4, what="four frames")
    assert [item[1] for item in b.received] == [0, 1, 2, 3]


async def test_closing_one_end_reports_nodedown_on_both(pair: tuple[Side, Side]) -> None:
    """close() gives nodedown with its reason here and connection_closed there."""
    a, b = pair
    dialed, _ = await join(a, b)
    dialed.close("disconnect")
    await wait_for(lambda: bool(a.downs and b.downs), what="nodedown on both sides")
    assert a.downs == [(b.table.name, "disconnect")]
    assert b.downs == [(a.table.name, "connection_closed")]
    assert a.table.connections == {} == b.table.connections


async def test_a_closing_table_refuses_newcomers(pair: tuple[Side, Side]) -> None:
    """While closing, name_status says not_allowed and no connection comes up."""
    a, b = pair
    await b.table.aclose(1.0)
    assert b.table.name_status(a.table.name) == "not_allowed"
    with pytest.raises(HandshakeError):
        await join(a, b)
    assert b.ups == []


async def test_a_silent_peer_is_dropped_after_net_ticktime() -> None:
    """A peer that stops reading and writing is declared down (net_tick_timeout)."""
    fast = NodeConfig(net_ticktime=0.4)
    a, b = side("a@127.0.0.1", fast), side("b@127.0.0.1", fast)
    _, accepted = await join(a, b)
    assert accepted._transport is not None
    accepted._transport.pause_reading()  # b goes deaf and, never polled, mute
    accepted._liveness = None
    try:
        await wait_for(lambda: bool(a.downs), what="a to drop the silent b", timeout=5)
        assert a.downs == [(b.table.name, "net_tick_timeout")]
    finally:
        for s in (a, b):
            await s.table.aclose(1.0)


async def test_paused_reading_is_not_silence() -> None:
    """While a connection has paused reading, its silent peer is not declared down; once
    it reads again, the silence counts from then."""
    fast = NodeConfig(net_ticktime=0.4)
    a, b = side("a@127.0.0.1", fast), side("b@127.0.0.1", fast)
    dialed, accepted = await join(a, b)
    liveness = dialed._liveness
    assert liveness is not None
    try:
        dialed.pause_reading()
        accepted._liveness = None  # b stops ticking: silent, as a peer pushed back on
        until = liveness.next_poll() + 3 * 0.4
        await wait_for(lambda: liveness.next_poll() > until, what="three ticktimes of polls")
        assert a.downs == []
        dialed.resume_reading()
        await wait_for(lambda: bool(a.downs), what="a to drop the silent b", timeout=5)
        assert a.downs == [(b.table.name, "net_tick_timeout")]
    finally:
        for s in (a, b):
            await s.table.aclose(1.0)


async def test_closing_fails_dials_in_flight(pair: tuple[Side, Side]) -> None:
    """A dial still pending when the table closes fails with NodeDownError, not a hang."""
    a, _ = pair
    future, start = a.table.dial_future("nobody@127.0.0.1")
    assert start
    await a.table.aclose(1.0)
    with pytest.raises(NodeDownError, match="closing"):
        await future
