"""A StatefulSet's stable names end to end: SRV records to ``app@web-N.web...`` nodes.

In a pod, both the strategy and the node's connects resolve names through
``/etc/resolv.conf``. Here the pods are one child process in a private mount namespace
(``unshare --mount``) whose ``/etc/resolv.conf`` is bind-mounted to name a real dnsmasq on
port 53 of a loopback address, with a pod's search list and ``ndots:5``. The child runs
``app@web-0.web.default.svc.cluster.local`` (with Kubernetes.DNSSRV and no DNS options at
all), ``app@web-1...`` and ``app@web-2...``, each listening on the address dnsmasq gives
its name (EPMD-less, one port: see test_dns_cluster.py). Only web-0 runs the strategy, so
each join and leave it reports comes from the SRV records the test changes.

Needs root (mount, port 53) and unshare: skipped without them, failed under CI.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from conftest import COOKIE
from support.dns import Dnsmasq, require_dnsmasq
from support.net import free_port

TESTS = Path(__file__).resolve().parents[1]
SVC = "web.default.svc.cluster.local"
PODS = [f"web-{i}.{SVC}" for i in range(3)]


def require_private_resolv_conf() -> None:
    """Skip unless we can bind-mount resolv.conf in a new mount namespace; fail under CI."""
    reason = None
    if os.geteuid() != 0:
        reason = "needs root to mount a private /etc/resolv.conf and serve DNS on port 53"
    elif shutil.which("unshare") is None:
        reason = "unshare is missing (util-linux)"
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"cannot run under CI: {reason}")
        pytest.skip(reason)


class Pods:
    """The child process running the pods; its stdout lines are the test's events."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def line(self, timeout: float = 10.0) -> str:
        assert self.proc.stdout is not None
        raw = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not raw:
            raise AssertionError(f"the pods process ended (exit {await self.proc.wait()})")
        return raw.decode().strip()


@pytest.fixture
async def pods(tmp_path: Path) -> AsyncIterator[tuple[Dnsmasq, Pods]]:
    """dnsmasq on <127.x.y.1>:53 with the pods' A records and SRV for web-0 and web-1,
    and the child process running the three pods."""
    require_private_resolv_conf()
    base = f"127.{random.randrange(1, 255)}.{random.randrange(256)}"
    server = Dnsmasq(tmp_path, executable=require_dnsmasq(), address=f"{base}.1", port=53)
    await server.set_hosts({pod: [f"{base}.{10 + i}"] for i, pod in enumerate(PODS)})
    await server.set_srv({SVC: PODS[:2]})
    resolv_conf = tmp_path / "resolv.conf"
    resolv_conf.write_text(
        f"nameserver {base}.1\n"
        "search default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"
    )
    await server.start()
    proc = await asyncio.create_subprocess_exec(
        "unshare",
        "--mount",
        "sh",
        "-c",
        'mount --bind "$0" /etc/resolv.conf && exec "$@"',
        str(resolv_conf),
        sys.executable,
        "-m",
        "support.dns",
        "statefulset",
        str(free_port()),
        ",".join(PODS),
        COOKIE,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
        },
        cwd=TESTS,
    )
    try:
        yield server, Pods(proc)
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            async with asyncio.timeout(10):
                await proc.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        await server.stop()


async def test_statefulset_pods_join_and_leave_by_srv_records(
    pods: tuple[Dnsmasq, Pods],
) -> None:
    """Scaling the StatefulSet's SRV records up and down joins and prunes app@web-2...,
    all names resolved by the system resolver as in a pod."""
    dnsmasq, child = pods
    assert await child.line(timeout=30) == "ready"
    assert await child.line() == f"NodeJoined app@{PODS[1]} discovered"
    await dnsmasq.set_srv({SVC: PODS})  # scale up to 3 replicas
    assert await child.line() == f"NodeJoined app@{PODS[2]} discovered"
    await dnsmasq.set_srv({SVC: PODS[:2]})  # and down again
    assert await child.line() == f"NodeLeft app@{PODS[2]} pruned"
