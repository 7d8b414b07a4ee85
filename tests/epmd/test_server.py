"""The embedded EPMD with our client and raw bytes: registrations, limits, bad input."""

from __future__ import annotations

import asyncio
import errno
import logging

import pytest

from epmd.helpers import exchange, free_port, has_ipv6_loopback
from nodemesh.epmd.client import names, port_please, register
from nodemesh.epmd.protocol import (
    Alive2Request,
    Alive2Response,
    DumpRequest,
    DumpResponse,
    KillRequest,
    NodeInfo,
    NodeType,
    StopRequest,
)
from nodemesh.epmd.server import EpmdServer, EpmdServerConfig, ensure_epmd
from nodemesh.errors import ConfigError, EpmdError, EpmdNameInUseError

EPMD_LOG = "nodemesh.epmd"


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The warning lines the EPMD logged."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == EPMD_LOG and r.levelno >= logging.WARNING
    ]


async def test_register_look_up_list(server: EpmdServer) -> None:
    """A registration shows in registrations(), NAMES and PORT_PLEASE2."""
    async with await register("py", 40001, epmd_port=server.port) as reg:
        [entry] = server.registrations()
        assert entry.node == NodeInfo("py", 40001, NodeType.HIDDEN)
        assert entry.creation == reg.creation != 0
        assert await names("127.0.0.1", epmd_port=server.port) == [("py", 40001)]
        assert await port_please("127.0.0.1", "py", epmd_port=server.port) == entry.node
        assert await port_please("127.0.0.1", "other", epmd_port=server.port) is None


async def test_registration_lives_with_its_connection(server: EpmdServer) -> None:
    """Closing the connection unregisters; the name then registers with a new creation."""
    first = await register("py", 40001, epmd_port=server.port)
    with pytest.raises(EpmdNameInUseError, match=r"'py'.*already registered"):
        await register("py", 40002, epmd_port=server.port)
    await first.aclose()
    async with await register("py", 40002, epmd_port=server.port) as second:
        assert second.creation not in (0, first.creation)
        assert [e.node.port for e in server.registrations()] == [40002]


async def test_old_node_gets_a_16_bit_creation(server: EpmdServer) -> None:
    """A node offering only version 5 gets ALIVE2_RESP with a creation of 1..3."""
    request = Alive2Request(NodeInfo("old", 40001, highest_version=5, lowest_version=5))
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(request.encode())
    async with asyncio.timeout(10):
        reply = Alive2Response.parse(await reader.readexactly(4))
    assert reply is not None
    assert not reply.extended
    assert reply.creation in (1, 2, 3)
    writer.close()
    await writer.wait_closed()


async def test_serves_ipv6_loopback(server: EpmdServer) -> None:
    """Listening on 127.0.0.1 also serves ::1, as epmd -address does."""
    if not has_ipv6_loopback():
        pytest.skip("no IPv6 loopback here")
    async with await register("v6", 40001, host="::1", epmd_port=server.port):
        assert await names("::1", epmd_port=server.port) == [("v6", 40001)]


BAD_INPUT = [
    (b"GET / HTTP/1.1\r\n\r\n", False, "exceeds the limit"),
    (b"\x00\x01\x99", False, "unknown EPMD request tag 153"),
    (b"\x00\x00", False, "empty EPMD request"),
    (b"\x13\x88" + b"x" * 10, False, "5000 bytes exceeds the limit of 4096"),
    (b"\x00\x0ex\x9c\xe1M\x00", True, "closed mid-request (7 bytes)"),
    (b"\x00\x04\x7a\xff\xfe\xfd", False, "is not UTF-8"),
    (StopRequest("py").encode(), False, "STOP_REQ for 'py' refused"),
]


@pytest.mark.parametrize(("data", "eof", "message"), BAD_INPUT, ids=repr)
async def test_bad_input_closes_only_that_connection(
    server: EpmdServer, caplog: pytest.LogCaptureFixture, data: bytes, eof: bool, message: str
) -> None:
    """Bad bytes: one log line, that connection closed, registrations and service intact."""
    caplog.set_level(logging.INFO, EPMD_LOG)
    async with await register("py", 40001, epmd_port=server.port) as reg:
        assert await exchange(server.port, data, eof=eof) == b""
        [line] = warnings_of(caplog)
        assert message in line
        assert "127.0.0.1:" in line
        assert not reg.closed
        assert await names("127.0.0.1", epmd_port=server.port) == [("py", 40001)]


async def test_registration_from_another_host_is_refused(
    server: EpmdServer, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ALIVE2, DUMP and KILL from a non-local peer are refused; lookups are still served."""
    monkeypatch.setattr("nodemesh.epmd.server.is_local_peer", lambda peer, local: False)
    for request in (Alive2Request(NodeInfo("py", 1)), DumpRequest(), KillRequest()):
        assert await exchange(server.port, request.encode()) == b""
    assert len(lines := warnings_of(caplog)) == 3
    assert "ALIVE2_REQ refused: it did not come from this host" in lines[0]
    assert await names("127.0.0.1", epmd_port=server.port) == []
    assert await port_please("127.0.0.1", "py", epmd_port=server.port) is None
    assert not server.closed


async def test_idle_client_times_out(caplog: pytest.LogCaptureFixture) -> None:
    """A connection that never completes a request is closed after request_timeout."""
    async with EpmdServer(EpmdServerConfig(request_timeout=0.2)) as server:
        await server.start(0, "127.0.0.1")
        async with await register("py", 40001, epmd_port=server.port) as reg:
            assert await exchange(server.port, b"\x00\x05n") == b""
            [line] = warnings_of(caplog)
            assert "no complete request within 0.2 s (3 bytes)" in line
            assert not reg.closed  # registrations do not time out


async def test_bytes_after_registering_drop_that_registration(
    server: EpmdServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A registered connection that sends more bytes is closed, and so unregistered."""
    async with await register("keep", 40002, epmd_port=server.port):
        request = Alive2Request(NodeInfo("py", 40001)).encode()
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(request)
        assert Alive2Response.parse(await reader.readexactly(6)) is not None
        writer.write(b"junk")
        async with asyncio.timeout(10):
            assert await reader.read() == b""
        writer.close()
        await writer.wait_closed()
        assert "4 unexpected bytes after ALIVE2_REQ" in warnings_of(caplog)[0]
        assert [e.node.name for e in server.registrations()] == ["keep"]


async def test_connection_limit(caplog: pytest.LogCaptureFixture) -> None:
    """Beyond max_connections a new connection is closed at once and logged."""
    async with EpmdServer(EpmdServerConfig(max_connections=1)) as server:
        await server.start(0, "127.0.0.1")
        async with await register("py", 40001, epmd_port=server.port):
            assert await exchange(server.port, b"") == b""
            assert "1 connections already open" in warnings_of(caplog)[0]


async def test_dump_and_kill(server: EpmdServer) -> None:
    """DUMP lists live nodes; KILL is refused while any is registered, then stops it."""
    async with await register("py", 40001, epmd_port=server.port):
        dump = DumpResponse.decode(await exchange(server.port, DumpRequest().encode()))
        assert dump.lines == (DumpResponse.line("py", 40001, -1),)
        assert await exchange(server.port, KillRequest().encode()) == b"NO"
    assert await exchange(server.port, KillRequest().encode()) == b"OK"
    async with asyncio.timeout(10):
        await server.wait_closed()
    assert server.closed


async def test_aclose_drops_registrations(server: EpmdServer) -> None:
    """Closing the server closes every registration connection, as epmd dying does."""
    reg = await register("py", 40001, epmd_port=server.port)
    await server.aclose()
    async with asyncio.timeout(10):
        await reg.wait_closed()
    assert server.registrations() == []
    with pytest.raises(EpmdError, match="Connection refused"):
        await names("127.0.0.1", epmd_port=server.port)


async def test_port_in_use_is_eaddrinuse(server: EpmdServer) -> None:
    """Starting on a port another EPMD holds raises EpmdError with errno EADDRINUSE."""
    with pytest.raises(EpmdError, match="cannot listen") as info:
        await EpmdServer().start(server.port, "127.0.0.1")
    assert info.value.errno == errno.EADDRINUSE


async def test_bad_addresses_and_limits_are_config_errors() -> None:
    """A listen address that is not an IP, or nonsense limits, raise ConfigError."""
    with pytest.raises(ConfigError, match="not an IP address"):
        await EpmdServer().start(0, "localhost")
    with pytest.raises(ConfigError):
        EpmdServerConfig(request_timeout=0)
    with pytest.raises(ConfigError, match="only after start"):
        _ = EpmdServer().port


async def test_ensure_epmd_uses_a_running_one(server: EpmdServer) -> None:
    """ensure_epmd returns None when an EPMD already answers on the port."""
    assert await ensure_epmd(server.port, host="127.0.0.1") is None


async def test_ensure_epmd_starts_exactly_one() -> None:
    """Racing ensure_epmd calls on a free port start one server; the others use it."""
    port = free_port()
    async with asyncio.TaskGroup() as group:
        racers = [group.create_task(ensure_epmd(port, host="127.0.0.1")) for _ in range(4)]
    results = [racer.result() for racer in racers]
    started = [s for s in results if s is not None]
    try:
        assert len(started) == 1
        assert started[0].port == port
        assert await names("127.0.0.1", epmd_port=port) == []
    finally:
        for srv in started:
            await srv.aclose()
