"""``nodemesh epmd`` and ``nodemesh names``: output, exit codes and signals."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator

import pytest

from epmd.helpers import free_port, require_epmd
from nodemesh.cli import main
from nodemesh.epmd.client import register
from nodemesh.epmd.server import EpmdServer

CLI = [
    sys.executable,
    "-c",
    "import sys; from nodemesh.cli import main; sys.exit(main(sys.argv[1:]))",
]


class ServeProcess:
    """A ``nodemesh epmd`` child process and its output streams."""

    def __init__(self, proc: asyncio.subprocess.Process, port: int) -> None:
        self.proc = proc
        self.port = port

    async def line(self, stream: asyncio.StreamReader | None, containing: str) -> str:
        """The next line of ``stream`` that contains ``containing`` (within 20 s)."""
        assert stream is not None
        async with asyncio.timeout(20):
            while True:
                raw = await stream.readline()
                if not raw:
                    pytest.fail(f"nodemesh epmd ended before printing {containing!r}")
                if containing in (text := raw.decode()):
                    return text

    async def stop(self, signum: int) -> int:
        """Send ``signum`` and return the exit code."""
        self.proc.send_signal(signum)
        async with asyncio.timeout(20):
            return await self.proc.wait()


@pytest.fixture
async def serve() -> AsyncIterator[ServeProcess]:
    """`nodemesh epmd --port P --address 127.0.0.1` running, once it listens."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "ERL_EPMD_PORT"}
    proc = await asyncio.create_subprocess_exec(
        *CLI,
        "epmd",
        "--port",
        str(port),
        "--address",
        "127.0.0.1",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    child = ServeProcess(proc, port)
    try:
        listening = await child.line(proc.stdout, "listening")
        assert listening.startswith(f"epmd: listening on port {port} (127.0.0.1")
        yield child
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.communicate()


async def test_serve_logs_registrations_and_exits_0_on_sigterm(serve: ServeProcess) -> None:
    """The foreground EPMD logs a registration and exits 0 on SIGTERM."""
    async with await register("py", 40001, epmd_port=serve.port):
        await serve.line(serve.proc.stderr, "registered py at port 40001")
    assert await serve.stop(signal.SIGTERM) == 0


async def test_serve_exits_0_on_sigint(serve: ServeProcess) -> None:
    """Ctrl-C (SIGINT) stops the foreground EPMD with exit code 0."""
    assert await serve.stop(signal.SIGINT) == 0


@pytest.mark.interop
async def test_names_prints_like_epmd_names(serve: ServeProcess) -> None:
    """`nodemesh names` prints exactly what OTP's `epmd -names` prints."""
    async with await register("py", 40001, epmd_port=serve.port):
        ours = await asyncio.create_subprocess_exec(
            *CLI, "names", "--port", str(serve.port), stdout=asyncio.subprocess.PIPE
        )
        theirs = await asyncio.create_subprocess_exec(
            require_epmd(), "-port", str(serve.port), "-names", stdout=asyncio.subprocess.PIPE
        )
        async with asyncio.TaskGroup() as group:
            mine, reference = (
                group.create_task(ours.communicate()),
                group.create_task(theirs.communicate()),
            )
        (out, _), (expected, _) = mine.result(), reference.result()
    assert (ours.returncode, out.decode()) == (0, expected.decode())
    assert out.decode() == (
        f"epmd: up and running on port {serve.port} with data:\nname py at port 40001\n"
    )


async def test_names_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    """main(["names", ...]) prints the header and one line per node, exit 0."""
    async with EpmdServer() as server:
        await server.start(0, "127.0.0.1")
        async with await register("py", 40001, epmd_port=server.port):
            argv = ["names", "127.0.0.1", "--port", str(server.port)]
            assert await asyncio.to_thread(main, argv) == 0
    assert capsys.readouterr().out == (
        f"epmd: up and running on port {server.port} with data:\nname py at port 40001\n"
    )


def test_names_unreachable(capsys: pytest.CaptureFixture[str]) -> None:
    """No EPMD: one line on stderr naming host:port, exit 1."""
    port = free_port()
    assert main(["names", "--port", str(port)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"nodemesh names: cannot reach EPMD at 127.0.0.1:{port}: Connection refused\n"
    )


async def test_serve_on_a_taken_port_exits_1() -> None:
    """`nodemesh epmd` on a port in use prints one line on stderr and exits 1."""
    async with EpmdServer() as server:
        await server.start(0, "127.0.0.1")
        argv = ["epmd", "--port", str(server.port), "--address", "127.0.0.1"]
        proc = await asyncio.create_subprocess_exec(
            *CLI, *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        async with asyncio.timeout(20):
            out, err = await proc.communicate()
    assert proc.returncode == 1
    assert out == b""
    assert err.decode().startswith("nodemesh epmd: cannot listen on 127.0.0.1:")
    assert err.decode().endswith(
        f": Address already in use; an EPMD already answers on port {server.port} "
        "(`nodemesh names` lists its nodes): nothing to start, or give --port for another one\n"
    )
    assert err.count(b"\n") == 1


def test_bad_port_argument(capsys: pytest.CaptureFixture[str]) -> None:
    """A port that is not a number is a usage error (exit 2)."""
    with pytest.raises(SystemExit) as info:
        main(["names", "--port", "http"])
    assert info.value.code == 2
    assert "is not a TCP port number" in capsys.readouterr().err
