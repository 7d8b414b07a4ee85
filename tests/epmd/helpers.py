"""Helpers for the EPMD tests: free ports, waiting for conditions, a real ``epmd``."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
from collections.abc import Awaitable, Callable

import pytest

from nodemesh.epmd.client import names
from nodemesh.errors import EpmdError
from support.erlang import require_erlang
from support.net import free_port as free_port  # the epmd tests import it from here


def has_ipv6_loopback() -> bool:
    """Whether ::1 can be bound here."""
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


async def wait_until(
    condition: Callable[[], Awaitable[bool]], *, within: float = 10.0, what: str = "condition"
) -> None:
    """Poll ``condition`` until it holds; fail the test after ``within`` seconds.

    For state held elsewhere (another process, the kernel) that sends us no event.
    """
    try:
        async with asyncio.timeout(within):
            while not await condition():  # noqa: ASYNC110 - no event to wait for
                await asyncio.sleep(0.02)
    except TimeoutError:
        pytest.fail(f"timed out after {within} s waiting for {what}")


async def epmd_answers(port: int) -> bool:
    """Whether an EPMD answers NAMES_REQ on 127.0.0.1:port."""
    try:
        await names("127.0.0.1", epmd_port=port, timeout=1.0)
    except EpmdError:
        return False
    return True


async def exchange(port: int, data: bytes, *, host: str = "127.0.0.1", eof: bool = False) -> bytes:
    """Send ``data`` on a fresh connection (then EOF if asked); return all until closed."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(data)
        if eof:
            writer.write_eof()
        async with asyncio.timeout(10):
            return await reader.read()
    except ConnectionResetError:  # closed by the server with our bytes still unread
        return b""
    finally:
        writer.close()
        with contextlib.suppress(ConnectionResetError):
            await writer.wait_closed()


def require_epmd() -> str:
    """The path of `epmd`; skips (or fails under CI) like require_erlang."""
    require_erlang()
    path = shutil.which("epmd")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("epmd is not installed: .ci/run must install erlang-base")
        pytest.skip("epmd is not installed (apt-get install erlang-base)")
    return path


async def start_real_epmd(port: int) -> asyncio.subprocess.Process:
    """Start OTP's `epmd` in the foreground on loopback ``port``; return once it answers."""
    proc = await asyncio.create_subprocess_exec(
        require_epmd(),
        "-port",
        str(port),
        "-address",
        "127.0.0.1",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    await wait_until(lambda: epmd_answers(port), what=f"epmd on port {port}")
    return proc


async def stop_process(proc: asyncio.subprocess.Process) -> None:
    """Kill ``proc`` if it still runs, and reap it."""
    if proc.returncode is None:
        proc.kill()
    await proc.wait()
