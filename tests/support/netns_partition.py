"""Partition tests across the hosts of a :class:`~support.netns.NetnsLab`.

The partition itself is :func:`support.netns.drop_all` (every packet in and out of a
host's ``eth0`` dropped; loopback still works, so its own EPMD and processes carry on)
and :func:`support.netns.clear_filters` heals it. Here: :func:`join_bridge` gives this
process (the root namespace) an address on the lab's bridge, so Python nodes running in
the test itself reach the hosts, and :func:`erl_in` starts an ``erl`` that uses its
namespace's own EPMD on the test's port.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Sequence

from support.erlang import ErlPeer, beam_dir, require_erlang
from support.netns import NetnsLab

BRIDGE_HOST = 254  # the root namespace is 10.77.0.254 on the bridge


def join_bridge(lab: NetnsLab) -> str:
    """Give the root namespace ``10.77.0.254/24`` on the lab's bridge; return it."""
    address = lab.ip4(BRIDGE_HOST)
    subprocess.run(
        ["ip", "addr", "add", f"{address}/24", "dev", lab.bridge], check=True, timeout=30
    )
    return address


async def erl_in(
    lab: NetnsLab,
    i: int,
    name: str,
    cookie: str,
    *,
    epmd_port: int,
    extra_args: Sequence[str] = (),
    timeout: float = 30,
) -> ErlPeer:
    """A real ``erl`` in host ``i`` whose EPMD (its own, in that namespace) listens on
    ``epmd_port``, the port every node of the test uses."""
    erl = require_erlang()
    args = [*lab.prefix(i), "env", f"ERL_EPMD_PORT={epmd_port}", erl, "-noshell"]
    args += ["-name", name, "-setcookie", cookie, "-pa", str(beam_dir()), *extra_args]
    proc = await asyncio.create_subprocess_exec(
        *args,
        "-s",
        "nm_peer",
        "main",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        limit=64 * 1024 * 1024,
    )
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), timeout)).decode().strip()
    if not line.startswith("ready "):
        proc.kill()
        raise RuntimeError(f"erl did not start in host {i}: {line}")
    return ErlPeer(proc, line.split(" ", 1)[1])
