"""Every ```python block of README.md and docs/*.md runs as a script and exits 0.

How a sample is run (what an author of a doc can count on, and must provide):

- A block fenced exactly ```python is a complete program: it imports what it uses,
  starts every node it talks to itself (``asyncio.run(main())``), ends by itself, and
  exits 0 within about 10 s (the runner allows TIMEOUT seconds, for a loaded machine).
  Its output is not compared: comments in the block say what it prints.
- Fences start in the first column (a block indented under a list item is not found).
- Fragments that are not programs (a REPL session, an excerpt, a printed value) take
  another fence: ```pycon, ```text, ```toml, ```sh.
- A complete program that needs what a test machine lacks (Rancher's metadata service,
  a Kubernetes API) is preceded by the line ``<!-- sample: not run (the reason) -->``;
  it is reported as skipped with that reason. Use it sparingly.
- Each sample runs as ``python sample.py`` with the suite's interpreter, in a fresh
  empty directory that is also its ``$HOME`` (so ``~/.erlang.cookie`` is private), with
  a private ``$ERL_EPMD_PORT`` (the first node starts an embedded EPMD there),
  ``$NODEMESH_COOKIE`` set to a test cookie, and no other ``NODEMESH_*`` variables.
  Node names on 127.0.0.1 are safe: no other sample shares the EPMD.
"""

from __future__ import annotations

import os
import random
import re
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 30.0
COOKIE = "nodemesh-docs-cookie"
_FENCE = re.compile(r"^(`{3,})(\S*)\s*$")
_NOT_RUN = re.compile(r"^<!--\s*sample:\s*not run\s*\((?P<reason>.+)\)\s*-->$")


@dataclass(frozen=True)
class Sample:
    """One ```python block: where it is, its code, and why it is not run (if so)."""

    where: str
    code: str
    not_run: str | None


def samples_of(path: Path, shown: str) -> list[Sample]:
    """The ```python blocks of a Markdown file, in order; ``shown`` names the file."""
    found: list[Sample] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        fence = _FENCE.match(lines[index])
        if fence is None:
            index += 1
            continue
        end = next(
            (i for i in range(index + 1, len(lines)) if lines[i].strip() == fence[1]), len(lines)
        )
        if fence[2] == "python":
            before = next((ln.strip() for ln in reversed(lines[:index]) if ln.strip()), "")
            marker = _NOT_RUN.match(before)
            code = "\n".join(lines[index + 1 : end]) + "\n"
            where = f"{shown}:{index + 1}"
            found.append(Sample(where, code, marker["reason"] if marker else None))
        index = end + 1
    return found


def all_samples() -> list[Sample]:
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    return [s for doc in docs for s in samples_of(doc, str(doc.relative_to(ROOT)))]


def epmd_port() -> int:
    """A free port below Linux's ephemeral range (32768-60999): the sample binds it a
    second later, and a port the kernel hands out to any connect() meanwhile would be
    "in use, but nothing there answers as an EPMD"."""
    while True:
        port = random.randrange(20000, 32768)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port


@pytest.mark.parametrize("sample", all_samples(), ids=lambda s: s.where)
def test_sample_runs(sample: Sample, tmp_path: Path) -> None:
    """The block runs by itself and exits 0 within TIMEOUT seconds."""
    if sample.not_run is not None:
        pytest.skip(f"marked not run: {sample.not_run}")
    script = tmp_path / "sample.py"
    script.write_text(sample.code, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NODEMESH_")}
    env.update(HOME=str(tmp_path), ERL_EPMD_PORT=str(epmd_port()), NODEMESH_COOKIE=COOKIE)
    try:
        done = subprocess.run(
            [sys.executable, script.name],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{sample.where} did not finish within {TIMEOUT} s: {exc.stderr!r}")
    assert done.returncode == 0, f"{sample.where} exited {done.returncode}:\n{done.stderr}"


def test_the_runner_finds_blocks_and_markers(tmp_path: Path) -> None:
    """Only ```python fences count; the not-run marker above a fence is read."""
    doc = tmp_path / "probe.md"
    doc.write_text(
        "```pycon\n>>> 1\n```\n\n```python\nprint(1)\n```\n\n"
        "<!-- sample: not run (needs Rancher) -->\n```python\nprint(2)\n```\n"
        "````md\n```python\nnot a sample\n```\n````\n",
        encoding="utf-8",
    )
    found = samples_of(doc, "probe.md")
    assert [(s.code, s.not_run) for s in found] == [
        ("print(1)\n", None),
        ("print(2)\n", "needs Rancher"),
    ]
    assert found[0].where == "probe.md:5"
