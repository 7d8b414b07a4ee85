"""EPMD, the distribution port and the cookie handshake, against real nodes on loopback."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator

import pytest

from conftest import COOKIE, NodeFactory
from nodemesh.dist.names import parse_node_name
from nodemesh.doctor.network import check_local_epmd, probe_name, probe_peer
from nodemesh.doctor.result import CheckResult, Status
from nodemesh.epmd.client import register
from support.erlang import ErlPeer, running_epmd
from support.net import free_port

OWN = parse_node_name("doctor@127.0.0.1")


async def probe(peer: str, epmd_port: int, cookie: str | None = COOKIE) -> list[CheckResult]:
    return await probe_peer(peer, own=OWN, cookie=cookie, epmd_port=epmd_port, timeout=5)


def statuses(results: list[CheckResult]) -> list[tuple[str, Status]]:
    return [(r.check.split(" ")[0], r.status) for r in results]


async def test_no_epmd_on_the_port_is_reported() -> None:
    """Nothing on the EPMD port: a warning saying nodemesh would embed one, erl would not."""
    result = await check_local_epmd("app", free_port(), timeout=2)
    assert result.status is Status.WARN
    assert "epmd -daemon" in result.fix and "cannot reach EPMD" in result.detail


async def test_local_epmd_lists_what_is_registered(make_node: NodeFactory, epmd_port: int) -> None:
    """A running EPMD passes and names the registered nodes, ours with its port."""
    node = await make_node("app")
    result = await check_local_epmd("app", epmd_port, timeout=2)
    assert result.status is Status.PASS
    assert f"app is registered on port {node.port}" in result.detail


async def test_right_cookie_completes_a_handshake(make_node: NodeFactory, epmd_port: int) -> None:
    """Against a running node with our cookie: EPMD, port and handshake all PASS."""
    peer = await make_node("peer")
    results = await probe(peer.name, epmd_port)
    assert [r.status for r in results] == [Status.PASS] * 3
    assert "the cookies agree" in results[-1].detail


async def test_wrong_cookie_says_cookies_differ(make_node: NodeFactory, epmd_port: int) -> None:
    """A real handshake with another cookie: FAIL "cookies differ", and how to fix it."""
    peer = await make_node("peer")
    results = await probe(peer.name, epmd_port, cookie="not-the-cookie")
    *reached, cookie = results
    assert [r.status for r in reached] == [Status.PASS, Status.PASS]
    assert cookie.status is Status.FAIL and cookie.detail.startswith("cookies differ")
    assert "same cookie" in cookie.fix


async def test_probe_does_not_disturb_the_peer(make_node: NodeFactory, epmd_port: int) -> None:
    """The probe uses a throw-away name: the peer's real connections stay up."""
    peer = await make_node("peer")
    other = await make_node("doctor")  # the name the doctor checks for
    assert await other.connect(peer.name)
    await probe(peer.name, epmd_port)
    assert other.is_connected(peer.name)
    assert probe_name(OWN, parse_node_name(peer.name), pid=7) == "nodemesh_doctor_7@127.0.0.1"


async def test_unreachable_epmd_on_the_peers_host(epmd_port: int) -> None:
    """No EPMD answers on the peer's host: FAIL naming host:port and what to open."""
    (result,) = await probe("ghost@127.0.0.1", epmd_port)
    assert result.status is Status.FAIL
    assert f"127.0.0.1:{epmd_port}" in result.detail and "open TCP port" in result.fix


async def test_unknown_name_lists_the_registered_ones(
    make_node: NodeFactory, epmd_port: int
) -> None:
    """EPMD answers but knows no such name: FAIL listing the names it has."""
    await make_node("present")
    (result,) = await probe("absent@127.0.0.1", epmd_port)
    assert result.status is Status.FAIL
    assert "knows no node named 'absent'" in result.detail and "present" in result.detail


async def test_unreachable_distribution_port(make_node: NodeFactory, epmd_port: int) -> None:
    """EPMD names a port nothing listens on (a firewall would look the same): FAIL."""
    await make_node("anchor")  # runs the embedded EPMD
    dead = free_port()
    async with await register("stale", dead, epmd_port=epmd_port):
        results = await probe("stale@127.0.0.1", epmd_port)
    assert statuses(results) == [("EPMD", Status.PASS), ("distribution", Status.FAIL)]
    assert f"port {dead}" in results[1].detail and "--port" in results[1].fix


async def test_unresolvable_peer_host() -> None:
    """A peer whose host does not resolve is one FAIL before any connection."""
    (result,) = await probe("app@nowhere.invalid", 4369)
    assert result.status is Status.FAIL and "does not resolve" in result.detail


async def test_not_a_distribution_port(make_node: NodeFactory, epmd_port: int) -> None:
    """EPMD points at something that is no Erlang node: the handshake fails, not hangs."""
    await make_node("anchor")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        async with await register("impostor", port, epmd_port=epmd_port):
            results = await probe_peer(
                "impostor@127.0.0.1", own=OWN, cookie=COOKIE, epmd_port=epmd_port, timeout=1
            )
    assert results[-1].status is Status.FAIL and "did not finish" in results[-1].detail


@pytest.fixture
def real_epmd() -> Iterator[int]:
    with running_epmd() as port:
        yield port


@pytest.fixture
async def erl(real_epmd: int) -> AsyncIterator[ErlPeer]:
    peer = await ErlPeer.start("erl1@127.0.0.1", COOKIE, env={"ERL_EPMD_PORT": str(real_epmd)})
    yield peer
    await peer.stop()


@pytest.mark.interop
async def test_cookie_check_against_erlang(erl: ErlPeer, real_epmd: int) -> None:
    """Against a real erl: the right cookie agrees, a wrong one is "cookies differ"."""
    good = await probe(erl.name, real_epmd)
    assert [r.status for r in good] == [Status.PASS] * 3
    bad = await probe(erl.name, real_epmd, cookie="wrong")
    assert bad[-1].status is Status.FAIL and bad[-1].detail.startswith("cookies differ")
