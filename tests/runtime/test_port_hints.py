"""Port hints: a dial uses a peer's announced port instead of asking EPMD, and a wrong hint
costs one failed attempt (then EPMD), never the connection. Real nodes on loopback; EPMD
lookups are counted by wrapping the transport's ``port_please``."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest

from conftest import NodeFactory
from nodemesh.runtime import _transport
from nodemesh.runtime._transport import PortHints


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The alive names every dial asked EPMD about, in order."""
    asked: list[str] = []
    real: Callable[..., Any] = _transport.port_please

    async def counting(host: str, alive: str, **kwargs: Any) -> Any:
        asked.append(alive)
        return await real(host, alive, **kwargs)

    monkeypatch.setattr(_transport, "port_please", counting)
    return asked


def closed_port() -> int:
    """A TCP port nothing listens on (bound then released: connects are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_hinted_connect_asks_no_epmd(make_node: NodeFactory, lookups: list[str]) -> None:
    """With the peer's real port as the hint, the connect needs no EPMD lookup."""
    a, b = await make_node("a"), await make_node("b")
    a.hint_port(b.name, b.port)
    assert await a.connect(b.name)
    assert lookups == []


async def test_a_stale_hint_costs_one_attempt_then_epmd(
    make_node: NodeFactory, lookups: list[str]
) -> None:
    """A hint to a closed port: the same connect falls back to EPMD and succeeds; the
    hint is dropped, so the next connect asks EPMD at once."""
    a, b = await make_node("a"), await make_node("b")
    a.hint_port(b.name, closed_port())
    assert await a.connect(b.name)
    assert lookups == ["b"]
    assert a._transport is not None and a._transport.hints.get(b.name) is None
    await a.disconnect(b.name)
    assert await a.connect(b.name)
    assert lookups == ["b", "b"]


async def test_a_hint_to_another_node_is_not_believed(
    make_node: NodeFactory, lookups: list[str]
) -> None:
    """A hint (stale or forged) pointing at another node's port: the handshake sees the
    wrong name, the attempt is dropped, and EPMD gives the right port. Nothing connects
    to the wrong node."""
    a, b, c = await make_node("a"), await make_node("b"), await make_node("c")
    a.hint_port(b.name, c.port)
    assert await a.connect(b.name)
    assert lookups == ["b"]
    assert a.nodes() == [b.name]
    assert a.name not in c.nodes()


async def test_a_hint_to_a_silent_port_gives_up_in_half_the_connect_timeout(
    make_node: NodeFactory, lookups: list[str]
) -> None:
    """A hinted port that accepts and never answers holds the dial for at most half of
    connect_timeout; the other half is EPMD's. The abandoned attempt's socket is closed
    (a timed-out handshake is not left to finish later)."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        a = await make_node("a", connect_timeout=1.0)
        b = await make_node("b")
        a.hint_port(b.name, silent.getsockname()[1])
        assert await a.connect(b.name)
        assert lookups == ["b"]
        conn, _ = silent.accept()  # the hinted attempt, queued in the backlog
        with conn:
            conn.settimeout(5)
            assert conn.recv(4096)  # its send_name
            assert conn.recv(4096) == b""  # then closed by a
    finally:
        silent.close()


async def test_a_hint_is_ignored_without_epmd(app_node: Any, lookups: list[str]) -> None:
    """EPMD-less nodes all listen on the configured port: a hint changes nothing."""
    a, b = await app_node("127.0.0.3"), await app_node("127.0.0.4")
    a.hint_port(b.name, closed_port())
    assert await a.connect(b.name)
    assert lookups == []


def test_port_hints_are_bounded_and_replaced() -> None:
    """The newest hint for a node wins; dropping an outdated port keeps the newer one;
    beyond the bound the least recently set is forgotten."""
    hints = PortHints(max_hints=2)
    hints.set("a@h", 1000)
    hints.set("a@h", 1001)
    hints.drop("a@h", 1000)
    assert hints.get("a@h") == 1001
    hints.set("b@h", 2000)
    hints.set("c@h", 3000)
    assert (len(hints), hints.get("a@h"), hints.get("c@h")) == (2, None, 3000)
    hints.drop("c@h", 3000)
    assert hints.get("c@h") is None
