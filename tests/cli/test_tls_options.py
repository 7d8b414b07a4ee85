"""`nodemesh run`/`ping` with --tls-* options or NODEMESH_TLS_* variables: real processes."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

from conftest import COOKIE, NodeFactory
from nodemesh import TlsConfig
from support.certs import Pki, make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """Test certificates: a CA, node certificates, another CA, bad certificates."""
    return make_pki(tmp_path_factory.mktemp("pki"))


async def nodemesh(
    *args: str, epmd_port: int, env: dict[str, str] | None = None
) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "nodemesh.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "ERL_EPMD_PORT": str(epmd_port), **(env or {})},
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_ping_with_tls_options_and_with_the_environment(
    make_node: NodeFactory, epmd_port: int, pki: Pki
) -> None:
    """`nodemesh ping` reaches a TLS node with --tls-* flags or NODEMESH_TLS_*; without
    them (plain TCP) it gets pang."""
    tls = TlsConfig(pki.node_b.certfile, pki.node_b.keyfile, pki.cafile)
    node = await make_node("tlsnode", tls=tls)
    flags = ("--tls-certfile", pki.node_a.certfile, "--tls-keyfile", pki.node_a.keyfile)
    code, out = await nodemesh(
        "ping",
        node.name,
        "--cookie",
        COOKIE,
        *flags,
        "--tls-cafile",
        pki.cafile,
        epmd_port=epmd_port,
    )
    assert (code, out.splitlines()[0]) == (0, "pong"), out
    env = {
        "NODEMESH_TLS_CERTFILE": pki.node_a.certfile,
        "NODEMESH_TLS_KEYFILE": pki.node_a.keyfile,
        "NODEMESH_TLS_CAFILE": pki.cafile,
    }
    code, out = await nodemesh("ping", node.name, "--cookie", COOKIE, epmd_port=epmd_port, env=env)
    assert (code, out.splitlines()[0]) == (0, "pong"), out
    code, out = await nodemesh(
        "ping", node.name, "--cookie", COOKIE, "--timeout", "3", epmd_port=epmd_port
    )
    assert code == 1 and out.startswith("pang")


async def test_run_with_an_unreadable_certificate_is_one_error_line(
    epmd_port: int, pki: Pki
) -> None:
    """`nodemesh run --tls-certfile MISSING` exits 1 with one line naming the file."""
    code, out = await nodemesh(
        "run",
        "--name",
        "tlsrun@127.0.0.1",
        "--cookie",
        COOKIE,
        "--tls-certfile",
        "/nonexistent/node.crt",
        "--tls-cafile",
        pki.cafile,
        epmd_port=epmd_port,
    )
    assert code == 1
    assert out.strip() == (
        "nodemesh: cannot load TLS certfile /nonexistent/node.crt: No such file or directory"
    )
