"""Real Erlang/OTP peers for interop tests.

`ErlPeer` starts `erl` running ``nm_peer`` (see nm_peer.erl): a node the test drives by
sending Erlang expressions and reading their values back. Where `erl` is missing the tests
skip locally, but fail under CI (``CI=true``): interop tests must run in CI.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.tools import require_command

HERE = Path(__file__).parent
_BEAM_DIR: Path | None = None


def require_erlang() -> str:
    """Return the path of `erl`; skip the test where it is absent, fail in CI."""
    return require_command("erl", "erlang-base")


def require_elixir() -> str:
    """Return the path of `elixir`; skip the test where it is absent, fail in CI."""
    return require_command("elixir", "elixir")


async def run_elixir(
    script: str, *, cookie: str, epmd_port: int, name: str = "ex@127.0.0.1", timeout: float = 60
) -> tuple[int | None, str]:
    """Run ``elixir --name NAME -e SCRIPT`` against this test's EPMD; return its exit
    status and its output (stdout and stderr together)."""
    proc = await asyncio.create_subprocess_exec(
        require_elixir(), "--name", name, "--cookie", cookie, "-e", script,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "ERL_EPMD_PORT": str(epmd_port)},
    )  # fmt: skip
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return proc.returncode, out.decode()


@contextlib.contextmanager
def running_epmd() -> Iterator[int]:
    """Run a real `epmd` on a free port for the duration; yields the port."""
    from support.net import free_port

    require_erlang()
    port = free_port()
    proc = subprocess.Popen(["epmd", "-port", str(port)], stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            probe = subprocess.run(
                ["epmd", "-port", str(port), "-names"], capture_output=True, check=False
            )
            if probe.returncode == 0:
                break
        else:
            pytest.fail("epmd did not start")
        yield port
    finally:
        proc.kill()
        proc.wait()


def beam_dir() -> Path:
    """Compile nm_peer.erl once per test session and return the directory of its .beam."""
    global _BEAM_DIR
    if _BEAM_DIR is None:
        require_erlang()
        out = Path(tempfile.mkdtemp(prefix="nm_peer_"))
        subprocess.run(["erlc", "-o", str(out), str(HERE / "nm_peer.erl")], check=True, timeout=60)
        _BEAM_DIR = out
    return _BEAM_DIR


def erl_eval(expr: str, *, timeout: float = 30.0) -> str:
    """Evaluate ``expr`` (a sequence of Erlang expressions printing what they like) in a
    fresh non-distributed `erl` and return its stdout."""
    erl = require_erlang()
    proc = subprocess.run(
        [erl, "-noshell", "-eval", expr, "-s", "init", "stop"],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"erl failed: {proc.stderr or proc.stdout}")
    return proc.stdout


class ErlError(Exception):
    """An expression evaluated in the Erlang peer raised."""


class ErlPeer:
    """A running `erl` node that evaluates expressions sent from the test."""

    def __init__(self, proc: asyncio.subprocess.Process, name: str) -> None:
        self.proc = proc
        self.name = name
        self._next = 0
        self._lock = asyncio.Lock()

    @classmethod
    async def start(
        cls,
        name: str,
        cookie: str,
        *,
        longnames: bool = True,
        extra_args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        timeout: float = 20.0,
    ) -> ErlPeer:
        erl = require_erlang()
        args = [
            erl,
            "-noshell",
            "-name" if longnames else "-sname",
            name,
            "-setcookie",
            cookie,
            "-pa",
            str(beam_dir()),
            *extra_args,
            "-s",
            "nm_peer",
            "main",
        ]
        proc = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            limit=64 * 1024 * 1024,  # answers may print large terms on one line
        )
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), timeout)
        text = line.decode().strip()
        if not text.startswith("ready "):
            rest = await asyncio.wait_for(proc.stdout.read(4000), 5)
            proc.kill()
            raise RuntimeError(f"erl did not start: {text} {rest.decode(errors='replace')}")
        return cls(proc, text.split(" ", 1)[1])

    async def eval_raw(self, expr: str, *, timeout: float = 20.0) -> tuple[bytes, str]:
        """Evaluate ``expr`` and return (term_to_binary of the value, its ~w text)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        async with self._lock:
            self._next += 1
            ident = str(self._next)
            src = " ".join(expr.strip().splitlines())
            if not src.endswith("."):
                src += "."
            self.proc.stdin.write(f"{ident} {src}\n".encode())
            await self.proc.stdin.drain()
            while True:
                line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
                if not line:
                    raise RuntimeError(f"erl {self.name} exited")
                parts = line.decode(errors="replace").rstrip("\n").split(" ", 3)
                if parts[0] != ident:
                    continue  # output printed by the expression itself, or a log line
                if parts[1] == "error":
                    raise ErlError(" ".join(parts[2:]))
                return base64.b64decode(parts[2]), parts[3] if len(parts) > 3 else ""

    async def eval(self, expr: str, *, timeout: float = 20.0) -> str:
        """Evaluate ``expr`` and return the value printed with ``~w``."""
        return (await self.eval_raw(expr, timeout=timeout))[1]

    async def eval_term(self, expr: str, *, timeout: float = 20.0) -> Any:
        """Evaluate ``expr`` and decode its value with nodemesh's codec."""
        from nodemesh.term import decode

        return decode((await self.eval_raw(expr, timeout=timeout))[0])

    async def stop(self) -> None:
        """Kill the node (it is a test peer) and reap it."""
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        await self.proc.wait()
