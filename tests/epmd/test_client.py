"""The EPMD client against OTP's real `epmd`, and against broken EPMDs of our own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from epmd.helpers import free_port, start_real_epmd, stop_process, wait_until
from nodemesh.epmd.client import default_epmd_port, names, port_please, register
from nodemesh.epmd.protocol import NodeInfo, NodeType
from nodemesh.errors import (
    ConfigError,
    EpmdError,
    EpmdNameInUseError,
    NameInUseError,
    NodeNameError,
    RemoteProtocolError,
)

interop = pytest.mark.interop


@interop
async def test_register_look_up_and_list(real_epmd: int) -> None:
    """A registration shows in NAMES and PORT_PLEASE2 as a hidden v5..6 node."""
    async with await register("pyA", 40001, epmd_port=real_epmd) as reg:
        assert reg.creation != 0
        assert await names("127.0.0.1", epmd_port=real_epmd) == [("pyA", 40001)]
        info = await port_please("127.0.0.1", "pyA", epmd_port=real_epmd)
        assert info == NodeInfo("pyA", 40001, NodeType.HIDDEN, 0, 6, 5)


@interop
async def test_register_normal_node(real_epmd: int) -> None:
    """hidden=False registers node type 77."""
    async with await register("pyN", 40002, hidden=False, epmd_port=real_epmd):
        info = await port_please("127.0.0.1", "pyN", epmd_port=real_epmd)
        assert info is not None
        assert info.node_type == NodeType.NORMAL
        assert not info.hidden


@interop
async def test_unknown_name_is_none(real_epmd: int) -> None:
    """port_please answers None for a name EPMD does not hold."""
    assert await port_please("127.0.0.1", "nobody", epmd_port=real_epmd) is None


@interop
async def test_taken_name_is_refused(real_epmd: int) -> None:
    """A name real epmd holds raises EpmdNameInUseError naming it and the way out."""
    async with await register("pyA", 40001, epmd_port=real_epmd):
        with pytest.raises(EpmdNameInUseError) as caught:
            await register("pyA", 40003, epmd_port=real_epmd)
    error = caught.value
    assert isinstance(error, NameInUseError) and isinstance(error, EpmdError)
    assert error.name == "pyA"
    assert f"127.0.0.1:{real_epmd} refused to register the node name 'pyA'" in str(error)
    assert "already registered by another live node" in str(error)
    assert "Give this node another name, or stop the node called 'pyA'" in str(error)


@interop
async def test_closing_unregisters_and_reregistering_changes_creation(real_epmd: int) -> None:
    """Closing the registration frees the name; registering again gives a new creation."""
    first = await register("pyA", 40001, epmd_port=real_epmd)
    await first.aclose()
    assert first.closed

    async def gone() -> bool:
        return await names("127.0.0.1", epmd_port=real_epmd) == []

    await wait_until(gone, what="epmd to drop pyA")
    async with await register("pyA", 40001, epmd_port=real_epmd) as second:
        assert second.creation not in (0, first.creation)


@interop
async def test_wait_closed_returns_when_epmd_dies() -> None:
    """wait_closed() returns once EPMD drops the connection."""
    port = free_port()
    proc = await start_real_epmd(port)
    try:
        reg = await register("pyA", 40001, epmd_port=port)
        assert not reg.closed
        proc.kill()
        async with asyncio.timeout(10):
            await reg.wait_closed()
        assert reg.closed
    finally:
        await stop_process(proc)


@interop
async def test_erl_epmd_port_is_the_default(
    real_epmd: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ERL_EPMD_PORT set, calls without epmd_port go to that port."""
    monkeypatch.setenv("ERL_EPMD_PORT", str(real_epmd))
    assert default_epmd_port() == real_epmd
    async with await register("pyE", 40005):
        assert await names("localhost") == [("pyE", 40005)]


def test_default_port_without_and_with_bad_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without ERL_EPMD_PORT the port is 4369; a non-port value is a ConfigError."""
    monkeypatch.delenv("ERL_EPMD_PORT", raising=False)
    assert default_epmd_port() == 4369
    monkeypatch.setenv("ERL_EPMD_PORT", "43x")
    with pytest.raises(ConfigError, match="ERL_EPMD_PORT"):
        default_epmd_port()


async def test_unreachable_epmd_names_host_and_port() -> None:
    """No EPMD listening: EpmdError naming host:port and the refusal."""
    port = free_port()
    with pytest.raises(EpmdError, match=rf"127\.0\.0\.1:{port}: Connection refused"):
        await port_please("127.0.0.1", "x", epmd_port=port)
    with pytest.raises(EpmdError, match=rf"\[::1\]:{port}"):
        await names("::1", epmd_port=port)


@pytest.mark.parametrize("bad", ["", "a@b", "a b", "a\nb", "x" * 256])
async def test_bad_names_are_refused_before_connecting(bad: str) -> None:
    """Names EPMD cannot hold raise NodeNameError without any network traffic."""
    with pytest.raises(NodeNameError):
        await register(bad, 1, epmd_port=1)
    with pytest.raises(NodeNameError):
        await port_please("127.0.0.1", bad, epmd_port=1)


async def test_bad_port_is_a_config_error() -> None:
    """A distribution port outside 1..65535 is refused."""
    with pytest.raises(ConfigError):
        await register("x", 0, epmd_port=1)


class FakeEpmd:
    """EPMD impostors on loopback: each reads a request, sends a canned reply, maybe closes."""

    def __init__(self) -> None:
        self.servers: list[asyncio.Server] = []
        self.held: list[asyncio.StreamWriter] = []

    async def start(self, reply: bytes | None, *, close: bool = True) -> int:
        """Serve ``reply`` (None: nothing) and close, or hold the connection open silently."""

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(100)
            if reply is not None:
                writer.write(reply)
            if close:
                writer.close()
            else:
                self.held.append(writer)

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        self.servers.append(server)
        port: int = server.sockets[0].getsockname()[1]
        return port

    async def aclose(self) -> None:
        for writer in self.held:
            writer.close()
        for server in self.servers:
            server.close()
            await server.wait_closed()


@pytest.fixture
async def fake() -> AsyncIterator[FakeEpmd]:
    """A factory of EPMD impostors, all closed after the test."""
    impostors = FakeEpmd()
    yield impostors
    await impostors.aclose()


async def test_silent_epmd_times_out(fake: FakeEpmd) -> None:
    """An EPMD that never answers raises EpmdError after the timeout."""
    port = await fake.start(None, close=False)
    with pytest.raises(EpmdError, match=rf"127\.0\.0\.1:{port} did not answer NAMES_REQ"):
        await names("127.0.0.1", epmd_port=port, timeout=0.2)


async def test_epmd_closing_without_answer_is_a_refusal(fake: FakeEpmd) -> None:
    """An EPMD closing without a byte (as for ALIVE2 from afar) raises EpmdError."""
    port = await fake.start(None)
    with pytest.raises(EpmdError, match="closed the connection without answering ALIVE2_REQ"):
        await register("x", 1, epmd_port=port)


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (b"HTTP/1.1 400 Bad Request\r\n", "expected ALIVE2_X_RESP"),
        (b"v\x00\x00", "ALIVE2_REQ reply truncated at 3 bytes"),
        (b"v\x00\x00\x00\x00\x00", "reserved creation 0"),
    ],
)
async def test_broken_alive2_replies(fake: FakeEpmd, reply: bytes, message: str) -> None:
    """Garbage, truncated or creation-0 ALIVE2 replies raise RemoteProtocolError."""
    port = await fake.start(reply)
    with pytest.raises(RemoteProtocolError, match=message):
        await register("x", 1, epmd_port=port)


async def test_broken_port2_reply(fake: FakeEpmd) -> None:
    """A PORT2_RESP cut short raises RemoteProtocolError naming the EPMD."""
    port = await fake.start(b"w\x00\x04\xd2M\x00")
    with pytest.raises(RemoteProtocolError, match=rf"EPMD at 127\.0\.0\.1:{port}: .*truncated"):
        await port_please("127.0.0.1", "x", epmd_port=port)
