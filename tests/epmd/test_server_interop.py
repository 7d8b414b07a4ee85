"""The embedded EPMD serving OTP's own clients: `erl` registering and asking, `epmd -names`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from epmd.helpers import require_epmd, wait_until
from nodemesh.epmd.client import names, register
from nodemesh.epmd.server import EpmdServer
from support.erlang import ErlPeer

pytestmark = pytest.mark.interop


async def _epmd_cli(*args: str) -> tuple[int, str]:
    """Run OTP's `epmd` client mode; return (exit code, stdout and stderr)."""
    proc = await asyncio.create_subprocess_exec(
        require_epmd(),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(30):
        out, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode()


def _w(text: str) -> str:
    """How ``~w`` prints an Erlang string."""
    return "[" + ",".join(str(ord(c)) for c in text) + "]"


@pytest.fixture
async def erl(server: EpmdServer) -> AsyncIterator[ErlPeer]:
    """A real `erl -name x@127.0.0.1` pointed at our server by ERL_EPMD_PORT."""
    peer = await ErlPeer.start(
        "x@127.0.0.1",
        "nodemesh-test",
        extra_args=("-start_epmd", "false"),  # never spawn a real epmd on our port
        env={"ERL_EPMD_PORT": str(server.port)},
    )
    try:
        yield peer
    finally:
        await peer.stop()


async def test_erl_registers_with_our_server(server: EpmdServer, erl: ErlPeer) -> None:
    """erl registers; NAMES, `epmd -names` and erl's creation all agree with the server."""
    [entry] = server.registrations()
    assert entry.node.name == "x"
    assert not entry.node.hidden
    assert (entry.node.highest_version, entry.node.lowest_version) == (6, 5)
    assert await names("127.0.0.1", epmd_port=server.port) == [("x", entry.node.port)]
    assert await erl.eval("erlang:system_info(creation)") == str(entry.creation)
    code, out = await _epmd_cli("-port", str(server.port), "-names")
    assert code == 0
    assert out == (
        f"epmd: up and running on port {server.port} with data:\nname x at port {entry.node.port}\n"
    )


async def test_erl_asks_our_server(server: EpmdServer, erl: ErlPeer) -> None:
    """net_adm:names() and erl_epmd:port_please/2 in erl work against our server."""
    async with await register("py", 40001, epmd_port=server.port):
        x_port = server.registrations()[0].node.port
        expected = f"[{{{_w('py')},40001}},{{{_w('x')},{x_port}}}]"

        async def erl_names(args: str, var: str) -> str:  # erl keeps bindings: fresh var
            return await erl.eval(f"{{ok, {var}}} = net_adm:names({args}), lists:sort({var})")

        assert await erl_names('"127.0.0.1"', "Ns1") == expected
        # names/0 asks the address of this host's name; our server listens on loopback.
        here = await erl.eval("{ok, {A, _, _, _}} = inet:getaddr(net_adm:localhost(), inet), A")
        if here == "127":
            assert await erl_names("", "Ns2") == expected
        assert await erl.eval('erl_epmd:port_please("py", "127.0.0.1")') == "{port,40001,6}"
        assert await erl.eval('erl_epmd:port_please("nobody", "127.0.0.1")') == "noport"


async def test_erl_stopping_unregisters(server: EpmdServer, erl: ErlPeer) -> None:
    """When erl exits its registration goes away with its connection."""
    await erl.stop()

    async def gone() -> bool:
        return server.registrations() == []

    await wait_until(gone, what="x to unregister")
    assert await names("127.0.0.1", epmd_port=server.port) == []


async def test_epmd_kill_against_our_server(server: EpmdServer) -> None:
    """`epmd -kill` is refused while nodes are registered, and stops our server after."""
    async with await register("py", 40001, epmd_port=server.port):
        code, out = await _epmd_cli("-port", str(server.port), "-kill")
        assert (code, out) == (1, "Killing not allowed - living nodes in database.\n")
    assert await _epmd_cli("-port", str(server.port), "-kill") == (0, "Killed\n")
    async with asyncio.timeout(10):
        await server.wait_closed()
