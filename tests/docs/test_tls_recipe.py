"""docs/tls.md's openssl recipe makes certificates that TLS distribution accepts, and the
page's Python sample (marked not run: it names /etc paths and hosts) pings with them.

The recipe runs as written, with its example hosts swapped for this machine's
(``app-1.example.internal`` → ``localhost``, ``10.0.0.5`` → ``127.0.0.1``); the sample
runs as a script with its certificate paths pointed at the recipe's output (named as a
Kubernetes TLS Secret names them), against a worker node this test starts with the same
certificate.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

from nodemesh import Node, NodeConfig, TlsConfig
from support.net import free_port
from support.tools import require_command

DOC = Path(__file__).resolve().parents[2] / "docs" / "tls.md"
COOKIE = "nodemesh-docs-cookie"


def _recipe() -> str:
    """The first fenced block under "## Making the certificates"."""
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## Making the certificates") :]
    start = section.index("```text\n") + len("```text\n")
    return section[start : section.index("```", start)]


def _python_sample() -> str:
    """The page's ```python block that configures TLS."""
    blocks = DOC.read_text(encoding="utf-8").split("```python\n")[1:]
    (code,) = [block[: block.index("```")] for block in blocks if "TlsConfig(" in block]
    return code


def test_the_recipe_makes_a_certificate_the_doc_sample_pings_with(tmp_path: Path) -> None:
    """The recipe's certificates (hosts swapped for localhost) verify, and the doc's TLS
    sample pings a TLS worker with them: it prints True."""
    require_command("openssl", "openssl")
    script = _recipe().replace("app-1.example.internal", "localhost")
    script = script.replace("10.0.0.5", "127.0.0.1")
    made = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    assert "node.crt: OK" in made.stdout
    # The sample reads a Kubernetes TLS Secret's file names (tls.crt, tls.key, ca.crt).
    shutil.copy(tmp_path / "node.crt", tmp_path / "tls.crt")
    shutil.copy(tmp_path / "node.key", tmp_path / "tls.key")
    sample = _python_sample()
    code = sample.replace("/etc/nodemesh/tls/", f"{tmp_path}/")
    code = code.replace("app@app-1.example.internal", "app@localhost")
    code = code.replace("worker@app-2.example.internal", "worker@localhost")
    assert code != sample and "example.internal" not in code
    asyncio.run(_ping_from_sample(tmp_path, code))


async def _ping_from_sample(certs: Path, code: str) -> None:
    tls = TlsConfig(
        certfile=str(certs / "node.crt"), keyfile=str(certs / "node.key"),
        cafile=str(certs / "ca.crt"),
    )  # fmt: skip
    epmd = free_port()
    config = NodeConfig(tls=tls, epmd_port=epmd)
    async with Node("worker@localhost", COOKIE, config=config):
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", code,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "ERL_EPMD_PORT": str(epmd), "NODEMESH_COOKIE": COOKIE},
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    assert out.decode().split() == ["True"], (out.decode(), err.decode())
