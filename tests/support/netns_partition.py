"""Partitions made with nftables between the hosts of a :class:`~support.netns.NetnsLab`.

:func:`isolate` loads a table into host ``i``'s namespace that drops every packet in and
out of ``eth0`` (loopback still works, so its own EPMD and processes carry on); the
established TCP connections stay open but hear nothing, as across a real partition, and
die of the net tick. :func:`heal` deletes the table. :func:`join_bridge` gives this
process (the root namespace) an address on the lab's bridge, so Python nodes running in
the test itself reach the hosts. Needs ``nft`` (nftables); :func:`require_nft` skips
without it, except under CI, where it fails.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import Sequence

import pytest

from support.erlang import ErlPeer, beam_dir, require_erlang
from support.netns import NetnsLab

TABLE = "nodemesh_partition"
BRIDGE_HOST = 254  # the root namespace is 10.77.0.254 on the bridge


def require_nft() -> None:
    """Skip unless ``nft`` is installed; fail under CI."""
    if shutil.which("nft") is None:
        if os.environ.get("CI"):
            pytest.fail("nft is missing: .ci/run must install nftables")
        pytest.skip("nft is not installed (apt-get install nftables)")


def join_bridge(lab: NetnsLab) -> str:
    """Give the root namespace ``10.77.0.254/24`` on the lab's bridge; return it."""
    address = lab.ip4(BRIDGE_HOST)
    subprocess.run(
        ["ip", "addr", "add", f"{address}/24", "dev", lab.bridge], check=True, timeout=30
    )
    return address


def isolate(lab: NetnsLab, i: int) -> None:
    """Cut host ``i`` off from every other host: drop all it sends and receives."""
    rules = (
        f"table inet {TABLE} {{\n"
        "  chain input { type filter hook input priority 0; policy accept;"
        ' iifname "eth0" drop; }\n'
        "  chain output { type filter hook output priority 0; policy accept;"
        ' oifname "eth0" drop; }\n'
        "}\n"
    )
    subprocess.run([*lab.prefix(i), "nft", "-f", "-"], input=rules, text=True, check=True)


def heal(lab: NetnsLab, i: int) -> None:
    """Undo :func:`isolate` for host ``i``."""
    subprocess.run([*lab.prefix(i), "nft", "delete", "table", "inet", TABLE], check=True)


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
