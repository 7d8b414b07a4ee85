"""Running the container entrypoint (deploy/docker/entrypoint.sh) outside a container.

No Docker engine runs on the test machines, so the script runs under ``/bin/sh`` (dash,
as in the Debian-based image) with a fake ``nodemesh`` first on PATH that records its
arguments, its environment and its PID, and optionally a fake ``hostname`` whose ``-i``
prints what the test says (a container's addresses). The script was started directly
by the test, so a fake ``nodemesh`` with the script's own PID proves the script ``exec``s.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = ROOT / "deploy" / "docker" / "entrypoint.sh"

_FAKE_NODEMESH = """#!/bin/sh
printf '%s' "$$" > "$FAKE_OUT/pid"
: > "$FAKE_OUT/argv"
for arg in "$@"; do printf '%s\\n' "$arg" >> "$FAKE_OUT/argv"; done
env > "$FAKE_OUT/env"
"""

_FAKE_HOSTNAME = """#!/bin/sh
if [ "${1:-}" = "-i" ]; then
    [ -n "${FAKE_HOSTNAME_I:-}" ] || exit 1
    printf '%s\\n' "$FAKE_HOSTNAME_I"
else
    printf 'container\\n'
fi
"""


@dataclass(frozen=True)
class Outcome:
    """What the entrypoint did: exit code, stderr, and what the fake nodemesh saw (None
    when it was not run)."""

    returncode: int
    stdout: str
    stderr: str
    argv: list[str] | None
    env: dict[str, str] | None
    execed: bool

    def option(self, name: str) -> str | None:
        """The value after ``name`` in the fake's arguments (the last one)."""
        assert self.argv is not None, f"nodemesh was not run: {self.stderr}"
        values = [self.argv[i + 1] for i, a in enumerate(self.argv[:-1]) if a == name]
        return values[-1] if values else None


def run_entrypoint(
    tmp: Path, *args: str, env: dict[str, str] | None = None, hostname_i: str | None = None
) -> Outcome:
    """Run the entrypoint with ``args`` and only ``env`` (plus PATH and HOME)."""
    bin_dir = tmp / "fakebin"
    out = tmp / "fake-out"
    bin_dir.mkdir(exist_ok=True)
    out.mkdir(exist_ok=True)
    for name, text in (("nodemesh", _FAKE_NODEMESH), ("hostname", _FAKE_HOSTNAME)):
        script = bin_dir / name
        script.write_text(text)
        script.chmod(0o755)
    for old in out.iterdir():
        old.unlink()
    path = os.pathsep.join([str(bin_dir), os.path.dirname(sys.executable), "/usr/bin", "/bin"])
    environment = {
        "PATH": path,
        "HOME": str(tmp),
        "FAKE_OUT": str(out),
        "NODEMESH_PYTHON": sys.executable,
        **(env or {}),
    }
    if hostname_i is not None:
        environment["FAKE_HOSTNAME_I"] = hostname_i
    proc = subprocess.Popen(
        ["/bin/sh", str(ENTRYPOINT), *args],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stdout, stderr = proc.communicate(timeout=30)
    pid_file = out / "pid"
    if not pid_file.exists():
        return Outcome(proc.returncode, stdout, stderr, None, None, False)
    argv = (out / "argv").read_text().splitlines()
    seen_env = dict(
        line.split("=", 1) for line in (out / "env").read_text().splitlines() if "=" in line
    )
    execed = int(pid_file.read_text()) == proc.pid
    return Outcome(proc.returncode, stdout, stderr, argv, seen_env, execed)
